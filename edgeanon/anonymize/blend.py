"""Putting a generated face into the frame: over the classic cover of the whole mask, colour-matched, multi-band.

Per face, in one window of the frame:
1. the classic blur covers the anonymizer's mask (the box grown by `mask_scale`, its shape and feather),
   so no pixel the mask covers stays original, whatever the generated crop reaches;
2. a grey region (an IR or monochrome camera) gets a grey face; matching the face's colour and brightness
   to the original (per-channel mean and std in a ring just inside its ellipse) is available but off
   (COLOUR_MATCH: it measurably moves the face toward its person);
3. it is blended over that cover with a Laplacian pyramid: low frequencies across a wide band (no
   brightness step at the rim), fine detail across a narrow one (no ghost of a double edge).
"""

from __future__ import annotations

import cv2
import numpy as np

from edgeanon.anonymize import classic, masks, tone
from edgeanon.anonymize.crops import MASK_SCALE, PASTE_INNER, CropRegion

# Colour match: std ratios are kept within these bounds (a flat ring must not blow a face's contrast up).
MIN_GAIN, MAX_GAIN = 0.5, 2.0
# Match the generated face to the original crop's ring: None (off, the default), "brightness" or "channels".
# Off because any match moves the face toward its person: on 150 held-back faces in context (export.eval
# incontext --limit 150 --methods gan), dlib's distance to the original fell by 0.0051 (SE 0.0012) per face
# matched per channel and by 0.0038 (SE 0.0013) matched in brightness, and the share under 0.6 rose from
# 8.0% to 10.0% and 9.3% (on 300 faces the share did not separate them). The multi-band blend stays.
COLOUR_MATCH: str | None = None
# The ring of the colour match: normalized radii of the generated ellipse (1 = its rim).
RING = (0.75, 1.0)
# A window whose pixels differ between colour channels by less than this (mean of max - min, grey levels)
# is grey: IR night mode, a monochrome sensor, a grey-scale picture.
GREY_CHROMA = 3.0
# Pyramid levels stop when the coarsest level would be smaller than this (pixels).
MIN_LEVEL_SIDE = 8
MAX_LEVELS = 5


def is_grey(bgr: np.ndarray) -> bool:
    """True when the colour channels of `bgr` (uint8 or float) are practically equal."""
    if bgr.size == 0:
        return False
    step = max(1, min(bgr.shape[:2]) // 32)  # about 32 x 32 samples are plenty for a mean
    sample = bgr[::step, ::step]
    chroma = sample.max(axis=2).astype(np.float32) - sample.min(axis=2).astype(np.float32)
    return float(chroma.mean()) < GREY_CHROMA


def match_colour(face: np.ndarray, reference: np.ndarray, where: np.ndarray, per_channel: bool = True) -> np.ndarray:
    """`face` (float32 BGR) shifted and scaled so that its mean and std over `where` match `reference`'s:
    per channel (colour and light), or with one gain and offset for all three (light only: `per_channel` False)."""
    if int(where.sum()) < 16:
        return face
    mask = where.astype(np.uint8)
    if not per_channel:
        weights = np.array([[0.114, 0.587, 0.299]], np.float32)
        mu_f, sd_f = (float(v[0, 0]) for v in cv2.meanStdDev(cv2.transform(face, weights), mask=mask))
        mu_r, sd_r = (float(v[0, 0]) for v in cv2.meanStdDev(cv2.transform(reference, weights), mask=mask))
        gain = float(np.clip(sd_r / max(sd_f, 1e-3), MIN_GAIN, MAX_GAIN))
        return (face - mu_f) * gain + mu_r
    mu_f, sd_f = (v.reshape(-1)[:3] for v in cv2.meanStdDev(face, mask=mask))
    mu_r, sd_r = (v.reshape(-1)[:3] for v in cv2.meanStdDev(reference, mask=mask))
    gain = np.clip(sd_r / np.maximum(sd_f, 1e-3), MIN_GAIN, MAX_GAIN).astype(np.float32)
    return (face - mu_f.astype(np.float32)) * gain + mu_r.astype(np.float32)


def match_crop(face: np.ndarray, crop: np.ndarray, box_in_crop: np.ndarray,
               skin: np.ndarray | None = None, landmarks_in_crop: np.ndarray | None = None) -> np.ndarray:
    """The generated crop (BGR uint8), grey where the original crop is grey, matched to it when COLOUR_MATCH is set,
    its face moved to the CIELAB tone `skin` when given (tone.target, tone.shift: measured at the skin patches of
    `landmarks_in_crop`, the points the face was generated at, when given).

    Done at the crop's 128 px, whatever the face's size in the frame (a per-channel gain and offset commutes
    with the paste's resampling).
    """
    out = face.astype(np.float32)
    if COLOUR_MATCH is not None:
        r = elliptic_radius((0, 0, crop.shape[1], crop.shape[0]), box_in_crop, MASK_SCALE)
        out = match_colour(out, crop.astype(np.float32), (r >= RING[0]) & (r < RING[1]),
                           per_channel=COLOUR_MATCH == "channels")
    if skin is not None:
        out = tone.shift(out, box_in_crop, skin, MASK_SCALE, landmarks=landmarks_in_crop)
    if is_grey(crop):
        out = np.repeat(cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY)[:, :, None], 3, 2)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _levels(h: int, w: int) -> int:
    n = 0
    while n < MAX_LEVELS and min(h, w) >> (n + 1) >= MIN_LEVEL_SIDE:
        n += 1
    return n


