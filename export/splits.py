"""The two halves of wider-train: quantization choices are made on `tune` and reported on `tune` and `held`.

The split is by a hash of the file name, so it is the same on every machine and does not move when images
are added. Nothing is ever chosen on the held-back half: it only reports.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

HALVES = ("tune", "held")


def half_of(name: str) -> str:
    """'tune' or 'held' for a wider-train file name (stable: SHA-1 of the base name)."""
    digest = hashlib.sha1(Path(name).name.encode()).digest()
    return HALVES[digest[0] & 1]


def wider_half(data_dir: Path, half: str, limit: int | None = None) -> list[tuple[Path, np.ndarray]]:
    """(image, ground-truth boxes) of one half of wider-train, sorted by name (first `limit` when given)."""
    from export.eval.wider import load_wider

    if half not in HALVES:
        raise ValueError(f"half {half!r}: choose from {', '.join(HALVES)}")
    items = [item for item in load_wider(data_dir) if half_of(item[0].name) == half]
    return items[:limit] if limit else items
