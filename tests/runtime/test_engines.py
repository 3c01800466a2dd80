"""`edgeanon engines` without TensorRT: version gates, build plans applied to fakes, profiles, names, gating, and
the command's clear lines."""

from __future__ import annotations

import argparse

import pytest

from edgeanon.anonymize.gan import MAX_BATCH
from edgeanon.cli import main as edgeanon_main
from edgeanon.commands.engines import register
from edgeanon.engines import (
    DEFAULT_PRECISION,
    EngineBuildError,
    EngineSettings,
    apply_plan,
    choose_precision,
    compute_profiles,
    detector_dim_ranges,
    kept_float_layers,
    onnx_input_shapes,
    parse_size,
    plan_build,
    runtime_input_size,
    source_onnx,
    timing_cache_name,
    timing_cache_path,
)
from edgeanon.inference.errors import ModelError
from edgeanon.inference.manifest import engine_name
from edgeanon.inference.trt import TensorRTBackend, parse_version, supported_tensorrt, tensorrt_available


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
    assert fp16.source_suffix == ".onnx" and fp16.fp16_layers == ()
    int8 = plan_build(version, "int8")
    assert int8.builder_flags == ("INT8", "FP16") and int8.source_suffix == ".int8-trt.onnx"


@pytest.mark.parametrize("version", ["10.0.1", "10.3.0.30", "10.7.0"])
def test_tensorrt_10_fp16_is_strongly_typed_int8_comes_from_qdq_with_fp16_fallback(version):
    for precision, suffix in (("fp16", ".fp16.onnx"), ("fp32", ".onnx")):
        plan = plan_build(version, precision)
        assert plan.network_flags == ("STRONGLY_TYPED",) and plan.builder_flags == ()
        assert plan.source_suffix == suffix
    int8 = plan_build(version, "int8", ["/heatmap/Conv"])
    assert int8.network_flags == () and int8.source_suffix == ".int8-trt.onnx"
    assert int8.builder_flags == ("INT8", "FP16", "PREFER_PRECISION_CONSTRAINTS")
    assert int8.fp16_layers == ("/heatmap/Conv",)
    with pytest.raises(EngineBuildError, match="precision 'int8-calib'"):
        plan_build(version, "int8-calib")  # no calibrator: INT8 scales come from the Q/DQ graph


def test_int8_is_the_default_precision_and_auto_falls_back_to_fp16(tmp_path):
    assert DEFAULT_PRECISION == "int8"
    (tmp_path / "detector.int8-trt.onnx").write_bytes(b"qdq")
    (tmp_path / "generator.int8-trt.rejected.onnx").write_bytes(b"failed its gate")
    assert choose_precision("auto", tmp_path, "detector", "10.3.0") == "int8"
    assert choose_precision("auto", tmp_path, "generator", "10.3.0") == "fp16"
    assert choose_precision("fp32", tmp_path, "generator", "8.6.2") == "fp32"


class FakeTRT:
    """The slice of the tensorrt module that apply_plan touches, recording what it is asked."""

    float16 = "float16"

    class MemoryPoolType:
        WORKSPACE = "workspace"

    class BuilderFlag:
        INT8, FP16, PREFER_PRECISION_CONSTRAINTS = "INT8", "FP16", "PREFER_PRECISION_CONSTRAINTS"


class FakeLayer:
    def __init__(self, name):
        self.name, self.precision = name, None


class FakeNetwork:
    def __init__(self, names):
        self.layers = [FakeLayer(n) for n in names]
        self.num_layers = len(self.layers)

    def get_layer(self, i):
        return self.layers[i]


class FakeProfile:
    def __init__(self):
        self.shapes = {}

    def set_shape(self, name, lo, opt, hi):
        self.shapes[name] = (lo, opt, hi)


class FakeBuilder:
    def create_optimization_profile(self):
        return FakeProfile()


