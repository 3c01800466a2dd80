"""The detectors' start-up self-tests: the face detector must find the face in a picture that ships with edgeanon,
and the plate detector a plate drawn at start (check_plates).

A wrong model, a corrupt file, a broken export or a bad engine can load and run and still find nothing;
silence is not health. The daemon and the offline CLI refuse to start when the test fails.
The picture is a crop of NASA's portrait of Eileen Collins (public domain), as bundled with scikit-image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from edgeanon.anonymize.plates import render_plate
from edgeanon.frames import Detection
from edgeanon.inference.errors import ModelError
from edgeanon.tracker import iou_matrix

SELFTEST_IMAGE = Path(__file__).resolve().parent / "data" / "selftest-face.jpg"
# Where the face is in that picture (x1, y1, x2, y2); a detection must overlap it this much.
SELFTEST_FACE = (80.0, 55.0, 178.0, 178.0)
MIN_IOU = 0.4


class _Detects(Protocol):
    def detect(self, image: np.ndarray) -> list[Detection]: ...


def check_detector(detector: _Detects, name: str = "detector") -> Detection:
    """The confident detection of the self-test face, or ModelError saying the model cannot be trusted."""
    image = cv2.imread(str(SELFTEST_IMAGE))
    if image is None:
        raise ModelError(f"{SELFTEST_IMAGE}: self-test picture missing or unreadable (broken install)")
    try:
        found = [d for d in detector.detect(image) if getattr(d, "confident", True)]
    except ModelError:
        raise
    except Exception as exc:  # the backend itself failed (ONNX Runtime, TensorRT): not a usable detector
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        raise ModelError(f"{name}: self-test failed: the detector raised {type(exc).__name__} on "
                         f"{SELFTEST_IMAGE.name} ({first}); refusing to run") from exc
    overlap = iou_matrix(np.array([d.box for d in found]).reshape(-1, 4), np.array([SELFTEST_FACE]))[:, 0]
    best = found[int(overlap.argmax())] if len(found) else None
    if best is None or overlap.max() < MIN_IOU:
        raise ModelError(f"{name}: self-test failed: it finds no face in {SELFTEST_IMAGE.name}, a picture with "
                         "one clear face (wrong, corrupt or badly exported model, or a broken engine); refusing to run")
    return best


# The plate detector's self-test: a plate drawn on a car-coloured panel (no picture needs shipping). The fastanpr
# model scores it 0.38; a broken model, engine or preprocessing scores nothing there.
SELFTEST_PLATE_TEXT = "TEST 123"
SELFTEST_PLATE = (240, 300, 400, 336)  # x1, y1, x2, y2 in a 640 x 480 picture
SELFTEST_PLATE_MIN_SCORE = 0.2
SELFTEST_PLATE_MIN_IOU = 0.5


def plate_selftest_image() -> np.ndarray:
    """A 640 x 480 grey picture with a dark red panel and a white plate reading SELFTEST_PLATE_TEXT."""
    image = np.full((480, 640, 3), 90, np.uint8)
    cv2.rectangle(image, (150, 150), (490, 400), (40, 40, 120), -1)
    x1, y1, x2, y2 = SELFTEST_PLATE
    image[y1:y2, x1:x2] = render_plate(x2 - x1, y2 - y1, np.array([235.0] * 3), np.array([20.0] * 3),
                                       SELFTEST_PLATE_TEXT)
    return image


def check_plates(detector, name: str = "plate detector") -> float:
    """The best score the plate detector gives the drawn plate (whatever its thresholds), or ModelError when it
    is under SELFTEST_PLATE_MIN_SCORE: the model cannot be trusted."""
    image = plate_selftest_image()
    try:
        scale, left, top = detector.prepare(image)
        out = detector.infer()
    except ModelError as exc:  # a fault on a clear picture: the model cannot be trusted on any
        raise ModelError(f"{name}: self-test failed: {exc}; refusing to run") from exc
    except Exception as exc:  # the backend itself failed
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        raise ModelError(f"{name}: self-test failed: it raised {type(exc).__name__} ({first}); "
                         "refusing to run") from exc
    cx, cy, w, h, scores = out
    boxes = np.stack([(cx - w / 2 - left) / scale, (cy - h / 2 - top) / scale,
                      (cx + w / 2 - left) / scale, (cy + h / 2 - top) / scale], 1)
    overlap = iou_matrix(boxes, np.array([SELFTEST_PLATE], np.float64))[:, 0]
    near = scores[overlap >= SELFTEST_PLATE_MIN_IOU]
    best = float(near.max()) if near.size else 0.0
    if best < SELFTEST_PLATE_MIN_SCORE:
        raise ModelError(f"{name}: self-test failed: it scores a clear drawn plate {best:.2f} (< "
                         f"{SELFTEST_PLATE_MIN_SCORE}): wrong, corrupt or badly exported model, or a broken engine; "
                         "refusing to run")
    return best
