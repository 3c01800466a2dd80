"""Side by side on one 720p clip: deface vs `edgeanon anonymize` (blur and gan, defaults) end to end.

    nice -n 10 .venv/bin/python -m bench.anonymize_bench

Measures the whole job of each tool as a subprocess (decode, detect, anonymize, encode): wall time,
CPU time (user + sys of the process and its children, robust to a busy machine), and the leak rate and
collateral (export/eval/leak_metric.py) against the clip's ground truth. Two un-anonymized re-encodes
(PyAV H.264 as edgeanon writes, imageio libx264 as deface writes) check the metric's noise floor: they must
leak ~100 % with ~0 % collateral. Prints a table and writes out/bench/anonymize_bench.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.make_clip import default_data, make_clip
from edgeanon.video import VideoReader, VideoWriter
from export.eval.leak import leak_rate
from export.splits import HOLDOUT, in_split

REPO = Path(__file__).resolve().parent.parent

PY = sys.executable
DEFACE = Path(PY).with_name("deface")


def timed(cmd: list[str], log: Path) -> dict:
    """Run a command to completion; wall seconds and CPU seconds (its whole process tree)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {proc.returncode}); see {log}")
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "command": " ".join(cmd)}


def reencode_edgeanon(src: Path, dst: Path) -> None:
    with VideoReader(src) as reader, VideoWriter(dst, reader.info.fps, (reader.info.width, reader.info.height)) as w:
        for frame in reader:
            w.write(frame.image)


def reencode_imageio(src: Path, dst: Path) -> None:
    """What deface's video I/O does with nothing anonymized (imageio-ffmpeg, libx264)."""
    import imageio

    reader = imageio.get_reader(str(src))
    fps = reader.get_meta_data()["fps"]
    writer = imageio.get_writer(str(dst), format="FFMPEG", mode="I", codec="libx264", fps=fps)
    for frame in reader.iter_data():
        writer.append_data(frame)
    reader.close()
    writer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=default_data(), help="shared data folder (has wider-train/)")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "bench", help="working folder")
    parser.add_argument("--clip", type=Path, default=None, help="clip to use (default: build one in --out)")
    parser.add_argument("--deface-threshold", type=float, default=0.2, help="deface --thresh (its default 0.2)")
    args = parser.parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    clip = args.clip or out / "clip-holdout.mp4"
    truth = clip.with_suffix(".truth.json")
    if not clip.is_file() or not truth.is_file():
        if not (args.data / "wider-train" / "boxes.json").is_file():
            print(f"error: {args.data}/wider-train not found (set EDGEANON_DATA or --data)", file=sys.stderr)
            return 2
        # held-back wider-train images only: the settings were chosen on the other half
        make_clip(args.data, clip, scenes=4, frames_per_scene=40, fps=25.0, seed=0,
                  names_filter=lambda name: in_split(name, HOLDOUT))
    with VideoReader(clip) as reader:
        info = reader.info

    runs = {
        f"deface (thresh {args.deface_threshold:g}, blur)": (
            [str(DEFACE), str(clip), "-o", str(out / "deface.mp4"), "--thresh", str(args.deface_threshold)],
            out / "deface.mp4"),
        "edgeanon blur (defaults)": (
            [PY, "-m", "edgeanon", "anonymize", str(clip), "-o", str(out / "edgeanon_blur.mp4"), "--method", "blur"],
            out / "edgeanon_blur.mp4"),
        "edgeanon gan (defaults)": (
            [PY, "-m", "edgeanon", "anonymize", str(clip), "-o", str(out / "edgeanon_gan.mp4"), "--method", "gan"],
            out / "edgeanon_gan.mp4"),
        "edgeanon blur, half scale": (
            [PY, "-m", "edgeanon", "anonymize", str(clip), "-o", str(out / "edgeanon_half.mp4"), "--method",
             "blur", "--detect-scale", "0.5"],
            out / "edgeanon_half.mp4"),
    }
    results: dict[str, dict] = {}
    for name, (cmd, path) in runs.items():
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results[name] = timed(cmd, out / (path.stem + ".log"))
        results[name]["output"] = str(path)
    print("re-encoding without anonymization (noise floor of the leak metric) ...", file=sys.stderr, flush=True)
    reencode_edgeanon(clip, out / "reencode_edgeanon.mp4")
    reencode_imageio(clip, out / "reencode_imageio.mp4")
    results["no anonymization, edgeanon H.264 re-encode"] = {"output": str(out / "reencode_edgeanon.mp4")}
    results["no anonymization, imageio x264 re-encode"] = {"output": str(out / "reencode_imageio.mp4")}

    for name, r in results.items():
        print(f"leak rate of {name} ...", file=sys.stderr, flush=True)
        leak = leak_rate(Path(r["output"]), clip, truth)
        r["leak"] = leak.to_json()
        with VideoReader(r["output"]) as check:
            r["frames_out"] = check.info.frame_count
            r["size_out"] = [check.info.width, check.info.height]

    base = next(iter(results.values()))
    lines = [f"clip: {clip.name} {info.width}x{info.height}, {info.frame_count} frames at {info.fps:g} fps; "
             "leak = ground-truth faces >= 16 px whose mean local SSIM to the source is >= 0.85; collateral = "
             "pixels outside the faces (grown 1.6x) changed by > 12 grey levels",
             "",
             f"| {'run':<42} | wall s | fps   | CPU s | speedup (wall) | speedup (CPU) | leaked faces | leak rate "
             "| collateral |",
             f"|{'-' * 44}|--------|-------|-------|----------------|---------------|--------------|-----------"
             "|------------|"]
    for name, r in results.items():
        leak = r["leak"]
        if "wall_s" in r:
            fps = info.frame_count / r["wall_s"]
            timing = (f"{r['wall_s']:6.1f} | {fps:5.1f} | {r['cpu_s']:5.1f} | "
                      f"{base['wall_s'] / r['wall_s']:13.2f}x | {base['cpu_s'] / r['cpu_s']:12.2f}x")
        else:
            timing = f"{'-':>6} | {'-':>5} | {'-':>5} | {'-':>14} | {'-':>13}"
        lines.append(f"| {name:<42} | {timing} | {leak['leaked']:5d} / {leak['faces']:<4d} | "
                     f"{leak['leak_rate']:8.2%} | {leak['collateral']:9.2%} |")
    table = "\n".join(lines)
    print(table)
    (out / "anonymize_bench.json").write_text(json.dumps(
        {"clip": str(clip), "frames": info.frame_count, "fps": info.fps, "size": [info.width, info.height],
         "results": results, "table": table}, indent=2))
    print(f"results: {out / 'anonymize_bench.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
