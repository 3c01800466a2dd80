"""Measure edgeanon.anonymize.boxmarks.BOX_TEMPLATE: where the 5 landmarks sit inside a WIDER ground-truth box.

    .venv/bin/python -m scripts.box_template_fit --data ../shared/data

Tuning images only (wider-train minus the held-back split): our detector's landmarks of faces >= 24 px
matched to a ground-truth box at IoU >= 0.5, in box units; prints the median and its left-right
symmetric version (what the template uses).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from edgeanon.anonymize import crops
from edgeanon.detector import FaceDetector
from edgeanon.models import DEFAULT_DETECTOR
from edgeanon.tracker import iou_matrix
from export import datasets
from export.paths import shared_data_dir
from export.splits import generator_holdout


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=shared_data_dir())
    p.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR)
    p.add_argument("--images", type=int, default=120, help="every 4th tuning image, up to this many")
    args = p.parse_args(argv)
    gt_all = json.loads((args.data / datasets.WIDER / "boxes.json").read_text())
    names = [n for n in sorted(gt_all) if not generator_holdout(n)][::4][: args.images]
    det = FaceDetector.from_path(args.detector, threshold=0.3)
    rel = []
    for n in names:
        img = cv2.imread(str(args.data / datasets.WIDER / n))
        gt = np.array(gt_all[n], np.float32).reshape(-1, 4)
        found = det.detect(img)
        if not found or not len(gt):
            continue
        ious = iou_matrix(gt, np.array([f.box for f in found]))
        for i, g in enumerate(gt):
            j = int(np.argmax(ious[i]))
            if (ious[i, j] < 0.5 or max(g[2] - g[0], g[3] - g[1]) < 24
                    or not crops.landmarks_plausible(g, found[j].landmarks)):
                continue
            rel.append((found[j].landmarks - g[:2]) / (g[2:] - g[:2]))
    med = np.median(np.array(rel), axis=0)
    eye, mouth = (med[1, 0] - med[0, 0]) / 2, (med[4, 0] - med[3, 0]) / 2
    ey, my = (med[0, 1] + med[1, 1]) / 2, (med[3, 1] + med[4, 1]) / 2
    sym = np.array([[0.5 - eye, ey], [0.5 + eye, ey], [0.5, med[2, 1]], [0.5 - mouth, my], [0.5 + mouth, my]])
    print(f"{len(rel)} faces from {len(names)} tuning images")
    print("median:   ", np.round(med, 4).tolist())
    print("symmetric:", np.round(sym, 4).tolist())
    return 0


if __name__ == "__main__":
    sys.exit(main())
