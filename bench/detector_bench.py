"""Detection speed: ms per frame for edgeanon's pipeline vs deface's, same frames, same run.

Usage: python -m bench.detector_bench [--data ../shared/data] [--frames 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from edgeanon.defaults import DEFAULT_THRESHOLD
from edgeanon.images import load_image
from edgeanon.models import DEFAULT_DETECTOR, DEFAULT_DETECTOR_INT8
from export.eval.detector import deface_pipeline, edgeanon_pipeline
from export.paths import shared_data_dir


def frames(data: Path, count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(1280x720 frames, full-resolution WIDER frames); astronaut-based frames when the data is absent."""
    paths = sorted((data / "wider-train").glob("*.jpg"))[:count]
    if paths:
        full = [load_image(p) for p in paths]
    else:
        from skimage import data as skdata

        face = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)
        full = [cv2.resize(face, (1024, 1024)) for _ in range(count)]
    hd = [cv2.resize(im, (1280, 720), interpolation=cv2.INTER_AREA) for im in full]
    return hd, full


def time_pipeline(pipeline, images: list[np.ndarray], repeats: int = 1) -> list[float]:
    pipeline(images[0])  # warm-up
    times = []
    for _ in range(repeats):
        for image in images:
            start = time.perf_counter()
            pipeline(image)
            times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="shared data folder (default: $EDGEANON_DATA or ../shared/data)")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    args = parser.parse_args()
    hd, full = frames(shared_data_dir(args.data), args.frames)
    pipelines = {"deface (CenterFace, threshold 0.2)": deface_pipeline()}
    pipelines[f"edgeanon FP32 (threshold {args.threshold})"] = edgeanon_pipeline(DEFAULT_DETECTOR, args.threshold)
    if DEFAULT_DETECTOR_INT8.is_file():
        pipelines[f"edgeanon INT8 (threshold {args.threshold})"] = edgeanon_pipeline(DEFAULT_DETECTOR_INT8,
                                                                                     args.threshold)
    print(f"{len(hd)} frames each; median (p90) ms per frame: preprocess + inference + decode + NMS\n")
    print("| pipeline | 1280x720 | speed-up | full WIDER res | speed-up |")
    print("|---|---|---|---|---|")
    base = None
    for name, pipeline in pipelines.items():
        t_hd, t_full = time_pipeline(pipeline, hd), time_pipeline(pipeline, full)
        med_hd, med_full = statistics.median(t_hd), statistics.median(t_full)
        if base is None:
            base = (med_hd, med_full)
        p90 = lambda t: sorted(t)[int(0.9 * (len(t) - 1))]  # noqa: E731
        print(f"| {name} | {med_hd:.1f} ({p90(t_hd):.1f}) | {base[0] / med_hd:.2f}x | "
              f"{med_full:.1f} ({p90(t_full):.1f}) | {base[1] / med_full:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
