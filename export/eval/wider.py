"""The labelled WIDER FACE subset in the shared data folder: image paths with their ground-truth boxes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def load_wider(data_dir: Path, limit: int | None = None) -> list[tuple[Path, np.ndarray]]:
    """(image path, boxes (N, 4) x1y1x2y2) for wider-train, sorted by name; raises FileNotFoundError clearly."""
    folder = Path(data_dir) / "wider-train"
    labels = folder / "boxes.json"
    if not labels.is_file():
        raise FileNotFoundError(f"{labels}: not found (pass --data pointing at the shared data folder)")
    boxes = json.loads(labels.read_text())
    items = [(folder / name, np.asarray(b, np.float32).reshape(-1, 4)) for name, b in sorted(boxes.items())]
    items = [item for item in items if item[0].is_file()]
    return items[:limit] if limit else items


SPLITS = ("tune", "holdout", "all")


def split_of(name: str) -> str:
    """'tune' or 'holdout' for a wider-train file: the halves of export.splits (a hash of the file name).

    Every threshold, scale or weight is chosen on 'tune' and reported on 'holdout' as well.
    """
    from export.splits import half_of

    return "tune" if half_of(name) == "tune" else "holdout"


def in_split(name: str, split: str) -> bool:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose {', '.join(SPLITS)}")
    return split == "all" or split_of(name) == split
