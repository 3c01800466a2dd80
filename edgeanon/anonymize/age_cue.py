"""A coarse age cue for choosing a k-Same reference: years read from the face by a small network.

Without it a reference is chosen by skin tone and head turn alone, so a five-year-old may get an old man's
average face and a grandmother a baby's (docs/ksame.md, "Ages"). The cue reads the face the way the bank's
builder saw its photos: lined up by the similarity map of its 5 landmarks (which keeps the face's proportions, a
child's short lower face among them) on a SIDE px grey canvas, mirrored when the head turns left, its brightness
and contrast normalised; a four-layer convolutional network (`export/training/age_cue.py`, trained on the bank's
own UTKFace photos and stored in the bank file as ONNX) maps it to log(1 + years). Its estimate only weighs the
choice of a reference (ksame.AGE_WINDOW) and is never stored or published. ONNX Runtime, numpy and OpenCV only.
"""

from __future__ import annotations

import cv2
import numpy as np

from edgeanon.anonymize import crops
from edgeanon.inference.errors import ModelError
from edgeanon.inference.ort import OrtBackend

SIDE = 64
EYES = 16.0  # px between the eye centres on the canvas
_SCALE = EYES / SIDE / float(crops.TEMPLATE_LANDMARKS[1, 0] - crops.TEMPLATE_LANDMARKS[0, 0])
# The bank's canvas (ksame.REF_LANDMARKS) at SIDE px: eyes a little above the middle, forehead and chin inside.
TEMPLATE = ((crops.TEMPLATE_LANDMARKS - 0.5) * _SCALE + [0.5, 0.46]) * SIDE
SPREAD_FLOOR = 8.0  # grey levels added to a canvas's standard deviation before dividing (flat canvases stay calm)
MAX_YEARS = 100.0
INPUT, OUTPUT = "face", "log_years"
ARRAY = "age_cue_onnx"  # the network's name in a bank file


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


def normalised(canvases: np.ndarray) -> np.ndarray:
    """(..., SIDE, SIDE) grey canvases -> float32, each less its mean over its spread (+ SPREAD_FLOOR)."""
    x = np.asarray(canvases, np.float32)
    mean = x.mean(axis=(-1, -2), keepdims=True)
    return (x - mean) / (x.std(axis=(-1, -2), keepdims=True) + SPREAD_FLOOR)


def to_years(log_years: np.ndarray | float) -> np.ndarray:
    return np.expm1(np.clip(log_years, 0.0, np.log1p(MAX_YEARS)))


class AgeCue:
    """The network (ONNX bytes) and its session: `years(image, landmarks)`."""

    def __init__(self, model: bytes):
        self.model = bytes(model)
        try:
            self.backend = OrtBackend("age cue", threads=1, providers=["CPUExecutionProvider"], model=self.model)
        except ModelError as exc:
            raise ValueError(f"an age cue that is not a loadable network ({exc})") from exc
        if self.backend.input_names != [INPUT] or self.backend.output_names != [OUTPUT]:
            raise ValueError(f"an age cue network of inputs {self.backend.input_names} and outputs "
                             f"{self.backend.output_names}; this runtime feeds {INPUT!r} and reads {OUTPUT!r}")

    def years(self, image: np.ndarray, landmarks: np.ndarray, face: np.ndarray | None = None) -> float:
        """Years for the face at `landmarks`, from its canvas `face` when the caller has read it already."""
        return float(self.read((canvas(image, landmarks) if face is None else face)[None])[0])

    def read(self, canvases: np.ndarray) -> np.ndarray:
        """Years for (n, SIDE, SIDE) grey canvases."""
        out = self.backend.run({INPUT: normalised(canvases)[:, None]})[OUTPUT]
        return to_years(np.asarray(out, np.float64).reshape(-1))

    def arrays(self) -> dict[str, np.ndarray]:
        """For a bank file (np.savez): the network's bytes."""
        return {ARRAY: np.frombuffer(self.model, np.uint8)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> AgeCue | None:
        """The cue a bank file holds, None if it holds none; ValueError if it is not a working network."""
        if ARRAY not in arrays:
            return None
        cue = cls(np.asarray(arrays[ARRAY], np.uint8).tobytes())
        try:
            out = cue.read(np.zeros((2, SIDE, SIDE), np.uint8))
        except Exception as exc:  # onnxruntime raises several private exception types
            raise ValueError(f"an age cue network that cannot read a {SIDE} px face ({exc})") from exc
        if out.shape != (2,):
            raise ValueError(f"an age cue network that answers {out.shape} for two faces")
        return cue
