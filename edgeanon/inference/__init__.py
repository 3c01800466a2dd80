"""Inference backends behind one interface: ONNX Runtime everywhere, TensorRT on Jetson.

errors.py (ModelError), backend.py (the interface), ort.py and trt.py (the backends), manifest.py (engine
names and sidecar manifests), factory.py (open_backend: the one place that picks a backend).
"""

from edgeanon.inference.backend import Backend
from edgeanon.inference.errors import ModelError, StaleEngineError
from edgeanon.inference.factory import open_backend

__all__ = ["Backend", "ModelError", "StaleEngineError", "open_backend"]
