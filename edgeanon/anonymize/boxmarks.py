"""Landmarks for faces given only as boxes (`anonymize --boxes`): the detector looks again inside each box.

The generator needs five landmarks. For each given box the detector runs on the box's region alone,
enlarged for context and scaled so the box is about TARGET_SIDE pixels, at a low threshold (the box says
a face is there). Its best-overlapping face lends its landmarks; where it finds none, the generic face
(the template) is placed in the box, so a given box is served by the generator all the same. Each face
says which source its landmarks came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edgeanon.anonymize import crops
from edgeanon.frames import Detection
from edgeanon.tracker import iou_matrix

# The box's region is its longest side times this, centred on it: the detector sees head and shoulders.
CONTEXT = 2.0
# The box is scaled to about this many pixels (CenterFace finds faces best from ~20 to ~300 px).
TARGET_SIDE = 128
MAX_UPSCALE = 8.0
# A low threshold: the box says there is a face; only its landmarks are wanted.
THRESHOLD = 0.05
MIN_IOU = 0.3
# Landmark layout relative to a WIDER FACE ground-truth box (x, y in [0, 1] of the box): the median of the
# detector's landmarks of 1,038 faces >= 24 px matched at IoU >= 0.5 on 120 tuning (not held-back)
# wider-train images, made left-right symmetric (docs/generator.md).
BOX_TEMPLATE = np.array([[0.2797, 0.3799], [0.7203, 0.3799], [0.5, 0.5704],
                         [0.3247, 0.7448], [0.6753, 0.7448]], dtype=np.float32)

DETECTED = "detected"
TEMPLATE = "template"


@dataclass(frozen=True)
class BoxFace(Detection):
    """A given box with landmarks and where they came from (DETECTED or TEMPLATE)."""

    source: str = TEMPLATE


def template_landmarks(box: np.ndarray) -> np.ndarray:
    """The generic face's five points placed in a box."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    return (BOX_TEMPLATE * [x2 - x1, y2 - y1] + [x1, y1]).astype(np.float32)


def _region(box: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    side = max(x2 - x1, y2 - y1) * CONTEXT
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return (max(0, int(cx - side / 2)), max(0, int(cy - side / 2)),
            min(width, int(np.ceil(cx + side / 2))), min(height, int(np.ceil(cy + side / 2))))


class BoxLandmarks:
    """Finds landmarks inside given boxes with a face detector (anything with `.detect(image)`)."""

    def __init__(self, detector):
        self.detector = detector

    def find(self, image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """The detected landmarks of the face in `box`, or None when the detector finds no plausible one."""
        h, w = image.shape[:2]
        rx1, ry1, rx2, ry2 = _region(box, w, h)
        if rx2 - rx1 < 2 or ry2 - ry1 < 2:
            return None
        side = max(float(box[2] - box[0]), float(box[3] - box[1]), 1.0)
        scale = min(MAX_UPSCALE, TARGET_SIDE / side)
        patch = image[ry1:ry2, rx1:rx2]
        if scale != 1.0:
            patch = cv2.resize(patch, (max(1, round(patch.shape[1] * scale)), max(1, round(patch.shape[0] * scale))),
                               interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        found = self.detector.detect(patch)
        best, best_iou = None, MIN_IOU
        for f in found:
            if f.landmarks is None:
                continue
            fbox = f.box / scale + [rx1, ry1, rx1, ry1]
            overlap = float(iou_matrix(fbox[None], box[None])[0, 0])
            lm = f.landmarks / scale + [rx1, ry1]
            if overlap >= best_iou and crops.landmarks_plausible(box, lm):
                best, best_iou = lm.astype(np.float32), overlap
        return best

    def faces(self, image: np.ndarray, boxes: Sequence[np.ndarray]) -> list[BoxFace]:
        """Every box as a face with landmarks: detected where the detector finds them, else the template."""
        out = []
        for box in boxes:
            box = np.asarray(box, np.float32)[:4]
            lm = self.find(image, box)
            if lm is None:
                out.append(BoxFace(box, 1.0, template_landmarks(box), source=TEMPLATE))
            else:
                out.append(BoxFace(box, 1.0, lm, source=DETECTED))
        return out
