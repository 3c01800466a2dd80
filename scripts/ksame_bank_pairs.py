"""Two k-Same reference banks, paired: their contributors' privacy and the detail they give, with 95% intervals.

    python -m export ksame-bank --data ../shared/data --align affine --out /tmp/a.npz --measure --json /tmp/a.json
    python -m export ksame-bank --data ../shared/data --align shape --out /tmp/s.npz --measure --json /tmp/s.json
    python -m scripts.ksame_bank_pairs contributors /tmp/a.json /tmp/s.json
    python -m scripts.ksame_bank_pairs detail --data ../shared/data /tmp/a.npz /tmp/s.npz
    python -m scripts.ksame_bank_pairs detail --data ../shared/data models/ksame-bank.npz --variant grain=1 --smooth 1

`contributors`: two `--measure --json` files of banks built from the same groups (same photos, k and --refs; only
how the photos are lined up differs), so the same references, contributors and look-alike strangers are checked
in both: the shares of (reference, contributor) and (reference, stranger) pairs a recognizer takes for the same
person, and their difference, second minus first, resampled over references (2,000 draws).

`detail`: every ground-truth face of the tuning (`--split holdout`: held-back) wider-train images anonymized with
ksame and each bank (the same faces, landmarks and seeds; export.eval.utility without its AP judge), and the detail
ratio (Laplacian variance inside the box, output over original) of the faces >= 48 px that ksame served: each bank's
median and the paired difference of the medians to the first bank's, resampled over faces. `--variant
KEY=VALUE[,...]` (repeatable) adds KSameFaces settings on the first bank (scripts.gan_variants.parse_variant),
paired the same way; `--smooth SIGMA` also gives every ratio after a Gaussian of SIGMA px (a detail that pixel noise
cannot raise), and the medians are also given by face size (export.eval.utility.SIZE_BANDS).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from edgeanon.anonymize import Anonymizer
from edgeanon.anonymize.ksame import KSameFaces
from edgeanon.models import DEFAULT_DETECTOR
from export import datasets
from export.eval.utility import SIZE_BANDS, chosen_images, evaluate
from export.paths import shared_data_dir
from export.splits import TUNE, add_generator_split_option
from scripts.gan_variants import parse_variant

DRAWS = 2000


def interval(values: np.ndarray) -> str:
    lo, hi = np.nanpercentile(values, [2.5, 97.5])
    return f"({lo:+.1f} to {hi:+.1f})"


def contributors(first: dict, second: dict, rng: np.random.Generator) -> None:
    for rec in ("sface", "dlib"):
        a, b = first[rec].get("pairs"), second[rec].get("pairs")
        if a is None or b is None or [p["reference"] for p in a] != [p["reference"] for p in b]:
            raise SystemExit("need two --measure --json files of banks made of the same groups")

        def shares(pairs: list[dict], idx: np.ndarray) -> np.ndarray:
            own = np.concatenate([pairs[i]["contributors"] for i in idx])
            other = np.concatenate([pairs[i]["strangers"] for i in idx])
            other_share = other.mean() if other.size else np.nan  # a reference may have no look-alike stranger
            return 100.0 * np.array([own.mean(), other_share, own.mean() - other_share])

        every = np.arange(len(a))
        pa, pb = shares(a, every), shares(b, every)
        draws = []
        for _ in range(DRAWS):
            idx = rng.integers(0, len(a), len(a))
            draws.append(shares(b, idx) - shares(a, idx))
        draws = np.array(draws)
        print(f"{rec}, {len(a)} references: contributor pairs {pa[0]:.1f}% -> {pb[0]:.1f}% "
              f"({pb[0] - pa[0]:+.1f} {interval(draws[:, 0])}), look-alike strangers {pa[1]:.1f}% -> {pb[1]:.1f}% "
              f"({pb[1] - pa[1]:+.1f} {interval(draws[:, 1])}), contributors - strangers {pa[2]:+.1f} -> {pb[2]:+.1f} "
              f"({pb[2] - pa[2]:+.1f} {interval(draws[:, 2])}) points")


def paired_medians(ratios: dict[str, np.ndarray], rng: np.random.Generator) -> list[str]:
    """Each label's median ratio (95% interval over faces) and, after the first, its paired difference to the
    first's (95% interval)."""
    labels = list(ratios)
    base = ratios[labels[0]]
    lines = []
    for label, r in ratios.items():
        idx = rng.integers(0, len(r), (DRAWS, len(r)))
        own_lo, own_hi = np.percentile(np.nanmedian(r[idx], axis=1), [2.5, 97.5])
        line = f"{label}: detail median {np.nanmedian(r):.3f} ({own_lo:.3f} to {own_hi:.3f})"
        if label != labels[0]:
            diff = np.nanmedian(r[idx], axis=1) - np.nanmedian(base[idx], axis=1)
            lo, hi = np.percentile(diff, [2.5, 97.5])
            line += (f", minus the first's {np.nanmedian(r) - np.nanmedian(base):+.3f} ({lo:+.3f} to {hi:+.3f}); "
                     f"sharper on {100.0 * np.mean(r > base):.0f}% of the faces")
        lines.append(line)
    return lines


