"""`python -m export plates-variants`: the plate detector in FP16 and in INT8 (both flavours), each gated on recall.

  plates.fp16.onnx      FP16 weights and activations, FP32 inputs and outputs (conversion.fp16), for GPU runtimes;
  plates.int8.onnx      ONNX Runtime static QDQ (the CPU flavour, quantization.quantize.quantize_model);
  plates.int8-trt.onnx  NVIDIA Model Optimizer QDQ (the TensorRT flavour, quantization.trt_flavour.modelopt_qdq).

Calibration: plates-oi `train` images (the tuning split's first folder) through the runtime's own letterbox
(edgeanon.plates.PlateDetector.prepare).
Kept in float (both INT8 flavours): the first convolution and the YOLOv8 Detect head (`/model.22/*`: its box and
score branches, the DFL and the decode), the usual choice for YOLO INT8; measured in docs/plates.md.
Gate: recall (IoU >= 0.5, plates of 16 px or more, at the runtime's thresholds) on plates-oi `test` (the holdout), never
calibrated or tuned on, within MAX_RECALL_DROP of FP32. A variant that fails is deleted, so nothing picks it up;
the outcome of every gate is written to plates-verify.json beside the models.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from edgeanon.atomic import atomic_path
from edgeanon.images import load_image
from edgeanon.inference.ort import OrtBackend
from edgeanon.plates import PlateDetector
from export.conversion.fp16 import convert_fp16, fp16_path
from export.datasets import load_plates_oi
from export.eval.plates import detector_recall
from export.onnx_file import ExportError, load_checked
from export.paths import MODELS_DIR, shared_data_dir
from export.quantization.qdq import FLAVOURS, QuantResult, output_path, resolve_keep_float, write_quantized
from export.quantization.quantize import quantize_model
from export.quantization.sensitivity import bypass
from export.quantization.trt_flavour import modelopt_qdq, modelopt_version
from export.splits import HOLDOUT, TUNE

log = logging.getLogger(__name__)

MAX_RECALL_DROP = 0.01
CALIB_SPLIT = TUNE  # calibration images: the first of the tuning folders (train)
GATE_SPLIT = HOLDOUT
DEFAULT_CALIB_IMAGES = 128
KEEP_FLOAT = ("first", "/model.22/*")
VARIANTS = ("fp16", "int8", "int8-trt")


def plate_feeds(fp32_path: str | Path, images: Sequence[Path]) -> Iterator[dict[str, np.ndarray]]:
    """Plate detector inputs exactly as the runtime builds them (letterboxed, RGB, [0, 1])."""
    detector = PlateDetector(OrtBackend(fp32_path, threads=1))
    for path in images:
        detector.prepare(load_image(path))
        yield {detector.input_name: detector.blob.copy()}  # prepare() reuses its buffer


def make_fp16(fp32: Path) -> Path:
    return convert_fp16(fp32, fp16_path(fp32))


def make_int8_cpu(fp32: Path, images: Sequence[Path], keep: Sequence[str] = KEEP_FLOAT) -> Path:
    out = output_path(fp32, FLAVOURS["cpu"])
    quantize_model(fp32, out, plate_feeds(fp32, images), keep_float=keep, total=len(images), model_name="plates")
    return out


def make_int8_trt(fp32: Path, images: Sequence[Path], keep: Sequence[str] = KEEP_FLOAT,
                  method: str = "max") -> Path:
    source = load_checked(fp32)
    qdq = modelopt_qdq(fp32, functools.partial(plate_feeds, fp32, list(images)), len(images), method, "plates")
    kept = resolve_keep_float(source, keep)
    model = bypass(qdq, source, kept) if kept else qdq
    out = output_path(fp32, FLAVOURS["trt"])
    provenance = {"format": "QDQ", "flavour": "trt", "tool": f"nvidia-modelopt {modelopt_version()}",
                  "activations": "QInt8 symmetric", "weights": "QInt8 per-channel symmetric", "calibration": method,
                  "calibration_inputs": len(images), "kept_float": kept, "kept_float_by": "name"}
    write_quantized(model, source, out, provenance, QuantResult("plates", str(fp32), str(out), "trt", kept,
                                                               len(images), 0.0))
    return out


def recall_of(model: Path, items) -> dict:
    return detector_recall(PlateDetector.from_path(model, backend="ort"), items, desc=model.name)


def variants(models_dir: Path, data: Path, which: Sequence[str] = VARIANTS,
             calib_images: int = DEFAULT_CALIB_IMAGES) -> list[dict]:
    """Make each variant, gate it against FP32 on the holdout, delete the failures; the gate records."""
    fp32 = models_dir / "plates.onnx"
    load_checked(fp32)
    try:
        calib = [p for p, _ in load_plates_oi(data, CALIB_SPLIT)][:calib_images]
        gate_items = load_plates_oi(data, GATE_SPLIT)
    except FileNotFoundError as exc:
        raise ExportError(str(exc)) from exc
    reference = recall_of(fp32, gate_items)
    gates = []
    for name in which:
        if name == "fp16":
            path = make_fp16(fp32)
        elif name == "int8":
            path = make_int8_cpu(fp32, calib)
        elif name == "int8-trt":
            path = make_int8_trt(fp32, calib)
        else:
            raise ExportError(f"variant {name!r}: choose from {', '.join(VARIANTS)}")
        measured = recall_of(path, gate_items)
        drop = round(reference["recall"] - measured["recall"], 4)
        passed = drop <= MAX_RECALL_DROP
        gates.append({"variant": name, "file": path.name, "split": f"plates-oi/{GATE_SPLIT}", "fp32": reference,
                      "measured": measured, "recall_drop": drop, "max_drop": MAX_RECALL_DROP, "passed": passed})
        log.info("%s: recall %.4f vs FP32 %.4f (drop %.4f): %s", path.name, measured["recall"], reference["recall"],
                 drop, "passed" if passed else "FAILED, deleted")
        if not passed:
            path.unlink()
    with atomic_path(models_dir / "plates-verify.json") as tmp:
        tmp.write_text(json.dumps(gates, indent=2) + "\n")
    return gates


def run(args: argparse.Namespace) -> int:
    try:
        gates = variants(Path(args.models), Path(args.data), [v.strip() for v in args.only.split(",") if v.strip()],
                         args.calib_images)
    except ExportError as exc:
        log.error("%s", exc)
        return 2
    for g in gates:
        print(f"{g['file']:<22} recall {g['measured']['recall']:.4f} (FP32 {g['fp32']['recall']:.4f}, "
              f"drop {g['recall_drop']:+.4f}, gate {g['max_drop']}) {'passed' if g['passed'] else 'FAILED'}")
    return 0 if all(g["passed"] for g in gates) else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plates-variants", help="FP16 and INT8 (cpu, trt) plate detectors, gated on plates-oi recall",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=str(MODELS_DIR), help="folder with plates.onnx (default: %(default)s)")
    p.add_argument("--data", default=str(shared_data_dir()), help="shared data folder (has plates-oi/)")
    p.add_argument("--only", default=",".join(VARIANTS), help="variants to make, comma-separated (default: all)")
    p.add_argument("--calib-images", type=int, default=DEFAULT_CALIB_IMAGES,
                   help=f"plates-oi {CALIB_SPLIT} images to calibrate on (default %(default)s)")
    p.set_defaults(func=run)
