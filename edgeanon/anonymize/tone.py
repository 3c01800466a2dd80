"""The skin tone a generated face takes, and the low-frequency shift (one CIELAB offset) that gives it.

The shipped generator paints nearly the same pale face on everyone; the tone of the person is lost. The
target tone is read from the frame before anything is pasted, from one of two sources (SOURCES):

- "surround": the skin that stays visible around the anonymizer's mask (neck, ears, the forehead's edge:
  skin-coloured pixels in a ring just outside it). What it reads stays in the published frame anyway.
  Where too little skin shows (a face laid on a scene, a hooded head), there is no target and the face is
  left as generated.
- "face": the median colour of the face's own skin, read where skin is on nearly every face: both cheeks, the
  nose bridge and the forehead just above the brows, placed by the 5 landmarks and sized by the eye distance
  (skin_patches). A loose box takes in no background there, and the skin test (skin_pixels) keeps dark skin
  and its shading. A blur of the face publishes this colour too (a blurred face keeps its mean), so it reveals
  no more than the fallback does. Without landmarks it reads what "box" reads.
- "box": the face's own skin-coloured pixels inside its box's ellipse (the rule before landmarks: with a loose
  box it reads the backdrop too, and its skin test left out dark shading). Kept for callers without landmarks
  and to compare against.

`shift` moves the generated face's median CIELAB colour (inside its ellipse) to the target: a constant
offset, the lowest frequency there is, so no feature, shape or texture of the person is carried over.
"""

from __future__ import annotations

import cv2
import numpy as np

SOURCES = ("surround", "face", "box")
# The surround ring: radii of the anonymizer's mask ellipse (1 = its rim).
RING = (1.0, 1.45)
# Skin-coloured pixels in CIELAB for the box and the surround, light and dark skin alike: reddish-yellow (a*, b*
# within these ranges, b* at least SKIN_HUE a*), not near-black. A grey or pinkish-grey backdrop (a*, b* under 5)
# is not skin.
SKIN_L, SKIN_A, SKIN_B, SKIN_HUE = 12.0, (5.0, 32.0), (6.0, 40.0), 0.5
# The surround gives a target only with at least this many skin pixels making this share of the ring.
MIN_SKIN_PIXELS, MIN_SKIN_SHARE = 24, 0.08
# The face's own skin in its box ("box", and "face" without landmarks): its box ellipse shrunk to this radius.
FACE_RADIUS = 0.7
# The skin patches of "face", in eye distances (between the two eye landmarks): discs of PATCH_RADIUS on both
# cheeks (halfway between eye and mouth corner, pushed outward by CHEEK_OUT), on the nose bridge (BRIDGE of the
# way from the eyes' midpoint to the nose) and on the forehead (FOREHEAD above the eyes' midpoint, across the
# eye line: just above the brows, below most fringes).
PATCH_RADIUS, CHEEK_OUT, BRIDGE, FOREHEAD = 0.2, 0.12, 0.45, 0.6
# The skin test inside the patches: CIELAB hue angle (degrees from +a*) and chroma of skin, dark or light. Dark
# skin and its shading keep a reddish-yellow hue at low chroma, so only near-grey (chroma under PATCH_CHROMA[0]:
# grey hair, glasses, a white beard) and near-black pixels are left out by colour, and strongly coloured ones
# (a red or blond backdrop, lipstick: over PATCH_CHROMA[1] or outside PATCH_HUE).
PATCH_L, PATCH_HUE, PATCH_CHROMA = 4.0, (10.0, 100.0), (3.0, 60.0)
# The patches' skin pixels give the target when they are at least this share of the patch pixels; otherwise
# the median of all the patch pixels does.
MIN_PATCH_SHARE = 0.3
# A forehead pixel counts when its L* and its (a*, b*) lie within these distances of the cheeks' and nose's median.
FOREHEAD_MATCH = (10.0, 8.0)
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


def ita(lab) -> np.ndarray:
    """Individual typology angle (degrees) of CIELAB colours (..., 3): arctan((L* - 50) / b*); a float for one."""
    lab = np.asarray(lab, np.float64)
    return np.degrees(np.arctan2(lab[..., 0] - 50.0, lab[..., 2]))


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


