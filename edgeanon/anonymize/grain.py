"""Grain: the frame's own fine noise level laid over a pasted face, as seeded noise that carries no identity.

A pasted face made elsewhere (a k-Same reference: an average of 8 photos, enlarged) is smoother than the photo it
goes into: it has none of the sensor noise, JPEG grain or skin texture of the frame. Per face:

1. `level`: the fine residual of the frame under the face before anything is pasted (luminance minus its Gaussian
   of RESIDUAL_SIGMA px, inside READ_RADIUS of the box's ellipse) as a robust standard deviation (1.4826 x the
   median absolute deviation: eyes, brows and hair edges are its tails, not its bulk). One number per face: how
   grainy the frame is there, nothing of where the person's features sit;
2. `add`: after the paste, the pasted face's own level is read the same way, and grain from one seeded noise field
   (`Field`: Gaussian, correlated over SIGMA px like camera grain after demosaicing, taken at the track's own
   offset) is added, equal in the three channels (a grey frame stays grey), so that the face's level reaches
   `strength` x the frame's. It is weighted by the paste's alpha (blend.paste_alpha): nothing outside the pasted
   face changes.

Not a default (docs/ksame.md, "Grain"): on the tuning split it raises the detail measure (a Laplacian, which
weighs pixel noise most) far more than the same measure after a sigma-1 Gaussian, and faces do not look sharper.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgeanon.anonymize import blend, masks

# The fine residual: luminance minus its Gaussian of this sigma (px, frame resolution).
RESIDUAL_SIGMA = 1.0
# Read inside this radius of the box's ellipse (1 = the ellipse inscribed in the box).
READ_RADIUS = 0.8
# Correlation of the added grain (Gaussian sigma of the white noise, px; 0 = white).
SIGMA = 0.5
MAD_TO_STD = 1.4826
# The noise field every track takes its grain from (at its own offset): side (px) and seed.
FIELD_SIDE = 1024
FIELD_SEED = 13


def _grey(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32) if bgr.ndim == 3 else bgr.astype(np.float32)


def residual(grey: np.ndarray) -> np.ndarray:
    """Fine residual of a float32 grey image: itself minus its Gaussian of RESIDUAL_SIGMA px."""
    return grey - cv2.GaussianBlur(grey, (0, 0), RESIDUAL_SIGMA, borderType=cv2.BORDER_REFLECT)


def spread(res: np.ndarray, inside: np.ndarray) -> float:
    """The residual's robust_std over `inside`, read at every 4th pixel (the same median at a quarter the cost)."""
    return robust_std(res[::2, ::2][inside[::2, ::2]])


def robust_std(values: np.ndarray) -> float:
    """1.4826 x the median absolute deviation (the standard deviation of Gaussian values; edges do not count)."""
    if values.size < 16:
        return 0.0
    return MAD_TO_STD * float(np.median(np.abs(values - np.median(values))))


def _window(box: np.ndarray, scale: float, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    return masks.clamp_region(masks.scale_box(np.asarray(box, np.float64)[:4], scale), shape[1], shape[0])


def level(image: np.ndarray, box: np.ndarray) -> float:
    """The fine residual level of `image` under the face (`spread` within READ_RADIUS of the box's ellipse, grey
    levels); 0 where there is nothing to read."""
    window = _window(box, READ_RADIUS, image.shape)
    if window is None:
        return 0.0
    x1, y1, x2, y2 = window
    inside = blend.elliptic_radius(window, np.asarray(box, np.float64)[:4], READ_RADIUS) < 1.0
    return spread(residual(_grey(image[y1:y2, x1:x2])), inside)


@dataclass(frozen=True)
class Field:
    """One seeded noise field (FIELD_SIDE px square, correlated over `sigma` px), made once; each track takes it
    from its own seeded offset (wrapping around), so a face costs a crop, not a draw of fresh noise."""

    noise: np.ndarray  # (FIELD_SIDE, FIELD_SIDE) float32
    spread: float  # the field's own residual spread, as `spread` reads it

    @classmethod
    def make(cls, sigma: float = SIGMA) -> Field:
        noise = np.random.default_rng(FIELD_SEED).standard_normal((FIELD_SIDE, FIELD_SIDE), dtype=np.float32)
        if sigma > 0:  # blurred as a torus, so that the field wraps around without a seam
            pad = int(np.ceil(4 * sigma))
            noise = cv2.GaussianBlur(np.pad(noise, pad, mode="wrap"), (0, 0), sigma)[pad:-pad, pad:-pad]
        noise = np.ascontiguousarray(noise)
        return cls(noise, spread(residual(noise), np.ones(noise.shape, bool)))

    def patch(self, height: int, width: int, seed: int) -> np.ndarray:
        oy, ox = np.random.default_rng([abs(int(seed)), 13]).integers(0, FIELD_SIDE, 2)
        rows, cols = (oy + np.arange(height)) % FIELD_SIDE, (ox + np.arange(width)) % FIELD_SIDE
        return self.noise[rows[:, None], cols[None, :]]


def add(image: np.ndarray, box: np.ndarray, target: float, rim: tuple[float, float], seed: int, field: Field,
        strength: float = 1.0) -> None:
    """Grain from `field` at the track's offset (`seed`), in place over the face pasted at `box`, weighted by the
    paste's alpha over `rim`, so that the pasted face's `level` reaches `strength` x `target` (the frame's level
    read before the paste). Nothing is added where the pasted face is already that grainy."""
    window = _window(box, rim[1], image.shape)
    if window is None or target <= 0 or strength <= 0 or field.spread <= 0:
        return
    have, want = level(image, box), strength * target
    if want <= have:
        return
    # Independent residuals add in variance: the grain supplies what the pasted face lacks.
    gain = np.sqrt(want * want - have * have) / field.spread
    x1, y1, x2, y2 = window
    roi = image[y1:y2, x1:x2]
    weight = blend.paste_alpha(window, np.asarray(box, np.float64)[:4], rim) * np.float32(gain)
    grain = cv2.multiply(field.patch(y2 - y1, x2 - x1, seed), weight)
    roi[...] = np.clip(roi.astype(np.float32) + grain[:, :, None] + 0.5, 0, 255).astype(np.uint8)
