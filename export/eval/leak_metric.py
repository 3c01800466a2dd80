"""The privacy metrics of DESIGN.md section 5, per frame: which ground-truth faces leak, and the collateral.

- A ground-truth face (clipped to the frame, both sides >= `min_size` px) *leaks* when its region in the
  output is still structurally the source: mean local SSIM (7x7 windows, grey, native resolution) >=
  LEAK_SSIM. A face so flat that a heavy blur (Gaussian, sigma a quarter of its smaller side) would not
  bring it under LEAK_SSIM is not counted: the test cannot tell for it.
- *Collateral* is the share of pixels outside every ground-truth face grown COLLATERAL_GROW times (about
  its centre) that the output changed by more than COLLATERAL_LEVELS grey levels after a sigma-1
  smoothing: what over-redaction costs the people who use the picture.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

LEAK_SSIM = 0.85
DEFAULT_MIN_SIZE = 16
COLLATERAL_GROW = 1.6
COLLATERAL_LEVELS = 12.0
SSIM_WINDOW = 7
SIZE_BANDS = ((16, 24), (24, 48), (48, 96), (96, 100_000))
_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def grey(image: np.ndarray) -> np.ndarray:
    return (cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image).astype(np.float32)


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Local SSIM of two grey float32 images over SSIM_WINDOW x SSIM_WINDOW windows (same size map)."""
    k = (SSIM_WINDOW, SSIM_WINDOW)
    mu_a, mu_b = cv2.blur(a, k), cv2.blur(b, k)
    var_a = cv2.blur(a * a, k) - mu_a * mu_a
    var_b = cv2.blur(b * b, k) - mu_b * mu_b
    cov = cv2.blur(a * b, k) - mu_a * mu_b
    return ((2 * mu_a * mu_b + _C1) * (2 * cov + _C2)) / ((mu_a ** 2 + mu_b ** 2 + _C1) * (var_a + var_b + _C2))


def clip_box(box, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    return (max(0, int(round(box[0]))), max(0, int(round(box[1]))),
            min(w, int(round(box[2]))), min(h, int(round(box[3]))))


def band_key(band: str) -> int:
    """Sort key of a size band name ("16-24", "96+")."""
    return int(band.split("-")[0].rstrip("+"))


def band_of(side: float) -> str:
    for lo, hi in SIZE_BANDS:
        if lo <= side < hi:
            return f"{lo}-{hi}" if hi < 100_000 else f"{lo}+"
    return "small"


@dataclass
class FaceScore:
    index: int  # into the boxes given
    side: float  # smaller side of the clipped box, px
    ssim: float  # output vs source
    flat: bool  # a heavy blur would not change it by the test: not counted

    @property
    def leaked(self) -> bool:
        return not self.flat and self.ssim >= LEAK_SSIM


def face_scores(output: np.ndarray, source: np.ndarray, boxes, min_size: int = DEFAULT_MIN_SIZE) -> list[FaceScore]:
    """A FaceScore for every box whose clipped sides are both >= min_size."""
    if output.shape != source.shape:
        raise ValueError(f"output is {output.shape[1]}x{output.shape[0]}, source {source.shape[1]}x{source.shape[0]}")
    src_g = out_g = structure = None
    scores = []
    for i, box in enumerate(boxes):
        x1, y1, x2, y2 = clip_box(box, source.shape)
        if x2 - x1 < min_size or y2 - y1 < min_size:
            continue
        if src_g is None:
            src_g, out_g = grey(source), grey(output)
            structure = ssim_map(src_g, out_g)
        side = float(min(x2 - x1, y2 - y1))
        # the heavy blur sees a margin around the face, as a real blur of the face would
        m = int(side)
        h, w = src_g.shape
        cx1, cy1, cx2, cy2 = max(0, x1 - m), max(0, y1 - m), min(w, x2 + m), min(h, y2 + m)
        crop = src_g[cy1:cy2, cx1:cx2]
        blurred = cv2.GaussianBlur(crop, (0, 0), side / 4)
        flat_ssim = float(ssim_map(crop, blurred)[y1 - cy1:y2 - cy1, x1 - cx1:x2 - cx1].mean())
        scores.append(FaceScore(i, side, float(structure[y1:y2, x1:x2].mean()), flat_ssim >= LEAK_SSIM))
    return scores


def collateral(output: np.ndarray, source: np.ndarray, boxes) -> tuple[int, int]:
    """(changed pixels, pixels) outside every box grown COLLATERAL_GROW times about its centre."""
    h, w = source.shape[:2]
    outside = np.ones((h, w), bool)
    for box in boxes:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        hw, hh = (box[2] - box[0]) * COLLATERAL_GROW / 2, (box[3] - box[1]) * COLLATERAL_GROW / 2
        x1, y1, x2, y2 = clip_box((cx - hw, cy - hh, cx + hw, cy + hh), source.shape)
        outside[y1:y2, x1:x2] = False
    diff = np.abs(cv2.GaussianBlur(grey(output), (0, 0), 1.0) - cv2.GaussianBlur(grey(source), (0, 0), 1.0))
    changed = (diff > COLLATERAL_LEVELS) & outside
    return int(changed.sum()), int(outside.sum())


@dataclass
class LeakTally:
    """Leak and collateral added up over frames, with the leak rate by face size."""

    faces: int = 0
    leaked: int = 0
    flat: int = 0
    changed: int = 0
    outside: int = 0
    frames: int = 0
    by_size: dict = field(default_factory=dict)  # band -> [faces, leaked]
    leaked_ids: set = field(default_factory=set)
    ids: set = field(default_factory=set)

    def add(self, output: np.ndarray, source: np.ndarray, boxes, ids=None, min_size: int = DEFAULT_MIN_SIZE) -> None:
        self.frames += 1
        for s in face_scores(output, source, boxes, min_size):
            if s.flat:
                self.flat += 1
                continue
            self.faces += 1
            band = self.by_size.setdefault(band_of(s.side), [0, 0])
            band[0] += 1
            face_id = ids[s.index] if ids is not None else None
            if face_id is not None:
                self.ids.add(face_id)
            if s.leaked:
                self.leaked += 1
                band[1] += 1
                if face_id is not None:
                    self.leaked_ids.add(face_id)
        changed, outside = collateral(output, source, boxes)
        self.changed += changed
        self.outside += outside

    @property
    def rate(self) -> float:
        return self.leaked / self.faces if self.faces else 0.0

    @property
    def people_rate(self) -> float:
        """Share of the people (face ids) exposed in at least one frame."""
        return len(self.leaked_ids) / len(self.ids) if self.ids else 0.0

    @property
    def collateral(self) -> float:
        return self.changed / self.outside if self.outside else 0.0

    def to_json(self) -> dict:
        out = {"frames": self.frames, "faces": self.faces, "leaked": self.leaked, "leak_rate": round(self.rate, 4),
               "flat_not_counted": self.flat, "collateral": round(self.collateral, 4),
               "leak_by_size": {band: {"faces": n, "leaked": k, "rate": round(k / n, 4) if n else 0.0}
                                for band, (n, k) in sorted(self.by_size.items(), key=lambda kv: band_key(kv[0]))}}
        if self.ids:
            out["people"] = len(self.ids)
            out["people_leaked"] = len(self.leaked_ids)
        return out
