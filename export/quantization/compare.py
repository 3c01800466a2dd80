"""Host-side comparisons of two models' results: detections matched by IoU, generator outputs by PSNR."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeanon.defaults import DEFAULT_THRESHOLD
from edgeanon.detector import FaceDetector
from edgeanon.inference.backend import Backend
from edgeanon.inference.ort import OrtBackend
from edgeanon.tracker import iou_matrix
from export.quantization.feeds import generator_feeds

# Minimum share of the FP32 ONNX model's faces a variant must also find, and generator PSNR, per precision.
MIN_FACE_MATCH = {"fp32": 0.99, "fp16": 0.98, "int8": 0.95}
MIN_GENERATOR_PSNR = {"fp32": 40.0, "fp16": 35.0, "int8": 30.0}


@dataclass
class DetectorComparison:
    images: int
    reference_faces: int
    matched: int
    extra: int
    reference_ms: float
    candidate_ms: float

    @property
    def match_rate(self) -> float:
        return self.matched / self.reference_faces if self.reference_faces else 1.0


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    """Peak signal-to-noise ratio in dB (inf for identical inputs)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def compare_detectors(reference: Backend, candidate: Backend, images: list[np.ndarray],
                      threshold: float | None = None) -> DetectorComparison:
    """Faces of the reference (ONNX Runtime FP32) matched by the candidate at IoU >= 0.5."""
    kwargs = {"threshold": threshold or DEFAULT_THRESHOLD}
    ref_det, cand_det = FaceDetector(reference, **kwargs), FaceDetector(candidate, **kwargs)
    total = matched = extra = 0
    ref_ms, cand_ms = [], []
    for image in images:
        t0 = time.perf_counter()
        ref = ref_det.detect(image)
        t1 = time.perf_counter()
        cand = cand_det.detect(image)
        t2 = time.perf_counter()
        ref_ms.append((t1 - t0) * 1000)
        cand_ms.append((t2 - t1) * 1000)
        a = np.array([f.box for f in ref]).reshape(-1, 4)
        b = np.array([f.box for f in cand]).reshape(-1, 4)
        hits = int(((iou_matrix(a, b) >= 0.5).any(axis=1)).sum()) if len(a) else 0
        total += len(a)
        matched += hits
        extra += max(0, len(b) - hits)
    return DetectorComparison(len(images), total, matched, extra, statistics.median(ref_ms or [0.0]),
                              statistics.median(cand_ms or [0.0]))


def generator_psnr(fp32_path: Path, int8_path: Path, conditions: list[np.ndarray]) -> dict:
    """PSNR of INT8 vs FP32 generator outputs in 8-bit pixels: over the regenerated (masked) region and the crop."""
    fp32, int8 = OrtBackend(fp32_path), OrtBackend(int8_path)
    face, whole = [], []
    for feed, condition in zip(generator_feeds(fp32_path, conditions), conditions):
        a = fp32.run(feed)[fp32.output_names[0]][0]
        b = int8.run(feed)[int8.output_names[0]][0]
        pa, pb = (np.clip((x + 1.0) * 127.5, 0, 255) for x in (a, b))
        mask = condition[3] > 0.5
        face.append(psnr(pa[:, mask], pb[:, mask], 255.0))
        whole.append(psnr(pa, pb, 255.0))
    finite = [v for v in face if np.isfinite(v)] or [99.0]
    return {"psnr_face_db_mean": float(np.mean(finite)), "psnr_face_db_min": float(np.min(finite)),
            "psnr_crop_db_mean": float(np.mean([v for v in whole if np.isfinite(v)] or [99.0])), "crops": len(face)}
