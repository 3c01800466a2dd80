"""End-to-end daemon benchmark at 1280x720: frames/s, latency p50/p99 and peak RSS, side by side with deface.

    nice -n 10 .venv/bin/python -m bench.daemon_bench [--frames 60] [--methods blur,gan] [--scales 0,0.5]

Each row runs `edgeanon run` as a real subprocess on a 720p clip (two moving faces, and WIDER FACE
crowd scenes when ../shared/data is there) publishing to a real mosquitto, with a
subscriber counting what arrived. fps is end to end (first frame in to last frame published), latency
is per frame from source to publish queue, RSS is the daemon's peak (VmHWM). The anchor row is deface
(CenterFace on ONNX Runtime, blur, offline file to file) on the same clip. gan rows run only when
models/generator.onnx exists.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devkit.broker import Broker
from devkit.daemon_kit import Collector, make_clip
from edgeanon.models import DEFAULT_GENERATOR

REPO = Path(__file__).resolve().parent.parent

SIZE = (1280, 720)


def build_clip(kind: str, out: Path, frames: int) -> tuple[Path, str] | None:
    """kind "crowd": WIDER FACE crowd scenes (needs ../shared/data); "few": two moving sample faces."""
    if kind == "crowd":
        data = Path(os.environ.get("EDGEANON_DATA", REPO.parent / "shared" / "data"))
        if not (data / "wider-train" / "boxes.json").is_file():
            print(f"note: {data}/wider-train not found: crowd clip skipped", file=sys.stderr)
            return None
        from bench.make_clip import make_clip as crowd_clip

        scenes = max(1, frames // 20)
        crowd_clip(data, out, scenes, frames // scenes, 25.0, seed=0, size=SIZE)
        return out, f"WIDER FACE crowd scenes ({scenes})"
    make_clip(out, frames=frames, size=SIZE, fps=25.0)
    return out, "two moving faces (scikit-image astronaut + one WIDER face when present)"


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_daemon(clip: Path, broker: Broker, method: str, scale: float, workdir: Path, frames: int,
               generator: Path | None = None, extra: str = "", tag: str = "") -> dict:
    """One `edgeanon run` over the clip; `extra` is more config (a whole table, e.g. [plates]), `tag` names it."""
    camera = f"bench-{method}-{str(scale).replace('.', '')}{tag}"
    config = workdir / f"{camera}.toml"
    config.write_text(
        f'camera_id = "{camera}"\n[source]\nuri = "file://{clip}"\n'
        f'[model]\nmethod = "{method}"\ninput_scale = {scale}\n'
        + (f'generator = "{generator}"\n' if generator else "")
        + f'[pipeline]\ndeadline_ms = 60000.0\n'
        f'stats_interval_s = 5.0\n[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nqueue_size = 64\n' + extra)
    collector = Collector(broker.port, camera=camera)
    log = workdir / f"{camera}.log"
    peak = 0.0
    with open(log, "wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "edgeanon", "run", "--config", str(config)],
                                cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            peak = max(peak, peak_rss_mb(proc.pid) or 0.0)
            time.sleep(0.2)
    received = collector.finish(settle=0.0)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:]
        return {"name": f"edgeanon run {method} x{scale}", "error": tail[0] if tail else f"exit {proc.returncode}"}
    final = received.final()
    fallbacks = final["fallbacks"]
    return {
        "name": f"edgeanon run, {method}, detect at {'auto' if scale == 0 else f'x{scale}'}",
        "fps": final["fps_avg"],
        "p50": final["latency_ms"]["p50"],
        "p99": final["latency_ms"]["p99"],
        "rss": peak,
        "arrived": f"{len(collector.received.frames)}/{frames}",
        "faces": final["faces"],
        "plates": final.get("plates"),
        "note": gan_note(fallbacks, generator) if method == "gan" else "",
    }


def gan_note(fallbacks: int, generator: Path | None) -> str:
    note = f"{fallbacks} faces fell back to blur"
    if generator is not None and generator.resolve() != DEFAULT_GENERATOR.resolve():
        note += f"; generator {generator.name}"
    return note


def run_deface(clip: Path, workdir: Path, frames: int) -> dict:
    deface = shutil.which("deface") or str(Path(sys.executable).parent / "deface")
    if not Path(deface).exists():
        return {"name": "deface (anchor)", "error": "deface not installed"}
    out = workdir / "deface.mp4"
    started = time.monotonic()
    peak = 0.0
    proc = subprocess.Popen([deface, str(clip), "-o", str(out), "--replacewith", "blur", "--backend", "onnxrt",
                             "--ffmpeg-config", '{"codec": "libx264"}'],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while proc.poll() is None:
        peak = max(peak, peak_rss_mb(proc.pid) or 0.0)
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        err = proc.stderr.read().decode(errors="replace").strip().splitlines()
        return {"name": "deface 1.5 (anchor)", "error": err[-1] if err else f"exit {proc.returncode}"}
    return {"name": "deface 1.5, blur, file to file (anchor)", "fps": frames / elapsed, "p50": None, "p99": None,
            "rss": peak, "arrived": "-", "faces": None, "note": "wall time incl. model load"}


def print_table(rows: list[dict], clip_desc: str, frames: int) -> None:
    print(f"\n{frames} frames of 1280x720 ({clip_desc}), {os.cpu_count()} CPU cores, ONNX Runtime CPU\n")
    header = f"| {'pipeline':<40} | {'frames/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} | {'peak RSS MB':>11} | " \
             f"{'arrived':>7} | {'faces':>5} | note"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|------|")
    for r in rows:
        if "error" in r:
            print(f"| {r['name']:<40} | {'-':>8} | {'-':>7} | {'-':>7} | {'-':>11} | {'-':>7} | {'-':>5} | "
                  f"failed: {r['error']}")
            continue

        def num(v, fmt):
            width = int(fmt.split(".")[0].rstrip("d") or 0)
            return format(v, fmt) if v is not None else "-".rjust(width)

        print(f"| {r['name']:<40} | {num(r['fps'], '8.2f')} | {num(r['p50'], '7.0f')} | {num(r['p99'], '7.0f')} | "
              f"{num(r['rss'], '11.0f')} | {r['arrived']:>7} | {num(r['faces'], '5d')} | {r['note']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=60, help="clip length (default 60)")
    parser.add_argument("--methods", default="blur,gan", help="comma-separated methods (default blur,gan)")
    parser.add_argument("--scales", default="0,0.5",
                        help="detector input scales, 0 = automatic (default 0,0.5)")
    parser.add_argument("--clips", default="few,crowd", help="clips to run: few (2 faces), crowd (default both)")
    parser.add_argument("--no-anchor", action="store_true", help="skip the deface row")
    parser.add_argument("--generator", type=Path, help="generator model for gan rows (default models/generator.onnx)")
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    generator = args.generator or DEFAULT_GENERATOR
    if "gan" in methods and not generator.is_file():
        print(f"note: {generator} not found: gan rows skipped", file=sys.stderr)
        methods.remove("gan")
    scales = [float(s) for s in args.scales.split(",") if s]
    work = Path(tempfile.mkdtemp(prefix="edgeanon-bench-"))
    from tqdm import tqdm

    with Broker(work / "broker") as broker:
        for kind in [k for k in args.clips.split(",") if k]:
            built = build_clip(kind, work / f"{kind}.avi", args.frames)
            if built is None:
                continue
            clip, desc = built
            rows = [] if args.no_anchor else [run_deface(clip, work, args.frames)]
            for method, scale in tqdm([(m, s) for m in methods for s in scales], desc=f"{kind} runs", unit="run"):
                rows.append(run_daemon(clip, broker, method, scale, work, args.frames, generator.resolve()))
            print_table(rows, desc, args.frames)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
