"""The skin tone a generated face takes, and the low-frequency shift (one CIELAB offset) that gives it.

The shipped generator paints nearly the same pale face on everyone; the tone of the person is lost. The
target tone is read from the frame before anything is pasted, from one of two sources (SOURCES):

- "surround": the skin that stays visible around the anonymizer's mask (neck, ears, the forehead's edge:
  skin-coloured pixels in a ring just outside it). What it reads stays in the published frame anyway.
  Where too little skin shows (a face laid on a scene, a hooded head), there is no target and the face is
  left as generated.
- "face": the median colour of the face's own skin, inside its box. A blur of the face publishes this
  colour too (a blurred face keeps its mean), so it reveals no more than the fallback does.

`shift` moves the generated face's median CIELAB colour (inside its ellipse) to the target: a constant
offset, the lowest frequency there is, so no feature, shape or texture of the person is carried over.
"""

from __future__ import annotations

import cv2
import numpy as np

SOURCES = ("surround", "face")
# The surround ring: radii of the anonymizer's mask ellipse (1 = its rim).
RING = (1.0, 1.45)
# Skin-coloured pixels in CIELAB, light and dark skin alike: reddish-yellow (a*, b* within these ranges, b* at
# least SKIN_HUE a*), not near-black. A grey or pinkish-grey backdrop (a*, b* under 5) is not skin.
SKIN_L, SKIN_A, SKIN_B, SKIN_HUE = 12.0, (5.0, 32.0), (6.0, 40.0), 0.5
# The surround gives a target only with at least this many skin pixels making this share of the ring.
MIN_SKIN_PIXELS, MIN_SKIN_SHARE = 24, 0.08
# The face's own skin: its box ellipse shrunk to this radius (cheeks, nose, forehead; little hair or background).
FACE_RADIUS = 0.7
# The share of the offset applied (1 = all the way to the target).
STRENGTH = 1.0


def _radius(shape: tuple[int, int], box: np.ndarray, scale: float, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Normalized elliptic radius of each pixel of an (h, w) window at `origin` w.r.t. the box grown by `scale`."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    rx, ry = max(x2 - x1, 1e-3) * scale / 2.0, max(y2 - y1, 1e-3) * scale / 2.0
    ys = (np.arange(shape[0], dtype=np.float32) + origin[1] + 0.5 - cy) / ry
    xs = (np.arange(shape[1], dtype=np.float32) + origin[0] + 0.5 - cx) / rx
    return np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)


def lab_of(bgr: np.ndarray) -> np.ndarray:
    """CIELAB (L* 0-100, a*, b*) of a BGR uint8 image, float32."""
    return cv2.cvtColor(bgr.astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)


def skin_pixels(lab: np.ndarray) -> np.ndarray:
    """Boolean mask of skin-coloured pixels of a CIELAB image."""
    lightness, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    return ((lightness > SKIN_L) & (a >= SKIN_A[0]) & (a <= SKIN_A[1]) & (b >= SKIN_B[0]) & (b <= SKIN_B[1])
            & (b >= SKIN_HUE * a))


def median_lab(bgr: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Median CIELAB (L* 0-100, a*, b*) of `bgr` (uint8) over `where`."""
    return np.median(lab_of(bgr)[where], axis=0).astype(np.float32)


def target(image: np.ndarray, box: np.ndarray, source: str, mask_scale: float) -> np.ndarray | None:
    """The tone (CIELAB) the face at `box` should take, read from `image` (before any paste); None: keep it."""
    if source not in SOURCES:
        raise ValueError(f"unknown tone source {source!r}: choose {', '.join(SOURCES)}")
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    h, w = image.shape[:2]
    reach = mask_scale * RING[1] if source == "surround" else 1.0
    hx, hy = (x2 - x1) * reach / 2.0, (y2 - y1) * reach / 2.0
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    wx1, wy1 = max(0, int(cx - hx)), max(0, int(cy - hy))
    wx2, wy2 = min(w, int(np.ceil(cx + hx))), min(h, int(np.ceil(cy + hy)))
    if wx2 - wx1 < 2 or wy2 - wy1 < 2:
        return None
    lab = lab_of(np.ascontiguousarray(image[wy1:wy2, wx1:wx2]))
    if source == "face":
        r = _radius(lab.shape[:2], box, 1.0, (wx1, wy1))
        inside = r < FACE_RADIUS
        skin = inside & skin_pixels(lab)
        where = skin if skin.sum() >= MIN_SKIN_PIXELS else inside
        return np.median(lab[where], axis=0).astype(np.float32) if where.any() else None
    r = _radius(lab.shape[:2], box, mask_scale, (wx1, wy1))
    ring = (r >= RING[0]) & (r < RING[1])
    skin = ring & skin_pixels(lab)
    if skin.sum() < MIN_SKIN_PIXELS or skin.sum() < MIN_SKIN_SHARE * max(ring.sum(), 1):
        return None
    return np.median(lab[skin], axis=0).astype(np.float32)


def shift(face: np.ndarray, box_in_crop: np.ndarray, tone: np.ndarray, scale: float,
          strength: float = STRENGTH) -> np.ndarray:
    """The generated crop (float32 BGR 0-255) with one CIELAB offset: its face's median colour moved to `tone`.

    The face's colour is measured inside its box ellipse (FACE_RADIUS) and the offset is applied inside the
    generated ellipse (`scale` x box), fading out over its outer fifth; the context is untouched.
    """
    lab = cv2.cvtColor(np.clip(face, 0, 255).astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)
    r_face = _radius(face.shape[:2], box_in_crop, 1.0)
    inside = r_face < FACE_RADIUS
    if not inside.any():
        return face
    offset = (np.asarray(tone, np.float32) - np.median(lab[inside], axis=0)) * strength
    r = _radius(face.shape[:2], box_in_crop, scale)
    weight = np.clip((1.0 - r) / 0.2, 0.0, 1.0)[:, :, None]
    lab = lab + offset[None, None, :] * weight
    lab[..., 0] = np.clip(lab[..., 0], 0.0, 100.0)
    moved = cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2BGR) * 255.0
    return np.where(weight > 0, moved, face).astype(np.float32)  # no round-trip error outside the face
