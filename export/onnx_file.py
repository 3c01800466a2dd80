"""ONNX model files of the toolkit: loaded with a clear error naming what is wrong, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import onnx

from edgeanon.atomic import atomic_path


class ExportError(RuntimeError):
    """A user-fixable problem with the toolkit's input (a model file, the data, an option)."""


def load_checked(path: str | Path, min_opset: int = 13) -> onnx.ModelProto:
    """Load an ONNX model, or raise ExportError naming what is wrong with it (missing, corrupt, opset)."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: model file not found")
    if path.stat().st_size == 0:
        raise ExportError(f"{path}: model file is empty")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(f"{path}: not a valid ONNX model ({first[:160]})") from exc
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < min_opset:
        raise ExportError(f"{path}: opset {opset} is too old for per-channel QDQ (need >= {min_opset}); "
                          f"re-export with `python -m export onnx`")
    return model


def save_onnx(model: onnx.ModelProto, target: str | os.PathLike, metadata: dict[str, str],
              full_check: bool = False) -> None:
    """Replace the model's metadata with `metadata`, run onnx.checker, and write it atomically."""
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=full_check)
    with atomic_path(target) as tmp:
        onnx.save(model, str(tmp))
