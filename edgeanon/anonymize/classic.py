"""Classic anonymizers (blur, pixelate, fill): in place on the frame buffer, touching only the face's region."""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from edgeanon.anonymize.masks import clamp_region, region_mask, scale_box
from edgeanon.defaults import DEFAULT_MASK_SCALE

# Blur keeps about this many samples across the face (then smooths them): a face a few samples
# wide carries no identity, whatever its size in pixels. 4 changes faces as much as deface's blur
# does at equal coverage (measured with export/eval/leak.py on bench/make_clip.py's clip).
BLUR_CELLS = 4
# Default mask: the box grown DEFAULT_MASK_SCALE, an ellipse with a soft rim 10 % of its radius wide.
DEFAULT_FEATHER = 0.1
PIXELATE_BLOCKS = 6


def blur_patch(roi: np.ndarray, face_w: float, face_h: float, cells: int = BLUR_CELLS) -> np.ndarray:
    """A strongly blurred copy of `roi` whose strength scales with the face (`cells` samples across it)."""
    rh, rw = roi.shape[:2]
    sw = max(1, math.ceil(rw * cells / max(face_w, 1.0)))
    sh = max(1, math.ceil(rh * cells / max(face_h, 1.0)))
    if sw >= rw and sh >= rh:  # face smaller than `cells` pixels: smoothing alone must do it
        k = max(3, (min(rw, rh) // 2) | 1)
        return cv2.blur(roi, (k, k))
    small = cv2.resize(roi, (min(sw, rw), min(sh, rh)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=1.0, borderType=cv2.BORDER_REPLICATE)
    return cv2.resize(small, (rw, rh), interpolation=cv2.INTER_LINEAR)


def pixelate_patch(roi: np.ndarray, face_w: float, face_h: float, blocks: int = PIXELATE_BLOCKS) -> np.ndarray:
    """A mosaic of `roi` with about `blocks` blocks across the face."""
    rh, rw = roi.shape[:2]
    sw = max(1, round(rw * blocks / max(face_w, 1.0)))
    sh = max(1, round(rh * blocks / max(face_h, 1.0)))
    small = cv2.resize(roi, (min(sw, rw), min(sh, rh)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (rw, rh), interpolation=cv2.INTER_NEAREST)


def fill_patch(roi: np.ndarray, color: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """A solid patch of `color` (BGR) the size of `roi`."""
    patch = np.empty_like(roi)
    patch[...] = color
    return patch


def apply_patch(
    image: np.ndarray,
    box: np.ndarray,
    make_patch: Callable[[np.ndarray, float, float], np.ndarray],
    mask_scale: float = DEFAULT_MASK_SCALE,
    shape: str = "ellipse",
    feather: float = DEFAULT_FEATHER,
) -> bool:
    """Blend `make_patch(roi, face_w, face_h)` into the face's scaled region of `image`, in place.

    Only the region (box grown by `mask_scale`, clamped to the image) is read and written.
    Returns False when the region lies entirely outside the image (nothing to cover).
    """
    full = scale_box(box, mask_scale)
    clipped = clamp_region(full, image.shape[1], image.shape[0])
    if clipped is None:
        return False
    x1, y1, x2, y2 = clipped
    roi = image[y1:y2, x1:x2]
    face_w = max(abs(float(box[2]) - float(box[0])), 1.0)
    face_h = max(abs(float(box[3]) - float(box[1])), 1.0)
    patch = make_patch(roi, face_w, face_h)
    mask = region_mask(shape, full, clipped, feather)
    if shape == "box" and feather <= 0:
        roi[...] = patch
        return True
    weights = mask[:, :, None]
    blended = roi.astype(np.float32)
    blended += (patch.astype(np.float32) - blended) * weights
    np.rint(blended, out=blended)
    roi[...] = blended.astype(np.uint8)
    return True


def blur(image: np.ndarray, box: np.ndarray, cells: int = BLUR_CELLS, **mask_opts) -> bool:
    """Blur one face in place (strength relative to the face size)."""
    return apply_patch(image, box, lambda r, w, h: blur_patch(r, w, h, cells), **mask_opts)


def pixelate(image: np.ndarray, box: np.ndarray, blocks: int = PIXELATE_BLOCKS, **mask_opts) -> bool:
    """Pixelate one face in place (`blocks` blocks across the face)."""
    return apply_patch(image, box, lambda r, w, h: pixelate_patch(r, w, h, blocks), **mask_opts)


def fill(image: np.ndarray, box: np.ndarray, color: tuple[int, int, int] = (0, 0, 0), **mask_opts) -> bool:
    """Cover one face in place with a solid colour (BGR)."""
    return apply_patch(image, box, lambda r, w, h: fill_patch(r, color), **mask_opts)