def blend_difference(diff: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Each Laplacian band of `diff` (float32, h x w x 3) weighted by the same level of alpha's Gaussian pyramid.

    Added to `bottom` with diff = top - bottom, this is the Laplacian-pyramid blend of `top` over `bottom`
    (one pyramid instead of two): where alpha is 1 the result is `top`, where it is 0 far from the transition
    it is `bottom`; each frequency band is crossed over a width that grows with its scale.
    """
    n = _levels(*alpha.shape)
    alphas = [cv2.merge([alpha] * 3)]
    if n == 0:
        return cv2.multiply(diff, alphas[0])
    bands = []
    d = diff
    for _ in range(n):
        down = cv2.pyrDown(d)
        bands.append(cv2.subtract(d, cv2.pyrUp(down, dstsize=(d.shape[1], d.shape[0]))))
        alphas.append(cv2.pyrDown(alphas[-1]))
        d = down
    out = cv2.multiply(d, alphas[-1])
    for level in range(n - 1, -1, -1):
        band = bands[level]
        out = cv2.pyrUp(out, dstsize=(band.shape[1], band.shape[0]))
        out = cv2.add(out, cv2.multiply(band, alphas[level]))
    return out


def elliptic_radius(window: tuple[int, int, int, int], box: np.ndarray, scale: float) -> np.ndarray:
    """Normalized elliptic radius of each window pixel centre w.r.t. the box's ellipse grown by `scale`."""
    x1, y1, x2, y2 = window
    bx1, by1, bx2, by2 = (float(v) for v in box[:4])
    cx, cy = (bx1 + bx2) / 2.0, (by1 + by2) / 2.0
    rx, ry = max(bx2 - bx1, 1e-3) * scale / 2.0, max(by2 - by1, 1e-3) * scale / 2.0
    xs = ((np.arange(x1, x2, dtype=np.float32) + 0.5) - cx) / rx
    ys = ((np.arange(y1, y2, dtype=np.float32) + 0.5) - cy) / ry
    return cv2.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)


def paste_alpha(window: tuple[int, int, int, int], box: np.ndarray, rim: tuple[float, float]) -> np.ndarray:
    """The generated crop's weight over `window` (frame pixels): 1 within radius rim[0] of the box's ellipse, 0 from
    rim[1] on (each at most MASK_SCALE), linear in the elliptic radius between."""
    inner, outer = min(rim[0], MASK_SCALE), min(rim[1], MASK_SCALE)
    r = elliptic_radius(window, box, outer)
    return np.clip((1.0 - r) / max(1.0 - inner / outer, 1e-3), 0.0, 1.0)


# A coarser cover above the brows (crown_cover): fully `crown_cells` above CROWN_RAMP[0] of the box's height
# from its top, fully `cells` below CROWN_RAMP[1], linear between (the box's axes; roll is not followed).
CROWN_RAMP = (0.25, 0.55)


