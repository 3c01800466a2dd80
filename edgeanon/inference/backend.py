"""The one inference-backend interface, and the factory that picks ONNX Runtime or TensorRT."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)


class ModelError(RuntimeError):
    """A model file is missing, corrupt, stale or of the wrong kind (a user-fixable problem)."""


class Backend(Protocol):
    """Runs one model: named float32 inputs in, named outputs out (all numpy, host memory)."""

    path: Path
    input_names: list[str]
    output_names: list[str]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def metadata(self) -> dict[str, str]: ...


def engine_beside(path: Path) -> Path:
    """The TensorRT engine built from a model: `detector.engine` for detector.onnx, detector.int8.onnx, ..."""
    return path.with_name(f"{path.name.split('.')[0]}.engine")


def open_backend(path: str | Path, kind: str = "auto", threads: int | None = None) -> Backend:
    """Open a model file with the requested backend: "ort", "trt" or "auto".

    "auto" takes TensorRT for an `.engine` file, or when an engine sits beside the ONNX file and TensorRT
    imports; a stale or foreign engine is reported (with how to rebuild it) and ONNX Runtime is used instead.
    """
    path = Path(path)
    if kind not in ("auto", "ort", "trt"):
        raise ValueError(f"unknown backend {kind!r}: choose auto, ort or trt")
    if kind == "trt" or (kind == "auto" and path.suffix == ".engine"):
        from edgeanon.inference.trt import TensorRTBackend

        return TensorRTBackend(path)
    if kind == "auto":
        engine = engine_beside(path)
        if engine.exists():
            try:
                from edgeanon.inference.trt import TensorRTBackend, tensorrt_available

                if tensorrt_available():
                    return TensorRTBackend(engine)
            except ImportError:
                pass
            except ModelError as exc:
                log.warning("%s; using ONNX Runtime on %s meanwhile", exc, path.name)
    from edgeanon.inference.ort import OrtBackend

    return OrtBackend(path, threads=threads)
