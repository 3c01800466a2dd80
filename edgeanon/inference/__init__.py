"""Inference backends behind one interface: ONNX Runtime everywhere, TensorRT on Jetson."""

from edgeanon.inference.backend import Backend, ModelError, open_backend

__all__ = ["Backend", "ModelError", "open_backend"]
