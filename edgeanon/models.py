"""Where the runtime finds its default models."""

from __future__ import annotations

import os
from pathlib import Path

MODELS_DIR = Path(os.environ.get("EDGEANON_MODELS", Path(__file__).resolve().parent.parent / "models"))
DEFAULT_DETECTOR = MODELS_DIR / "detector.onnx"
DEFAULT_DETECTOR_INT8 = MODELS_DIR / "detector.int8.onnx"
DEFAULT_GENERATOR = MODELS_DIR / "generator.onnx"
# The licence-plate detector (python -m export plates; AGPL-3.0, never committed).
DEFAULT_PLATES = MODELS_DIR / "plates.onnx"


def default_detector() -> Path:
    """The CPU INT8 detector when `make setup` produced it (its gates passed), else the FP32 one."""
    return DEFAULT_DETECTOR_INT8 if DEFAULT_DETECTOR_INT8.is_file() else DEFAULT_DETECTOR
