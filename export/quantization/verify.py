"""`python -m export verify`: a gate for every exported artefact, one JSON report; non-zero exit when one fails.

Gates, each with the command that reproduces it alone (`--only KEY`):
  detector-parity     PyTorch vs ONNX FP32 max abs diff <= 1e-4 on real wider-train images;
  detector-fp16       the FP16 model finds >= 98% of the FP32 model's faces (IoU >= 0.5) on held-back images;
  detector-int8       CPU-flavour INT8: recall and AP at most 0.01 below FP32, on the tuning half and on the
  detector-int8-trt   held-back half of wider-train (TensorRT flavour likewise, run on ONNX Runtime: same Q/DQ
                      graph, same scales), through the runtime's own detector and the evaluation's matching;
  generator-parity    PyTorch vs ONNX FP32 max abs diff <= 1e-4 on real face crops;
  generator-fp16      >= 35 dB PSNR from FP32 on the face region of held-back crops;
  generator-int8      >= 30 dB PSNR likewise (CPU flavour), and generator-int8-trt (TensorRT flavour).
A gate whose model file is absent is reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from edgeanon.atomic import atomic_path
from edgeanon.detector import FaceDetector
from edgeanon.images import load_image
from edgeanon.inference.ort import OrtBackend
from export.conversion.import_weights import load_centerface
from export.datasets import WIDER, load_wider
from export.eval.detector import edgeanon_pipeline, evaluate
from export.models.generator import load_generator
from export.onnx_file import ExportError, load_checked
from export.paths import CENTERFACE_WEIGHTS, MODELS_DIR, shared_data_dir
from export.quantization.compare import MIN_FACE_MATCH, MIN_GENERATOR_PSNR, compare_detectors, generator_psnr
from export.quantization.feeds import face_conditions, generator_feeds
from export.splits import HALVES, HOLDOUT, generator_holdout

log = logging.getLogger(__name__)

MAX_ABS_DIFF = 1e-4
MAX_DETECTOR_DROP = 0.01
MIN_PSNR_DB = MIN_GENERATOR_PSNR["int8"]
MIN_FP16_PSNR_DB = MIN_GENERATOR_PSNR["fp16"]
MIN_FP16_FACE_MATCH = MIN_FACE_MATCH["fp16"]
PARITY_IMAGES = 4  # real wider-train images per parity check (several sizes)
FP16_IMAGES = 8  # held-back images for the detector FP16 check (ONNX Runtime runs FP16 slowly on CPU)
PSNR_CROPS = 64
DETECTOR_INT8 = {"int8": "detector.int8.onnx", "int8-trt": "detector.int8-trt.onnx"}
GENERATOR_VARIANTS = {"fp16": "generator.fp16.onnx", "int8": "generator.int8.onnx",
                      "int8-trt": "generator.int8-trt.onnx"}
GATE_KEYS = ("detector-parity", "detector-fp16", "detector-int8", "detector-int8-trt",
             "generator-parity", "generator-fp16", "generator-int8", "generator-int8-trt")


@dataclass
class Gate:
    """One pass/fail check with its measured value and the command that reproduces it."""

    name: str
    value: float | None
    limit: float
    passed: bool | None  # None: skipped (reason in `note`)
    note: str = ""
    key: str = ""
    command: str = ""


def print_gates(gates: list[dict]) -> None:
    """One PASS / FAIL / SKIP line per gate of a report, on standard error."""
    for gate in gates:
        print(_fmt(Gate(**gate)), file=sys.stderr)


def _fmt(gate: Gate) -> str:
    state = {True: "PASS", False: "FAIL", None: "SKIP"}[gate.passed]
    value = "-" if gate.value is None else f"{gate.value:.6g}"
    return f"{state}  {gate.name}: {value} (limit {gate.limit:g}) {gate.note}".rstrip()


def parity_images(data_dir: Path, count: int = PARITY_IMAGES) -> list[Path]:
    items = load_wider(data_dir)
    step = max(1, len(items) // count)
    return [path for path, _ in items[::step][:count]]


def detector_parity(onnx_path: Path, weights: Path, images: list[Path]) -> tuple[float, dict]:
    """Max abs diff of every output between the PyTorch CenterFace (as exported) and the ONNX model."""
    torch_model = load_centerface(weights).fold_batchnorm().eval()
    backend = OrtBackend(onnx_path)
    detector = FaceDetector(backend)
    worst, per_output = 0.0, {}
    for path in images:
        blob = detector.prepare(load_image(path)).blob.copy()
        onnx_out = backend.run({detector.input_name: blob})
        with torch.no_grad():
            torch_out = torch_model(torch.from_numpy(blob))
        for name, ref in zip(torch_model.output_names, torch_out):
            diff = float(np.abs(onnx_out[name] - ref.numpy()).max())
            per_output[name] = max(per_output.get(name, 0.0), diff)
            worst = max(worst, diff)
    return worst, {"images": [p.name for p in images], "per_output": per_output}


def generator_parity(onnx_path: Path, weights: Path, conditions: list[np.ndarray]) -> float:
    """Max abs diff between the PyTorch generator and its ONNX export on real face crops."""
    model = load_generator(weights)
    backend = OrtBackend(onnx_path)
    worst = 0.0
    for feed in generator_feeds(onnx_path, conditions):
        out = backend.run(feed)[backend.output_names[0]]
        with torch.no_grad():
            ref = model(*(torch.from_numpy(v) for v in feed.values())).numpy()
        worst = max(worst, float(np.abs(out - ref).max()))
    return worst


def detector_accuracy(models: dict[str, Path], data_dir: Path, half: str, limit: int | None) -> dict[str, dict]:
    """Recall/AP of each detector model on one half of wider-train, through the runtime's FaceDetector."""
    items = load_wider(data_dir, limit, half)
    return {name: evaluate(edgeanon_pipeline(path), items, f"wider-train {half} {name}")
            for name, path in models.items()}


