"""Write ONNX models atomically, through the runtime's one atomic writer (edgeanon.atomic)."""

from __future__ import annotations

import os

from edgeanon.atomic import atomic_path

__all__ = ["atomic_path", "save_onnx"]


def save_onnx(model, target: str | os.PathLike, metadata: dict[str, str], full_check: bool = False) -> None:
    """Replace the model's metadata with `metadata`, run onnx.checker, and write it atomically."""
    import onnx

    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=full_check)
    with atomic_path(target) as tmp:
        onnx.save(model, str(tmp))
