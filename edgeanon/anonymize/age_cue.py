"""A coarse age cue for choosing a k-Same reference: years from the face's gradients, by a linear model.

Without it a reference is chosen by skin tone and head turn alone, so a five-year-old may get an old man's
average face and a grandmother a baby's (docs/ksame.md, "Ages"). The cue reads the face the way the bank's
builder saw its photos: lined up by the similarity map of its 5 landmarks (which keeps the face's proportions, a
child's short lower face among them) on a SIDE px grey canvas, mirrored when the head turns left, described by a
histogram of oriented gradients plus a 16 px thumbnail, and mapped to log(1 + years) by a ridge regression that
`export/training/age_cue.py` fits on the bank's own UTKFace photos and stores in the bank file. Its estimate
only weighs the choice of a reference (ksame.AGE_WINDOW) and is never stored or published. numpy and OpenCV only.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgeanon.anonymize import crops

SIDE = 64
EYES = 16.0  # px between the eye centres on the canvas
_SCALE = EYES / SIDE / float(crops.TEMPLATE_LANDMARKS[1, 0] - crops.TEMPLATE_LANDMARKS[0, 0])
# The bank's canvas (ksame.REF_LANDMARKS) at SIDE px: eyes a little above the middle, forehead and chin inside.
TEMPLATE = ((crops.TEMPLATE_LANDMARKS - 0.5) * _SCALE + [0.5, 0.46]) * SIDE
CELL, BINS, CLIP = 8, 9, 0.2
THUMB = 16
MAX_YEARS = 100.0
PREFIX = "age_cue_"  # the arrays' names in a bank file


def canvas(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The face as the cue reads it: grey, SIDE px, lined up by the similarity map, turned right.

    A face larger than the canvas is first shrunk with area averaging (only the part the canvas shows): a warp
    alone would sample it sparsely, and the reading would jump with a pixel's shift of the landmarks."""
    src = np.asarray(landmarks, np.float64).reshape(5, 2)
    m = crops.similarity_fit(src, TEMPLATE)
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale < 1.0:
        corners = np.array([[0, 0], [SIDE, 0], [0, SIDE], [SIDE, SIDE]], np.float64)
        seen = (corners - m[:, 2]) @ np.linalg.inv(m[:, :2]).T
        h, w = grey.shape[:2]
        x0, y0 = np.clip(np.floor(seen.min(0)).astype(int) - 2, 0, [w - 1, h - 1])
        x1, y1 = np.clip(np.ceil(seen.max(0)).astype(int) + 2, [x0 + 1, y0 + 1], [w, h])
        part = grey[y0:y1, x0:x1]
        size = (max(1, round(part.shape[1] * scale)), max(1, round(part.shape[0] * scale)))
        grey = cv2.resize(part, size, interpolation=cv2.INTER_AREA)
        sx, sy = size[0] / part.shape[1], size[1] / part.shape[0]
        m = np.hstack([m[:, :2] @ np.diag([1.0 / sx, 1.0 / sy]), (m[:, :2] @ [x0, y0] + m[:, 2])[:, None]])
    out = cv2.warpAffine(grey, m, (SIDE, SIDE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(out[:, ::-1]) if crops.head_turn(src) < 0 else out


def gradients(grey: np.ndarray) -> np.ndarray:
    """Histograms of oriented gradients: CELL px cells, BINS unsigned orientations, 2x2-cell blocks L2-normed and
    clipped at CLIP (Dalal and Triggs' recipe)."""
    g = grey.astype(np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=1)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=1)
    mag = np.hypot(gx, gy)
    pos = (np.degrees(np.arctan2(gy, gx)) % 180.0) / (180.0 / BINS)
    lo = np.floor(pos).astype(np.int64)
    w = pos - lo
    lo %= BINS
    n = g.shape[0] // CELL
    cell = np.minimum(np.arange(g.shape[0]) // CELL, n - 1)
    cy, cx = np.meshgrid(cell, cell, indexing="ij")
    hist = np.zeros((n, n, BINS), np.float32)
    np.add.at(hist, (cy, cx, lo), mag * (1.0 - w))
    np.add.at(hist, (cy, cx, (lo + 1) % BINS), mag * w)
    blocks = np.concatenate([hist[:-1, :-1], hist[1:, :-1], hist[:-1, 1:], hist[1:, 1:]], axis=-1)
    blocks /= np.linalg.norm(blocks, axis=-1, keepdims=True) + 1e-3
    return np.minimum(blocks, CLIP).ravel()


def features(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """What the cue's linear model reads: the canvas's gradients and a THUMB px thumbnail (0-1)."""
    grey = canvas(image, landmarks)
    thumb = cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32).ravel() / 255.0
    return np.concatenate([gradients(grey), thumb]).astype(np.float32)


@dataclass(frozen=True)
class AgeCue:
    """log(1 + years) = ((features - mean) / scale) @ weights + bias, clipped to 0-MAX_YEARS years."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def years(self, image: np.ndarray, landmarks: np.ndarray) -> float:
        return self.years_of(features(image, landmarks))

    def years_of(self, feats: np.ndarray) -> float:
        z = float(((feats - self.mean) / self.scale) @ self.weights) + self.bias
        return float(np.expm1(np.clip(z, 0.0, np.log1p(MAX_YEARS))))

    def arrays(self) -> dict[str, np.ndarray]:
        """For a bank file (np.savez): the model under PREFIX names."""
        return {f"{PREFIX}mean": self.mean.astype(np.float32), f"{PREFIX}scale": self.scale.astype(np.float32),
                f"{PREFIX}weights": self.weights.astype(np.float32),
                f"{PREFIX}bias": np.array([self.bias], np.float32)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> AgeCue | None:
        """The cue a bank file holds, None if it holds none; ValueError if its arrays do not fit together."""
        names = [f"{PREFIX}{k}" for k in ("mean", "scale", "weights", "bias")]
        if not any(n in arrays for n in names):
            return None
        if not all(n in arrays for n in names):
            raise ValueError("an incomplete age cue (need its mean, scale, weights and bias)")
        mean, scale, weights, bias = (np.asarray(arrays[n], np.float32).ravel() for n in names)
        width = len(features(np.zeros((SIDE, SIDE), np.uint8), TEMPLATE))
        if not (len(mean) == len(scale) == len(weights) == width and len(bias) == 1) or np.any(scale <= 0):
            raise ValueError(f"an age cue of {len(weights)} weights; this runtime reads {width} features")
        return cls(mean, scale, weights, float(bias[0]))
