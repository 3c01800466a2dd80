"""The README's gan picture: a crowd, a mid-size face and a close-up, original left of gan, at full size.

    .venv/bin/python -m scripts.gan_examples --out docs/gan-examples.jpg

Only pictures that may be committed are used: scikit-image's bundled astronaut (public domain) and
cameraman. The "crowd" is made of copies of the two at several sizes on the rocket picture's sky (no
bundled picture shows a real crowd). Every face goes through the same chain as `edgeanon anonymize`
(the project's detector, then gan with its defaults); nothing is placed by hand.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from edgeanon.config import model_config
from edgeanon.frames import Frame
from edgeanon.images import save_picture
from edgeanon.redactor import Redactor

GAP = 8


def sources() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(astronaut, cameraman as BGR, rocket) from scikit-image's bundled data."""
    from skimage import data

    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    camera = cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)
    rocket = cv2.cvtColor(data.rocket(), cv2.COLOR_RGB2BGR)
    return astronaut, camera, rocket


def crowd(astronaut: np.ndarray, camera: np.ndarray, background: np.ndarray) -> np.ndarray:
    """A 960x540 scene with 11 heads (faces about 30 to 90 px), some mirrored, two of them grey."""
    scene = cv2.resize(background, (960, 540), interpolation=cv2.INTER_AREA)
    heads = [astronaut[20:300, 120:340], camera[40:330, 150:410]]
    rng = np.random.default_rng(7)
    placements = [(0, 40, 300, 0.45), (0, 150, 280, 0.6), (1, 280, 250, 0.55), (0, 420, 290, 0.4),
                  (0, 520, 230, 0.75), (0, 700, 280, 0.5), (1, 800, 240, 0.6), (0, 60, 60, 0.3),
                  (0, 330, 80, 0.35), (0, 620, 50, 0.32), (0, 850, 60, 0.3)]
    for which, x, y, k in placements:
        head = heads[which]
        if rng.random() < 0.5:
            head = head[:, ::-1]
        head = cv2.resize(head, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        h, w = head.shape[:2]
        h, w = min(h, 540 - y), min(w, 960 - x)
        scene[y : y + h, x : x + w] = head[:h, :w]
    return scene


def close_up(astronaut: np.ndarray) -> np.ndarray:
    """Her face filling the frame, at twice the picture's resolution (a doorbell or kiosk camera)."""
    x1, y1, x2, y2 = 181, 58, 270, 178
    return cv2.resize(astronaut[y1 - 4 : y2 + 4, x1 - 12 : x2 + 12], None, fx=2.2, fy=2.2,
                      interpolation=cv2.INTER_CUBIC)


def side_by_side(original: np.ndarray, chain: Redactor, title: str) -> tuple[np.ndarray, str]:
    out = original.copy()
    red = chain.process(Frame(0, 0.0, out))
    methods = [f.method for f in red.faces]
    note = f"{title}: {len(methods)} face(s), " + ", ".join(f"{m} {methods.count(m)}" for m in sorted(set(methods)))
    pad = np.full((original.shape[0], GAP, 3), 255, np.uint8)
    return np.concatenate([original, pad, out], axis=1), note


def stack(rows: list[np.ndarray]) -> np.ndarray:
    width = max(r.shape[1] for r in rows)
    parts = []
    for r in rows:
        parts.append(cv2.copyMakeBorder(r, 0, GAP, 0, width - r.shape[1], cv2.BORDER_CONSTANT, value=(255, 255, 255)))
    return np.concatenate(parts, axis=0)[:-GAP]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="output picture (.jpg or .png)")
    p.add_argument("--detector", type=Path, default=None, help="detector model (default: the project's)")
    p.add_argument("--generator", type=Path, default=None, help="generator model (default models/generator.onnx)")
    args = p.parse_args(argv)
    model = model_config(method="gan", track=False, detector=args.detector and str(args.detector),
                         generator=args.generator and str(args.generator))
    chain = Redactor.from_config(model)
    astronaut, camera, rocket = sources()
    pairs, notes = [], []
    for title, image in (("crowd", crowd(astronaut, camera, rocket)), ("mid-size face", astronaut),
                         ("close-up", close_up(astronaut))):
        pair, note = side_by_side(image, chain, title)
        pairs.append(pair)
        notes.append(note)
    # The crowd on top; the mid-size face and the close-up side by side below it.
    mid, close = pairs[1], pairs[2]
    close = cv2.copyMakeBorder(close, 0, mid.shape[0] - close.shape[0], GAP * 2, 0, cv2.BORDER_CONSTANT,
                               value=(255, 255, 255))
    picture = stack([pairs[0], np.concatenate([mid, close], axis=1)])
    if save_picture(args.out, picture):
        return 1
    print(f"wrote {args.out} ({picture.shape[1]}x{picture.shape[0]}): " + "; ".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