def detector_fp16_match(fp32_path: Path, fp16_path: Path, data_dir: Path, count: int = FP16_IMAGES) -> dict:
    """Share of the FP32 model's faces the FP16 model also finds (IoU >= 0.5) on held-back images."""
    images = [load_image(path) for path, _ in load_wider(data_dir, split=HOLDOUT)[:: 16][:count]]
    with OrtBackend(fp32_path) as reference, OrtBackend(fp16_path) as candidate:
        cmp = compare_detectors(reference, candidate, images)
    return {"images": cmp.images, "faces": cmp.reference_faces, "matched": cmp.matched, "extra": cmp.extra,
            "match_rate": cmp.match_rate}


def held_back_images(data_dir: Path) -> list[Path]:
    """wider-train images the generator never trained on (the generator toolkit's held-out split)."""
    return [p for p in sorted((data_dir / WIDER).glob("*.jpg")) if generator_holdout(p.name)]


def gate_command(key: str, models_dir: Path, data_dir: Path, limit: int | None, options: str = "") -> str:
    """The command that runs one gate alone (`options`: the non-default weights, as given)."""
    extra = f" --limit {limit}" if limit else ""
    return f"python -m export verify --models {models_dir} --data {data_dir}{options} --only {key}{extra}"


def verify(models_dir: Path, data_dir: Path, limit: int | None = None, weights: Path = CENTERFACE_WEIGHTS,
           generator_weights: Path | None = None, psnr_crops: int = PSNR_CROPS,
           parity_count: int = PARITY_IMAGES, only: Sequence[str] | None = None) -> dict:
    """Run every gate (or the `only` ones) whose model files are present; returns the report (see `passed`).

    `limit` caps the images of each wider-train half for the detector's accuracy gates (default: all).
    """
    start = time.perf_counter()
    wanted = set(only or GATE_KEYS)
    unknown = wanted - set(GATE_KEYS)
    if unknown:
        raise ExportError(f"--only {', '.join(sorted(unknown))}: choose from {', '.join(GATE_KEYS)}")
    gates: list[Gate] = []
    details: dict = {}

    options = "" if weights == CENTERFACE_WEIGHTS else f" --weights {weights}"
    options += f" --generator-weights {generator_weights}" if generator_weights else ""

    def add(key: str, gate: Gate) -> None:
        gate.key, gate.command = key, gate_command(key, models_dir, data_dir, limit, options)
        gates.append(gate)

    detector = models_dir / "detector.onnx"
    load_checked(detector)
    if not (data_dir / "wider-train" / "boxes.json").is_file():
        raise ExportError(f"{data_dir}: no wider-train/boxes.json (pass --data pointing at the shared data folder)")

    if "detector-parity" in wanted:
        name = "detector pytorch-vs-onnx max abs diff"
        if weights.is_file():
            diff, info = detector_parity(detector, weights, parity_images(data_dir, parity_count))
            add("detector-parity", Gate(name, diff, MAX_ABS_DIFF, diff <= MAX_ABS_DIFF))
            details["detector_parity"] = info
        else:
            add("detector-parity", Gate(name, None, MAX_ABS_DIFF, None, f"{weights} missing"))

    if "detector-fp16" in wanted:
        name = "detector fp16 share of fp32 faces found"
        fp16 = models_dir / "detector.fp16.onnx"
        if fp16.is_file():
            load_checked(fp16)
            info = detector_fp16_match(detector, fp16, data_dir)
            details["detector_fp16"] = info
            add("detector-fp16", Gate(name, round(info["match_rate"], 6), MIN_FP16_FACE_MATCH,
                                      info["match_rate"] >= MIN_FP16_FACE_MATCH,
                                      f"{info['matched']}/{info['faces']} faces on {info['images']} held-back images"))
        else:
            add("detector-fp16", Gate(name, None, MIN_FP16_FACE_MATCH, None, f"{fp16} missing"))

    candidates = {}
    for flavour, file in DETECTOR_INT8.items():
        key = f"detector-{flavour}"
        if key not in wanted:
            continue
        if (models_dir / file).is_file():
            load_checked(models_dir / file)
            candidates[flavour] = models_dir / file
        else:
            add(key, Gate(f"detector {flavour} recall/AP drop vs fp32", None, MAX_DETECTOR_DROP, None,
                          f"{models_dir / file} missing (run `python -m export quantize`)"))
    if candidates:
        details["detector_accuracy_images"] = {}
        for half in HALVES:
            acc = detector_accuracy({"fp32": detector, **candidates}, data_dir, half, limit)
            details.setdefault("detector_accuracy", {})[half] = acc
            details["detector_accuracy_images"][half] = len(load_wider(data_dir, limit, half))
            for flavour in candidates:
                for metric in ("recall", "ap"):
                    drop = acc["fp32"][metric] - acc[flavour][metric]
                    note = f"fp32 {acc['fp32'][metric]:.4f}, {flavour} {acc[flavour][metric]:.4f}"
                    add(f"detector-{flavour}", Gate(
                        f"detector {flavour} {metric} drop vs fp32 ({half} half)", round(drop, 6), MAX_DETECTOR_DROP,
                        drop <= MAX_DETECTOR_DROP, note))

    generator = models_dir / "generator.onnx"
    generator_keys = [k for k in GATE_KEYS if k.startswith("generator") and k in wanted]
    if generator_keys and generator.is_file():
        load_checked(generator)
        conditions = face_conditions(detector, held_back_images(data_dir), psnr_crops)
        details["generator_crops"] = len(conditions)
        if "generator-parity" in wanted:
            name = "generator pytorch-vs-onnx max abs diff"
            gen_weights = generator_weights or (models_dir / "generator.pt")
            if gen_weights.is_file() and conditions:
                diff = generator_parity(generator, gen_weights, conditions[:8])
                add("generator-parity", Gate(name, diff, MAX_ABS_DIFF, diff <= MAX_ABS_DIFF))
            else:
                add("generator-parity", Gate(name, None, MAX_ABS_DIFF, None,
                                             f"{gen_weights} missing" if conditions else "no held-back face crops"))
        for variant, file in GENERATOR_VARIANTS.items():
            key = f"generator-{variant}"
            if key not in wanted:
                continue
            limit_db = MIN_FP16_PSNR_DB if variant == "fp16" else MIN_PSNR_DB
            name = f"generator {variant} PSNR vs fp32 (face region, dB)"
            path = models_dir / file
            if path.is_file() and conditions:
                load_checked(path)
                info = generator_psnr(generator, path, conditions)
                details.setdefault("generator_psnr", {})[variant] = info
                value = info["psnr_face_db_mean"]
                add(key, Gate(name, value, limit_db, value >= limit_db,
                              f"{info['crops']} held-back crops, min {info['psnr_face_db_min']:.1f}"))
            else:
                add(key, Gate(name, None, limit_db, None, f"{path} missing" if conditions else "no held-back crops"))
    elif generator_keys:
        add(generator_keys[0], Gate("generator gates", None, 0, None, f"{generator} missing"))

    failed = [g.name for g in gates if g.passed is False]
    return {
        "passed": not failed,
        "failed": failed,
        "gates": [asdict(g) for g in gates],
        "details": details,
        "models": {p.name: str(p) for p in sorted(models_dir.glob("*.onnx"))},
        "host": {"python": platform.python_version(), "machine": platform.machine(), "onnxruntime": _ort_version()},
        "seconds": round(time.perf_counter() - start, 1),
    }


