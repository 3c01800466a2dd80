"""Backend choice: engines are found beside any precision of a model; without TensorRT, ONNX Runtime serves."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeanon.inference import ModelError, open_backend
from edgeanon.inference.manifest import engine_beside, engine_name, model_name, rebuild_command
from edgeanon.inference.ort import OrtBackend
from edgeanon.inference.trt import tensorrt_available


@pytest.mark.parametrize("name", ["detector.onnx", "detector.int8.onnx", "detector.fp16.onnx",
                                  "detector.int8-trt.onnx", "detector.engine"])
def test_engine_is_named_after_the_model(name):
    assert engine_beside(Path("/m") / name) == Path("/m/detector.engine")
    assert model_name(name) == "detector"


def test_one_naming_rule_for_the_engine_and_the_rebuild_hint():
    assert engine_name("generator") == "generator.engine"  # the builder uses it too: tests/export/test_trt_logic.py
    assert "--model generator " in rebuild_command(engine_beside(Path("/m/generator.int8-trt.onnx")))


def test_auto_uses_onnx_runtime_when_tensorrt_is_absent(detector_model, tmp_path):
    model = tmp_path / "detector.onnx"
    shutil.copy(detector_model, model)
    (tmp_path / "detector.engine").write_bytes(b"an engine this machine cannot run")
    backend = open_backend(model, "auto")
    assert isinstance(backend, OrtBackend) and backend.path == model


def test_trt_on_an_onnx_path_without_its_engine_names_the_engine_and_the_build(detector_model, tmp_path):
    model = tmp_path / "detector.onnx"
    shutil.copy(detector_model, model)
    with pytest.raises(ModelError, match=r"needs the TensorRT engine detector\.engine beside it.*edgeanon engines"):
        open_backend(model, "trt")


@pytest.mark.skipif(tensorrt_available(), reason="checks the message given where TensorRT is absent")
def test_trt_on_an_onnx_path_opens_the_engine_beside_it(detector_model, tmp_path):
    model = tmp_path / "detector.int8.onnx"
    shutil.copy(detector_model, model)
    (tmp_path / "detector.engine").write_bytes(b"engine")
    with pytest.raises(ModelError, match=r"detector\.engine: TensorRT engine given but TensorRT"):
        open_backend(model, "trt")


def test_an_engine_is_not_handed_to_onnx_runtime(tmp_path):
    with pytest.raises(ModelError, match="cannot run on ONNX Runtime"):
        open_backend(tmp_path / "detector.engine", "ort")


def test_unknown_backend_is_refused(detector_model):
    with pytest.raises(ValueError, match="unknown backend"):
        open_backend(detector_model, "cuda")


def test_close_and_context_manager(detector_model):
    feed = {"input": np.zeros((1, 3, 32, 32), np.float32)}
    with OrtBackend(detector_model, threads=1) as backend:
        assert backend.input_names == ["input"]
        assert set(backend.run(feed)) == set(backend.output_names)
    with pytest.raises(ModelError, match="closed"):
        backend.run(feed)
    backend.close()  # idempotent
