"""TensorRT-flavour INT8 (`*.int8-trt.onnx`) with NVIDIA Model Optimizer, layers in float chosen by measurement.

Model Optimizer (`modelopt.onnx.quantization`) places the Q/DQ pairs where TensorRT fuses them and calibrates
on CPU through ONNX Runtime (symmetric int8 activations, per-channel int8 weights, zero points 0). Then the
per-layer sensitivity sweep (sensitivity.py) ranks the quantized layers on the tuning half of wider-train
and leaves the fewest most sensitive ones in float that bring the tuning half within TUNE_MAX_DROP of FP32.
The held-back half is never looked at here: `python -m export verify` reports both halves.
"""

from __future__ import annotations

import concurrent.futures
import functools
import importlib.metadata
import importlib.util
import logging
import multiprocessing
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import onnx

from export.onnx_file import ExportError, load_checked
from export.quantization.compare import generator_psnr
from export.quantization.feeds import FeedReader, detector_feeds, generator_feeds
from export.quantization.qdq import AUTO, FLAVOURS, QuantResult, resolve_keep_float, write_quantized
from export.quantization.sensitivity import bypass, saved, sweep
from export.quantization.tuning import SWEEP_REPORTED, DetectorTuning, choose, tune_detector_float_layers

log = logging.getLogger(__name__)

TRT_CALIBRATIONS = ("max", "entropy")
# Generator: the sweep's PSNR target on calibration crops (the gate is 30 dB on held-back crops).
TUNE_MIN_PSNR_DB = 33.0


def modelopt_version() -> str:
    try:
        return importlib.metadata.version("nvidia-modelopt")
    except importlib.metadata.PackageNotFoundError:  # reported by modelopt_qdq
        return "not installed"


def modelopt_qdq(fp32_path: Path, feed_factory: Callable[[], Iterable[dict[str, np.ndarray]]], total: int,
                 method: str, model_name: str) -> onnx.ModelProto:
    """Model Optimizer INT8 PTQ of an FP32 model (float kept FP32 outside Q/DQ), calibrated on CPU.

    Runs in a child process: Model Optimizer patches ONNX Runtime's quantization module when it runs, which
    would break `quantize_static` (the CPU flavour) later in the same process. `feed_factory` (picklable, e.g.
    a functools.partial of detector_feeds) makes the calibration feeds there.
    """
    if method not in TRT_CALIBRATIONS:
        raise ExportError(f"calibration {method!r}: choose from {', '.join(TRT_CALIBRATIONS)}")
    if importlib.util.find_spec("modelopt") is None:
        raise ExportError("the TensorRT flavour needs NVIDIA Model Optimizer (nvidia-modelopt); "
                            "make venv installs it (pip install --no-deps nvidia-modelopt==0.47.0)")
    with tempfile.TemporaryDirectory(prefix="edgeanon-modelopt-") as tmp:
        out = Path(tmp) / "qdq.onnx"
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
            count = pool.submit(_modelopt_child, Path(fp32_path), feed_factory, total, method, model_name,
                                out).result()
        if not out.is_file() or count == 0:
            raise ExportError(f"{model_name}: Model Optimizer wrote no model (calibration inputs: {count})")
        model = onnx.load(str(out))
    model.ClearField("metadata_props")
    return model


def _modelopt_child(fp32_path: Path, feed_factory: Callable[[], Iterable[dict[str, np.ndarray]]], total: int,
                    method: str, model_name: str, out: Path) -> int:
    # Imported here, in the child process only: Model Optimizer is an optional install (TensorRT flavour), and
    # importing it patches ONNX Runtime's quantization module (see modelopt_qdq).
    from modelopt.onnx.quantization import quantize

    reader = FeedReader(feed_factory(), total, f"calibrating {model_name} (trt, {method})")
    source = out.with_name("fp32.onnx")  # Model Optimizer writes its intermediate files beside its input
    shutil.copyfile(fp32_path, source)
    quantize(str(source), quantize_mode="int8", calibration_data_reader=reader, calibration_method=method,
             calibration_eps=["cpu"], output_path=str(out), high_precision_dtype="fp32", log_level="ERROR")
    return reader.count


