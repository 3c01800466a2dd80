"""Generator speed on ONNX Runtime FP32 CPU: ms per face at several batch sizes, model alone and end to end.

Prints one table: the model call alone (batch 1, 8, 16) and FaceGenerator.replace on a real image
(crop + condition + inference + paste-back), next to the classic blur on the same faces.

    .venv/bin/python -m bench.generator_bench [--model models/generator.onnx] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from edgeanon.anonymize import classic
from edgeanon.anonymize.gan import FaceGenerator
from edgeanon.frames import Detection
from edgeanon.inference.ort import OrtBackend


def timed(fn, repeats: int) -> float:
    fn()
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def synthetic_faces(n: int, rng: np.random.Generator) -> tuple[np.ndarray, list[Detection]]:
    """A 1280x720 scene with n face boxes (64-96 px) and plausible landmarks (the content does not matter)."""
    image = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    faces = []
    for i in range(n):
        s = 64 + 32 * rng.random()
        x, y = 80 + (i % 8) * 140, 120 + (i // 8) * 200
        box = np.array([x, y, x + s * 0.8, y + s], np.float32)
        w, h = s * 0.8, s
        lm = np.array([[x + 0.3 * w, y + 0.4 * h], [x + 0.7 * w, y + 0.4 * h], [x + 0.5 * w, y + 0.6 * h],
                       [x + 0.35 * w, y + 0.8 * h], [x + 0.65 * w, y + 0.8 * h]], np.float32)
        faces.append(Detection(box, 0.9, lm))
    return image, faces


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/generator.onnx"))
    parser.add_argument("--threads", type=int, default=None, help="ORT intra-op threads (default: all cores)")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    backend = OrtBackend(args.model, threads=args.threads, providers=["CPUExecutionProvider"])
    gen = FaceGenerator(backend)
    rng = np.random.default_rng(0)
    print(f"model {args.model} ({args.model.stat().st_size / 2**20:.1f} MiB), ORT FP32 CPU, "
          f"threads {args.threads or 'all'}")
    print(f"{'what':<38} {'batch':>5} {'ms/call':>9} {'ms/face':>9}")
    for batch in (1, 8, 16):
        cond = rng.standard_normal((batch, 9, 128, 128)).astype(np.float32)
        z = rng.standard_normal((batch, gen.latent_size)).astype(np.float32)
        t = timed(lambda c=cond, zz=z: backend.run({"condition": c, "latent": zz}), args.repeats)
        print(f"{'generator model alone':<38} {batch:5d} {t * 1e3:9.2f} {t * 1e3 / batch:9.2f}")
    for batch in (1, 8):
        image, faces = synthetic_faces(batch, rng)
        seeds = list(range(batch))
        t = timed(lambda im=image, f=faces, s=seeds: gen.replace(im.copy(), f, s), args.repeats)
        print(f"{'FaceGenerator.replace (end to end)':<38} {batch:5d} {t * 1e3:9.2f} {t * 1e3 / batch:9.2f}")
        t = timed(lambda im=image, f=faces: [classic.blur(im, d.box) for d in f], args.repeats)
        print(f"{'classic blur (anchor)':<38} {batch:5d} {t * 1e3:9.2f} {t * 1e3 / batch:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
