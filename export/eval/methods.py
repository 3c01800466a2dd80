"""The anonymization methods an evaluation compares: their command-line options and their Anonymizers."""

from __future__ import annotations

import argparse
import logging
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgeanon.anonymize import Anonymizer
from edgeanon.anonymize.gan import FaceGenerator
from edgeanon.anonymize.ksame import KSameFaces
from edgeanon.defaults import METHODS
from edgeanon.frames import Detection
from edgeanon.models import DEFAULT_GENERATOR, DEFAULT_KSAME_BANK
from edgeanon.tracker import Track

log = logging.getLogger(__name__)


def add_method_options(p: argparse.ArgumentParser) -> None:
    """--methods and the generator's options."""
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma list (default all: {', '.join(METHODS)})")
    p.add_argument("--generator", type=Path, default=DEFAULT_GENERATOR)
    p.add_argument("--bank", type=Path, default=DEFAULT_KSAME_BANK, help="ksame's reference bank")
    p.add_argument("--landmark-jitter", type=float, default=None,
                   help="override the generator's per-seed landmark jitter (fraction of the box; 0 = off)")
    p.add_argument("--detected-landmarks", action="store_true",
                   help="condition the generator on the detected landmarks, not the generic face fitted to them")


def chosen_methods(args: argparse.Namespace) -> list[str] | None:
    """The methods named by --methods; None (after logging why) when one is unknown."""
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        log.error("unknown method(s) %s: choose from %s", ", ".join(bad), ", ".join(METHODS))
        return None
    return methods


def build_anonymizers(methods: list[str], args: argparse.Namespace) -> dict[str, Anonymizer]:
    """One Anonymizer per method; gan's generator and ksame's bank are configured by the options above."""
    anonymizers = {}
    for m in methods:
        if m == "gan":
            opts = {} if args.landmark_jitter is None else {"landmark_jitter": args.landmark_jitter}
            opts["generic"] = not args.detected_landmarks
            anonymizers[m] = Anonymizer("gan", generator=FaceGenerator.from_path(args.generator, **opts))
        elif m == "ksame":
            anonymizers[m] = Anonymizer("ksame", generator=KSameFaces.from_path(args.bank))
        else:
            anonymizers[m] = Anonymizer(m)
    return anonymizers


def as_people(faces: Sequence[Detection], key: str) -> list[Track]:
    """The faces as tracks of different people, each with a stable id from `key` (e.g. the file name) and its
    index: on camera every person is a track, and the track id seeds gan's latent and landmark jitter. Without
    it every face would be seed 0 (its index in a one-face frame), and a whole evaluation would rest on one
    draw of the generator (on 400 UTKFace faces, single seeds 0, 1, 2 gave identity shares 3.2%, 3.2%, 5.8%).
    A doubtful detection stays doubtful (a plain blur, whatever the method, as on camera)."""
    return [Track(zlib.crc32(f"{key}:{i}".encode()) & 0x7FFFFFFF, np.asarray(f.box, np.float32), f.landmarks,
                  float(f.score), True, f.confident) for i, f in enumerate(faces)]
