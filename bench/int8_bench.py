"""INT8 vs FP32 detector on ONNX Runtime CPU at 1280x720: ms per frame, side by side, same frames, same run.

Every frame goes through each model in turn (A, B, C, A, B, C, ...) so machine load hits them alike.
Usage: python -m bench.int8_bench [--models models] [--data ../shared/data] [--frames 20] [--rounds 3] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from edgeanon.detector import FaceDetector
from edgeanon.images import load_image
from edgeanon.inference.ort import OrtBackend
from export.paths import MODELS_DIR, shared_data_dir

VARIANTS = (
    ("FP32", "detector.onnx"),
    ("INT8 CPU (uint8 act.)", "detector.int8.onnx"),
    ("INT8 TensorRT flavour (int8 sym.)", "detector.int8-trt.onnx"),
)


def hd_frames(data: Path, count: int) -> list[np.ndarray]:
    """1280x720 frames from wider-train (astronaut frames when the data is absent)."""
    paths = sorted((data / "wider-train").glob("*.jpg"))[:count]
    if paths:
        images = [load_image(p) for p in paths]
    else:
        from skimage import data as skdata

        images = [cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)] * count
    return [cv2.resize(im, (1280, 720), interpolation=cv2.INTER_AREA) for im in images]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=str(MODELS_DIR), help="folder with detector*.onnx")
    parser.add_argument("--data", help="shared data folder (default: $EDGEANON_DATA or ../shared/data)")
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: all cores)")
    parser.add_argument("--no-trt-flavour", action="store_true", help="skip the int8-trt model (slow on CPU)")
    args = parser.parse_args()

    frames = hd_frames(shared_data_dir(args.data), args.frames)
    detectors = {}
    for name, file in VARIANTS:
        path = Path(args.models) / file
        if not path.is_file() or (args.no_trt_flavour and "TensorRT" in name):
            continue
        detectors[name] = FaceDetector(OrtBackend(path, threads=args.threads))
    if "FP32" not in detectors:
        print(f"{Path(args.models) / 'detector.onnx'} not found", file=sys.stderr)
        return 2
    model_ms = {name: [] for name in detectors}
    total_ms = {name: [] for name in detectors}
    faces = {name: 0 for name in detectors}
    for detector in detectors.values():
        detector.detect(frames[0])  # warm-up
    for _ in range(args.rounds):
        for frame in frames:
            for name, detector in detectors.items():
                start = time.perf_counter()
                prepared = detector.prepare(frame)
                mid = time.perf_counter()
                maps = detector.infer(prepared)
                end = time.perf_counter()
                faces[name] += len(detector.decode(maps, prepared))
                done = time.perf_counter()
                model_ms[name].append((end - mid) * 1000)
                total_ms[name].append((done - start) * 1000)

    base_model = statistics.median(model_ms["FP32"])
    base_total = statistics.median(total_ms["FP32"])
    threads = args.threads or "all"
    print(f"ONNX Runtime CPU, {threads} threads, 1280x720 frames (input 1280x736), {len(frames)} frames x "
          f"{args.rounds} rounds, interleaved per frame; median ms per frame\n")
    print("| detector | inference ms | speed-up | whole detect() ms | speed-up | faces found |")
    print("|---|---|---|---|---|---|")
    for name in detectors:
        m, t = statistics.median(model_ms[name]), statistics.median(total_ms[name])
        print(f"| {name} | {m:.1f} | {base_model / m:.2f}x | {t:.1f} | {base_total / t:.2f}x | "
              f"{faces[name] // args.rounds} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