def skin_patches(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """(4, 2) centres of the skin patches (left cheek, right cheek, nose bridge, forehead) and their radius (px),
    from 5 landmarks (eyes, nose, mouth corners, image left before right)."""
    lm = np.asarray(landmarks, np.float64).reshape(5, 2)
    across = lm[1] - lm[0]
    span = float(np.hypot(*across))
    eyes = (lm[0] + lm[1]) / 2
    up = np.array([across[1], -across[0]]) if span > 0 else np.array([0.0, -1.0])
    if np.dot(up, (lm[3] + lm[4]) / 2 - eyes) > 0:  # "up" points away from the mouth
        up = -up
    centres = np.array([(lm[0] + lm[3]) / 2 - CHEEK_OUT * across, (lm[1] + lm[4]) / 2 + CHEEK_OUT * across,
                        eyes + BRIDGE * (lm[2] - eyes), eyes + FOREHEAD * up])
    return centres, PATCH_RADIUS * span


def patch_skin(lab: np.ndarray) -> np.ndarray:
    """Boolean mask of the pixels of a CIELAB image that the patches count as skin (PATCH_HUE, PATCH_CHROMA)."""
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    hue = np.degrees(np.arctan2(lab[..., 2], lab[..., 1]))
    return ((lab[..., 0] > PATCH_L) & (chroma >= PATCH_CHROMA[0]) & (chroma <= PATCH_CHROMA[1])
            & (hue >= PATCH_HUE[0]) & (hue <= PATCH_HUE[1]))


def _patch_mask(shape: tuple[int, int], landmarks: np.ndarray, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """(h, w) uint8 map of the skin patches of `landmarks` in a window at `origin`: 1 on the cheeks and the nose
    bridge, 2 on the forehead, 0 elsewhere."""
    centres, radius = skin_patches(landmarks)
    ys = np.arange(shape[0], dtype=np.float32)[:, None] + origin[1] + 0.5
    xs = np.arange(shape[1], dtype=np.float32)[None, :] + origin[0] + 0.5
    labels = np.zeros(shape, np.uint8)
    reach = max(radius, 0.75) ** 2  # at least the nearest pixel on a tiny face
    for k, (cx, cy) in enumerate(centres[::-1]):  # the forehead first, so the others win where they overlap
        labels[(xs - cx) ** 2 + (ys - cy) ** 2 <= reach] = 2 if k == 0 else 1
    return labels


def patch_tone(lab: np.ndarray, patches: np.ndarray) -> np.ndarray:
    """Median CIELAB of the skin in `patches` (a _patch_mask map of a CIELAB image with some patch in it).

    Skin: the patch pixels that pass the skin test when they are MIN_PATCH_SHARE of the patches or more, else all
    of them (patches placed on a face are still mostly skin, whatever its colour: odd light, a monochrome camera).
    The forehead's skin counts only where it looks like the cheeks' and the nose's (FOREHEAD_MATCH): a fringe or
    a cap is dark or light like skin can be, and would pass the colour test.
    """
    found = patches > 0
    skin = found & patch_skin(lab)
    where = skin if skin.sum() >= max(1, MIN_PATCH_SHARE * found.sum()) else found
    core = where & (patches == 1)
    if not core.any():
        return np.median(lab[where], axis=0).astype(np.float32)
    centre = np.median(lab[core], axis=0)
    forehead = where & (patches == 2)
    forehead &= np.abs(lab[..., 0] - centre[0]) <= FOREHEAD_MATCH[0]
    forehead &= np.hypot(lab[..., 1] - centre[1], lab[..., 2] - centre[2]) <= FOREHEAD_MATCH[1]
    return np.median(lab[core | forehead], axis=0).astype(np.float32)


def target(image: np.ndarray, box: np.ndarray, source: str, mask_scale: float,
           landmarks: np.ndarray | None = None) -> np.ndarray | None:
    """The tone (CIELAB) the face at `box` should take, read from `image` (before any paste); None: keep it.

    "face" reads the skin patches placed by `landmarks` (5 points) when given (patch_tone), the box's rule when
    not or when the patches lie outside the image."""
    if source not in SOURCES:
        raise ValueError(f"unknown tone source {source!r}: choose {', '.join(SOURCES)}")
    if landmarks is not None:
        landmarks = np.asarray(landmarks, np.float64)
        if landmarks.shape != (5, 2) or not np.all(np.isfinite(landmarks)) or np.allclose(landmarks[0], landmarks[1]):
            landmarks = None  # no usable points: the box's rule
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    h, w = image.shape[:2]
    reach = mask_scale * RING[1] if source == "surround" else 1.0
    hx, hy = (x2 - x1) * reach / 2.0, (y2 - y1) * reach / 2.0
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    wx1, wy1 = max(0, int(cx - hx)), max(0, int(cy - hy))
    wx2, wy2 = min(w, int(np.ceil(cx + hx))), min(h, int(np.ceil(cy + hy)))
    if source == "face" and landmarks is not None:
        centres, radius = skin_patches(landmarks)
        px1, py1 = np.floor(centres.min(0) - radius - 1).astype(int)
        px2, py2 = np.ceil(centres.max(0) + radius + 1).astype(int)
        wx1, wy1, wx2, wy2 = max(0, min(wx1, px1)), max(0, min(wy1, py1)), min(w, max(wx2, px2)), min(h, max(wy2, py2))
    if wx2 - wx1 < 2 or wy2 - wy1 < 2:
        return None
    lab = lab_of(np.ascontiguousarray(image[wy1:wy2, wx1:wx2]))
    if source == "face" and landmarks is not None:
        patches = _patch_mask(lab.shape[:2], landmarks, (wx1, wy1))
        if patches.any():
            return patch_tone(lab, patches)
    if source in ("face", "box"):
        inside = _radius(lab.shape[:2], box, 1.0, (wx1, wy1)) < FACE_RADIUS
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
          strength: float = STRENGTH, landmarks: np.ndarray | None = None) -> np.ndarray:
    """The generated crop (float32 BGR 0-255) with one CIELAB offset: its face's median colour moved to `tone`.

    The face's colour is measured where `target` read the person's: in the skin patches of `landmarks` (the
    points the face was generated at, crop coordinates) when given and skin-coloured enough, else inside its box
    ellipse (FACE_RADIUS). The offset is applied inside the generated ellipse (`scale` x box), fading out over
    its outer fifth; the context is untouched.
    """
    lab = cv2.cvtColor(np.clip(face, 0, 255).astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)
    patches = _patch_mask(face.shape[:2], landmarks) if landmarks is not None else None
    if patches is not None and patches.any():
        own = patch_tone(lab, patches)
    else:
        inside = _radius(face.shape[:2], box_in_crop, 1.0) < FACE_RADIUS
        if not inside.any():
            return face
        own = np.median(lab[inside], axis=0)
    offset = (np.asarray(tone, np.float32) - own) * strength
    r = _radius(face.shape[:2], box_in_crop, scale)
    weight = np.clip((1.0 - r) / 0.2, 0.0, 1.0)[:, :, None]
    lab = lab + offset[None, None, :] * weight
    lab[..., 0] = np.clip(lab[..., 0], 0.0, 100.0)
    moved = cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2BGR) * 255.0
    return np.where(weight > 0, moved, face).astype(np.float32)  # no round-trip error outside the face