def quantize_detector_trt(fp32_path: Path, out_path: Path, images: Sequence[Path], keep: Sequence[str],
                          data_dir: Path, methods: Sequence[str], tune_images: int | None = None) -> QuantResult:
    """The detector's TensorRT flavour: Model Optimizer Q/DQ, then float layers by sweep (`auto`) or by name."""
    start = time.perf_counter()
    source = load_checked(fp32_path)
    auto = list(keep) == [AUTO]
    feeds = functools.partial(detector_feeds, fp32_path, list(images))
    candidates = {m: modelopt_qdq(fp32_path, feeds, len(images), m, "detector")
                  for m in (methods if auto else methods[:1])}
    provenance: dict = {}
    if auto:
        method = methods[0]
        if len(methods) > 1:  # the calibration method is chosen on the tuning half too, nothing in float
            tuning = DetectorTuning(fp32_path, data_dir, limit=tune_images)
            compared = {}
            with tempfile.TemporaryDirectory(prefix="edgeanon-calib-") as tmp:
                for m, qdq in candidates.items():
                    compared[m] = tuning.passes(saved(qdq, Path(tmp), f"{m}.onnx"))[1]
            method = min(compared, key=lambda m: compared[m]["recall_drop"] + compared[m]["ap_drop"])
            provenance["calibration_compared"] = compared
        qdq = candidates[method]
        kept, found = tune_detector_float_layers(qdq, source, fp32_path, data_dir, tune_images)
        provenance.update(found)
    else:
        method = methods[0]
        qdq = candidates[method]
        kept = resolve_keep_float(source, keep)
    model = bypass(qdq, source, kept) if kept else qdq
    provenance = {
        "format": "QDQ", "flavour": "trt", "tool": f"nvidia-modelopt {modelopt_version()}",
        "activations": "QInt8 symmetric", "weights": "QInt8 per-channel symmetric", "calibration": method,
        "calibration_inputs": len(images), "kept_float": kept, "kept_float_by": "sweep" if auto else "name",
        **provenance,
    }
    return write_quantized(model, source, out_path, provenance, QuantResult(
        "detector", str(fp32_path), str(out_path), FLAVOURS["trt"].name, kept, len(images),
        round(time.perf_counter() - start, 1)))


def quantize_generator_trt(fp32_path: Path, out_path: Path, conditions: Sequence[np.ndarray],
                           keep: Sequence[str], method: str = "max") -> QuantResult:
    """The generator's TensorRT flavour: Model Optimizer Q/DQ, float layers by sweep on PSNR (`auto`) or by name."""
    start = time.perf_counter()
    source = load_checked(fp32_path)
    qdq = modelopt_qdq(fp32_path, functools.partial(generator_feeds, fp32_path, list(conditions)), len(conditions),
                       method, "generator")
    provenance: dict = {}
    if list(keep) == [AUTO]:
        def error(path: Path) -> float:
            return -generator_psnr(fp32_path, path, list(conditions))["psnr_face_db_mean"]

        def passes(path: Path) -> tuple[bool, dict]:
            value = -error(path)
            return value >= TUNE_MIN_PSNR_DB, {"psnr_face_db": round(value, 3)}

        base, scores = sweep(qdq, source, error)
        kept, trials = choose(qdq, source, [s.node for s in scores], passes)
        provenance = {"tuning": f"{len(conditions)} calibration face crops, PSNR >= {TUNE_MIN_PSNR_DB} dB",
                      "sweep": {"psnr_all_quantized": -base,
                                "most_sensitive": [{"node": s.node, "gain_db": round(s.gain, 3)}
                                                   for s in scores[:SWEEP_REPORTED]]},
                      "trials": trials}
    else:
        kept = resolve_keep_float(source, keep)
    model = bypass(qdq, source, kept) if kept else qdq
    provenance = {
        "format": "QDQ", "flavour": "trt", "tool": f"nvidia-modelopt {modelopt_version()}",
        "activations": "QInt8 symmetric", "weights": "QInt8 per-channel symmetric", "calibration": method,
        "calibration_inputs": len(conditions), "kept_float": kept,
        "kept_float_by": "sweep" if list(keep) == [AUTO] else "name", **provenance,
    }
    return write_quantized(model, source, out_path, provenance, QuantResult(
        "generator", str(fp32_path), str(out_path), "trt", kept, len(conditions),
        round(time.perf_counter() - start, 1)))
