"""Look before trusting a number: originals beside each method's output, grouped by age, tone and head turn.

    .venv/bin/python -m scripts.crowd_grid --data ../shared/data --out /tmp/crowd-grid.png --limit 120

The faces are export.eval.incontext's (UTKFace photos laid into wider-train scenes, found by our detector,
anonymized in the scene); each tile is the face's neighbourhood (2x its box) cut from the scene before and
after. One row per group (race label x age band, or head-turn band with --by turn); in each cell the original
is left of each method's output. UTKFace is research-only: keep these pictures out of the repository.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from edgeanon.anonymize.crops import head_turn
from edgeanon.images import save_picture
from edgeanon.models import DEFAULT_DETECTOR
from export.eval import incontext
from export.eval.crowd import AGE_CLASSES, AGE_STARTS, RACES
from export.eval.identity import demographics
from export.eval.methods import add_method_options, build_anonymizers, chosen_methods

TILE = 96
# (from, below, name) per row: crowd's age classes, and head-turn bands.
AGES = tuple(zip(AGE_STARTS, AGE_STARTS[1:] + (200,), AGE_CLASSES, strict=True))
TURNS = tuple((lo, hi, f"turn {lo}-{hi if hi < 1 else '+'}")
              for lo, hi in ((0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 1.01)))


def tile(image: np.ndarray, box: np.ndarray, size: int = TILE, context: float = 2.0) -> np.ndarray:
    """The face's neighbourhood (`context` x its box, square) resized to `size` px; the frame edge repeated."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1) * context
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    s = size / side
    m = np.array([[s, 0, size / 2 - cx * s], [0, s, size / 2 - cy * s]])
    flags = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return cv2.warpAffine(image, m, (size, size), flags=flags, borderMode=cv2.BORDER_REPLICATE)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--limit", type=int, default=120)
    p.add_argument("--per-cell", type=int, default=3, help="faces per group")
    p.add_argument("--by", choices=("age", "turn"), default="age")
    p.add_argument("--split", default="tune", help="tune (default) or holdout")
    p.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR)
    add_method_options(p)
    p.set_defaults(methods="gan,blur")
    args = p.parse_args(argv)
    methods = chosen_methods(args)
    if methods is None:
        return 2
    faces = []

    def observe(face: incontext.LaidFace) -> None:
        if face.found:
            faces.append((face.name, head_turn(face.landmarks), [tile(face.image, face.box)]
                          + [tile(face.outputs[m], face.box) for m in methods]))

    incontext.evaluate(args.data, args.detector, build_anonymizers(methods, args), args.limit, args.split,
                       threads=1, observe=observe)
    rows = []
    for race, label in enumerate(RACES[:4]):
        bands = AGES if args.by == "age" else TURNS
        for lo, hi, name in bands:
            def key(f, lo=lo, hi=hi, race=race):
                age, _, r = demographics(f[0]) or (-1, -1, -1)
                value = age if args.by == "age" else abs(f[1])
                return r == race and lo <= value < hi
            picked = [f for f in faces if key(f)][: args.per_cell]
            cells = [np.hstack(f[2]) for f in picked]
            blank = np.zeros((TILE, TILE * (len(methods) + 1), 3), np.uint8)
            cells += [blank] * (args.per_cell - len(cells))
            row = np.hstack([np.pad(c, ((2, 2), (2, 6), (0, 0))) for c in cells])
            head = np.zeros((row.shape[0], 150, 3), np.uint8)
            cv2.putText(head, f"{label} {name}", (4, row.shape[0] // 2),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
            rows.append(np.hstack([head, row]))
    if save_picture(args.out, np.vstack(rows), default_suffix=".png"):
        return 1
    print(f"{args.out}: {len(faces)} faces found; each cell: original, {', '.join(methods)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
