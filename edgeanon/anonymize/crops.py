"""Face-crop geometry shared by generator training and runtime: crop, landmarks, masks (blend.py pastes back)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgeanon.anonymize import masks

CROP_SIZE = 128
# Crop side = CONTEXT * longest box side, centred on the box (DeepPrivacy uses about 1.7x).
CONTEXT = 1.7
# The generator regenerates this ellipse (semi-axes = MASK_SCALE * half box size) ...
MASK_SCALE = 1.3
# ... and its output is pasted back fully opaque up to PASTE_INNER, feathered out to MASK_SCALE.
PASTE_INNER = 1.15
HEATMAP_SIGMA = 3.0
# A generic face's 5 points (eyes, nose, mouth corners) in a unit square: the widely used 112 px
# alignment template of face recognition, divided by 112.
TEMPLATE_LANDMARKS = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                               [41.5493, 92.3655], [70.7299, 92.2041]]) / 112.0
# Least-squares affine fit of the template to 5 points, then the template mapped by it: one 5x5 projection.
_TEMPLATE_BASIS = np.hstack([TEMPLATE_LANDMARKS, np.ones((5, 1))])
_TEMPLATE_FIT = _TEMPLATE_BASIS @ np.linalg.pinv(_TEMPLATE_BASIS)


@dataclass(frozen=True)
class CropRegion:
    """A square window of the image (may reach outside it: zero padding) mapped to size x size pixels."""

    x0: float
    y0: float
    side: float
    size: int = CROP_SIZE

    @property
    def scale(self) -> float:
        """Crop pixels per image pixel."""
        return self.size / self.side

    def matrix(self) -> np.ndarray:
        """2x3 affine from image coordinates to crop coordinates."""
        s = self.scale
        return np.array([[s, 0.0, -self.x0 * s], [0.0, s, -self.y0 * s]], dtype=np.float64)

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Image (N, 2) points -> crop coordinates."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return ((pts - [self.x0, self.y0]) * self.scale).astype(np.float32)

    def box_to_crop(self, box: np.ndarray) -> np.ndarray:
        """Image box (x1, y1, x2, y2) -> crop coordinates."""
        return self.to_crop(np.asarray(box, dtype=np.float64).reshape(2, 2)).reshape(4)

    def inside_fraction(self, width: int, height: int) -> float:
        """Share of the crop window's area that lies inside a width x height image."""
        ix = max(0.0, min(self.x0 + self.side, width) - max(self.x0, 0.0))
        iy = max(0.0, min(self.y0 + self.side, height) - max(self.y0, 0.0))
        return float(ix * iy / (self.side * self.side))


