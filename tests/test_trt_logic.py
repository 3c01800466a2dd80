"""TensorRT build logic without TensorRT: version gates, profile shapes, names, import gating."""

from __future__ import annotations

import pytest

from edgeanon.inference.errors import ModelError
from edgeanon.inference.trt import parse_version, supported_tensorrt, tensorrt_available
from export.trt_build import (
    EngineBuildError,
    EngineSettings,
    compute_profiles,
    detector_dim_ranges,
    engine_name,
    letterbox_blob,
    onnx_input_shapes,
    parse_size,
    plan_build,
    source_onnx,
    timing_cache_name,
)


def test_version_parsing_and_minimum():
    assert parse_version("10.3.0.26") == (10, 3, 0, 26)
    assert parse_version("8.5.2.2") == (8, 5, 2, 2)
    assert parse_version("10.0.0b6") == (10, 0, 0)
    assert supported_tensorrt("8.5.2") and supported_tensorrt("10.7.0")
    assert not supported_tensorrt("8.4.1") and not supported_tensorrt("7.1.3")


@pytest.mark.parametrize("version", ["8.5.2.2", "8.6.2.3"])
def test_tensorrt_8_needs_explicit_batch_and_precision_flags(version):
    fp16 = plan_build(version, "fp16")
    assert fp16.network_flags == ("EXPLICIT_BATCH",) and fp16.builder_flags == ("FP16",)
    assert fp16.source_suffix == ".onnx" and not fp16.calibrator
    int8 = plan_build(version, "int8")
    assert int8.builder_flags == ("INT8", "FP16") and int8.source_suffix == ".int8-trt.onnx"
    calib = plan_build(version, "int8-calib")
    assert calib.calibrator and calib.source_suffix == ".onnx"


@pytest.mark.parametrize("version", ["10.0.1", "10.3.0.30", "10.7.0"])
def test_tensorrt_10_is_strongly_typed_without_explicit_batch(version):
    for precision, suffix in (("fp16", ".fp16.onnx"), ("int8", ".int8-trt.onnx"), ("fp32", ".onnx")):
        plan = plan_build(version, precision)
        assert plan.network_flags == ("STRONGLY_TYPED",)
        assert "EXPLICIT_BATCH" not in plan.network_flags and plan.builder_flags == ()
        assert plan.source_suffix == suffix
    with pytest.raises(EngineBuildError, match="deprecated"):
        plan_build(version, "int8-calib")


def test_old_tensorrt_and_unknown_precision_are_refused():
    with pytest.raises(EngineBuildError, match="8.5 or newer"):
        plan_build("8.4.1.5", "fp16")
    with pytest.raises(EngineBuildError, match="precision 'int4'"):
        plan_build("10.3.0", "int4")


def test_source_and_engine_names(tmp_path):
    assert source_onnx(tmp_path, "detector", plan_build("10.3.0", "int8")).name == "detector.int8-trt.onnx"
    assert source_onnx(tmp_path, "generator", plan_build("8.6.2", "fp16")).name == "generator.onnx"
    assert engine_name("detector") == "detector.engine"  # found beside detector.onnx by the runtime
    assert timing_cache_name("10.3.0", "Orin (nvgpu)") == "trt-timing-10.3.0-orin--nvgpu.cache"


def test_detector_profile_is_padded_like_the_runtime():
    ranges = detector_dim_ranges((320, 240), (1280, 720), (1920, 1080))
    assert ranges == {"batch": (1, 1, 1), "height": (256, 736, 1088), "width": (320, 1280, 1920)}
    profiles = compute_profiles({"input": [1, 3, "height", "width"]}, ranges)
    assert profiles["input"] == {"min": [1, 3, 256, 320], "opt": [1, 3, 736, 1280], "max": [1, 3, 1088, 1920]}
    with pytest.raises(EngineBuildError, match="min <= opt <= max"):
        detector_dim_ranges((1920, 1080), (1280, 720), (640, 480))


def test_generator_profile_from_batch_range():
    settings = EngineSettings(generator_batch=(1, 4, 16))
    profiles = compute_profiles({"condition": ["batch", 9, 128, 128], "latent": ["batch", 32]},
                                settings.ranges("generator"))
    assert profiles["condition"]["max"] == [16, 9, 128, 128] and profiles["latent"]["opt"] == [4, 32]
    with pytest.raises(EngineBuildError, match="'batch' has no min/opt/max"):
        compute_profiles({"condition": ["batch", 9, 128, 128]}, {})


def test_camera_larger_than_the_default_max_widens_the_profile():
    ranges = EngineSettings(detector_opt=(3840, 2160)).ranges("detector")
    assert ranges["width"] == (320, 3840, 3840) and ranges["height"] == (320, 2176, 2176)


def test_sizes_and_letterbox():
    import numpy as np

    assert parse_size("1280x720") == (1280, 720)
    for bad in ("1280", "ax720", "0x720"):
        with pytest.raises(EngineBuildError, match="size"):
            parse_size(bad)
    blob = np.ones((1, 3, 40, 70), np.float32)
    out = letterbox_blob(blob, 64, 64)
    assert out.shape == (1, 3, 64, 64) and out[0, 0, :40, :64].all() and not out[0, 0, 40:].any()


def test_input_shapes_of_the_real_detector(detector_model):
    assert onnx_input_shapes(detector_model) == {"input": ["batch", 3, "height", "width"]}


def test_tensorrt_is_import_gated(tmp_path):
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("TensorRT is installed here")
    assert tensorrt_available() is False
    from edgeanon.inference.trt import TensorRTBackend

    with pytest.raises(ModelError, match="TensorRT/cuda-python is not installed"):
        TensorRTBackend(tmp_path / "detector.engine")


def test_engine_comparison_logic_with_onnx_runtime_standing_in(detector_model, face_image):
    from edgeanon.inference.ort import OrtBackend
    from export.engine_check import compare_detectors

    same = compare_detectors(OrtBackend(detector_model), OrtBackend(detector_model), [face_image, face_image[:, ::-1]])
    assert same.reference_faces == 2 and same.match_rate == 1.0 and same.extra == 0


def test_verify_on_device_script_is_clean_and_refuses_without_tensorrt():
    import shutil
    import subprocess

    from export.paths import REPO_ROOT

    script = REPO_ROOT / "deploy" / "verify-on-device.sh"
    if shutil.which("shellcheck"):
        assert subprocess.run(["shellcheck", str(script)], capture_output=True).returncode == 0
    if tensorrt_available():
        pytest.skip("TensorRT runs here: the script would build real engines")
    result = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "TensorRT does not import" in result.stderr