def crown_cover(roi: np.ndarray, box: np.ndarray, cells: int, crown_cells: int | None) -> np.ndarray:
    """classic.blur_patch of `roi` with `cells` samples across the face `box` (roi coordinates), coarser
    (`crown_cells`) over the hair above the brows; None: the plain blur."""
    face_w, face_h = max(box[2] - box[0], 1.0), max(box[3] - box[1], 1.0)
    fine = classic.blur_patch(roi, face_w, face_h, cells)
    if crown_cells is None or int(crown_cells) == int(cells):
        return fine
    coarse = classic.blur_patch(roi, face_w, face_h, int(crown_cells)).astype(np.float32)
    y = (np.arange(roi.shape[0], dtype=np.float32) + 0.5 - float(box[1])) / face_h
    w = np.clip((CROWN_RAMP[1] - y) / (CROWN_RAMP[1] - CROWN_RAMP[0]), 0.0, 1.0)[:, None, None]
    return np.clip(fine + (coarse - fine) * w + 0.5, 0, 255).astype(np.uint8)


def composite(image: np.ndarray, face_bgr: np.ndarray, region: CropRegion, box: np.ndarray,
              mask_scale: float = classic.DEFAULT_MASK_SCALE, mask_shape: str = "ellipse",
              feather: float = classic.DEFAULT_FEATHER, cells: int = classic.BLUR_CELLS,
              rim: tuple[float, float] = (PASTE_INNER, MASK_SCALE), multiband: bool = True,
              crown_cells: int | None = None) -> None:
    """Put one generated crop (BGR uint8, region's size, colour-matched: match_crop) into `image` in place.

    The crop is opaque out to `rim[0]` and gone at `rim[1]` (radii of the box's ellipse; `rim[1]` at most
    MASK_SCALE, where the generator's own output ends); across that band by the multi-band blend, or with
    `multiband` False by the plain alpha (nothing of the crop reaches beyond `rim[1]`). The cover is
    `crown_cover` (`crown_cells` None: a plain blur of `cells`).
    """
    box = np.asarray(box, dtype=np.float64)[:4]
    h, w = image.shape[:2]
    cover = masks.scale_box(box, mask_scale)
    full = masks.scale_box(box, max(mask_scale, MASK_SCALE))
    window = masks.clamp_region(full, w, h)
    if window is None:
        return
    x1, y1, x2, y2 = window
    roi = image[y1:y2, x1:x2]
    original = roi.astype(np.float32)

    # 1. The classic cover of the anonymizer's mask, inside the window.
    base = original.copy()
    cover_weight = np.zeros((y2 - y1, x2 - x1), np.float32)
    cover_in = masks.clamp_region(cover, w, h)
    if cover_in is not None:
        cx1, cy1, cx2, cy2 = cover_in
        sub = roi[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1]
        blurred = crown_cover(sub, box - [cx1, cy1, cx1, cy1], cells, crown_cells).astype(np.float32)
        weight = masks.region_mask(mask_shape, cover, cover_in, feather)
        cover_weight[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1] = weight
        part = base[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1]
        part += (blurred - part) * weight[:, :, None]

    # 2. The generated crop in window coordinates (bicubic keeps more of its detail than bilinear).
    s = 1.0 / region.scale
    m = np.array([[s, 0.0, region.x0 - x1], [0.0, s, region.y0 - y1]])
    gen = cv2.warpAffine(face_bgr, m, (x2 - x1, y2 - y1), flags=cv2.INTER_CUBIC,
                         borderMode=cv2.BORDER_REPLICATE).astype(np.float32)

    # 3. Multi-band blend: opaque within rim[0], reaching zero at rim[1].
    alpha = paste_alpha(window, box, rim)
    diff = cv2.subtract(gen, base)
    added = blend_difference(diff, alpha) if multiband else cv2.multiply(diff, cv2.merge([alpha] * 3))
    # Outside the cover and the generated ellipse nothing changes (the pyramid's widest band may spread). Only
    # the generated face's share is limited so: the cover keeps its own feather (limiting the whole output
    # applied the feather twice, leaving more of the original at the mask's rim than the blur fallback does).
    keep = cv2.merge([np.maximum(alpha, cover_weight)] * 3)
    out = cv2.add(base, cv2.multiply(added, keep))
    roi[...] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