def crop_region(box: np.ndarray, size: int = CROP_SIZE, context: float = CONTEXT) -> CropRegion:
    """The square context window around a face box."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1, 1.0) * context
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    return CropRegion(cx - side / 2.0, cy - side / 2.0, side, size)


# How the crop is filled where its window reaches outside the frame: "zero" (black, what the training
# crops use), "reflect" (mirrored at the frame edge) or "replicate" (edge pixels repeated). The runtime
# uses CLOSEUP_BORDER, so a face whose 1.7x window leaves the frame (a close-up) still has context.
BORDERS = {"zero": cv2.BORDER_CONSTANT, "reflect": cv2.BORDER_REFLECT_101, "replicate": cv2.BORDER_REPLICATE}


def cut_crop(image: np.ndarray, region: CropRegion, border: str = "zero") -> np.ndarray:
    """The region resampled to size x size (area filter when shrinking); outside the image: `border` (BORDERS)."""
    mode = BORDERS[border]
    interp = cv2.INTER_AREA if region.scale < 1.0 else cv2.INTER_LINEAR
    if interp == cv2.INTER_AREA:
        # warpAffine has no area filter: cut the integer window (padded) and resize it.
        x0, y0 = int(np.floor(region.x0)), int(np.floor(region.y0))
        side = int(np.ceil(region.x0 + region.side)) - x0
        side = max(side, int(np.ceil(region.y0 + region.side)) - y0)
        h, w = image.shape[:2]
        sx0, sy0 = min(max(x0, 0), w - 1), min(max(y0, 0), h - 1)
        sx1, sy1 = max(min(x0 + side, w), sx0 + 1), max(min(y0 + side, h), sy0 + 1)
        if x0 >= w or y0 >= h or x0 + side <= 0 or y0 + side <= 0:  # nothing of the frame in the window
            window = np.zeros((side, side) + image.shape[2:], dtype=image.dtype)
        else:
            # The part inside the frame, padded out to the window (the padding repeats or mirrors the frame edge).
            window = cv2.copyMakeBorder(image[sy0:sy1, sx0:sx1], sy0 - y0, y0 + side - sy1, sx0 - x0,
                                        x0 + side - sx1, mode, value=0)
        # Sub-pixel offset of the true window inside the integer one, applied after resizing.
        dx, dy = (region.x0 - x0) * region.scale, (region.y0 - y0) * region.scale
        big = side * region.scale
        resized = cv2.resize(window, (max(1, round(big)), max(1, round(big))), interpolation=cv2.INTER_AREA)
        m = np.array([[1.0, 0.0, -dx], [0.0, 1.0, -dy]])
        return cv2.warpAffine(resized, m, (region.size, region.size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE if mode != cv2.BORDER_CONSTANT else mode, borderValue=0)
    return cv2.warpAffine(image, region.matrix(), (region.size, region.size), flags=cv2.INTER_LINEAR,
                          borderMode=mode, borderValue=0)


def ellipse_mask(box: np.ndarray, size: int | tuple[int, int], scale: float, feather: float = 0.0) -> np.ndarray:
    """Float32 (h, w) canvas holding the (feathered) ellipse of `box` grown by `scale` (masks.py's shape)."""
    h, w = (size, size) if isinstance(size, int) else size
    canvas = np.zeros((h, w), dtype=np.float32)
    full = masks.scale_box(np.asarray(box, dtype=np.float64), scale)
    clipped = masks.clamp_region(full, w, h)
    if clipped is not None:
        x1, y1, x2, y2 = clipped
        canvas[y1:y2, x1:x2] = masks.region_mask("ellipse", full, clipped, feather)
    return canvas


def landmark_heatmaps(landmarks: np.ndarray, size: int = CROP_SIZE, sigma: float = HEATMAP_SIGMA) -> np.ndarray:
    """One Gaussian channel per landmark, (5, size, size) float32, from crop coordinates."""
    lm = np.asarray(landmarks, dtype=np.float32).reshape(-1, 2)
    ax = np.arange(size, dtype=np.float32) + 0.5
    gx = np.exp(-((ax[None, :] - lm[:, :1]) ** 2) / (2 * sigma * sigma))  # (5, size)
    gy = np.exp(-((ax[None, :] - lm[:, 1:]) ** 2) / (2 * sigma * sigma))
    return (gy[:, :, None] * gx[:, None, :]).astype(np.float32)


def generic_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """The template face's points placed by the affine map that best fits `landmarks` (least squares).

    An affine map carries position, size, roll, yaw/pitch foreshortening and shear (the pose) but not
    the four remaining degrees of freedom of five points: the person's own proportions, an identity cue.
    """
    return (_TEMPLATE_FIT @ np.asarray(landmarks, dtype=np.float64).reshape(5, 2)).astype(np.float32)


def landmarks_plausible(box: np.ndarray, landmarks: np.ndarray | None) -> bool:
    """True when 5 finite landmarks sit inside the (slightly grown) box in a face-like layout."""
    if landmarks is None:
        return False
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (5, 2) or not np.all(np.isfinite(lm)):
        return False
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    if w <= 1 or h <= 1:
        return False
    nx, ny = (lm[:, 0] - x1) / w, (lm[:, 1] - y1) / h
    if np.any(nx < -0.25) or np.any(nx > 1.25) or np.any(ny < -0.25) or np.any(ny > 1.25):
        return False
    eye_dist = float(np.hypot(*(lm[1] - lm[0])))
    if eye_dist < 0.1 * w or eye_dist > 1.2 * w:
        return False
    # The eyes must be above the mouth corners (upright-ish faces, what the generator learnt).
    return bool(lm[:2, 1].mean() < lm[3:, 1].mean())


def head_turn(landmarks: np.ndarray) -> float:
    """Head turn (yaw) from 5 landmarks, in [-1, 1]: 0 frontal, +-1 a profile (nose level with one eye).

    The nose's horizontal position between the eyes, measured along the eye line: (d_left - d_right) /
    (d_left + d_right), with d the distance from each eye to the nose projected on that line.
    """
    lm = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    across = lm[1] - lm[0]
    span = float(np.hypot(*across))
    if not np.isfinite(span) or span < 1e-6:
        return 1.0
    t = float(np.dot(lm[2] - lm[0], across)) / (span * span)  # 0 at the left eye, 1 at the right one
    return float(np.clip(2.0 * t - 1.0, -1.0, 1.0))


def crop_inputs(image: np.ndarray, box: np.ndarray, landmarks: np.ndarray, size: int = CROP_SIZE,
                border: str = "zero") -> tuple[CropRegion, np.ndarray, np.ndarray, np.ndarray]:
    """Everything the generator sees for one face: region, crop (BGR uint8), mask (size, size), heatmaps (5, ...)."""
    region = crop_region(box, size)
    crop = cut_crop(image, region, border)
    mask = ellipse_mask(region.box_to_crop(box), size, MASK_SCALE)
    heat = landmark_heatmaps(region.to_crop(landmarks), size)
    return region, crop, mask, heat


def network_input(crop_bgr: np.ndarray, mask: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """(9, size, size) float32: masked RGB in [-1, 1], the mask, the landmark heatmaps."""
    rgb = crop_bgr[:, :, ::-1].astype(np.float32) / 127.5 - 1.0
    rgb = rgb * (1.0 - mask[:, :, None])
    return np.concatenate([rgb.transpose(2, 0, 1), mask[None], heatmaps], axis=0).astype(np.float32)


def network_output_to_bgr(out: np.ndarray) -> np.ndarray:
    """(3, size, size) RGB in [-1, 1] -> BGR uint8 (size, size, 3)."""
    rgb = np.clip((out.transpose(1, 2, 0) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def affine_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares affine map of the (n, 2) points `src` onto `dst`."""
    a = np.hstack([np.asarray(src, np.float64).reshape(-1, 2), np.ones((len(src), 1))])
    sol, *_ = np.linalg.lstsq(a, np.asarray(dst, np.float64).reshape(-1, 2), rcond=None)
    return sol.T


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity map (rotation, one scale, translation; no mirroring) of `src` onto `dst`.

    Unlike the affine map it cannot stretch one axis more than the other, so the warped points keep their own
    proportions (eye distance to eye-mouth distance) instead of taking the target's.
    """
    s, d = np.asarray(src, np.float64).reshape(-1, 2), np.asarray(dst, np.float64).reshape(-1, 2)
    sc, dc = s - s.mean(0), d - d.mean(0)
    norm = max(float((sc * sc).sum()), 1e-12)
    a = float((sc * dc).sum()) / norm
    b = float((sc[:, 0] * dc[:, 1] - sc[:, 1] * dc[:, 0]).sum()) / norm
    rot = np.array([[a, -b], [b, a]])
    return np.hstack([rot, (d.mean(0) - rot @ s.mean(0))[:, None]])
