"""The README's before/after grid: original, blur, gan before issue 25's runtime changes, gan now.

    .venv/bin/python -m scripts.gan_before_after --out docs/gan-before-after-25.jpg

Only pictures the project may ship: scikit-image's bundled astronaut (public domain) and cameraman, at three
face sizes, mirrored, and in a dark scene (the astronaut at 45% light, for tone). No bundled picture shows a
child, an old person, dark skin or a turned head, so the grid cannot show those; docs/generator.md describes
what the UTKFace grid (research-only, not committed) showed for them. Every face goes through the project's
detector and the runtime's anonymizer; "before" is the same weights with the rim, tone and turn settings of
before (paste to 1.3x, no tone, no turn limit).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from edgeanon.anonymize import Anonymizer
from edgeanon.anonymize.gan import FaceGenerator
from edgeanon.detector import FaceDetector
from edgeanon.frames import Frame
from edgeanon.images import save_picture
from edgeanon.models import DEFAULT_DETECTOR, DEFAULT_GENERATOR
from scripts.crowd_grid import tile
from scripts.gan_examples import GAP, sources

TILE = 160
BEFORE = {"paste_rim": (1.15, 1.3), "tone_source": None, "max_turn": 1.0}


def scenes() -> list[tuple[str, np.ndarray]]:
    astronaut, camera, _ = sources()
    out = []
    for side in (480, 240, 120):  # faces of about 90, 45 and 22 px
        out.append((f"astronaut {side}px", cv2.resize(astronaut, (side, side), interpolation=cv2.INTER_AREA)))
    out.append(("astronaut mirrored", astronaut[:, ::-1].copy()))
    out.append(("astronaut, dark scene", (astronaut * 0.45).astype(np.uint8)))
    out.append(("cameraman", camera))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    detector = FaceDetector.from_path(DEFAULT_DETECTOR, threads=1)
    methods = {"blur": Anonymizer("blur"),
               "gan before": Anonymizer("gan", generator=FaceGenerator.from_path(DEFAULT_GENERATOR, **BEFORE)),
               "gan now": Anonymizer("gan", generator=FaceGenerator.from_path(DEFAULT_GENERATOR))}
    rows, notes = [], []
    for title, image in scenes():
        faces = detector.detect(image)
        if not faces:
            notes.append(f"{title}: no face found")
            continue
        face = max(faces, key=lambda f: f.score)
        tiles = [tile(image, face.box, TILE, 2.2)]
        served = []
        for anonymizer in methods.values():
            out = image.copy()
            red = anonymizer.redact(Frame(0, 0.0, out), [face])
            served.append(red.faces[0].method)
            tiles.append(tile(out, face.box, TILE, 2.2))
        rows.append(np.hstack([np.pad(t, ((GAP // 2, GAP // 2), (GAP // 2, GAP // 2), (0, 0)), constant_values=255)
                               for t in tiles]))
        notes.append(f"{title}: " + ", ".join(f"{m} -> {s}" for m, s in zip(methods, served, strict=True)))
    picture = np.vstack(rows)
    if save_picture(args.out, picture):
        return 1
    print(f"wrote {args.out}: columns original, {', '.join(methods)}")
    print("\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
