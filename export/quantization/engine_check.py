"""`python -m export.quantization.engine_check`: each TensorRT engine against ONNX Runtime on real images
(Polygraphy).

For every engine in the given folders, the ONNX model it was built from (its manifest's `onnx_file`: the QDQ
model for INT8, the FP16 model for FP16) runs on ONNX Runtime and the engine on TensorRT, both as Polygraphy
runners fed the same real inputs: wider-train photos through the runtime's own preprocessing at the input
size the daemon uses (the profile's optimum), and face crops cut by the runtime for the generator. Polygraphy's
Comparator compares every output with per-precision tolerances on the mean error (CompareFunc.simple). One
table; exit 1 when an engine fails. deploy/verify-on-device.sh drives it. Polygraphy and TensorRT are only
needed on the device; the input preparation, tolerances and table are plain functions tested anywhere.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from edgeanon.anonymize import crops
from edgeanon.anonymize.gan import latent_for_seed
from edgeanon.atomic import atomic_path
from edgeanon.defaults import Scaling
from edgeanon.detector import FaceDetector
from edgeanon.images import list_images, load_image
from edgeanon.inference.errors import ModelError
from edgeanon.inference.manifest import model_name, read_manifest
from edgeanon.inference.ort import OrtBackend

log = logging.getLogger(__name__)

# Per precision: (atol, rtol) on the mean absolute / relative error of each output (Polygraphy passes an
# output when either holds). INT8 engines are compared with the same Q/DQ graph on ONNX Runtime, so only
# kernel rounding differs; FP16 with the FP16 ONNX model.
TOLERANCES = {"fp32": (1e-4, 1e-3), "fp16": (5e-3, 5e-2), "int8": (2e-2, 1e-1)}
ERROR_STAT = "mean"
GENERATOR_CROPS = 16


def tolerance(precision: str) -> tuple[float, float]:
    """(atol, rtol) for an engine's precision (ModelError for an unknown one)."""
    try:
        return TOLERANCES[precision]
    except KeyError:
        raise ModelError(f"precision {precision!r} has no tolerance (known: {', '.join(TOLERANCES)})") from None


def fit_blob(blob: np.ndarray, height: int, width: int) -> np.ndarray:
    """Place an NCHW blob top-left in a zero one of (height, width), cropping what does not fit (the runtime pads
    bottom/right the same way)."""
    out = np.zeros((*blob.shape[:2], height, width), dtype=np.float32)
    h, w = min(blob.shape[2], height), min(blob.shape[3], width)
    out[:, :, :h, :w] = blob[:, :, :h, :w]
    return out


def detector_inputs(images: Sequence[np.ndarray], input_name: str, height: int, width: int) -> list[dict]:
    """One feed per photo: the runtime's preprocessing, scaled toward the profile's optimum, fitted to it."""
    class _Shape:  # FaceDetector only reads input_names from its backend to prepare inputs
        input_names = [input_name]

    detector = FaceDetector(_Shape(), scaling=Scaling(max(height, width), 0.05, 4.0))
    return [{input_name: fit_blob(detector.prepare(image).blob, height, width)} for image in images]


def generator_inputs(conditions: Sequence[np.ndarray], names: Sequence[str], batch: int,
                     latent_size: int = 32) -> list[dict]:
    """Feeds of `batch` face crops each, with the runtime's seeded latents."""
    feeds = []
    for start in range(0, len(conditions) - batch + 1, batch):
        chunk = np.stack(conditions[start:start + batch]).astype(np.float32)
        latents = np.stack([latent_for_seed(start + i, latent_size) for i in range(batch)]).astype(np.float32)
        feeds.append({names[0]: chunk, names[1]: latents})
    return feeds


def compare_runners(candidate, reference, feeds: list[dict], precision: str) -> dict:
    """Polygraphy: run both runners on the feeds and compare every output; returns pass/fail and the errors."""
    # Polygraphy (and TensorRT under its runner) may be absent here: main() says so in one line.
    from polygraphy.comparator import Comparator

    atol, rtol = tolerance(precision)
    results = Comparator.run([candidate, reference], data_loader=feeds)
    accuracy = Comparator.compare_accuracy(results, compare_func=_simple_compare(atol, rtol))
    worst: dict[str, float] = {}
    # Polygraphy 0.53 returns one AccuracyResult per comparison function, older versions a single one; each maps
    # a runner pair to per-iteration {output: OutputCompareResult}.
    for per_function in [accuracy] if hasattr(accuracy, "values") else accuracy:
        for iterations in per_function.values():
            for outputs in iterations:
                for name, result in outputs.items():
                    value = getattr(result, f"{ERROR_STAT}_absdiff", None)
                    if value is not None:
                        worst[name] = max(worst.get(name, 0.0), float(value))
    return {"passed": bool(accuracy), "inputs": len(feeds), "atol": atol, "rtol": rtol,
            f"{ERROR_STAT}_absdiff": worst}


