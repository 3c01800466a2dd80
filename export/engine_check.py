"""`python -m export.engine_check`: compare TensorRT engines with ONNX Runtime on real images (run on the Jetson).

For each engine folder: the detector engine must find the faces the FP32 ONNX model finds (IoU >= 0.5), and
the generator engine must stay close to the FP32 ONNX generator (PSNR on the regenerated region). Prints a
table and writes a JSON report; exits 1 when a check fails. deploy/verify-on-device.sh drives it.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgeanon.inference.backend import Backend
from edgeanon.inference.errors import ModelError

log = logging.getLogger(__name__)

# Minimum share of the FP32 ONNX model's faces the engine must also find, per precision.
MIN_FACE_MATCH = {"fp32": 0.99, "fp16": 0.98, "int8": 0.95}
MIN_GENERATOR_PSNR = {"fp32": 40.0, "fp16": 35.0, "int8": 30.0}


@dataclass
class DetectorComparison:
    images: int
    reference_faces: int
    matched: int
    extra: int
    reference_ms: float
    candidate_ms: float

    @property
    def match_rate(self) -> float:
        return self.matched / self.reference_faces if self.reference_faces else 1.0


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    """Peak signal-to-noise ratio in dB (inf for identical inputs)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def compare_detectors(reference: Backend, candidate: Backend, images: list[np.ndarray],
                      threshold: float | None = None) -> DetectorComparison:
    """Faces of the reference (ONNX Runtime FP32) matched by the candidate (an engine) at IoU >= 0.5."""
    from edgeanon.detector import DEFAULT_THRESHOLD, FaceDetector

    kwargs = {"threshold": threshold or DEFAULT_THRESHOLD}
    ref_det, cand_det = FaceDetector(reference, **kwargs), FaceDetector(candidate, **kwargs)
    total = matched = extra = 0
    ref_ms, cand_ms = [], []
    for image in images:
        t0 = time.perf_counter()
        ref = ref_det.detect(image)
        t1 = time.perf_counter()
        cand = cand_det.detect(image)
        t2 = time.perf_counter()
        ref_ms.append((t1 - t0) * 1000)
        cand_ms.append((t2 - t1) * 1000)
        a = np.array([f.box for f in ref]).reshape(-1, 4)
        b = np.array([f.box for f in cand]).reshape(-1, 4)
        hits = int(((_iou(a, b) >= 0.5).any(axis=1)).sum()) if len(a) else 0
        total += len(a)
        matched += hits
        extra += max(0, len(b) - hits)
    return DetectorComparison(len(images), total, matched, extra, statistics.median(ref_ms or [0.0]),
                              statistics.median(cand_ms or [0.0]))


def compare_generators(reference: Backend, candidate: Backend, conditions: list[np.ndarray]) -> dict:
    """PSNR (dB, 8-bit pixels, regenerated region) of the candidate against the reference generator."""
    from edgeanon.anonymize.gan import latent_for_seed

    values = []
    for seed, condition in enumerate(conditions):
        latent = latent_for_seed(seed, 32)[None]
        names = reference.input_names
        feed = {names[0]: condition[None], names[1]: latent}
        a = reference.run(feed)[reference.output_names[0]][0]
        b = candidate.run(feed)[candidate.output_names[0]][0]
        mask = condition[3] > 0.5
        pa, pb = (np.clip((x + 1.0) * 127.5, 0, 255)[:, mask] for x in (a, b))
        values.append(min(psnr(pa, pb, 255.0), 99.0))
    return {"crops": len(values), "psnr_db_mean": float(np.mean(values)) if values else None,
            "psnr_db_min": float(np.min(values)) if values else None}


def load_images(folder: Path, limit: int) -> list[np.ndarray]:
    from edgeanon.images import list_images, load_image

    if not folder.is_dir():
        raise ModelError(f"{folder}: image folder not found (pass --images DIR with photos of people)")
    paths = list_images([folder])[:limit]
    if not paths:
        raise ModelError(f"{folder}: no images in it")
    return [load_image(p) for p in paths]


def face_conditions_from(detector: Backend, images: list[np.ndarray], limit: int = 32) -> list[np.ndarray]:
    from edgeanon.anonymize import crops
    from edgeanon.detector import FaceDetector

    out = []
    for image in images:
        for face in FaceDetector(detector).detect(image):
            if max(face.width, face.height) >= 32 and crops.landmarks_plausible(face.box, face.landmarks):
                _, crop, mask, heat = crops.crop_inputs(image, face.box, face.landmarks)
                out.append(crops.network_input(crop, mask, heat))
                if len(out) >= limit:
                    return out
    return out


def check_folder(engines: Path, models: Path, images: list[np.ndarray]) -> list[dict]:
    """Every engine in one folder against its FP32 ONNX reference."""
    from edgeanon.inference.ort import OrtBackend
    from edgeanon.inference.trt import TensorRTBackend

    results = []
    detector_onnx = OrtBackend(models / "detector.onnx")
    for engine in sorted(engines.glob("*.engine")):
        model = engine.name.split(".")[0]
        backend = TensorRTBackend(engine)
        precision = backend.manifest.precision if backend.manifest else "fp16"
        row = {"engine": str(engine), "model": model, "precision": precision}
        if model == "detector":
            cmp = compare_detectors(detector_onnx, backend, images)
            row.update(asdict(cmp), match_rate=round(cmp.match_rate, 4), limit=MIN_FACE_MATCH[precision],
                       passed=cmp.match_rate >= MIN_FACE_MATCH[precision])
        elif model == "generator" and (models / "generator.onnx").is_file():
            info = compare_generators(OrtBackend(models / "generator.onnx"), backend,
                                      face_conditions_from(detector_onnx, images))
            ok = info["psnr_db_mean"] is not None and info["psnr_db_mean"] >= MIN_GENERATOR_PSNR[precision]
            row.update(info, limit=MIN_GENERATOR_PSNR[precision], passed=ok)
        results.append(row)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.engine_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="models", help="folder with the ONNX files")
    parser.add_argument("--engines", nargs="+", required=True, help="engine folders (one per precision)")
    parser.add_argument("--images", required=True, help="folder of real photos with faces")
    parser.add_argument("--limit", type=int, default=50, help="images to compare on (default: %(default)s)")
    parser.add_argument("--report", help="write the JSON report here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        images = load_images(Path(args.images), args.limit)
        rows = [row for folder in args.engines for row in check_folder(Path(folder), Path(args.models), images)]
    except ModelError as exc:
        print(f"engine check: {exc}", file=sys.stderr)
        return 2
    print("| engine | precision | check | value | limit | ONNX Runtime ms | engine ms | result |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["model"] == "detector":
            print(f"| {r['engine']} | {r['precision']} | faces matched | {r['match_rate']:.3f} "
                  f"({r['matched']}/{r['reference_faces']}) | {r['limit']} | {r['reference_ms']:.1f} | "
                  f"{r['candidate_ms']:.1f} | {'PASS' if r['passed'] else 'FAIL'} |")
        elif "passed" in r:
            print(f"| {r['engine']} | {r['precision']} | PSNR dB | {r['psnr_db_mean']} | {r['limit']} | - | - | "
                  f"{'PASS' if r['passed'] else 'FAIL'} |")
    report = {"passed": all(r.get("passed", True) for r in rows), "engines": rows}
    if args.report:
        from export.atomic_io import atomic_path

        with atomic_path(args.report) as tmp:
            tmp.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
