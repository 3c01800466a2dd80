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
import fnmatch
import json
import logging
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
from tqdm import tqdm

from export.onnx_file import save_onnx
from export.paths import MODELS_DIR, shared_data_dir

log = logging.getLogger(__name__)

AUTO = "auto"  # keep-float choice made by the sensitivity sweep on the tuning half (export.quantization.tuning)
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
TRT_CALIBRATIONS = ("max", "entropy")
# The sweep keeps layers in float until the tuning half is within this of FP32 (recall and AP): half the
# 0.01 gate, so the held-back half has room.
TUNE_MAX_DROP = 0.005
SWEEP_IMAGES = 4  # tuning images whose output error ranks the layers
# Images of the tuning half each keep-float trial is measured on (the first N by name; 0 = the whole half):
# a trial runs the INT8 model on ONNX Runtime's CPU kernels, several seconds an image on a loaded 2-core host.
DEFAULT_TUNE_IMAGES = 96
# Generator: the sweep's PSNR target on calibration crops (the gate is 30 dB on held-back crops).
TUNE_MIN_PSNR_DB = 33.0
MIN_CROP_FACE = 32  # smaller faces are served by the classic fallback, not the generator
ROLES = ("first", "heads", "last")
WEIGHTED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


class QuantizeError(RuntimeError):
    """A user-fixable problem with quantization input (model, calibration data, options)."""


@dataclass(frozen=True)
class Flavour:
    """How one target runtime wants its QDQ model, and which tool makes it."""

    name: str
    suffix: str
    tool: str
    description: str


FLAVOURS = {
    "cpu": Flavour("cpu", ".int8.onnx", "onnxruntime.quantization",
                   "ONNX Runtime CPU: uint8 asymmetric activations, int8 per-channel weights"),
    "trt": Flavour("trt", ".int8-trt.onnx", "nvidia-modelopt",
                   "TensorRT: int8 symmetric Q/DQ, zero points 0, sensitive layers in float"),
}


@dataclass
class QuantResult:
    """What one quantization run produced."""

    model: str
    source: str
    output: str
    flavour: str
    keep_float: list[str]
    calibration_inputs: int
    seconds: float
    nodes_quantized: int = 0
    extra: dict = field(default_factory=dict)


def output_path(fp32_path: Path, flavour: Flavour, out_dir: str | Path | None = None) -> Path:
    """detector.onnx -> detector.int8.onnx / detector.int8-trt.onnx (beside it, or in out_dir)."""
    folder = fp32_path.parent if out_dir is None else Path(out_dir)
    return folder / (fp32_path.name.split(".")[0] + flavour.suffix)


def load_checked(path: str | Path, min_opset: int = 13) -> onnx.ModelProto:
    """Load an ONNX model, or raise QuantizeError naming what is wrong with it (missing, corrupt, opset)."""
    path = Path(path)
    if not path.is_file():
        raise QuantizeError(f"{path}: model file not found")
    if path.stat().st_size == 0:
        raise QuantizeError(f"{path}: model file is empty")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise QuantizeError(f"{path}: not a valid ONNX model ({first[:160]})") from exc
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < min_opset:
        raise QuantizeError(f"{path}: opset {opset} is too old for per-channel QDQ (need >= {min_opset}); "
                            f"re-export with `python -m export onnx`")
    return model


def _consumers(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    table: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            table.setdefault(name, []).append(node)
    return table


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in model.graph.node for out in node.output}