def _simple_compare(atol: float, rtol: float):
    """Polygraphy's tolerance comparison on ERROR_STAT (SimpleCompareFunc since 0.53, CompareFunc.simple before)."""
    try:
        from polygraphy.comparator import SimpleCompareFunc
    except ImportError:  # Polygraphy < 0.53 (older JetPack pins)
        from polygraphy.comparator import CompareFunc

        return CompareFunc.simple(atol=atol, rtol=rtol, check_error_stat=ERROR_STAT)
    return SimpleCompareFunc(atol=atol, rtol=rtol, check_error_stat=ERROR_STAT)


def engine_runner(engine: Path):
    """Polygraphy's TensorRT runner over a built engine file (device only)."""
    from polygraphy.backend.common import BytesFromPath
    from polygraphy.backend.trt import EngineFromBytes, TrtRunner

    return TrtRunner(EngineFromBytes(BytesFromPath(str(engine))), name=f"tensorrt:{engine.name}")


def onnxrt_runner(onnx_path: Path):
    """Polygraphy's ONNX Runtime runner (CPU) over an ONNX file."""
    from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx

    return OnnxrtRunner(SessionFromOnnx(str(onnx_path), providers=["cpu"]), name=f"onnxrt:{onnx_path.name}")


def load_images(folder: Path, limit: int) -> list[np.ndarray]:
    if not folder.is_dir():
        raise ModelError(f"{folder}: image folder not found (pass --images DIR with photos of people)")
    paths = list_images([folder])[:limit]
    if not paths:
        raise ModelError(f"{folder}: no images in it")
    return [load_image(p) for p in paths]


def face_conditions_from(detector_onnx: Path, images: Sequence[np.ndarray], limit: int) -> list[np.ndarray]:
    """Generator conditions for the faces the FP32 detector finds, cut with the runtime's crop geometry."""
    out = []
    with OrtBackend(detector_onnx) as backend:
        detector = FaceDetector(backend)
        for image in images:
            for face in detector.detect(image):
                if max(face.width, face.height) >= 32 and crops.landmarks_plausible(face.box, face.landmarks):
                    _, crop, mask, heat = crops.crop_inputs(image, face.box, face.landmarks)
                    out.append(crops.network_input(crop, mask, heat))
                    if len(out) >= limit:
                        return out
    return out


def check_engine_file(engine: Path, images: Sequence[np.ndarray], models: Path,
                      runner_for_engine: Callable = engine_runner) -> dict:
    """One engine against its source ONNX model on ONNX Runtime (the manifest says which, and the shapes)."""
    manifest = read_manifest(engine)
    source = engine.parent / manifest.onnx_file
    if not source.is_file():
        raise ModelError(f"{engine}: its source model {source} is missing (the manifest names it)")
    model = model_name(engine)
    (input_name, profile), *rest = manifest.profiles.items()
    opt = profile["opt"]
    if model == "detector":
        feeds = detector_inputs(images, input_name, opt[2], opt[3])
    else:
        conditions = face_conditions_from(models / "detector.onnx", images, GENERATOR_CROPS)
        feeds = generator_inputs(conditions, [input_name, *(name for name, _ in rest)], opt[0])
    if not feeds:
        raise ModelError(f"{engine}: no inputs to compare on (no faces found for the generator?)")
    result = compare_runners(runner_for_engine(engine), onnxrt_runner(source), feeds, manifest.precision)
    return {"engine": str(engine), "model": model, "precision": manifest.precision, "reference": source.name,
            "input_shape": opt, **result}


def format_table(rows: Sequence[dict]) -> str:
    """One markdown table: an engine per row, the worst output's mean |diff| against its tolerance."""
    lines = ["| engine | precision | reference (ONNX Runtime) | inputs | input shape | worst output | "
             f"{ERROR_STAT} abs diff | atol / rtol | result |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        diffs = r.get(f"{ERROR_STAT}_absdiff") or {"-": float("nan")}
        name, value = max(diffs.items(), key=lambda kv: kv[1])
        lines.append(f"| {r['engine']} | {r['precision']} | {r['reference']} | {r['inputs']} | "
                     f"{'x'.join(map(str, r['input_shape']))} | {name} | {value:.3g} | {r['atol']:g} / {r['rtol']:g} "
                     f"| {'PASS' if r['passed'] else 'FAIL'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.quantization.engine_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="models", help="folder with detector.onnx (generator face crops)")
    parser.add_argument("--engines", nargs="+", required=True, help="engine folders (one per precision)")
    parser.add_argument("--images", required=True, help="folder of real photos with faces")
    parser.add_argument("--limit", type=int, default=20, help="photos to compare on (default: %(default)s)")
    parser.add_argument("--report", help="write the JSON report here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        images = load_images(Path(args.images), args.limit)
        engines = [e for folder in args.engines for e in sorted(Path(folder).glob("*.engine"))]
        if not engines:
            raise ModelError(f"no *.engine files in {' '.join(args.engines)}")
        rows = [check_engine_file(engine, images, Path(args.models)) for engine in engines]
    except ModelError as exc:
        print(f"engine check: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"engine check: needs {exc.name} (pip install polygraphy; TensorRT comes with JetPack)",
              file=sys.stderr)
        return 2
    print(format_table(rows))
    report = {"passed": all(r["passed"] for r in rows), "engines": rows}
    if args.report:
        with atomic_path(args.report) as tmp:
            tmp.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