def detail(data: Path, banks: list[Path], variants: list[str], limit: int, smooth: float,
           rng: np.random.Generator, split: str = TUNE) -> None:
    names = chosen_images(json.loads((data / datasets.WIDER / "boxes.json").read_text()), split, limit)
    anonymizers = {str(b): Anonymizer("ksame", generator=KSameFaces.from_path(b)) for b in banks}
    for text in variants:
        anonymizers[f"{banks[0]}:{text}"] = Anonymizer("ksame", generator=KSameFaces.from_path(banks[0],
                                                                                             **parse_variant(text)))

    def no_judge(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # AP is not measured here
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)

    res = evaluate(data, names, anonymizers, DEFAULT_DETECTOR, no_judge, threads=1, progress=False, smooth=smooth)
    # Every bank and setting serves the same faces (which faces is the runtime's rule), so the ratios pair face
    # by face.
    ratios = {b: np.array(v, float) for b, v in res.generated.items()}
    sizes = np.array(res.generated_sizes[str(banks[0])], float)
    part = "tuning" if split == TUNE else "held-back"
    print(f"{len(names)} {part} images, {len(sizes)} faces >= 48 px served by ksame")
    print("\n".join(paired_medians(ratios, rng)))
    if smooth > 0:
        print(f"after a Gaussian of sigma {smooth} px:")
        print("\n".join(paired_medians({b: np.array(v, float) for b, v in res.generated_smooth.items()}, rng)))
    smoothed = {b: np.array(v, float) for b, v in res.generated_smooth.items()}
    for band, (lo, hi) in SIZE_BANDS.items():
        chosen = (sizes >= lo) & (sizes < hi)
        if not chosen.any():
            continue
        cells = []
        for b, r in ratios.items():
            cells.append(f"{b} {np.nanmedian(r[chosen]):.3f}"
                         + (f" (smoothed {np.nanmedian(smoothed[b][chosen]):.3f})" if smooth > 0 else ""))
        print(f"faces {band} px ({int(chosen.sum())}): " + ", ".join(cells))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    c = sub.add_parser("contributors", help="paired contributor and stranger shares of two --measure --json files")
    c.add_argument("first", type=Path)
    c.add_argument("second", type=Path)
    d = sub.add_parser("detail", help="paired detail ratio of banks on the tuning faces ksame serves")
    d.add_argument("banks", type=Path, nargs="+")
    d.add_argument("--data", type=Path, default=shared_data_dir())
    d.add_argument("--limit", type=int, default=0, help="the first N images of the split (0 = all)")
    add_generator_split_option(d, TUNE)
    d.add_argument("--variant", action="append", default=[],
                   help="KSameFaces settings KEY=VALUE[,KEY=VALUE] on the first bank (repeatable), e.g. grain=1")
    d.add_argument("--smooth", type=float, default=0.0,
                   help="also the detail after a Gaussian of this sigma (px; 0 = not)")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    if args.what == "contributors":
        contributors(json.loads(args.first.read_text()), json.loads(args.second.read_text()), rng)
    else:
        detail(args.data, args.banks, args.variant, args.limit, args.smooth, rng, args.split)
    return 0


if __name__ == "__main__":
    sys.exit(main())
