"""The errors of model loading and inference: what a user can fix, reported in one line by the CLI."""

from __future__ import annotations


class ModelError(RuntimeError):
    """A model file is missing, corrupt, stale or of the wrong kind (a user-fixable problem)."""


class StaleEngineError(ModelError):
    """The engine does not match its ONNX file or this device: it must be rebuilt here."""
