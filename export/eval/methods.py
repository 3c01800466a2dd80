"""The anonymization methods an evaluation compares: their command-line options and their Anonymizers."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from edgeanon.anonymize import Anonymizer
from edgeanon.models import DEFAULT_GENERATOR

log = logging.getLogger(__name__)

METHODS = ("gan", "blur", "pixelate", "fill")


def add_method_options(p: argparse.ArgumentParser) -> None:
    """--methods and the generator's options."""
    p.add_argument("--methods", default=",".join(METHODS), help="comma list (default all four)")
    p.add_argument("--generator", type=Path, default=DEFAULT_GENERATOR)
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
    """One Anonymizer per method; gan's generator is configured by the options above."""
    anonymizers = {}
    for m in methods:
        if m == "gan":
            from edgeanon.anonymize.gan import FaceGenerator

            opts = {} if args.landmark_jitter is None else {"landmark_jitter": args.landmark_jitter}
            opts["generic"] = not args.detected_landmarks
            anonymizers[m] = Anonymizer("gan", generator=FaceGenerator.from_path(args.generator, **opts))
        else:
            anonymizers[m] = Anonymizer(m)
    return anonymizers
