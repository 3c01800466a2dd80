"""`python -m export verify`: the export gates in one JSON report; non-zero exit when a gate fails.

Gates: PyTorch vs ONNX FP32 max abs diff <= 1e-4 (detector and generator); INT8 detector recall and AP no more
than 0.01 below FP32 on wider-train (the runtime's own detector pipeline and the evaluation's own matching);
INT8 generator >= 30 dB PSNR from FP32 on face crops held back from training and calibration.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from export.atomic_io import atomic_path
from export.engine_check import psnr
from export.paths import CENTERFACE_WEIGHTS, MODELS_DIR, shared_data_dir
from export.quantize import QuantizeError, face_conditions, generator_feeds, load_checked

log = logging.getLogger(__name__)

MAX_ABS_DIFF = 1e-4
MAX_DETECTOR_DROP = 0.01
MIN_PSNR_DB = 30.0
PARITY_IMAGES = 4  # real wider-train images per parity check (several sizes)
PSNR_CROPS = 64


@dataclass
class Gate:
    """One pass/fail check with its measured value."""

    name: str
    value: float | None
    limit: float
    passed: bool | None  # None: skipped (reason in `note`)
    note: str = ""


def print_gates(gates: list[dict]) -> None:
    """One PASS / FAIL / SKIP line per gate of a report, on standard error."""
    for gate in gates:
        print(_fmt(Gate(**gate)), file=sys.stderr)


def _fmt(gate: Gate) -> str:
    state = {True: "PASS", False: "FAIL", None: "SKIP"}[gate.passed]
    value = "-" if gate.value is None else f"{gate.value:.6g}"
    return f"{state}  {gate.name}: {value} (limit {gate.limit:g}) {gate.note}".rstrip()


def parity_images(data_dir: Path, count: int = PARITY_IMAGES) -> list[Path]:
    from export.eval.wider import load_wider

    items = load_wider(data_dir)
    step = max(1, len(items) // count)
    return [path for path, _ in items[::step][:count]]


def detector_parity(onnx_path: Path, weights: Path, images: list[Path]) -> tuple[float, dict]:
    """Max abs diff of every output between the PyTorch CenterFace (as exported) and the ONNX model."""
    import torch

    from edgeanon.detector import FaceDetector
    from edgeanon.images import load_image
    from edgeanon.inference.ort import OrtBackend
    from export.import_weights import load_centerface

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
    import torch

    from edgeanon.inference.ort import OrtBackend
    from export.models.generator import load_generator

    model = load_generator(weights)
    backend = OrtBackend(onnx_path)
    worst = 0.0
    for feed in generator_feeds(onnx_path, conditions):
        out = backend.run(feed)[backend.output_names[0]]
        with torch.no_grad():
            ref = model(*(torch.from_numpy(v) for v in feed.values())).numpy()
        worst = max(worst, float(np.abs(out - ref).max()))
    return worst


def generator_psnr(fp32_path: Path, int8_path: Path, conditions: list[np.ndarray]) -> dict:
    """PSNR of INT8 vs FP32 generator outputs in 8-bit pixels: over the regenerated (masked) region and the crop."""
    from edgeanon.inference.ort import OrtBackend

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


def detector_accuracy(models: dict[str, Path], data_dir: Path, limit: int | None) -> dict[str, dict]:
    """Recall/AP of each detector model on wider-train through the runtime's FaceDetector (export.eval's code)."""
    from export.eval.detector import edgeanon_pipeline, evaluate
    from export.eval.wider import load_wider

    items = load_wider(data_dir, limit)
    return {name: evaluate(edgeanon_pipeline(path), items, f"wider-train {name}") for name, path in models.items()}


def held_back_images(data_dir: Path) -> list[Path]:
    """wider-train images the generator never trained on (the generator toolkit's held-out split)."""
    from export.facecrops import held_out

    return [p for p in sorted((data_dir / "wider-train").glob("*.jpg")) if held_out(p.name)]


def verify(models_dir: Path, data_dir: Path, limit: int | None = None, weights: Path = CENTERFACE_WEIGHTS,
           generator_weights: Path | None = None, psnr_crops: int = PSNR_CROPS,
           parity_count: int = PARITY_IMAGES, trt_flavour: bool = False) -> dict:
    """Run every gate that applies to the files present; returns the report (see `passed`)."""
    start = time.perf_counter()
    gates: list[Gate] = []
    details: dict = {}
    detector = models_dir / "detector.onnx"
    detector_int8 = models_dir / "detector.int8.onnx"
    load_checked(detector)
    if not (data_dir / "wider-train" / "boxes.json").is_file():
        raise QuantizeError(f"{data_dir}: no wider-train/boxes.json (pass --data pointing at the shared data folder)")

    if weights.is_file():
        diff, info = detector_parity(detector, weights, parity_images(data_dir, parity_count))
        gates.append(Gate("detector pytorch-vs-onnx max abs diff", diff, MAX_ABS_DIFF, diff <= MAX_ABS_DIFF))
        details["detector_parity"] = info
    else:
        gates.append(Gate("detector pytorch-vs-onnx max abs diff", None, MAX_ABS_DIFF, None, f"{weights} missing"))

    if detector_int8.is_file():
        candidates = {"int8": detector_int8}
        trt_model = models_dir / "detector.int8-trt.onnx"
        if trt_flavour and trt_model.is_file():
            candidates["int8-trt"] = trt_model
        for path in candidates.values():
            load_checked(path)
        acc = detector_accuracy({"fp32": detector, **candidates}, data_dir, limit)
        details["detector_accuracy"] = acc
        details["detector_accuracy_images"] = limit if limit else "all"
        for name in candidates:
            for metric in ("recall", "ap"):
                drop = acc["fp32"][metric] - acc[name][metric]
                gates.append(Gate(f"detector {name} {metric} drop vs fp32", round(drop, 6), MAX_DETECTOR_DROP,
                                  drop <= MAX_DETECTOR_DROP,
                                  f"fp32 {acc['fp32'][metric]:.4f}, {name} {acc[name][metric]:.4f}"))
    else:
        gates.append(Gate("detector int8 recall/AP drop vs fp32", None, MAX_DETECTOR_DROP, None,
                          f"{detector_int8} missing (run `python -m export quantize`)"))

    generator = models_dir / "generator.onnx"
    generator_int8 = models_dir / "generator.int8.onnx"
    if generator.is_file():
        load_checked(generator)
        conditions = face_conditions(detector, held_back_images(data_dir), psnr_crops)
        details["generator_crops"] = len(conditions)
        gen_weights = generator_weights or (models_dir / "generator.pt")
        if gen_weights.is_file() and conditions:
            diff = generator_parity(generator, gen_weights, conditions[:8])
            gates.append(Gate("generator pytorch-vs-onnx max abs diff", diff, MAX_ABS_DIFF, diff <= MAX_ABS_DIFF))
        else:
            gates.append(Gate("generator pytorch-vs-onnx max abs diff", None, MAX_ABS_DIFF, None,
                              f"{gen_weights} missing" if conditions else "no held-back face crops"))
        if generator_int8.is_file() and conditions:
            load_checked(generator_int8)
            info = generator_psnr(generator, generator_int8, conditions)
            details["generator_psnr"] = info
            value = info["psnr_face_db_mean"]
            note = f"{info['crops']} held-back crops, min {info['psnr_face_db_min']:.1f}"
            gates.append(Gate("generator int8 PSNR vs fp32 (face region, dB)", value, MIN_PSNR_DB,
                              value >= MIN_PSNR_DB, note))
        else:
            gates.append(Gate("generator int8 PSNR vs fp32 (face region, dB)", None, MIN_PSNR_DB, None,
                              f"{generator_int8} missing"))
    else:
        gates.append(Gate("generator gates", None, 0, None, f"{generator} missing"))

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
    import onnxruntime

    return onnxruntime.__version__


def run(args: argparse.Namespace) -> int:
    try:
        report = verify(Path(args.models), shared_data_dir(args.data), args.limit or None, Path(args.weights),
                        Path(args.generator_weights) if args.generator_weights else None,
                        trt_flavour=args.trt_flavour, parity_count=args.parity_images)
    except (QuantizeError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    print_gates(report["gates"])
    out = Path(args.report) if args.report else Path(args.models) / "verify-report.json"
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'all gates passed' if report['passed'] else 'GATES FAILED: ' + ', '.join(report['failed'])}; "
          f"report: {out}", file=sys.stderr)
    return 0 if report["passed"] else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify", help="accuracy gates for the exported models, one JSON report (exit 1 if a gate fails)",
        description="Gates: PyTorch vs ONNX FP32 max abs diff <= 1e-4 on real images; INT8 detector "
                    "(MODEL.int8.onnx) recall and AP at most 0.01 below FP32 on wider-train, measured through "
                    "the runtime's own detector and the evaluation's matching; INT8 generator >= 30 dB PSNR "
                    "from FP32 on the face region of crops held back from training and calibration. A gate "
                    "whose files are absent is reported as skipped.",
        epilog="example: python -m export verify --models models --data ../shared/data")
    p.add_argument("--models", default=str(MODELS_DIR), help="folder with the ONNX files (default: %(default)s)")
    p.add_argument("--data", help="shared data folder (default: $EDGEANON_DATA or ../shared/data)")
    p.add_argument("--weights", default=str(CENTERFACE_WEIGHTS), help="CenterFace PyTorch weights")
    p.add_argument("--generator-weights", help="generator state dict (default: MODELS/generator.pt)")
    p.add_argument("--limit", type=int, default=0,
                   help="evaluate the detector on the first N wider-train images only (default: all 581)")
    p.add_argument("--trt-flavour", action="store_true",
                   help="also gate detector.int8-trt.onnx (run through ONNX Runtime on CPU, where it is ~2x slower "
                        "than FP32; deploy/verify-on-device.sh checks the real TensorRT engine)")
    p.add_argument("--parity-images", type=int, default=PARITY_IMAGES,
                   help="wider-train images for the PyTorch-vs-ONNX check (default: %(default)s)")
    p.add_argument("--report", help="report path (default: MODELS/verify-report.json)")
    p.set_defaults(func=run)