def resolve_keep_float(model: onnx.ModelProto, keep: Iterable[str]) -> list[str]:
    """Turn roles and node names into node names to exclude from quantization.

    Roles: `first` = the convolutions that read a graph input; `heads` / `last` = the convolutions that
    produce a graph output (through element-wise tails such as Sigmoid). Anything else is a node name or a
    glob pattern over node names (`/up*`).
    """
    producers = _producers(model)
    consumers = _consumers(model)
    names = {n.name for n in model.graph.node}
    picked: list[str] = []

    def add(node: onnx.NodeProto) -> None:
        if node.name not in picked:
            picked.append(node.name)

    for item in keep:
        item = item.strip()
        if not item:
            continue
        if item == AUTO:
            raise QuantizeError("--keep-float auto: the sensitivity sweep is for the detector (both flavours) "
                                "and the TensorRT-flavour generator")
        if item == "first":
            for graph_input in model.graph.input:
                for node in consumers.get(graph_input.name, []):
                    add(node)
        elif item in ("heads", "last"):
            # walk back from each output through element-wise tails up to (and including) the weighted layers
            stack = [producers[o.name] for o in model.graph.output if o.name in producers]
            while stack:
                node = stack.pop()
                if node.name in picked:
                    continue
                add(node)
                if node.op_type not in WEIGHTED_OPS:
                    stack += [producers[i] for i in node.input if i in producers]
        elif item in names:
            add(next(n for n in model.graph.node if n.name == item))
        elif any(ch in item for ch in "*?["):
            matched = [n for n in model.graph.node if fnmatch.fnmatchcase(n.name, item)]
            if not matched:
                raise QuantizeError(f"--keep-float {item!r}: the pattern matches no node of the model")
            for node in matched:
                add(node)
        else:
            raise QuantizeError(f"--keep-float {item!r}: not a role ({', '.join(ROLES)}), node name or pattern")
    return picked


class FeedReader:
    """ONNX Runtime CalibrationDataReader over a feed iterator, with a progress bar (and Model Optimizer's
    get_first(), a look at the first feed that does not consume it)."""

    def __init__(self, feeds: Iterable[dict[str, np.ndarray]], total: int | None, desc: str):
        self._iter = iter(feeds)
        self._peeked: list[dict[str, np.ndarray]] = []
        self._bar = tqdm(total=total, desc=desc, unit="input", leave=False)
        self.count = 0

    def get_first(self) -> dict[str, np.ndarray] | None:
        if not self._peeked:
            first = next(self._iter, None)
            if first is None:
                return None
            self._peeked.append(first)
        return self._peeked[0]

    def get_next(self) -> dict[str, np.ndarray] | None:
        feed = self._peeked.pop() if self._peeked else next(self._iter, None)
        if feed is None:
            self._bar.close()
            return None
        self.count += 1
        self._bar.update(1)
        return feed

    def rewind(self) -> None:  # part of the reader protocol; calibration reads once
        raise NotImplementedError


def calibration_images(folder: str | Path, limit: int | None) -> list[Path]:
    """Image files of a calibration folder (sorted, first `limit`); QuantizeError when missing or empty."""
    from edgeanon.images import list_images

    folder = Path(folder)
    if not folder.is_dir():
        raise QuantizeError(f"{folder}: calibration folder not found (pass --data DIR holding wider-calib/)")
    images = list_images([folder])
    if not images:
        raise QuantizeError(f"{folder}: calibration folder holds no images")
    return images[:limit] if limit else images


def detector_feeds(fp32_path: str | Path, images: Sequence[Path]) -> Iterator[dict[str, np.ndarray]]:
    """Detector inputs exactly as the runtime builds them (edgeanon.detector.FaceDetector.prepare)."""
    from edgeanon.detector import FaceDetector
    from edgeanon.inference.ort import OrtBackend

    detector = FaceDetector(OrtBackend(fp32_path, threads=1))
    for path in images:
        prepared = detector.prepare(_read(path))
        yield {detector.input_name: prepared.blob.copy()}  # prepare() reuses its buffer


def _read(path: Path) -> np.ndarray:
    from edgeanon.images import ImageError, load_image

    try:
        return load_image(path)
    except ImageError as exc:
        raise QuantizeError(f"calibration image {exc}") from exc


