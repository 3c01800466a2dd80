"""Video output side by side on one clip: size, PSNR and encode time of each encoder, on a plain re-encode.

    nice .venv/bin/python -m bench.video_bench                       # builds the 720p clip from wider-train
    nice .venv/bin/python -m bench.video_bench --clip some.mp4 --crf 18,20,23 --preset veryfast,medium

Decodes the clip once (edgeanon.video.VideoReader), then writes the same frames with OpenCV's MPEG-4 Part 2
(what `edgeanon anonymize` wrote before PyAV) and with PyAV's H.264 at each --crf and --preset, and compares
every decoded output frame with its source frame (PSNR over the BGR pixels: mean and worst frame). Also checks
that `edgeanon anonymize CLIP --boxes B.json` with no box gives the default row's size and frame count.
Prints a table and writes out/bench/video_bench.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench.make_clip import default_data, make_clip
from edgeanon.video import DEFAULT_CRF, DEFAULT_PRESET, VideoReader, VideoWriter

REPO = Path(__file__).resolve().parent.parent


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return 99.0 if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def compare(path: Path, source: list[np.ndarray]) -> dict:
    with VideoReader(path) as reader:
        scores = [psnr(frame.image, ref) for frame, ref in zip(reader, source, strict=False)]
        frames = reader.frames_read
    return {"frames": frames, "psnr_mean": round(float(np.mean(scores)), 2), "psnr_min": round(float(min(scores)), 2),
            "bytes": path.stat().st_size}


def write_opencv(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """MPEG-4 Part 2 through OpenCV's FFmpeg, as edgeanon.video wrote before PyAV."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for image in frames:
        writer.write(image)
    writer.release()


def write_pyav(path: Path, frames: list[np.ndarray], fps: float, crf: int, preset: str) -> None:
    h, w = frames[0].shape[:2]
    with VideoWriter(path, fps, (w, h), crf=crf, preset=preset) as writer:
        for image in frames:
            writer.write(image)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clip", type=Path, help="clip to re-encode (default: bench/make_clip.py's, 3 scenes x 40 frames)")
    p.add_argument("--data", type=Path, default=default_data(), help="shared data folder, to build the clip")
    p.add_argument("--crf", default=f"18,{DEFAULT_CRF},23", help="x264 CRF values to compare (comma list)")
    p.add_argument("--preset", default=DEFAULT_PRESET, help=f"x264 presets (comma list; default {DEFAULT_PRESET})")
    p.add_argument("--source", choices=("h264", "mp4v"), default="h264",
                   help="h264: the clip as it is (make_clip: H.264 at CRF 12, like a camera's recording); "
                        "mp4v: first re-encoded with OpenCV's MPEG-4 Part 2, as edgeanon wrote before")
    p.add_argument("--out", type=Path, default=REPO / "out" / "bench" / "video_bench.json")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="edgeanon-video-"))
    clip = args.clip
    if clip is None:
        if not (args.data / "wider-train" / "boxes.json").is_file():
            print(f"error: no --clip and no {args.data}/wider-train to build one from", file=sys.stderr)
            return 2
        clip = work / "clip.mp4"
        make_clip(args.data, clip, scenes=3, frames_per_scene=40, fps=25.0, seed=0)
    if args.source == "mp4v":  # the clip as the former edgeanon output: MPEG-4 Part 2 through OpenCV
        with VideoReader(clip) as reader:
            fps, frames = reader.info.fps, [frame.image for frame in reader]
        clip = work / "clip-mp4v.mp4"
        write_opencv(clip, frames, fps)
    with VideoReader(clip) as reader:
        info = reader.info
        source = [frame.image for frame in reader]
    print(f"{clip}: {len(source)} frames {info.width}x{info.height} at {info.fps:g} fps, {clip.stat().st_size} bytes")

    rows = []
    start = time.perf_counter()
    write_opencv(work / "opencv.mp4", source, info.fps)
    rows.append({"encoder": "OpenCV mpeg4 (mp4v)", "seconds": round(time.perf_counter() - start, 2),
                 **compare(work / "opencv.mp4", source)})
    for preset in args.preset.split(","):
        for crf in (int(v) for v in args.crf.split(",")):
            out = work / f"h264-{preset}-{crf}.mp4"
            start = time.perf_counter()
            write_pyav(out, source, info.fps, crf, preset)
            seconds = round(time.perf_counter() - start, 2)
            rows.append({"encoder": f"PyAV libx264 crf {crf} {preset}", "seconds": seconds, **compare(out, source)})

    # The real command on the same clip: no box given, so only the re-encode changes pixels.
    boxes = work / "boxes.json"
    boxes.write_text(json.dumps({clip.name: []}))
    cli_out = work / "cli.mp4"
    subprocess.run([sys.executable, "-m", "edgeanon", "anonymize", str(clip), "-o", str(cli_out), "--boxes",
                    str(boxes)], check=True, cwd=REPO, capture_output=True)
    rows.append({"encoder": "edgeanon anonymize --boxes (no box)", "seconds": None, **compare(cli_out, source)})

    base = rows[0]["bytes"]
    print(f"\n{'encoder':40s} {'MB':>6s} {'vs mp4v':>8s} {'PSNR mean':>10s} {'PSNR min':>9s} {'frames':>7s} "
          f"{'encode s':>9s}")
    for r in rows:
        r["size_vs_mp4v"] = round(r["bytes"] / base, 3)
        secs = "-" if r["seconds"] is None else f"{r['seconds']:.2f}"
        print(f"{r['encoder']:40s} {r['bytes'] / 1e6:6.2f} {r['size_vs_mp4v']:7.0%} {r['psnr_mean']:10.2f} "
              f"{r['psnr_min']:9.2f} {r['frames']:7d} {secs:>9s}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"clip": str(clip), "frames": len(source), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
