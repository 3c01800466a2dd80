"""The detector's start-up self-test: it must find the face in a picture that ships with edgeanon.

A wrong model, a corrupt file, a broken export or a bad engine can load and run and still find nothing;
silence is not health. The daemon and the offline CLI refuse to start when the test fails.
The picture is a crop of NASA's portrait of Eileen Collins (public domain), as bundled with scikit-image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

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