def quantize_model(fp32_path: str | Path, out_path: str | Path, feeds: Iterable[dict[str, np.ndarray]],
                   keep_float: Sequence[str] = (), total: int | None = None, model_name: str = "model",
                   op_types: Sequence[str] | None = None, moving_average: bool = True) -> QuantResult:
    """CPU flavour: ONNX Runtime static QDQ quantization (uint8 asymmetric activations, int8 per-channel
    weights); written atomically with provenance metadata."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

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
                raise QuantizeError(f"{model_name}: no calibration inputs were produced") from exc
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


def write_quantized(model: onnx.ModelProto, source: onnx.ModelProto, out_path: Path, provenance: dict,
                    result: QuantResult) -> QuantResult:
    """Save a quantized model with the source's metadata plus `edgeanon.quantization`; fill in the counts."""
    meta = {p.key: p.value for p in source.metadata_props}
    meta["edgeanon.quantization"] = json.dumps(provenance)
    save_onnx(model, out_path, meta)
    result.nodes_quantized = sum(1 for n in model.graph.node if n.op_type == "DequantizeLinear")
    log.info("wrote %s (%d calibration inputs, kept float: %s)", out_path, result.calibration_inputs,
             result.keep_float or "none")
    return result


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
                from export.quantization.tuning import sweep_cpu_flavour

                result = sweep_cpu_flavour(result, Path(data_dir) if data_dir else Path(calib_dir).parent,
                                           tune_images or None)
            results.append(result)
        else:
            from export.quantization.trt_flavour import quantize_detector_trt

            results.append(quantize_detector_trt(fp32_path, out, images, keep,
                                                 Path(data_dir) if data_dir else Path(calib_dir).parent,
                                                 trt_calibration, tune_images or None))
    return results


def face_conditions(detector_path: str | Path, images: Sequence[Path], limit: int | None = None,
                    min_face: int = MIN_CROP_FACE) -> list[np.ndarray]:
    """Generator conditions (9, 128, 128) for the faces our detector finds, cut with the runtime's crop geometry."""
    from edgeanon.anonymize import crops
    from edgeanon.detector import FaceDetector

    detector = FaceDetector.from_path(detector_path, backend="ort")
    out: list[np.ndarray] = []
    for path in tqdm(images, desc="cutting face crops", unit="img", leave=False):
        image = _read(path)
        for face in detector.detect(image):
            if max(face.width, face.height) < min_face or not crops.landmarks_plausible(face.box, face.landmarks):
                continue
            _, crop, mask, heat = crops.crop_inputs(image, face.box, face.landmarks)
            out.append(crops.network_input(crop, mask, heat))
            if limit and len(out) >= limit:
                return out
    return out


def generator_feeds(fp32_path: str | Path, conditions: Sequence[np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
    """One feed per face crop, each with its own seeded latent (input names and latent size read from the model)."""
    from edgeanon.anonymize.gan import latent_for_seed

    model = onnx.load(str(fp32_path), load_external_data=False)
    cond_name, latent_name = (i.name for i in model.graph.input[:2])
    latent_size = model.graph.input[1].type.tensor_type.shape.dim[1].dim_value
    for seed, condition in enumerate(conditions):
        yield {cond_name: condition[None], latent_name: latent_for_seed(seed, latent_size)[None]}


def quantize_generator(fp32_path: str | Path, detector_path: str | Path, calib_dir: str | Path,
                       flavours: Sequence[str] = ("cpu", "trt"), keep_float: Sequence[str] | None = None,
                       limit: int | None = DEFAULT_CALIB_IMAGES,
                       out_dir: str | Path | None = None) -> list[QuantResult]:
    """INT8 flavours of the generator, calibrated on face crops our detector finds in wider-calib."""
    fp32_path = Path(fp32_path)
    load_checked(fp32_path)
    conditions = face_conditions(detector_path, calibration_images(calib_dir, None), limit)
    if not conditions:
        raise QuantizeError(f"{calib_dir}: no usable faces found for generator calibration")
    results = []
    for name in flavours:
        flavour = FLAVOURS[name]
        keep = _keep_for("generator", name, keep_float)
        out = output_path(fp32_path, flavour, out_dir)
        if name == "cpu":
            results.append(quantize_model(fp32_path, out, generator_feeds(fp32_path, conditions), keep,
                                          total=len(conditions), model_name="generator"))
        else:
            from export.quantization.trt_flavour import quantize_generator_trt

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
            raise QuantizeError(f"--flavour {name!r}: choose from {', '.join(FLAVOURS)}")
    methods = _split(args.trt_calibration) or [DEFAULT_TRT_CALIBRATION]
    for name in methods:
        if name not in TRT_CALIBRATIONS:
            raise QuantizeError(f"--trt-calibration {name!r}: choose from {', '.join(TRT_CALIBRATIONS)}")
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
    except QuantizeError as exc:
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
