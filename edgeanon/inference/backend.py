"""The one inference-backend interface: named float32 arrays in, named arrays out, then close()."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Protocol

import numpy as np

# Re-exported for callers that import the error from here; it is defined in edgeanon.inference.errors.
from edgeanon.inference.errors import ModelError

__all__ = ["Backend", "ClosingBackend", "ModelError"]


class Backend(Protocol):
    """Runs one model: named float32 inputs in, named outputs out (all numpy, host memory)."""

    path: Path
    input_names: list[str]
    output_names: list[str]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def metadata(self) -> dict[str, str]: ...

    def close(self) -> None: ...


class ClosingBackend:
    """close() as a context manager; __del__ only as a fallback for a backend nobody closed."""

    def close(self) -> None:  # pragma: no cover - every backend overrides it
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()
