"""Tells a scene cut or a zoom jump from the previous frame, so the tracker stops covering faces that left.

A frame is shrunk to a tiny grey thumbnail; when its mean absolute difference from the previous one is
above `threshold` grey levels, the picture jumped. Smooth pans, zooms and people moving stay far below it.
"""

from __future__ import annotations

import cv2
import numpy as np

THUMBNAIL = (64, 36)
# Grey levels of mean absolute thumbnail difference. On the tuning clip (export/eval/clip.py, tune half) frames
# within a scene (zoom and pan) differed by at most 39.8 (99th percentile 36.9), the five cuts by 60.8 - 76.4.
DEFAULT_CUT_THRESHOLD = 50.0


class CutDetector:
    """Compares each frame with the one before it; `is_cut` is True when the picture jumped."""

    def __init__(self, threshold: float = DEFAULT_CUT_THRESHOLD):
        if not threshold > 0:
            raise ValueError(f"cut threshold must be positive, got {threshold}")
        self.threshold = threshold
        self._previous: np.ndarray | None = None
        self.last_difference = 0.0

    def difference(self, image: np.ndarray) -> float:
        """Mean absolute grey difference from the previous frame's thumbnail (0 for the first frame)."""
        small = cv2.resize(image, THUMBNAIL, interpolation=cv2.INTER_AREA)
        grey = (cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small).astype(np.float32)
        previous, self._previous = self._previous, grey
        self.last_difference = 0.0 if previous is None else float(np.abs(grey - previous).mean())
        return self.last_difference

    def is_cut(self, image: np.ndarray) -> bool:
        return self.difference(image) > self.threshold

    def reset(self) -> None:
        self._previous = None
