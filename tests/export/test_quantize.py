"""INT8 QDQ quantization on real calibration images: both flavours, kept-float layers, faces still found."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgeanon.detector import FaceDetector
from edgeanon.inference.ort import OrtBackend
from export.onnx_file import ExportError
from export.paths import MODELS_DIR
from export.quantization.feeds import FeedReader, calibration_images, face_conditions, generator_feeds
from export.quantization.qdq import FLAVOURS, resolve_keep_float
from export.quantization.quantize import quantize_detector, quantize_generator
from export.quantization.sensitivity import quantized_nodes

CALIB_IMAGES = 8


@pytest.fixture(scope="module")
def quantized(tmp_path_factory, detector_model, shared_data):
    folder = tmp_path_factory.mktemp("quant")
    fp32 = folder / "detector.onnx"
    shutil.copy(detector_model, fp32)
    results = quantize_detector(fp32, shared_data / "wider-calib", ("cpu", "trt"), ("first", "heads"),
                                limit=CALIB_IMAGES)
    return fp32, {r.flavour: r for r in results}


def _initializers(model):
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def _zero_points(model):
    inits = _initializers(model)
    return [inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2]


def test_both_flavours_written_with_provenance(quantized):
    fp32, results = quantized
    assert set(results) == {"cpu", "trt"}
    assert (fp32.parent / "detector.int8.onnx").is_file() and (fp32.parent / "detector.int8-trt.onnx").is_file()
    for result in results.values():
        assert result.calibration_inputs == CALIB_IMAGES and result.nodes_quantized > 50
        meta = {p.key: p.value for p in onnx.load(result.output).metadata_props}
        assert "edgeanon.input" in meta and '"flavour": "' + result.flavour in meta["edgeanon.quantization"]
    assert not list(fp32.parent.glob(".*tmp*"))


def test_cpu_flavour_uint8_activations_int8_per_channel_weights(quantized):
    model = onnx.load(quantized[1]["cpu"].output)
    zps = _zero_points(model)
    assert zps and all(z.dtype == np.uint8 for z in zps)
    assert any(int(z) != 0 for z in zps)  # asymmetric
    inits = _initializers(model)
    weight_dq = [n for n in model.graph.node if n.op_type == "DequantizeLinear" and inits.get(n.input[0]) is not None
                 and inits[n.input[0]].dtype == np.int8 and inits[n.input[0]].ndim == 4]
    assert weight_dq and all(inits[n.input[1]].size == inits[n.input[0]].shape[0] for n in weight_dq)


def test_trt_flavour_symmetric_int8_zero_points_zero(quantized):
    model = onnx.load(quantized[1]["trt"].output)
    zps = _zero_points(model)
    assert zps and all(z.dtype == np.int8 and not z.any() for z in zps)


def test_kept_float_layers_read_float_weights(quantized):
    fp32, results = quantized
    kept = results["cpu"].keep_float
    assert "/heatmap/Conv" in kept and "/landmarks/Conv" in kept and len(kept) == 6
    model = onnx.load(results["cpu"].output)
    inits = _initializers(model)
    for node in model.graph.node:
        if node.name in kept and node.op_type == "Conv":
            assert inits[node.input[1]].dtype == np.float32, node.name


def test_int8_models_still_find_the_face(quantized, face_image):
    fp32, results = quantized
    reference = FaceDetector.from_path(fp32, backend="ort").detect(face_image)
    assert len(reference) == 1
    for result in results.values():
        faces = FaceDetector.from_path(result.output, backend="ort").detect(face_image)
        assert len(faces) == 1
        assert np.abs(faces[0].box - reference[0].box).max() < 6
        assert abs(faces[0].score - reference[0].score) < 0.05


def test_keep_float_roles_resolve_on_the_real_graph(detector_model):
    model = onnx.load(str(detector_model))
    assert resolve_keep_float(model, ["first"]) == ["/backbone/features.0/features.0.0/Conv"]
    heads = resolve_keep_float(model, ["heads"])
    assert set(heads) == {"/Sigmoid", "/heatmap/Conv", "/scale/Conv", "/offset/Conv", "/landmarks/Conv"}
    assert resolve_keep_float(model, ["/up4/Add", ""]) == ["/up4/Add"]
    with pytest.raises(ExportError, match="'nope': not a role"):
        resolve_keep_float(model, ["nope"])
    neck = resolve_keep_float(model, ["/up*"])
    assert "/up4/Add" in neck and "/up16/up/ConvTranspose" in neck and not any("backbone" in n for n in neck)
    with pytest.raises(ExportError, match="matches no node"):
        resolve_keep_float(model, ["/nothing*"])


def test_flavour_table():
    assert FLAVOURS["cpu"].suffix == ".int8.onnx" and FLAVOURS["cpu"].tool == "onnxruntime.quantization"
    assert FLAVOURS["trt"].suffix == ".int8-trt.onnx" and FLAVOURS["trt"].tool == "nvidia-modelopt"


def test_trt_flavour_is_made_by_model_optimizer_with_the_named_layers_in_float(quantized):
    model = onnx.load(quantized[1]["trt"].output)
    info = json.loads({p.key: p.value for p in model.metadata_props}["edgeanon.quantization"])
    assert info["tool"].startswith("nvidia-modelopt ") and info["kept_float_by"] == "name"
    assert "/heatmap/Conv" in info["kept_float"] and "/backbone/features.0/features.0.0/Conv" in info["kept_float"]
    quantized = {n.name for n in quantized_nodes(model)}
    assert len(quantized) > 50 and not quantized & set(info["kept_float"])


def test_auto_keep_float_is_refused_for_the_cpu_generator(detector_model):
    with pytest.raises(ExportError, match="sensitivity sweep is for the detector"):
        resolve_keep_float(onnx.load(str(detector_model)), ["auto"])



def test_model_optimizer_leaves_onnx_runtime_quantization_as_it_found_it(quantized):
    # Model Optimizer patches these in place; the CPU flavour quantized after it (the generator's, in `export all`)
    # must run ONNX Runtime's own code, or it fails on missing quantization parameters
    from onnxruntime.quantization import base_quantizer, calibrate, qdq_quantizer

    assert Path(quantized[1]["trt"].output).is_file()
    for owner, name in [(calibrate, "create_calibrator"), (calibrate.CalibraterBase, "__init__"),
                        (calibrate.CalibraterBase, "select_tensors_to_calibrate"),
                        (calibrate.CalibraterBase, "create_inference_session"),
                        (calibrate.MinMaxCalibrater, "compute_data"), (calibrate.MinMaxCalibrater, "collect_data"),
                        (calibrate.HistogramCollector, "collect_value"),
                        (base_quantizer.BaseQuantizer, "adjust_tensor_ranges"),
                        (qdq_quantizer.QDQQuantizer, "check_opset_version")]:
        value = getattr(owner, name, None)  # None: an attribute Model Optimizer adds, removed again
        assert value is None or value.__module__.startswith("onnxruntime."), f"{name} is still {value}"

@pytest.fixture(scope="module")
def generator_int8(tmp_path_factory, detector_model, shared_data):
    folder = tmp_path_factory.mktemp("gen")
    source = MODELS_DIR / "generator.onnx"
    if source.is_file():
        shutil.copy(source, folder / "generator.onnx")
    else:  # not trained yet: the quantization mechanics are the same on a seeded, untrained generator
        import torch

        from export.conversion.onnx_export import export_generator
        from export.models.generator import Generator

        torch.manual_seed(0)
        torch.save(Generator().state_dict(), folder / "generator.pt")
        export_generator(folder / "generator.pt", folder / "generator.onnx")
    (result,) = quantize_generator(folder / "generator.onnx", detector_model, shared_data / "wider-calib", ("cpu",),
                                   limit=CALIB_IMAGES)
    conditions = face_conditions(detector_model, calibration_images(shared_data / "wider-calib", None)[-12:], 4)
    return folder / "generator.onnx", result, conditions


def test_int8_generator_runs_and_leaves_pixels_outside_the_mask_untouched(generator_int8):
    fp32, result, conditions = generator_int8
    assert result.calibration_inputs == CALIB_IMAGES and result.output.endswith("generator.int8.onnx")
    assert conditions
    int8 = OrtBackend(result.output)
    for feed, condition in zip(generator_feeds(fp32, conditions), conditions):
        face = int8.run(feed)[int8.output_names[0]][0]
        assert face.shape == (3, 128, 128) and np.isfinite(face).all()
        outside = condition[3] == 0
        assert np.array_equal(face[:, outside], condition[:3][:, outside])  # kept-float composite is exact
        assert np.abs(face[:, condition[3] > 0.5]).mean() > 0.01  # the masked (zeroed) face was regenerated


def test_feed_reader_lets_model_optimizer_peek_at_the_first_feed():
    reader = FeedReader(iter([{"x": 1}, {"x": 2}]), 2, "test")
    assert reader.get_first() == {"x": 1} and reader.get_first() == {"x": 1}
    assert [reader.get_next(), reader.get_next(), reader.get_next()] == [{"x": 1}, {"x": 2}, None]
    assert reader.count == 2
