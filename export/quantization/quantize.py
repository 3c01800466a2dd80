"""INT8 QDQ models, calibrated through the runtime's own preprocessing, in two flavours for two runtimes.

  cpu -> `*.int8.onnx`:     ONNX Runtime static quantization: uint8 asymmetric activations, int8 per-channel
                            weights (fast on ONNX Runtime's CPU kernels);
  trt -> `*.int8-trt.onnx`: NVIDIA Model Optimizer (nvidia-modelopt) ONNX PTQ: int8 symmetric activations and
                            per-channel weights, zero points 0, Q/DQ placed where TensorRT fuses them.
In both detector flavours the layers left in float are chosen by a per-layer sensitivity sweep on the tuning
half of wider-train (tuning.py, sensitivity.py), never by hand. Layers can also be kept in float explicitly
(`--keep-float`), by role or by node name.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from export.onnx_file import ExportError, load_checked
from export.paths import MODELS_DIR, shared_data_dir
from export.quantization.feeds import FeedReader, calibration_images, detector_feeds, face_conditions, generator_feeds
from export.quantization.qdq import (
    AUTO,
    FLAVOURS,
    QuantResult,
    output_path,
    resolve_keep_float,
    write_quantized,
)
from export.quantization.trt_flavour import TRT_CALIBRATIONS, quantize_detector_trt, quantize_generator_trt
from export.quantization.tuning import sweep_cpu_flavour

log = logging.getLogger(__name__)

# Layers kept in float, per model and flavour. Detector, both flavours: the sweep (docs/export.md; with nothing
# kept, the CPU flavour lost 0.017 recall / 0.018 AP on the tuning half, the TensorRT flavour 0.025 / 0.032
# on its first 96 images). Generator CPU flavour: first+last, 74 dB vs 58 dB PSNR with nothing kept.
DEFAULT_KEEP_FLOAT = {
    ("detector", "cpu"): (AUTO,),
    ("detector", "trt"): (AUTO,),
    ("generator", "cpu"): ("first", "last"),
    ("generator", "trt"): (AUTO,),
}
DEFAULT_CALIB_IMAGES = 64
# Model Optimizer's calibration for the TensorRT flavour, chosen on the tuning half (docs/export.md).
DEFAULT_TRT_CALIBRATION = "max"
# Images of the tuning half each keep-float trial is measured on (the first N by name; 0 = the whole half):
# a trial runs the INT8 model on ONNX Runtime's CPU kernels, several seconds an image on a loaded 2-core host.
DEFAULT_TUNE_IMAGES = 96


def quantize_model(fp32_path: str | Path, out_path: str | Path, feeds: Iterable[dict[str, np.ndarray]],
                   keep_float: Sequence[str] = (), total: int | None = None, model_name: str = "model",
                   op_types: Sequence[str] | None = None, moving_average: bool = True) -> QuantResult:
    """CPU flavour: ONNX Runtime static QDQ quantization (uint8 asymmetric activations, int8 per-channel
    weights); written atomically with provenance metadata."""
    flavour = FLAVOURS["cpu"]
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    source = load_checked(fp32_path)
    exclude = resolve_keep_float(source, keep_float)
    start = time.perf_counter()
    reader = FeedReader(feeds, total, f"calibrating {model_name} ({flavour.name})")
    with tempfile.TemporaryDirectory(prefix="edgeanon-quant-") as tmp:
        prepped = Path(tmp) / "prepped.onnx"
        quant_pre_process(str(fp32_path), str(prepped), skip_symbolic_shape=True)
        raw = Path(tmp) / "quantized.onnx"
        try:
            quantize_static(
                str(prepped), str(raw), reader,
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=exclude,
                op_types_to_quantize=list(op_types) if op_types else None,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"ActivationSymmetric": False, "WeightSymmetric": True,
                               "CalibMovingAverage": moving_average},
            )
        except ValueError as exc:
            if "No data is collected" in str(exc):
                raise ExportError(f"{model_name}: no calibration inputs were produced") from exc
            raise
        model = onnx.load(str(raw))
    provenance = {
        "format": "QDQ", "flavour": flavour.name, "tool": flavour.tool, "activations": "QUInt8 asymmetric",
        "weights": "QInt8 per-channel symmetric",
        "calibration": "MinMax, moving average" if moving_average else "MinMax",
        "calibration_inputs": reader.count, "kept_float": exclude,
    }
    return write_quantized(model, source, out_path, provenance, QuantResult(
        model_name, str(fp32_path), str(out_path), flavour.name, exclude, reader.count,
        round(time.perf_counter() - start, 1)))


def _keep_for(model: str, flavour: str, keep_float: Sequence[str] | None) -> Sequence[str]:
    return DEFAULT_KEEP_FLOAT[model, flavour] if keep_float is None else keep_float


def quantize_detector(fp32_path: str | Path, calib_dir: str | Path, flavours: Sequence[str] = ("cpu", "trt"),
                      keep_float: Sequence[str] | None = None, limit: int | None = DEFAULT_CALIB_IMAGES,
                      out_dir: str | Path | None = None, data_dir: str | Path | None = None,
                      trt_calibration: Sequence[str] = (DEFAULT_TRT_CALIBRATION,),
                      tune_images: int | None = DEFAULT_TUNE_IMAGES) -> list[QuantResult]:
    """Both (or the chosen) INT8 flavours of the detector, calibrated on wider-calib.

    The TensorRT flavour's kept-float layers (`auto`) are chosen on the tuning half of DATA/wider-train
    (`data_dir`, default: the calibration folder's parent).
    """
    fp32_path = Path(fp32_path)
    load_checked(fp32_path)
    images = calibration_images(calib_dir, limit)
    results = []
    for name in flavours:
        flavour = FLAVOURS[name]
        keep = _keep_for("detector", name, keep_float)
        out = output_path(fp32_path, flavour, out_dir)
        if name == "cpu":
            auto = list(keep) == [AUTO]
            result = quantize_model(fp32_path, out, detector_feeds(fp32_path, images), () if auto else keep,
                                    total=len(images), model_name="detector")
            if auto:
                result = sweep_cpu_flavour(result, Path(data_dir) if data_dir else Path(calib_dir).parent,
                                           tune_images or None)
            results.append(result)
        else:
            results.append(quantize_detector_trt(fp32_path, out, images, keep,
                                                 Path(data_dir) if data_dir else Path(calib_dir).parent,
                                                 trt_calibration, tune_images or None))
    return results


def quantize_generator(fp32_path: str | Path, detector_path: str | Path, calib_dir: str | Path,
                       flavours: Sequence[str] = ("cpu", "trt"), keep_float: Sequence[str] | None = None,
                       limit: int | None = DEFAULT_CALIB_IMAGES,
                       out_dir: str | Path | None = None) -> list[QuantResult]:
    """INT8 flavours of the generator, calibrated on face crops our detector finds in wider-calib."""
    fp32_path = Path(fp32_path)
    load_checked(fp32_path)
    conditions = face_conditions(detector_path, calibration_images(calib_dir, None), limit)
    if not conditions:
        raise ExportError(f"{calib_dir}: no usable faces found for generator calibration")
    results = []
    for name in flavours:
        flavour = FLAVOURS[name]
        keep = _keep_for("generator", name, keep_float)
        out = output_path(fp32_path, flavour, out_dir)
        if name == "cpu":
            results.append(quantize_model(fp32_path, out, generator_feeds(fp32_path, conditions), keep,
                                          total=len(conditions), model_name="generator"))
        else:
            results.append(quantize_generator_trt(fp32_path, out, conditions, keep))
    return results


def _split(value: str | None) -> list[str] | None:
    return None if value is None else [v for v in value.split(",") if v.strip()]


def run(args: argparse.Namespace) -> int:
    models_dir = Path(args.models)
    data = shared_data_dir(args.data)
    flavours = _split(args.flavour) or list(FLAVOURS)
    for name in flavours:
        if name not in FLAVOURS:
            raise ExportError(f"--flavour {name!r}: choose from {', '.join(FLAVOURS)}")
    methods = _split(args.trt_calibration) or [DEFAULT_TRT_CALIBRATION]
    for name in methods:
        if name not in TRT_CALIBRATIONS:
            raise ExportError(f"--trt-calibration {name!r}: choose from {', '.join(TRT_CALIBRATIONS)}")
    results: list[QuantResult] = []
    which = _split(args.model) or ["detector", "generator"]
    if "detector" in which:
        results += quantize_detector(models_dir / "detector.onnx", data / "wider-calib", flavours,
                                     _split(args.keep_float), args.calib_images, data_dir=data,
                                     trt_calibration=methods, tune_images=args.tune_images)
    if "generator" in which:
        gen = models_dir / "generator.onnx"
        if gen.is_file() or "generator" in (_split(args.model) or []):
            results += quantize_generator(gen, models_dir / "detector.onnx", data / "wider-calib", flavours,
                                          _split(args.keep_float), args.calib_images)
        else:
            log.warning("%s not found: generator not quantized", gen)
    print(json.dumps([asdict(r) for r in results], indent=2))
    return 0


def main_guarded(args: argparse.Namespace) -> int:
    try:
        return run(args)
    except ExportError as exc:
        log.error("%s", exc)
        return 2


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quantize", help="INT8 QDQ models (CPU and TensorRT flavours) by static calibration",
        description="Writes MODEL.int8.onnx (ONNX Runtime static quantization: uint8 asymmetric activations, "
                    "int8 per-channel weights, fast on ONNX Runtime CPU) and MODEL.int8-trt.onnx (NVIDIA Model "
                    "Optimizer PTQ: int8 symmetric Q/DQ for TensorRT explicit quantization, with the layers "
                    "left in float chosen by a per-layer sensitivity sweep on the tuning half of wider-train). "
                    "The detector calibrates on DATA/wider-calib through the runtime's own preprocessing; the "
                    "generator on face crops cut with the runtime's crop geometry.",
        epilog="example: python -m export quantize --models models --data ../shared/data --flavour cpu")
    p.add_argument("--models", default=str(MODELS_DIR), help="folder with detector.onnx / generator.onnx "
                   "(outputs go beside them; default: %(default)s)")
    p.add_argument("--data", default=None, help="shared data folder (default: $EDGEANON_DATA or ../shared/data)")
    p.add_argument("--model", default=None, help="detector, generator or both (default: both, generator if present)")
    p.add_argument("--flavour", default=None, help="cpu, trt or both (default: both)")
    p.add_argument("--keep-float", default=None,
                   help="comma list of roles (first, heads, last), node names or name patterns kept in float, "
                        "or 'auto' (the sensitivity sweep on the tuning half). Default: auto, except the CPU-"
                        "flavour generator: first,last; '' keeps none")
    p.add_argument("--trt-calibration", default=None,
                   help=f"Model Optimizer calibration for the TensorRT flavour: {', '.join(TRT_CALIBRATIONS)}, or "
                        "a comma list to compare on the tuning half and keep the best "
                        f"(default: {DEFAULT_TRT_CALIBRATION})")
    p.add_argument("--calib-images", type=int, default=DEFAULT_CALIB_IMAGES,
                   help="calibration inputs per model (default: %(default)s; 0 = all)")
    p.add_argument("--tune-images", type=int, default=DEFAULT_TUNE_IMAGES,
                   help="TensorRT flavour: tuning-half images each keep-float trial is measured on "
                        "(default: %(default)s; 0 = the whole half)")
    p.set_defaults(func=main_guarded)
