"""What covering licence plates costs at 1280x720 on this CPU: the plate detector per frame, and the daemon's speed
with faces and plates side by side with faces alone.

    nice -n 10 .venv/bin/python -m bench.plates_bench [--repeats 20] [--every 1,3] [--frames 72]

Part 1 times one 720p frame of the plates-oi test clip (export.eval.plates.make_plate_clip) through each model
alone (median of --repeats runs after a warm-up): the face detector as the daemon runs it (video profile), the plate
detector in FP32 and in the CPU INT8 flavour when `python -m export plates-variants` made it, and the plate cover
per plate. Part 2 runs `edgeanon run` as a real subprocess on the same clip to a real mosquitto (bench.daemon_bench),
blur for faces, plates off, then on every N frames (the tracker holds them between). Needs models/plates.onnx and
plates-oi in the shared data.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.daemon_bench import print_table, run_daemon
from devkit.broker import Broker
from edgeanon.anonymize.plates import PlateCover
from edgeanon.defaults import VIDEO_PROFILE
from edgeanon.detector import FaceDetector
from edgeanon.models import DEFAULT_PLATES, MODELS_DIR, default_detector
from edgeanon.plates import PlateDetector
from edgeanon.video import VideoReader
from export.eval.plates import make_plate_clip
from export.paths import shared_data_dir

SPLIT = "holdout"  # plates-oi's test folder


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def frame_costs(clip: Path, repeats: int, threads: int | None) -> list[tuple[str, float, str]]:

    with VideoReader(clip) as reader:
        frame = next(iter(reader)).image
    rows = []
    faces = FaceDetector.from_path(default_detector(), threads=threads, profile=VIDEO_PROFILE)
    rows.append((f"face detector ({default_detector().name}, video profile)",
                 median_ms(lambda: faces.detect(frame), repeats), "the daemon's default"))
    plates = None
    for name in ("plates.onnx", "plates.int8.onnx"):
        path = MODELS_DIR / name
        if not path.is_file():
            rows.append((f"plate detector ({name})", float("nan"), "not made"))
            continue
        detector = PlateDetector.from_path(path, threads=threads)
        found = detector.detect(frame)
        plates = plates or found
        rows.append((f"plate detector ({name}, {detector.side} px letterbox)",
                     median_ms(lambda d=detector: d.detect(frame), repeats), f"{len(found)} plate(s) found"))
    if plates:
        for method in ("blur", "synthetic"):
            cover = PlateCover(method)
            rows.append((f"plate cover, {method}", median_ms(lambda c=cover: c.cover(frame.copy(), plates[:1]),
                                                             repeats), "one plate"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--every", default="1,3", help="plate detector every N frames, daemon rows (default 1,3)")
    parser.add_argument("--frames", type=int, default=72, help="clip frames for the daemon rows (default 72)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-daemon", action="store_true", help="part 1 only")
    args = parser.parse_args(argv)
    if not DEFAULT_PLATES.is_file():
        print(f"error: {DEFAULT_PLATES} not found: python -m export plates --from fastanpr", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="edgeanon-plates-bench-"))
    clip = work / f"plates-{SPLIT}.mp4"
    scenes = max(1, args.frames // 24)
    make_plate_clip(shared_data_dir(), SPLIT, clip, scenes=scenes, frames_per_scene=args.frames // scenes)
    frames = scenes * (args.frames // scenes)
    print(f"\none 1280x720 frame (plates-oi {SPLIT} clip), {os.cpu_count()} CPU cores, ONNX Runtime CPU, "
          f"median of {args.repeats}\n")
    print("| step | ms | note |\n|---|---:|---|")
    for name, ms, note in frame_costs(clip, args.repeats, args.threads):
        print(f"| {name} | {ms:.1f} | {note} |")
    if not args.no_daemon:
        rows = []
        with Broker(work / "broker") as broker:
            rows.append(run_daemon(clip, broker, "blur", 0.0, work, frames, tag="-faces"))
            rows[-1]["name"] = "faces only (blur)"
            for every in (int(v) for v in args.every.split(",") if v):
                extra = f'[plates]\nenabled = true\nevery = {every}\n'
                rows.append(run_daemon(clip, broker, "blur", 0.0, work, frames, extra=extra, tag=f"-plates{every}"))
                rows[-1]["name"] = f"faces + plates every {every} frame(s)"
                rows[-1]["note"] = f"{rows[-1].get('plates')} plates covered"
        print_table(rows, f"plates-oi {SPLIT} photos under a moving camera", frames)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
