"""Before/after pictures for the README: original | blur | pixelate | gan (two seeds), made by the project.

    .venv/bin/python -m bench.gan_pictures --out docs/gan-before-after.jpg            # astronaut (public domain)
    .venv/bin/python -m bench.gan_pictures --image some.jpg --out /tmp/look.jpg        # any image, local look only
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from edgeanon.anonymize import Anonymizer
from edgeanon.anonymize.gan import DEFAULT_GENERATOR, FaceGenerator
from edgeanon.detector import FaceDetector
from edgeanon.frames import Frame
from edgeanon.images import save_picture


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 22), (0, 0, 0), -1)
    cv2.putText(out, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--image", type=Path, help="input image (default: scikit-image's astronaut)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--detector", type=Path, default=Path("models/detector.onnx"))
    p.add_argument("--generator", type=Path, default=DEFAULT_GENERATOR)
    p.add_argument("--zoom", action="store_true", help="cut each panel around the first face")
    p.add_argument("--width", type=int, default=256, help="panel width in pixels (default 256)")
    args = p.parse_args()
    if args.image:
        image = cv2.imread(str(args.image))
        if image is None:
            print(f"{args.image}: cannot read image", file=sys.stderr)
            return 2
    else:
        from skimage import data

        image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    faces = FaceDetector.from_path(args.detector).detect(image)
    gen = FaceGenerator.from_path(args.generator)
    panels = [("original", image.copy())]
    for name, anon, seed in (("blur", Anonymizer("blur"), 0), ("pixelate", Anonymizer("pixelate"), 0),
                             ("gan seed 0", Anonymizer("gan", generator=gen), 0),
                             ("gan seed 1", Anonymizer("gan", generator=gen), 1)):
        work = image.copy()
        if anon.method == "gan":
            served = gen.replace(work, faces, [seed + 7 * i for i in range(len(faces))])
            Anonymizer("blur").redact(Frame(0, 0.0, work), [f for f, ok in zip(faces, served, strict=True) if not ok])
        else:
            anon.redact(Frame(0, 0.0, work), faces)
        panels.append((name, work))
    if args.zoom and faces:
        x1, y1, x2, y2 = faces[0].box
        s = max(x2 - x1, y2 - y1) * 1.2
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        a, b = int(max(cy - s, 0)), int(max(cx - s, 0))
        panels = [(n, im[a : int(cy + s), b : int(cx + s)]) for n, im in panels]
    h0, w0 = panels[0][1].shape[:2]
    size = (args.width, round(h0 * args.width / w0))
    row = np.concatenate([label(cv2.resize(im, size, interpolation=cv2.INTER_AREA), n) for n, im in panels], 1)
    if save_picture(args.out, row, 88):
        return 1
    print(f"wrote {args.out} ({len(faces)} face(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
