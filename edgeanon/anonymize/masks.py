"""Face masks: ellipse or box, scaled around the face, with feathered edges (float32 weights in [0, 1])."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from edgeanon.defaults import MASK_SHAPES


def make_mask(shape: str, h: int, w: int, feather: float) -> np.ndarray:
    """An h x w mask of the given shape as float32 weights in [0, 1], cached and read-only (copy to modify).

    "ellipse": the ellipse inscribed in the box, 1 inside, ramping to 0 at its rim; `feather` is the width of
    the soft rim as a fraction of the ellipse radius (0 = hard edge): weight = clip((1 - r) / feather, 0, 1)
    with r the normalized elliptic radius, so everything within radius 1 - feather is fully covered.
    "box": the whole box, with a soft rim `feather` (fraction of the half size) wide.
    """
    if shape not in MASK_SHAPES:
        raise ValueError(f"unknown mask shape {shape!r}: choose {' or '.join(MASK_SHAPES)}")
    return _cached_mask(shape, int(h), int(w), round(float(feather), 4))


@lru_cache(maxsize=512)
def _cached_mask(shape: str, h: int, w: int, feather: float) -> np.ndarray:
    if h <= 0 or w <= 0:
        raise ValueError(f"mask size must be positive, got {h}x{w}")
    # Pixel centres, normalized to [-1, 1] across the box.
    ys = (np.arange(h, dtype=np.float32) + 0.5) / h * 2.0 - 1.0
    xs = (np.arange(w, dtype=np.float32) + 0.5) / w * 2.0 - 1.0
    if shape == "ellipse":
        r = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    else:
        r = np.maximum(np.abs(ys)[:, None], np.abs(xs)[None, :])
    if feather <= 0:
        mask = (r <= 1.0).astype(np.float32)
    else:
        mask = np.clip((1.0 - r) / feather, 0.0, 1.0).astype(np.float32)
    mask.setflags(write=False)
    return mask


Region = tuple[int, int, int, int]


def scale_box(box: np.ndarray, scale: float) -> Region:
    """Grow a face box (x1, y1, x2, y2) about its centre by `scale` and round outwards.

    Returns the integer region (x1, y1, x2, y2), x2/y2 exclusive and at least 1 px wide; it may
    reach outside the image (clamp it with `clamp_region`, cut its mask with `region_mask`).
    """
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    if not all(np.isfinite((x1, y1, x2, y2))):
        raise ValueError(f"face box has non-finite coordinates: {list(box)!r}")
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    hw, hh = abs(x2 - x1) * scale / 2.0, abs(y2 - y1) * scale / 2.0
    rx1, ry1 = int(np.floor(cx - hw)), int(np.floor(cy - hh))
    rx2, ry2 = int(np.ceil(cx + hw)), int(np.ceil(cy + hh))
    return rx1, ry1, max(rx2, rx1 + 1), max(ry2, ry1 + 1)


def clamp_region(region: Region, width: int, height: int) -> Region | None:
    """The part of a region inside a width x height image, or None when nothing of it is inside."""
    x1, y1, x2, y2 = region
    cx1, cy1 = max(0, x1), max(0, y1)
    cx2, cy2 = min(width, x2), min(height, y2)
    if cx2 <= cx1 or cy2 <= cy1:
        return None
    return cx1, cy1, cx2, cy2


def region_mask(shape: str, full: Region, clipped: Region, feather: float) -> np.ndarray:
    """The part of a full (unclamped) region's mask that falls inside its clamped region."""
    fx1, fy1, fx2, fy2 = full
    mask = make_mask(shape, fy2 - fy1, fx2 - fx1, feather)
    cx1, cy1, cx2, cy2 = clipped
    return mask[cy1 - fy1 : cy2 - fy1, cx1 - fx1 : cx2 - fx1]
