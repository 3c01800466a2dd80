"""The context the generator sees, blurred (weights unchanged): identity in context and detail per sigma, tuning split.

    python -m scripts.context_blur --data ../shared/data --faces 150 --images 30 --sigmas 0,1,2,4,8

Every sigma sees the same faces with the same seeds (export.eval.incontext and export.eval.utility, tuning split),
so each face's dlib distance is compared with sigma 0's: the paired change and how many faces moved closer.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from edgeanon.anonymize import Anonymizer
from edgeanon.anonymize.gan import FaceGenerator
from edgeanon.models import DEFAULT_DETECTOR, DEFAULT_GENERATOR
from export.eval import incontext, utility
from export.paths import shared_data_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.context_blur", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=shared_data_dir())
    p.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR)
    p.add_argument("--generator", type=Path, default=DEFAULT_GENERATOR)
    p.add_argument("--faces", type=int, default=150, help="tuning UTKFace photos in tuning scenes (default 150)")
    p.add_argument("--images", type=int, default=30, help="tuning wider-train images for detail (default 30)")
    p.add_argument("--sigmas", default="0,1,2,4,8", help="context blur sigmas, crop pixels (default 0,1,2,4,8)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    sigmas = [float(s) for s in args.sigmas.split(",")]
    anonymizers = {f"{s:g}": Anonymizer("gan", generator=FaceGenerator.from_path(
        args.generator, backend="ort", threads=args.threads, context_blur=s)) for s in sigmas}
    ctx = incontext.evaluate(args.data, args.detector, anonymizers, args.faces, split="tune", threads=args.threads)
    gt_all = json.loads((args.data / "wider-train" / "boxes.json").read_text())
    util = utility.evaluate(args.data, utility.chosen_images(gt_all, "tune", args.images), anonymizers,
                            args.detector, utility.Judge("hog", 1), threads=args.threads)
    rows = {r["method"]: r for r in util.rows()}
    base = np.array(ctx.distances[f"{sigmas[0]:g}"])
    print(f"tuning split: {ctx.faces} UTKFace photos in scenes (found {sum(ctx.found)}), {util.images} images "
          f"({rows[f'{sigmas[0]:g}']['faces_detail']} faces >= 48 px); paired against sigma {sigmas[0]:g}")
    print(f"{'sigma':>6} {'share<0.6':>10} {'median':>8} {'re-id':>7} {'paired change (SE)':>20} {'closer':>8} "
          f"{'detail':>7} {'AP ret.':>8}")
    out = []
    for label in anonymizers:
        r = ctx.row(label)
        diff = np.array(ctx.distances[label]) - base
        se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
        row = {"sigma": float(label), **r, "paired_mean": float(diff.mean()), "paired_se": float(se),
               "closer": int((diff < 0).sum()), "farther": int((diff > 0).sum()),
               "detail_median": rows[label]["detail_median"], "ap_retention": rows[label]["retention"]}
        out.append(row)
        print(f"{label:>6} {r['share_same'] * 100:9.1f}% {r['median_distance']:8.3f} {r['reid_rank1'] * 100:6.1f}% "
              f"{f'{diff.mean():+.4f} ({se:.4f})':>20} {row['closer']:>8} {row['detail_median']:7.3f} "
              f"{row['ap_retention'] * 100:7.1f}%")
    if args.json:
        args.json.write_text(json.dumps({"rows": out, "distances": ctx.distances}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