class FakeConfig:
    def __init__(self):
        self.flags, self.profiles, self.pool, self.cache = [], [], {}, None

    def set_memory_pool_limit(self, pool, size):
        self.pool[pool] = size

    def set_flag(self, flag):
        self.flags.append(flag)

    def add_optimization_profile(self, profile):
        self.profiles.append(profile)

    def create_timing_cache(self, data):
        return ("cache", data)

    def set_timing_cache(self, cache, ignore_mismatch):
        self.cache = cache


def test_apply_plan_sets_flags_profile_timing_cache_and_fp16_fallback_layers():
    network = FakeNetwork(["/backbone/Conv", "/heatmap/Conv", "/heatmap/Conv_1", "/Sigmoid", "/heatmapish/Conv"])
    config = FakeConfig()
    plan = plan_build("10.3.0", "int8", ["/heatmap/Conv", "/Sigmoid"])
    profiles = {"input": {"min": [1, 3, 320, 320], "opt": [1, 3, 384, 640], "max": [1, 3, 1088, 1920]}}
    fp16 = apply_plan(FakeTRT, FakeBuilder(), network, config, plan, profiles, 512, b"old cache")
    assert fp16 == ["/heatmap/Conv", "/heatmap/Conv_1", "/Sigmoid"]
    assert [layer.precision for layer in network.layers] == [None, "float16", "float16", "float16", None]
    assert config.flags == ["INT8", "FP16", "PREFER_PRECISION_CONSTRAINTS"]
    assert config.pool == {"workspace": 512 << 20} and config.cache == ("cache", b"old cache")
    assert config.profiles[0].shapes == {"input": ([1, 3, 320, 320], [1, 3, 384, 640], [1, 3, 1088, 1920])}


def test_fp16_fallback_layers_come_from_the_qdq_models_metadata():
    meta = {"edgeanon.quantization": '{"flavour": "trt", "kept_float": ["/heatmap/Conv", "/up4/Add"]}'}
    assert kept_float_layers(meta) == ("/heatmap/Conv", "/up4/Add")
    assert kept_float_layers({}) == () and kept_float_layers({"edgeanon.quantization": "not json"}) == ()


def test_timing_cache_sits_beside_the_engine(tmp_path):
    engine = tmp_path / "engines" / "detector.engine"
    assert timing_cache_path(engine, "10.3.0", "Orin").parent == engine.parent
    assert timing_cache_path(engine, "10.3.0", "Orin", tmp_path / "cache").parent == tmp_path / "cache"


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


@pytest.mark.parametrize("camera, detector_input", [((1280, 720), (1280, 736)), ((1920, 1080), (1280, 736)),
                                                    ((640, 480), (640, 480)), ((3840, 2160), (1920, 1088))])
def test_the_optimum_is_the_input_the_daemon_makes_of_the_camera_frame(camera, detector_input):
    assert runtime_input_size(camera) == detector_input
    ranges = EngineSettings(detector_opt=camera).ranges("detector")
    assert (ranges["width"][1], ranges["height"][1]) == detector_input
    assert ranges["width"][0] <= detector_input[0] <= ranges["width"][2]
    assert ranges["height"][0] <= detector_input[1] <= ranges["height"][2]


def test_generator_profile_covers_the_runtimes_largest_batch():
    default = compute_profiles({"condition": ["batch", 9, 128, 128], "latent": ["batch", 32]},
                               EngineSettings().ranges("generator"))
    assert default["condition"]["max"] == [MAX_BATCH, 9, 128, 128] and default["latent"]["min"] == [1, 32]
    settings = EngineSettings(generator_batch=(1, 4, 16))
    profiles = compute_profiles({"condition": ["batch", 9, 128, 128], "latent": ["batch", 32]},
                                settings.ranges("generator"))
    assert profiles["condition"]["max"] == [16, 9, 128, 128] and profiles["latent"]["opt"] == [4, 32]
    with pytest.raises(EngineBuildError, match="'batch' has no min/opt/max"):
        compute_profiles({"condition": ["batch", 9, 128, 128]}, {})


