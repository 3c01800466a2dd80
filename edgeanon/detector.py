"""CenterFace pre- and post-processing over any inference backend: image in, faces in original pixels out.

One image can be looked at several scales (`Profile.extra_scales`); the candidates of every scale go
through one NMS. Candidates scoring between `low_threshold` and `threshold` come out as doubtful
(`Detection.confident` False): the anonymizer gives them a plain blur and the tracker lets them keep a
face covered, but they start nothing. A backend whose outputs are not finite or not a heatmap raises
`DetectorFault`, so the caller fails closed instead of publishing a frame with "no faces".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgeanon.config import THRESHOLD_MAX, THRESHOLD_MIN
from edgeanon.defaults import IMAGE_PROFILE, IMAGE_SCALING, Profile, Scaling
from edgeanon.frames import Detection
from edgeanon.inference import Backend, ModelError, open_backend

STRIDE = 4  # output maps are at 1/4 of the input
MULTIPLE = 32  # input height and width must be multiples of this
DEFAULT_NMS_IOU = 0.3
# The heatmap is a sigmoid: a value outside [0, 1] or not finite means a broken model, engine or device.
HEATMAP_TOLERANCE = 1e-3
# Larger inputs are scaled down to this longest side: an 8K frame at full size would need several GB.
DEFAULT_MAX_SIDE = 3840
# Scales closer than this ratio to one already run are skipped (same faces, twice the work).
SAME_SCALE_RATIO = 1.15

__all__ = ["DetectorFault", "FaceDetector"]


class DetectorFault(ModelError):
    """The detector's output cannot be trusted (NaN, inf, out of range): the frame must fail closed."""


@dataclass
class Prepared:
    """A preprocessed input and how to map its coordinates back to the original image."""

    blob: np.ndarray
    scale: float  # input pixels per original pixel
    size: tuple[int, int]  # original (height, width)


@dataclass
class Candidates:
    """Heatmap peaks of one or more scales, before NMS, in original pixels."""

    boxes: np.ndarray  # (n, 4) x1y1x2y2
    scores: np.ndarray  # (n,)
    landmarks: np.ndarray  # (n, 5, 2)

    @classmethod
    def empty(cls) -> Candidates:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))

    @classmethod
    def join(cls, parts: list[Candidates]) -> Candidates:
        parts = [p for p in parts if len(p.scores)] or [cls.empty()]
        return cls(np.concatenate([p.boxes for p in parts]), np.concatenate([p.scores for p in parts]),
                   np.concatenate([p.landmarks for p in parts]))


def check_outputs(maps: dict[str, np.ndarray]) -> None:
    """Raise DetectorFault unless every map is finite and the heatmap lies within [0, 1]."""
    for name, value in maps.items():
        if not np.isfinite(value).all():
            raise DetectorFault(f"detector output {name!r} has non-finite values (broken model or engine)")
    heat = maps["heatmap"]
    if heat.size and (heat.min() < -HEATMAP_TOLERANCE or heat.max() > 1 + HEATMAP_TOLERANCE):
        raise DetectorFault(f"detector heatmap outside [0, 1] ({heat.min():.3g} .. {heat.max():.3g}): "
                            "not a CenterFace model, or a broken engine")