def _ort_version() -> str:
    return onnxruntime.__version__


def run(args: argparse.Namespace) -> int:
    try:
        report = verify(Path(args.models), shared_data_dir(args.data), args.limit or None, Path(args.weights),
                        Path(args.generator_weights) if args.generator_weights else None,
                        parity_count=args.parity_images, only=_split(args.only))
    except (ExportError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    print_gates(report["gates"])
    out = Path(args.report) if args.report else Path(args.models) / "verify-report.json"
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'all gates passed' if report['passed'] else 'GATES FAILED: ' + ', '.join(report['failed'])}; "
          f"report: {out}", file=sys.stderr)
    return 0 if report["passed"] else 1


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify", help="a gate for every exported model, one JSON report (exit 1 if a gate fails)",
        description="Gates: PyTorch vs ONNX FP32 max abs diff <= 1e-4 on real images (detector, generator); "
                    "detector FP16 finds >= 98%% of the FP32 faces; detector INT8, both flavours (MODEL.int8.onnx "
                    "for ONNX Runtime CPU, MODEL.int8-trt.onnx for TensorRT, run here on ONNX Runtime: same Q/DQ "
                    "graph, same scales): recall and AP at most 0.01 below FP32 on the tuning half and on the "
                    "held-back half of wider-train; generator FP16 >= 35 dB and INT8 (both flavours) >= 30 dB PSNR "
                    "from FP32 on the face region of held-back crops. A gate whose files are absent is reported "
                    "as skipped. Each gate in the report names the command that reproduces it.",
        epilog="example: python -m export verify --models models --data ../shared/data --only detector-int8-trt")
    p.add_argument("--models", default=str(MODELS_DIR), help="folder with the ONNX files (default: %(default)s)")
    p.add_argument("--data", help="shared data folder (default: $EDGEANON_DATA or ../shared/data)")
    p.add_argument("--weights", default=str(CENTERFACE_WEIGHTS), help="CenterFace PyTorch weights")
    p.add_argument("--generator-weights", help="generator state dict (default: MODELS/generator.pt)")
    p.add_argument("--only", help=f"comma list of gates to run (default: all): {', '.join(GATE_KEYS)}")
    p.add_argument("--limit", type=int, default=0,
                   help="evaluate the detector on the first N images of each wider-train half (default: all)")
    p.add_argument("--parity-images", type=int, default=PARITY_IMAGES,
                   help="wider-train images for the PyTorch-vs-ONNX check (default: %(default)s)")
    p.add_argument("--report", help="report path (default: MODELS/verify-report.json)")
    p.set_defaults(func=run)
