"""`python -m export all --out DIR --data DATA`: onnx, fp16, quantize and verify in one go, with report.json.

An INT8 detector whose gates fail is renamed MODEL.int8.rejected.onnx, so the runtime (which prefers
detector.int8.onnx on CPU when present) never picks up a model that loses faces.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

from export.atomic_io import atomic_path
from export.paths import CENTERFACE_WEIGHTS, MODELS_DIR, shared_data_dir
from export.quantize import QuantizeError

log = logging.getLogger(__name__)


def reject_failed(out_dir: Path, report: dict) -> list[str]:
    """Rename INT8 files whose gates failed so no runtime loads them; returns the new names."""
    rejected = []
    for gate in report["gates"]:
        words = gate["name"].split()
        if gate["passed"] is not False or len(words) < 2 or words[1] not in ("int8", "int8-trt"):
            continue
        path = out_dir / f"{words[0]}.{words[1]}.onnx"
        if path.is_file():
            target = path.with_name(f"{words[0]}.{words[1]}.rejected.onnx")
            os.replace(path, target)
            rejected.append(str(target))
    return rejected


def run_all(out_dir: Path, data_dir: Path, weights: Path = CENTERFACE_WEIGHTS, generator_weights: Path | None = None,
            calib_images: int = 64, limit: int | None = None, trt_flavour: bool = False) -> dict:
    """Every step into `out_dir`; returns the combined report."""
    from export.fp16 import convert_fp16, fp16_path
    from export.onnx_export import export_detector_onnx
    from export.quantize import calibration_images, quantize_detector, quantize_generator
    from export.verify import verify

    start = time.perf_counter()
    calib_dir = data_dir / "wider-calib"
    calibration_images(calib_dir, 1)  # fail before the slow steps when the data is missing
    steps: dict = {}
    generator_weights = generator_weights or (MODELS_DIR / "generator.pt")

    log.info("step 1/4: ONNX export")
    models = {"detector": export_detector_onnx(weights, out_dir / "detector.onnx")}
    committed = MODELS_DIR / "generator.onnx"
    if generator_weights.is_file():
        from export.onnx_export import export_generator

        models["generator"] = export_generator(generator_weights, out_dir / "generator.onnx")
    elif committed.is_file():
        log.warning("%s not found: using the committed %s (its PyTorch parity gate is skipped)",
                    generator_weights, committed)
        target = out_dir / "generator.onnx"
        if target.resolve() != committed.resolve():
            with atomic_path(target) as tmp:
                shutil.copyfile(committed, tmp)
        models["generator"] = target
    else:
        log.warning("%s not found: generator skipped", generator_weights)
    steps["onnx"] = {k: str(v) for k, v in models.items()}

    log.info("step 2/4: FP16 variants")
    steps["fp16"] = {k: str(convert_fp16(v, fp16_path(v))) for k, v in models.items()}

    log.info("step 3/4: INT8 quantization")
    results = quantize_detector(models["detector"], calib_dir, limit=calib_images)
    if "generator" in models:
        results += quantize_generator(models["generator"], models["detector"], calib_dir, limit=calib_images)
    steps["quantize"] = [asdict(r) for r in results]

    log.info("step 4/4: verify gates")
    report = verify(out_dir, data_dir, limit, weights, generator_weights, trt_flavour=trt_flavour)
    steps["verify"] = report
    rejected = reject_failed(out_dir, report)
    return {"passed": report["passed"], "failed": report["failed"], "rejected": rejected, "steps": steps,
            "seconds": round(time.perf_counter() - start, 1)}


def run(args: argparse.Namespace) -> int:
    out_dir = Path(args.out)
    try:
        report = run_all(out_dir, shared_data_dir(args.data), Path(args.weights),
                         Path(args.generator_weights) if args.generator_weights else None,
                         args.calib_images, args.limit or None, args.trt_flavour)
    except (QuantizeError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    with atomic_path(out_dir / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    from export.verify import print_gates

    print_gates(report["steps"]["verify"]["gates"])
    for path in report["rejected"]:
        print(f"REJECTED {path}: its gate failed, so the runtime will not use it", file=sys.stderr)
    print(f"{'all gates passed' if report['passed'] else 'GATES FAILED'} in {report['seconds']:.0f} s; "
          f"report: {out_dir / 'report.json'}", file=sys.stderr)
    return 0 if report["passed"] else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "all", help="onnx + fp16 + quantize + verify into one folder, with report.json",
        description="Export detector (and generator, when its weights exist) to ONNX, write the FP16 and both "
                    "INT8 flavours, run the gates, and write report.json. Produces detector.onnx, "
                    "detector.fp16.onnx, detector.int8.onnx, detector.int8-trt.onnx and the same for the "
                    "generator. An INT8 model whose gate fails is renamed *.int8.rejected.onnx.",
        epilog="example: python -m export all --out models --data ../shared/data")
    p.add_argument("--out", default=str(MODELS_DIR), help="output folder (default: %(default)s)")
    p.add_argument("--data", help="shared data folder (default: $EDGEANON_DATA or ../shared/data)")
    p.add_argument("--weights", default=str(CENTERFACE_WEIGHTS), help="CenterFace PyTorch weights")
    p.add_argument("--generator-weights", help="generator state dict (default: models/generator.pt)")
    p.add_argument("--calib-images", type=int, default=64, help="calibration inputs per model (default: %(default)s)")
    p.add_argument("--limit", type=int, default=0, help="verify on the first N wider-train images (default: all)")
    p.add_argument("--trt-flavour", action="store_true", help="also gate detector.int8-trt.onnx (slow on CPU)")
    p.set_defaults(func=run)
