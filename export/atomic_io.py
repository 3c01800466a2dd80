"""Write outputs atomically: to a temporary name beside the target, renamed into place on success."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path to write; rename it onto `target` if the block succeeds, delete it otherwise."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def save_onnx(model, target: str | os.PathLike, metadata: dict[str, str], full_check: bool = False) -> None:
    """Replace the model's metadata with `metadata`, run onnx.checker, and write it atomically."""
    import onnx

    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=full_check)
    with atomic_path(target) as tmp:
        onnx.save(model, str(tmp))
