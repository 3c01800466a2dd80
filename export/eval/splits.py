"""Which faces and scenes an evaluation uses: the held-back part that reports, or the tuning part that chooses.

`held` is `facecrops.held_out` (about 10% of each set by file-name hash): the published numbers come from it,
and nothing may be chosen on it. `tune` is what a choice (such as the generator gate) is made on: UTKFace
photos outside the held-back 10%, and wider-train scenes outside it that also lie in the `tune` half of
`export.splits`. Both tuning parts overlap the generator's training crops (it trains on everything not held
back), so a tuning number is a choosing aid, not a result to publish.
"""

from __future__ import annotations

import argparse

from export.splits import half_of
from export.training import facecrops

SPLITS = ("held", "tune")


def add_split_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", choices=SPLITS, default="held",
                   help="held: the held-back faces and scenes every published number uses (default); tune: the "
                        "tuning part, for choosing (e.g. the generator gate)")


def _check(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: choose from {', '.join(SPLITS)}")


def utk_in_split(name: str, split: str) -> bool:
    """Whether a UTKFace file belongs to the split."""
    _check(split)
    return facecrops.held_out(name) == (split == "held")


def wider_in_split(name: str, split: str) -> bool:
    """Whether a wider-train image belongs to the split (tune: not held back, and in the `tune` half)."""
    _check(split)
    if facecrops.held_out(name):
        return split == "held"
    return split == "tune" and half_of(name) == "tune"
