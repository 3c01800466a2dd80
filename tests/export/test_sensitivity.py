"""The sensitivity sweep on a real Model Optimizer QDQ detector: bypassing layers, ranking them, choosing few."""

from __future__ import annotations

import functools

import numpy as np
import onnx
import pytest

from edgeanon.detector import FaceDetector
from edgeanon.inference.ort import OrtBackend
from export.quantization.sensitivity import bypass, choose_kept, heatmap_error, keep_counts, quantized_nodes, sweep
from export.splits import half_of

CALIB = 4


@pytest.fixture(scope="module")
def qdq(tmp_path_factory, detector_model, shared_data):
    from export.quantization.feeds import calibration_images, detector_feeds
    from export.quantization.trt_flavour import modelopt_qdq

    images = calibration_images(shared_data / "wider-calib", CALIB)
    model = modelopt_qdq(detector_model, functools.partial(detector_feeds, detector_model, images), CALIB, "max",
                         "detector")
    return model, onnx.load(str(detector_model))


@pytest.fixture(scope="module")
def small_face(face_image):
    import cv2

    return cv2.resize(face_image, (128, 128), interpolation=cv2.INTER_AREA)


def _outputs(model, tmp_path, name, image):
    path = tmp_path / name
    onnx.save(model, str(path))
    detector = FaceDetector(OrtBackend(path, threads=1), input_scale=1.0)
    return detector.infer(detector.prepare(image))


def test_bypassing_every_quantized_layer_gives_the_fp32_model_back(qdq, tmp_path, small_face):
    model, fp32 = qdq
    names = [n.name for n in quantized_nodes(model)]
    assert len(names) > 50
    restored = bypass(model, fp32, names)
    assert not quantized_nodes(restored)
    assert not [n for n in restored.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    reference = _outputs(fp32, tmp_path, "fp32.onnx", small_face)
    out = _outputs(restored, tmp_path, "restored.onnx", small_face)
    for key in reference:
        np.testing.assert_allclose(out[key], reference[key], atol=1e-4)
    quantized = _outputs(model, tmp_path, "qdq.onnx", small_face)
    assert heatmap_error(reference, quantized) > heatmap_error(reference, out) == 0.0


def test_bypassing_one_layer_leaves_the_others_quantized(qdq):
    model, fp32 = qdq
    names = [n.name for n in quantized_nodes(model)]
    one = bypass(model, fp32, [names[0]])
    assert [n.name for n in quantized_nodes(one)] == names[1:]
    onnx.checker.check_model(one)
    with pytest.raises(ValueError, match="not in the FP32 model"):
        bypass(model, fp32, ["/no/such/node"])


def test_sweep_ranks_every_layer_and_choose_keeps_the_fewest_that_pass(qdq, tmp_path, small_face):
    model, fp32 = qdq
    reference = _outputs(fp32, tmp_path, "fp32.onnx", small_face)
    candidates = [n.name for n in quantized_nodes(model)][:6]

    def error(path):
        detector = FaceDetector(OrtBackend(path, threads=1), input_scale=1.0)
        return heatmap_error(reference, detector.infer(detector.prepare(small_face)))

    base, scores = sweep(model, fp32, error, candidates)
    assert sorted(s.node for s in scores) == sorted(candidates) and base > 0
    assert [s.gain for s in scores] == sorted((s.gain for s in scores), reverse=True)
    assert all(s.gain == pytest.approx(base - s.error_in_float) for s in scores)

    ranking = [s.node for s in scores]

    def passes(path):  # a target met once the three most sensitive layers are in float
        kept = set(ranking) - {n.name for n in quantized_nodes(onnx.load(str(path)))}
        return len(kept) >= 3, {"in_float": len(kept)}

    kept, trials = choose_kept(model, fp32, ranking, passes)
    assert kept == ranking[:3]
    assert [t["kept"] for t in trials] == [0, 1, 2, 4, 3]
    with pytest.raises(ValueError, match="not reached"):
        choose_kept(model, fp32, ranking, lambda path: (False, {}))


def test_keep_counts():
    assert keep_counts(0) == [0]
    assert keep_counts(5) == [0, 1, 2, 4, 5]
    assert keep_counts(8) == [0, 1, 2, 4, 8]


@pytest.fixture(scope="module")
def tiny_wider(tmp_path_factory, detector_model, small_face):
    """A one-photo wider-train (the astronaut at 128 px, her face as ground truth) in a tuning half."""
    import json

    import cv2

    data = tmp_path_factory.mktemp("data")
    (data / "wider-train").mkdir()
    name = next(f"face{i}.jpg" for i in range(100) if half_of(f"face{i}.jpg") == "tune")
    cv2.imwrite(str(data / "wider-train" / name), small_face)
    (face,) = FaceDetector.from_path(detector_model, backend="ort").detect(small_face)
    (data / "wider-train" / "boxes.json").write_text(json.dumps({name: [face.box.tolist()]}))
    return data


@pytest.mark.parametrize("flavour", ["cpu", "trt"])
def test_auto_keep_float_runs_the_sweep_end_to_end(flavour, tmp_path, detector_model, shared_data, tiny_wider):
    import json
    import shutil

    from export.quantization.quantize import quantize_detector

    shutil.copy(detector_model, tmp_path / "detector.onnx")
    (result,) = quantize_detector(tmp_path / "detector.onnx", shared_data / "wider-calib", (flavour,), ["auto"],
                                  limit=2, data_dir=tiny_wider, tune_images=1)
    info = json.loads({p.key: p.value for p in onnx.load(result.output).metadata_props}["edgeanon.quantization"])
    assert info["kept_float_by"] == "sweep" and info["kept_float"] == result.keep_float
    assert info["trials"] and info["trials"][-1]["passed"] and len(info["sweep"]["most_sensitive"]) == 16
    assert "tune half (1 images)" in info["tuning"]