def test_sizes():
    assert parse_size("1280x720") == (1280, 720)
    for bad in ("1280", "ax720", "0x720"):
        with pytest.raises(EngineBuildError, match="size"):
            parse_size(bad)


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
    with pytest.raises(ModelError, match="TensorRT/cuda-python is not installed"):
        TensorRTBackend(tmp_path / "detector.engine")


def tensorrt_missing() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return True
    return False


@pytest.mark.skipif(not tensorrt_missing(), reason="TensorRT is installed here: a real build would start")
def test_the_command_says_in_one_line_where_engines_are_built(tmp_path, caplog):
    (tmp_path / "detector.onnx").write_bytes(b"not built here")
    assert edgeanon_main(["engines", "--model", "detector", "--precision", "auto", "--models", str(tmp_path)]) == 2
    assert "TensorRT is not installed here: build engines on the Jetson" in caplog.text
    assert not list(tmp_path.glob("*.engine"))


@pytest.mark.parametrize("option, value, message", [
    ("--model", "detector,cars", "--model 'detector,cars': choose from detector, generator, plates"),
    ("--generator-batch", "4,1,8", "--generator-batch '4,1,8': expected MIN,OPT,MAX"),
    ("--opt-size", "720p", "size '720p': expected WIDTHxHEIGHT"),
    ("--config", "/nonexistent/edgeanon.toml", "/nonexistent/edgeanon.toml"),
])
def test_the_commands_mistakes_are_one_line_each(option, value, message, caplog):
    assert edgeanon_main(["engines", option, value]) == 2
    assert message in caplog.text and "Traceback" not in caplog.text


def test_the_config_camera_sets_the_detectors_optimum(tmp_path):
    from edgeanon.commands.engines import settings_from_args
    from edgeanon.config import load_config

    config = tmp_path / "cam.toml"
    config.write_text('camera_id = "door"\n[source]\nuri = "file:///dev/null"\nwidth = 1920\nheight = 1080\n')
    load_config(config)  # a config the daemon accepts
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(), "engines")
    settings = settings_from_args(parser.parse_args(["engines", "--config", str(config)]))
    assert settings.detector_opt == (1920, 1080) and settings.generator_batch == (1, 4, MAX_BATCH)
    assert settings_from_args(parser.parse_args(["engines", "--config", str(config), "--opt-size", "640x480"])
                              ).detector_opt == (640, 480)


def test_a_config_with_cameras_gives_the_detector_a_batch_profile(tmp_path):
    """One frame per camera a call: batch min 1, opt and max the number of cameras; the runtime reads the max back."""
    from types import SimpleNamespace

    from edgeanon.batching import batch_limit
    from edgeanon.commands.engines import settings_from_args

    config = tmp_path / "device.toml"
    config.write_text("".join(f'[[cameras]]\ncamera_id = "cam{i}"\n[cameras.source]\nuri = "file:///dev/null"\n'
                              for i in range(4)))
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(), "engines")
    settings = settings_from_args(parser.parse_args(["engines", "--config", str(config)]))
    ranges = settings.ranges("detector")
    assert ranges["batch"] == (1, 4, 4)
    profiles = compute_profiles({"input": ["batch", 3, "height", "width"]}, ranges)
    assert [profiles["input"][k][0] for k in ("min", "opt", "max")] == [1, 4, 4]
    assert settings_from_args(parser.parse_args(["engines", "--cameras", "2"])).ranges("detector")["batch"] == (1, 2, 2)
    with pytest.raises(EngineBuildError, match="--cameras 0"):
        settings_from_args(parser.parse_args(["engines", "--cameras", "0"]))
    engine = SimpleNamespace(input_names=["input"], manifest=SimpleNamespace(profiles=profiles))
    assert batch_limit(engine, 8) == 4 and batch_limit(engine, 2) == 2
