"""The one vocabulary for data splits: `tune` is where every choice is made, `holdout` where results are reported.

Membership is a hash of the file's base name, so it is the same on every machine and does not move when files
are added. Two partitions, each by its own hash:

  halves           wider-train in two halves, `tune` and `holdout` (the SHA-1's first byte, low bit). The
                   detector's settings, the INT8 layers kept in float and the privacy defaults are chosen on
                   `tune`; the numbers are reported on `holdout` (and on `tune` beside it). `all` is both.
  generator        the files the generator never trained on (`generator_holdout`: about 10% of UTKFace and of
                   wider-train, the SHA-1's first four bytes mod 100) are its `holdout`: every published
                   generator number comes from them. Its `tune` part is what it trained on: UTKFace photos, and
                   wider-train scenes in the `tune` half; a tuning number there is a choosing aid, not a result.

  plates-oi        as shipped in folders (`PLATES_OI_FOLDERS`): its `test` folder is the `holdout`, `train` and
                   `valid` the `tune` part.

Nothing is ever chosen on a `holdout`.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

TUNE, HOLDOUT, ALL = "tune", "holdout", "all"
HALVES = (TUNE, HOLDOUT)
SPLITS = (TUNE, HOLDOUT, ALL)
GENERATOR_HOLDOUT_PERCENT = 10
PLATES_OI_FOLDERS = {TUNE: ("train", "valid"), HOLDOUT: ("test",), ALL: ("train", "valid", "test")}


def _digest(name: str) -> bytes:
    return hashlib.sha1(Path(name).name.encode()).digest()


def half_of(name: str) -> str:
    """'tune' or 'holdout': the wider-train half of a file name (its path does not matter)."""
    return HALVES[_digest(name)[0] & 1]


def in_split(name: str, split: str) -> bool:
    """Whether a wider-train file belongs to a split of the halves (`all`: every file)."""
    check(split, SPLITS)
    return split == ALL or half_of(name) == split


def generator_holdout(name: str) -> bool:
    """True for the ~10% of files the generator never trains on (UTKFace and wider-train alike)."""
    return int.from_bytes(_digest(name)[:4], "big") % 100 < GENERATOR_HOLDOUT_PERCENT


def in_generator_split(name: str, split: str, halved: bool = True) -> bool:
    """Whether a file belongs to a split of the generator's evaluations.

    holdout: the files the generator never trained on. tune: the others; with `halved` (wider-train scenes)
    only those in the `tune` half, without it (UTKFace photos, which have no halves) all of them.
    """
    check(split, HALVES)
    if generator_holdout(name):
        return split == HOLDOUT
    return split == TUNE and (not halved or half_of(name) == TUNE)


def check(split: str, allowed: tuple[str, ...] = SPLITS) -> None:
    if split not in allowed:
        raise ValueError(f"split {split!r}: choose from {', '.join(allowed)}")


def add_split_option(p: argparse.ArgumentParser, default: str = HOLDOUT, choices: tuple[str, ...] = SPLITS,
                     help: str = "") -> None:
    """`--split`, the same name and spelling on every command."""
    p.add_argument("--split", choices=choices, default=default,
                   help=help or f"{TUNE}: where settings are chosen; {HOLDOUT}: held back, where results are "
                                f"reported (default: %(default)s)")


def add_generator_split_option(p: argparse.ArgumentParser, default: str = HOLDOUT) -> None:
    """`--split` of the generator's evaluations (`in_generator_split`)."""
    add_split_option(p, default, HALVES, f"{HOLDOUT}: the faces and scenes the generator never trained on, which "
                                         f"every published number uses; {TUNE}: the tuning part, for choosing (e.g. "
                                         "the generator gate; default: %(default)s)")
