"""CenterFace pre- and post-processing over any inference backend: image in, faces in original pixels out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgeanon.defaults import DEFAULT_THRESHOLD
from edgeanon.frames import Detection
from edgeanon.inference.backend import Backend, open_backend

STRIDE = 4  # output maps are at 1/4 of the input
MULTIPLE = 32  # input height and width must be multiples of this
DEFAULT_NMS_IOU = 0.3


@dataclass(frozen=True)
class Scaling:
    """Automatic input scale: the longer side toward `target_side`, clamped to [min_scale, max_scale]."""

    target_side: int
    min_scale: float
    max_scale: float

    def scale_for(self, height: int, width: int) -> float:
        return min(self.max_scale, max(self.min_scale, self.target_side / max(height, width, 1)))


# Still images: small ones scaled up to 1280 px (small faces gain recall and AP on wider-train), never down.
IMAGE_SCALING = Scaling(1280, 1.0, 2.0)
# Video and streams: large frames halved, never below 640 px: a quarter of the detector's work, and with the
# tracker and VIDEO_THRESHOLD fewer faces leak than at full scale (bench/anonymize_bench.py).
VIDEO_SCALING = Scaling(640, 0.5, 1.0)
# Larger inputs are scaled down to this longest side: an 8K frame at full size would need several GB.
DEFAULT_MAX_SIDE = 3840


@dataclass
class Prepared:
    """A preprocessed input and how to map its coordinates back to the original image."""

    blob: np.ndarray
    scale: float  # input pixels per original pixel
    size: tuple[int, int]  # original (height, width)


class FaceDetector:
    """Finds faces: pad (never stretch) to a multiple of 32, run the backend, decode heatmap peaks, NMS."""

    def __init__(self, backend: Backend, threshold: float = DEFAULT_THRESHOLD, nms_iou: float = DEFAULT_NMS_IOU,
                 input_scale: float | None = None, max_side: int = DEFAULT_MAX_SIDE,
                 scaling: Scaling = IMAGE_SCALING):
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
        if input_scale is not None and input_scale <= 0:
            raise ValueError(f"input scale must be positive, got {input_scale}")
        self.backend = backend
        self.threshold = threshold
        self.nms_iou = nms_iou
        self.input_scale = input_scale
        self.max_side = max_side
        self.scaling = scaling
        self.input_name = backend.input_names[0]
        self._buffer: np.ndarray | None = None

    @classmethod
    def from_path(cls, path: str | Path, backend: str = "auto", threads: int | None = None, **kwargs) -> FaceDetector:
        return cls(open_backend(path, backend, threads=threads), **kwargs)

    def _input_buffer(self, height: int, width: int) -> np.ndarray:
        """A zeroed NCHW buffer, reused while the padded size stays the same (video, camera)."""
        ph, pw = -(-height // MULTIPLE) * MULTIPLE, -(-width // MULTIPLE) * MULTIPLE
        if self._buffer is None or self._buffer.shape[2:] != (ph, pw):
            self._buffer = np.zeros((1, 3, ph, pw), dtype=np.float32)
        return self._buffer

    def prepare(self, image: np.ndarray) -> Prepared:
        """BGR uint8 image -> RGB float32 NCHW blob in [0, 255], zero-padded bottom/right."""
        h, w = image.shape[:2]
        scale = self.input_scale
        if scale is None:
            scale = self.scaling.scale_for(h, w)
        if max(h, w) * scale > self.max_side:
            scale = self.max_side / max(h, w)
        if scale != 1.0:
            image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                               interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        ih, iw = image.shape[:2]
        blob = self._input_buffer(ih, iw)
        # One pass per channel straight into the reused buffer: BGR -> RGB and HWC -> CHW without temporaries.
        for c in range(3):
            blob[0, c, :ih, :iw] = image[:, :, 2 - c]
        return Prepared(blob, scale, (h, w))

    def infer(self, prepared: Prepared) -> dict[str, np.ndarray]:
        outputs = self.backend.run({self.input_name: prepared.blob})
        return dict(zip(("heatmap", "scale", "offset", "landmarks"), (outputs[n] for n in self.backend.output_names)))

    def decode(self, maps: dict[str, np.ndarray], prepared: Prepared) -> list[Detection]:
        """Heatmap peaks above threshold -> boxes and landmarks (vectorized), NMS, back to original pixels."""
        heat = maps["heatmap"][0, 0]
        ys, xs = np.nonzero(heat > self.threshold)
        if len(ys) == 0:
            return []
        scores = heat[ys, xs]
        size = maps["scale"][0][:, ys, xs]
        off = maps["offset"][0][:, ys, xs]
        bh, bw = np.exp(size[0]) * STRIDE, np.exp(size[1]) * STRIDE
        cy, cx = (ys + off[0] + 0.5) * STRIDE, (xs + off[1] + 0.5) * STRIDE
        x1, y1 = cx - bw / 2, cy - bh / 2
        lms = maps["landmarks"][0][:, ys, xs].reshape(5, 2, -1)  # (point, [y, x], n)
        lx = lms[:, 1] * bw + x1
        ly = lms[:, 0] * bh + y1
        keep = cv2.dnn.NMSBoxes(np.stack([x1, y1, bw, bh], 1).tolist(), scores.tolist(), self.threshold, self.nms_iou)
        keep = np.asarray(keep, dtype=np.int64).reshape(-1)
        inv = 1.0 / prepared.scale
        h, w = prepared.size
        boxes = np.stack([x1, y1, x1 + bw, y1 + bh], 1)[keep] * inv
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        points = np.stack([lx, ly], -1)[:, keep].transpose(1, 0, 2) * inv  # (n, 5, 2)
        return [Detection(boxes[i].astype(np.float32), float(scores[k]), points[i].astype(np.float32))
                for i, k in enumerate(keep)]

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces of one BGR uint8 image, highest score first."""
        prepared = self.prepare(image)
        return self.decode(self.infer(prepared), prepared)
