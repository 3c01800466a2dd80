"""Measurements on the tuning half of wider-train that choose which quantized detector layers stay in float.

Used by both INT8 flavours: the sweep ranks the layers by the heatmap error they add (export.quantization.sensitivity),
and the fewest most sensitive ones are left in float that bring recall and AP on the tuning half within
TUNE_MAX_DROP of FP32. The held-back half is never looked at here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx

from edgeanon.defaults import Scaling
from edgeanon.detector import FaceDetector, Prepared
from edgeanon.images import load_image
from edgeanon.inference.ort import OrtBackend
from export.datasets import load_wider
from export.eval.detector import edgeanon_pipeline, evaluate
from export.onnx_file import ExportError, load_checked
from export.quantization.qdq import QuantResult, write_quantized
from export.quantization.sensitivity import PassFn, bypass, choose_kept, heatmap_error, sweep
from export.splits import TUNE

log = logging.getLogger(__name__)

# The sweep keeps layers in float until the tuning half is within this of FP32 (recall and AP): half the
# 0.01 gate, so the held-back half has room.
TUNE_MAX_DROP = 0.005
SWEEP_IMAGES = 4  # tuning images whose output error ranks the layers

SWEEP_SIDE = 640  # longest image side for the sweep's output-error runs
SWEEP_REPORTED = 16  # most sensitive layers recorded in the model's provenance


class DetectorTuning:
    """The detector's measurements on the tuning half: output error (for the sweep) and recall/AP (the target)."""

    def __init__(self, fp32_path: Path, data_dir: Path, sweep_images: int = SWEEP_IMAGES,
                 max_drop: float = TUNE_MAX_DROP, limit: int | None = None):
        try:
            self.items = load_wider(data_dir, limit, TUNE)
        except FileNotFoundError as exc:
            raise ExportError(f"the TensorRT flavour chooses its float layers on wider-train: {exc}") from exc
        if not self.items:
            raise ExportError(f"{data_dir}/wider-train: no tuning images")
        self.max_drop = max_drop
        # The sweep ranks layers on a few images at SWEEP_SIDE: one run per quantized layer each, so it stays cheap.
        reference = FaceDetector(OrtBackend(fp32_path), scaling=Scaling(SWEEP_SIDE, 0.1, 2.0))
        self.prepared = []
        for path, _ in self.items[:sweep_images]:
            p = reference.prepare(load_image(path))
            self.prepared.append(Prepared(p.blob.copy(), p.scale, p.size))  # prepare() reuses its buffer
        self.reference = [reference.infer(p) for p in self.prepared]
        self.fp32 = self.accuracy(fp32_path)
        log.info("FP32 on the tuning half (%d images): recall %.4f AP %.4f", len(self.items),
                 self.fp32["recall"], self.fp32["ap"])

    def error(self, path: Path) -> float:
        """Mean heatmap error against FP32 on the sweep images."""
        detector = FaceDetector(OrtBackend(path))
        return float(np.mean([heatmap_error(ref, detector.infer(p)) for ref, p in zip(self.reference, self.prepared)]))

    def accuracy(self, path: Path) -> dict[str, float]:
        return evaluate(edgeanon_pipeline(path), self.items, f"tuning half {path.name}")

    def passes(self, path: Path) -> tuple[bool, dict]:
        acc = self.accuracy(path)
        drops = {m: round(self.fp32[m] - acc[m], 6) for m in ("recall", "ap")}
        measured = {"recall": round(acc["recall"], 6), "ap": round(acc["ap"], 6),
                    "recall_drop": drops["recall"], "ap_drop": drops["ap"]}
        return all(d <= self.max_drop for d in drops.values()), measured


def choose(qdq: onnx.ModelProto, source: onnx.ModelProto, ranking: Sequence[str],
           passes: PassFn) -> tuple[list[str], list[dict]]:
    """export.quantization.sensitivity.choose_kept, with an unreachable target reported as a ExportError."""
    try:
        return choose_kept(qdq, source, ranking, passes)
    except ValueError as exc:
        raise ExportError(f"keep-float sweep: {exc}") from exc


def tune_detector_float_layers(qdq: onnx.ModelProto, source: onnx.ModelProto, fp32_path: Path, data_dir: Path,
                               tune_images: int | None) -> tuple[list[str], dict]:
    """Sweep, then the fewest layers in float that pass on the tuning half; returns them and the provenance."""
    tuning = DetectorTuning(fp32_path, data_dir, limit=tune_images)
    base, scores = sweep(qdq, source, tuning.error)
    kept, trials = choose(qdq, source, [s.node for s in scores], tuning.passes)
    return kept, {
        "tuning": f"wider-train tune half ({len(tuning.items)} images), recall and AP within {TUNE_MAX_DROP} "
                  f"of FP32 ({tuning.fp32['recall']:.4f} / {tuning.fp32['ap']:.4f})",
        "sweep": {"error_all_quantized": base, "images": len(tuning.prepared),
                  "most_sensitive": [{"node": s.node, "gain": round(s.gain, 6)} for s in scores[:SWEEP_REPORTED]]},
        "trials": trials,
    }


def sweep_cpu_flavour(result: QuantResult, data_dir: Path, tune_images: int | None) -> QuantResult:
    """Leave the layers the sweep picks in float in a CPU-flavour detector written with nothing kept float."""
    out = Path(result.output)
    qdq = onnx.load(str(out))
    provenance = json.loads({p.key: p.value for p in qdq.metadata_props}.get("edgeanon.quantization", "{}"))
    qdq.ClearField("metadata_props")
    source = load_checked(result.source)
    kept, found = tune_detector_float_layers(qdq, source, Path(result.source), data_dir, tune_images)
    provenance.update({"kept_float": kept, "kept_float_by": "sweep", **found})
    result.keep_float = kept
    return write_quantized(bypass(qdq, source, kept) if kept else qdq, source, out, provenance, result)
