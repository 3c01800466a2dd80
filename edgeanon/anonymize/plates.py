"""Licence plates covered in place: a synthetic plate (random characters in the region's own colours), or a classic
blur, pixelate or fill, over the plate's box grown a little (a rectangle: plates are).

A synthetic plate keeps the picture natural (D-ID's idea) and carries nothing of the original: it is drawn from
scratch with cv2.putText, only its two colours are taken from the region, and its characters are random (seeded by
the track, so a tracked plate keeps one made-up number instead of flickering). Doubtful plates get the plain blur.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from edgeanon.anonymize import classic
from edgeanon.defaults import DEFAULT_PLATE_METHOD, PLATE_MASK_SCALE, PLATE_METHODS
from edgeanon.frames import FaceRecord

log = logging.getLogger(__name__)

FALLBACK_METHOD = "blur"
CHARACTERS = string.ascii_uppercase + string.digits
# The plate is rendered at this height (pixels) and then scaled into the region.
RENDER_HEIGHT = 96
MIN_CHARS, MAX_CHARS = 5, 8


def plate_colours(roi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(background, characters) BGR colours of a plate region: the means of its two Otsu halves of grey, the larger
    half being the background. A flat region gets characters of the opposite brightness."""
    grey = cv2.cvtColor(roi, cv2.COLOR_BGR2GRAY)
    _, split = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    bright = split.astype(bool)
    pixels = roi.reshape(-1, 3).astype(np.float32)
    flat = bright.reshape(-1)
    if flat.all() or not flat.any():
        background = pixels.mean(0)
        ink = np.full(3, 0.0 if background.mean() > 127 else 255.0, np.float32)
        return background, ink
    light, dark = pixels[flat].mean(0), pixels[~flat].mean(0)
    return (light, dark) if flat.mean() >= 0.5 else (dark, light)


def random_text(width: float, height: float, rng: np.random.Generator) -> str:
    """Random plate characters, more of them on a longer plate."""
    count = int(np.clip(round(max(width, 1) / max(height, 1) * 1.6), MIN_CHARS, MAX_CHARS))
    return "".join(rng.choice(list(CHARACTERS), count))


def render_plate(width: int, height: int, background: np.ndarray, ink: np.ndarray, text: str) -> np.ndarray:
    """A plate showing `text`, `width` x `height` pixels (BGR uint8): a border, one line of characters."""
    aspect = max(width, 1) / max(height, 1)
    rh = RENDER_HEIGHT
    rw = max(rh, int(round(rh * aspect)))
    canvas = np.empty((rh, rw, 3), np.uint8)
    canvas[...] = np.clip(background, 0, 255).astype(np.uint8)
    colour = tuple(int(c) for c in np.clip(ink, 0, 255))
    thickness = max(2, rh // 24)
    cv2.rectangle(canvas, (thickness, thickness), (rw - 1 - thickness, rh - 1 - thickness), colour, thickness)
    font = cv2.FONT_HERSHEY_DUPLEX
    (tw, th), _ = cv2.getTextSize(text, font, 1.0, thickness)
    scale = min((rw - 6 * thickness) / max(tw, 1), (rh * 0.62) / max(th, 1))
    (tw, th), _ = cv2.getTextSize(text, font, scale, thickness)
    origin = ((rw - tw) // 2, (rh + th) // 2)
    cv2.putText(canvas, text, origin, font, scale, colour, thickness, cv2.LINE_AA)
    interpolation = cv2.INTER_AREA if width < rw else cv2.INTER_LINEAR
    return cv2.resize(canvas, (max(1, width), max(1, height)), interpolation=interpolation)


def synthetic_patch(roi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A synthetic plate the size of `roi`, in its two colours, softened a little so it does not look pasted on."""
    h, w = roi.shape[:2]
    background, ink = plate_colours(roi)
    plate = render_plate(w, h, background, ink, random_text(w, h, rng))
    return cv2.GaussianBlur(plate, (0, 0), sigmaX=max(0.5, h / 60))


def synthetic(image: np.ndarray, box: np.ndarray, mask_scale: float = PLATE_MASK_SCALE,
              rng: np.random.Generator | None = None) -> bool:
    """Replace the plate's region (box grown by `mask_scale`, clamped to the image) with a synthetic plate, in
    place. False when the region lies outside the image."""
    rng = rng or np.random.default_rng()
    return classic.apply_patch(image, box, lambda roi, w, h: synthetic_patch(roi, rng), mask_scale=mask_scale,
                               shape="box", feather=0.0)


class PlateCover:
    """Covers every plate of a frame in place with `method` (doubtful plates with the blur)."""

    def __init__(self, method: str = DEFAULT_PLATE_METHOD, mask_scale: float = PLATE_MASK_SCALE,
                 fill_color: tuple[int, int, int] = (0, 0, 0)):
        if method not in PLATE_METHODS:
            raise ValueError(f"unknown plate method {method!r}: choose one of {', '.join(PLATE_METHODS)}")
        if not (np.isfinite(mask_scale) and 1.0 <= mask_scale <= 3.0):
            raise ValueError(f"plate mask scale must be within [1, 3], got {mask_scale}")
        self.method = method
        self.mask_scale = float(mask_scale)
        self.fill_color = tuple(int(c) for c in fill_color)

    def cover(self, image: np.ndarray, plates: Sequence[Any]) -> tuple[FaceRecord, ...]:
        """Cover each plate (anything with `.box`, `.confident`, optionally `.track_id`); what served each."""
        records = []
        for i, plate in enumerate(plates):
            method = self.method if getattr(plate, "confident", True) else FALLBACK_METHOD
            track_id = getattr(plate, "track_id", None)
            if method == "synthetic":
                try:
                    seed = None if track_id is None else int(track_id)
                    synthetic(image, plate.box, self.mask_scale, np.random.default_rng(seed))
                except Exception:  # any rendering failure: the blur, never the plate left raw
                    log.warning("synthetic plate failed; using %s for plate %d", FALLBACK_METHOD, i,
                                exc_info=log.isEnabledFor(logging.DEBUG))
                    method = FALLBACK_METHOD
            if method != "synthetic":
                self._classic(image, plate.box, method)
            records.append(FaceRecord(tuple(float(v) for v in plate.box[:4]), method, track_id))
        return tuple(records)

    def _classic(self, image: np.ndarray, box: np.ndarray, method: str) -> None:
        opts = {"mask_scale": self.mask_scale, "shape": "box", "feather": 0.0}
        if method == "blur":
            classic.blur(image, box, **opts)
        elif method == "pixelate":
            classic.pixelate(image, box, **opts)
        else:
            classic.fill(image, box, color=self.fill_color, **opts)
