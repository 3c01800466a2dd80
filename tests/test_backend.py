"""Backend choice: engines are found beside any precision of a model; without TensorRT, ONNX Runtime serves."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgeanon.inference.backend import engine_beside, open_backend
from edgeanon.inference.ort import OrtBackend


@pytest.mark.parametrize("name", ["detector.onnx", "detector.int8.onnx", "detector.fp16.onnx"])
def test_engine_is_named_after_the_model(name):
    assert engine_beside(Path("/m") / name) == Path("/m/detector.engine")


def test_auto_uses_onnx_runtime_when_tensorrt_is_absent(detector_model, tmp_path):
    model = tmp_path / "detector.onnx"
    shutil.copy(detector_model, model)
    (tmp_path / "detector.engine").write_bytes(b"an engine this machine cannot run")
    backend = open_backend(model, "auto")
    assert isinstance(backend, OrtBackend) and backend.path == model


def test_unknown_backend_is_refused(detector_model):
    with pytest.raises(ValueError, match="unknown backend"):
        open_backend(detector_model, "cuda")