class FaceDetector:
    """Finds faces: pad (never stretch) to a multiple of 32, run the backend at each scale, decode heatmap
    peaks, one NMS over all scales."""

    def __init__(self, backend: Backend, threshold: float | None = None, nms_iou: float = DEFAULT_NMS_IOU,
                 input_scale: float | None = None, max_side: int = DEFAULT_MAX_SIDE,
                 scaling: Scaling | None = None, low_threshold: float | None = None,
                 extra_scales: tuple[float, ...] | None = None, profile: Profile | None = None,
                 extra_threshold: float | None = None, doubt_sides: tuple[float, float] | None = None):
        if profile is not None:
            scaling = scaling or profile.scaling
            threshold = profile.threshold if threshold is None else threshold
            if low_threshold is None and profile.low_threshold is not None:
                low_threshold = min(profile.low_threshold, threshold)
            extra_scales = profile.extra_scales if extra_scales is None else extra_scales
            extra_threshold = profile.extra_threshold if extra_threshold is None else extra_threshold
            doubt_sides = profile.doubt_sides if doubt_sides is None else doubt_sides
        threshold = IMAGE_PROFILE.threshold if threshold is None else threshold
        extra_scales = extra_scales or ()
        if not THRESHOLD_MIN <= threshold <= THRESHOLD_MAX:
            raise ValueError(f"threshold must be between {THRESHOLD_MIN} and {THRESHOLD_MAX}, got {threshold}")
        if low_threshold == 0:  # off: no doubtful tier
            low_threshold = threshold
        if low_threshold is not None and not THRESHOLD_MIN <= low_threshold <= threshold:
            raise ValueError(f"low threshold must be 0 (off) or in [{THRESHOLD_MIN}, threshold {threshold}], "
                             f"got {low_threshold}")
        if input_scale is not None and not 0 < input_scale < float("inf"):
            raise ValueError(f"input scale must be a positive number, got {input_scale}")
        if not 0.0 < nms_iou <= 1.0:  # NaN included: OpenCV's NMS would fail on it
            raise ValueError(f"NMS overlap must be in (0, 1], got {nms_iou}")
        if any(not s > 0 for s in extra_scales):
            raise ValueError(f"extra scales must be positive, got {extra_scales}")
        self.backend = backend
        self.threshold = threshold
        self.low_threshold = low_threshold if low_threshold is not None else threshold
        self.nms_iou = nms_iou
        self.input_scale = input_scale
        self.max_side = max_side
        self.scaling = scaling or IMAGE_SCALING
        self.extra_scales = tuple(float(s) for s in extra_scales)
        self.extra_threshold = threshold if extra_threshold is None else float(extra_threshold)
        self.doubt_sides = tuple(doubt_sides) if doubt_sides is not None else (0.0, float("inf"))
        self.input_name = backend.input_names[0]
        self._buffers: dict[tuple[int, int], np.ndarray] = {}

    @classmethod
    def from_path(cls, path: str | Path, backend: str = "auto", threads: int | None = None, **kwargs) -> FaceDetector:
        return cls(open_backend(path, backend, threads=threads), **kwargs)

    def scales_for(self, height: int, width: int) -> list[float]:
        """The input scales one image of this size is looked at: the main one first, none above max_side."""
        main = self.input_scale if self.input_scale is not None else self.scaling.scale_for(height, width)
        limit = self.max_side / max(height, width, 1)
        scales: list[float] = []
        for s in (main, *self.extra_scales):
            s = min(s, limit)
            if all(max(s, t) / min(s, t) >= SAME_SCALE_RATIO for t in scales):
                scales.append(s)
        return scales

    def _input_buffer(self, height: int, width: int) -> np.ndarray:
        """A zeroed NCHW buffer per padded size, reused while sizes repeat (video, camera)."""
        ph, pw = -(-height // MULTIPLE) * MULTIPLE, -(-width // MULTIPLE) * MULTIPLE
        buffer = self._buffers.get((ph, pw))
        if buffer is None:
            if len(self._buffers) > 4:  # sizes change (a folder of images): keep memory bounded
                self._buffers.clear()
            buffer = self._buffers[(ph, pw)] = np.zeros((1, 3, ph, pw), dtype=np.float32)
        return buffer

    def forget_pixels(self) -> None:
        """Zero the reused input buffers: each holds the last image of its size until the next one comes."""
        for buffer in self._buffers.values():
            buffer.fill(0)

    def prepare(self, image: np.ndarray, scale: float | None = None) -> Prepared:
        """BGR uint8 image -> RGB float32 NCHW blob in [0, 255], zero-padded bottom/right."""
        h, w = image.shape[:2]
        if scale is None:
            scale = self.scales_for(h, w)[0]
        if scale != 1.0:
            image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                               interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        ih, iw = image.shape[:2]
        blob = self._input_buffer(ih, iw)
        # One pass per channel straight into the reused buffer: BGR -> RGB and HWC -> CHW without temporaries.
        for c in range(3):
            blob[0, c, :ih, :iw] = image[:, :, 2 - c]
        blob[0, :, ih:, :] = 0
        blob[0, :, :ih, iw:] = 0
        return Prepared(blob, scale, (h, w))

    def infer(self, prepared: Prepared) -> dict[str, np.ndarray]:
        """Run the backend; DetectorFault when its outputs are not a sane heatmap."""
        outputs = self.backend.run({self.input_name: prepared.blob})
        maps = dict(zip(("heatmap", "scale", "offset", "landmarks"), (outputs[n] for n in self.backend.output_names)))
        check_outputs(maps)
        return maps

    def candidates(self, maps: dict[str, np.ndarray], prepared: Prepared) -> Candidates:
        """Every heatmap cell at or above the low threshold as a box with landmarks, in original pixels."""
        heat = maps["heatmap"][0, 0]
        ys, xs = np.nonzero(heat >= self.low_threshold)
        if len(ys) == 0:
            return Candidates.empty()
        scores = heat[ys, xs]
        size = maps["scale"][0][:, ys, xs]
        off = maps["offset"][0][:, ys, xs]
        bh, bw = np.exp(size[0]) * STRIDE, np.exp(size[1]) * STRIDE
        cy, cx = (ys + off[0] + 0.5) * STRIDE, (xs + off[1] + 0.5) * STRIDE
        x1, y1 = cx - bw / 2, cy - bh / 2
        lms = maps["landmarks"][0][:, ys, xs].reshape(5, 2, -1)  # (point, [y, x], n)
        lx = lms[:, 1] * bw + x1
        ly = lms[:, 0] * bh + y1
        inv = 1.0 / prepared.scale
        boxes = np.stack([x1, y1, x1 + bw, y1 + bh], 1) * inv
        points = np.stack([lx, ly], -1).transpose(1, 0, 2) * inv  # (n, 5, 2)
        return Candidates(boxes.astype(np.float32), scores.astype(np.float32), points.astype(np.float32))

    def select(self, found: Candidates, size: tuple[int, int]) -> list[Detection]:
        """One NMS over all candidates; boxes clipped to the image; doubtful ones kept only within
        `doubt_sides`; highest score first."""
        if len(found.scores) == 0:
            return []
        b = found.boxes
        keep = cv2.dnn.NMSBoxes(np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1).tolist(),
                                found.scores.tolist(), self.low_threshold, self.nms_iou)
        keep = np.asarray(keep, dtype=np.int64).reshape(-1)
        h, w = size
        boxes = found.boxes[keep].copy()
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        lo, hi = self.doubt_sides
        out = []
        for i, k in enumerate(keep):
            score = float(found.scores[k])
            confident = score >= self.threshold
            if not confident and not lo <= min(boxes[i, 2] - boxes[i, 0], boxes[i, 3] - boxes[i, 1]) < hi:
                continue
            out.append(Detection(boxes[i], score, found.landmarks[k].copy(), confident=confident))
        return out

    def combine(self, per_scale: list[Candidates], size: tuple[int, int]) -> list[Detection]:
        """Detections from the candidates of each scale (main scale first): the extra scales add only candidates
        at or above `extra_threshold`, then one NMS over all."""
        parts = per_scale[:1]
        for c in per_scale[1:]:
            keep = c.scores >= self.extra_threshold
            parts.append(Candidates(c.boxes[keep], c.scores[keep], c.landmarks[keep]))
        return self.select(Candidates.join(parts), size)

    def decode(self, maps: dict[str, np.ndarray], prepared: Prepared) -> list[Detection]:
        """One scale's maps -> detections (candidates, NMS), in original pixels."""
        return self.select(self.candidates(maps, prepared), prepared.size)

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces of one BGR uint8 image at every scale of its profile, highest score first."""
        h, w = image.shape[:2]
        found = []
        for scale in self.scales_for(h, w):
            prepared = self.prepare(image, scale)
            found.append(self.candidates(self.infer(prepared), prepared))
        return self.combine(found, (h, w))
