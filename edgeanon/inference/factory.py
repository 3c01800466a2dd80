"""The backend factory: a model path and a kind ("auto", "ort", "trt") in, an open Backend out."""

from __future__ import annotations

import logging
from pathlib import Path

from edgeanon.inference.backend import Backend
from edgeanon.inference.errors import ModelError
from edgeanon.inference.manifest import engine_beside, rebuild_command
from edgeanon.inference.ort import OrtBackend
from edgeanon.inference.trt import TensorRTBackend, tensorrt_available

log = logging.getLogger(__name__)

KINDS = ("auto", "ort", "trt")


def open_backend(path: str | Path, kind: str = "auto", threads: int | None = None) -> Backend:
    """Open a model file with the requested backend: "ort", "trt" or "auto".

    "trt" takes an `.engine` file, or the engine beside an ONNX file (`detector.engine` for detector.onnx).
    "auto" takes TensorRT for an `.engine` file, or when an engine sits beside the ONNX file and TensorRT
    runs here; a stale or foreign engine is reported (with how to rebuild it) and ONNX Runtime is used instead.
    """
    path = Path(path)
    if kind not in KINDS:
        raise ValueError(f"unknown backend {kind!r}: choose {', '.join(KINDS)}")
    if path.suffix == ".engine":
        if kind == "ort":
            raise ModelError(f"{path}: a TensorRT engine cannot run on ONNX Runtime; pass the .onnx model")
        return TensorRTBackend(path)
    engine = engine_beside(path)
    if kind == "trt":
        if not engine.is_file():
            raise ModelError(f"{path}: --backend trt needs the TensorRT engine {engine.name} beside it; build it "
                             f"on this device: {rebuild_command(engine)}")
        return TensorRTBackend(engine)
    if kind == "auto" and engine.exists() and tensorrt_available():
        try:
            return TensorRTBackend(engine)
        except ModelError as exc:
            log.warning("%s; using ONNX Runtime on %s meanwhile", exc, path.name)
    return OrtBackend(path, threads=threads)
