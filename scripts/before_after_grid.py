"""Portraits laid into a scene at several sizes, each anonymized by every method named: original | method | ...

    .venv/bin/python -m scripts.before_after_grid --out docs/before-after-crowd.jpg --methods blur,gan,ksame,pixelate
    .venv/bin/python -m scripts.before_after_grid --portraits DIR --out grid.jpg --methods blur,gan

Each portrait becomes one scene: its head laid three times (faces of --sizes px, 40, 80 and 160 by default) on a
plain backdrop. The scene goes through the same chain as `edgeanon anonymize` (the project's detector with the
still-image defaults, then the method), once per method named in --methods (any method the redactor knows, by
name). A row per portrait: for each size, the face's neighbourhood before and after each method, all shown at
the same tile size (a 40 px face enlarged, to be seen).

--portraits DIR takes a folder with a `portraits.csv` (columns file, group, origin, licence): rows are grouped
and labelled by `group` (e.g. "dark skin, over 60") in the order of the file. The default is docs/portraits, the
pictures the project may ship (public domain, CC0 or released for unrestricted use, each named with its origin in
its portraits.csv): light- and dark-skinned people, a girl of about five and adults from their 20s to their 70s,
frontal, tilted and turned.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgeanon.config import model_config
from edgeanon.defaults import METHODS
from edgeanon.detector import FaceDetector
from edgeanon.frames import Frame
from edgeanon.images import save_picture
from edgeanon.models import DEFAULT_DETECTOR
from edgeanon.redactor import Redactor
from edgeanon.tracker import iou_matrix
from scripts.crowd_grid import tile

SHIPPED = Path(__file__).resolve().parents[1] / "docs" / "portraits"
TILE = 112
SIZES = (40, 80, 160)
BACKDROP = (150, 160, 170)  # a plain light grey-blue wall (BGR)
LABEL_WIDTH = 150


@dataclass(frozen=True)
class Portrait:
    name: str
    group: str
    image: np.ndarray


def load_portraits(folder: Path) -> list[Portrait]:
    """The portraits listed in folder/portraits.csv, in its order; ValueError naming what is wrong."""
    listing = folder / "portraits.csv"
    if not listing.is_file():
        raise ValueError(f"{listing}: not found (a portraits folder lists its files, groups and licences there)")
    out = []
    with listing.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if not row.get("licence"):
                raise ValueError(f"{listing}: {row.get('file')!r} has no licence")
            image = cv2.imread(str(folder / row["file"]), cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f"{folder / row['file']}: not a readable picture")
            out.append(Portrait(row["file"], row["group"], image))
    return out


def lay_out(portrait: np.ndarray, face: np.ndarray, sizes: tuple[int, ...]) -> tuple[np.ndarray, list[np.ndarray]]:
    """A scene with the portrait laid once per size (its face box `face` scaled to that longest side, a soft
    ellipse of the portrait over the backdrop), and the face box of each copy there."""
    side = max(face[2] - face[0], face[3] - face[1])
    copies = [cv2.resize(portrait, None, fx=s / side, fy=s / side, interpolation=cv2.INTER_AREA if s < side
                         else cv2.INTER_CUBIC) for s in sizes]
    height = max(c.shape[0] for c in copies) + 40
    width = sum(c.shape[1] for c in copies) + 40 * (len(copies) + 1)
    scene = np.empty((height, width, 3), np.uint8)
    scene[:] = BACKDROP
    boxes, x = [], 40
    for s, c in zip(sizes, copies, strict=True):
        h, w = c.shape[:2]
        y = (height - h) // 2
        ys = (np.arange(h, dtype=np.float32) + 0.5) / h * 2 - 1
        xs = (np.arange(w, dtype=np.float32) + 0.5) / w * 2 - 1
        alpha = np.clip((1.0 - np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)) / 0.15, 0, 1)[:, :, None]
        region = scene[y : y + h, x : x + w].astype(np.float32)
        scene[y : y + h, x : x + w] = (c * alpha + region * (1 - alpha) + 0.5).astype(np.uint8)
        boxes.append(np.asarray(face[:4], np.float32) * (s / side) + [x, y, x, y])
        x += w + 40
    return scene, boxes


def label(text: str, height: int) -> np.ndarray:
    out = np.full((height, LABEL_WIDTH, 3), 255, np.uint8)
    lines = text.split(", ")
    for k, line in enumerate(lines):
        y = height // 2 + 5 - 8 * (len(lines) - 1) + 16 * k
        cv2.putText(out, line, (4, y), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def header(methods: list[str], sizes: tuple[int, ...]) -> np.ndarray:
    cells = [np.full((36, LABEL_WIDTH, 3), 255, np.uint8)]
    for s in sizes:
        block = np.full((36, (TILE + 2) * (len(methods) + 1) + 10, 3), 255, np.uint8)
        cv2.putText(block, f"face {s} px", (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        for k, m in enumerate(["original"] + methods):
            cv2.putText(block, m, (4 + k * (TILE + 2), 30), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cells.append(block)
    return np.hstack(cells)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="output picture (.jpg or .png)")
    p.add_argument("--portraits", type=Path, default=SHIPPED,
                   help="folder with portraits.csv: file, group, origin, licence per picture (default: %(default)s, "
                        "the pictures the project may ship)")
    p.add_argument("--methods", default="blur,gan,pixelate", help="comma list of the redactor's methods")
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="face sizes, px (longest side)")
    p.add_argument("--quality", type=int, default=85, help="JPEG quality")
    args = p.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        print(f"error: --methods {args.methods!r}: choose from {', '.join(METHODS)}", file=sys.stderr)
        return 2
    try:
        sizes = tuple(int(s) for s in args.sizes.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 8:
        print(f"error: --sizes {args.sizes!r}: face sizes in px (8 or more), e.g. 40,80,160", file=sys.stderr)
        return 2
    try:
        portraits = load_portraits(args.portraits)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finder = FaceDetector.from_path(DEFAULT_DETECTOR, threads=1)
    chains = {m: Redactor.from_config(model_config(method=m, track=False)) for m in methods}
    rows, notes = [header(methods, sizes)], []
    for portrait in portraits:
        own = finder.detect(portrait.image)
        if not own:
            notes.append(f"{portrait.name}: no face found in the portrait; left out")
            continue
        scene, boxes = lay_out(portrait.image, max(own, key=lambda f: f.score).box, sizes)
        cells, served = [], {m: [] for m in methods}
        outputs = {}
        for m, chain in chains.items():
            work = scene.copy()
            red = chain.process(Frame(0, 0.0, work))
            found = np.array([f.box for f in red.faces], np.float32).reshape(-1, 4)
            hit = iou_matrix(np.array(boxes, np.float32), found)
            for k in range(len(boxes)):
                j = int(np.argmax(hit[k])) if hit.shape[1] else -1
                served[m].append(red.faces[j].method if j >= 0 and hit[k, j] >= 0.3 else "not found")
            outputs[m] = work
        for box in boxes:
            tiles = [tile(scene, box, TILE, 2.0)] + [tile(outputs[m], box, TILE, 2.0) for m in methods]
            cells.append(np.pad(np.hstack([np.pad(t, ((1, 1), (1, 1), (0, 0)), constant_values=255) for t in tiles]),
                                ((0, 0), (0, 10), (0, 0)), constant_values=255))
        row = np.hstack(cells)
        rows.append(np.hstack([label(portrait.group, row.shape[0]), row]))
        notes.append(f"{portrait.name} ({portrait.group}): " + "; ".join(
            f"{m}: {', '.join(f'{s}px {v}' for s, v in zip(sizes, served[m], strict=True))}" for m in methods))
    width = max(r.shape[1] for r in rows)
    picture = np.vstack([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    if save_picture(args.out, picture, args.quality):
        return 1
    print(f"wrote {args.out} ({picture.shape[1]}x{picture.shape[0]}); each size: original, {', '.join(methods)}")
    print("\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
