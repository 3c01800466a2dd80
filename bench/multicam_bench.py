"""N cameras on one device: one daemon with N [[cameras]] against N daemons of one camera each, in one run.

    .venv/bin/python -m bench.multicam_bench [--cameras 1,2,4] [--seconds 20] [--method gan] [--repeat R]

Every camera is a 1280x720 clip of moving faces (devkit.daemon_kit.make_clip) read as `file://` paced in
real time, so each behaves as a live camera: frames whose time passed while the daemon was busy are
skipped. Both ways run the project's defaults (method, deadline, detection scale timed at start-up: for
the whole load in one process, for its own camera in each of the N) and publish to one real mosquitto; a
subscriber counts what arrives. Per way: frames delivered per camera per second of clip (every delivered
frame was redacted within its deadline: a late one is dropped), the slowest camera's p99 latency (source
to publish queue, from the events), frames dropped (skipped at the source, late, failed, not publishable),
the total peak RSS (VmHWM, summed over the processes) and the CPU seconds they used.

On a machine that other work shares, the CPU each way gets moves the result more than the way does, so the
two ways run interleaved and repeated: with `--repeat R`, R pairs per N in the order A B, B A, A B, ... (one
process first, then N; then N first ...). Per pair: the ratio of frames delivered within the deadline
(one / each); over the pairs: their mean with a 95% t interval, and CPU-seconds per delivered frame each way.
The load average (1 min) at the start and end of every run is printed beside it. N processes start N
interpreters, load the models N times and time the detector N times, and a camera whose process is up paces
its clip while the others still start; so the ratio is also given for the frames after the first `--warmup`
seconds of every clip (frame_index >= warmup x 25), when every process of the run is streaming: the steady
state of a device that runs for days.
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

import numpy as np
from scipy import stats

from devkit.broker import Broker
from devkit.daemon_kit import Collector, make_clip
from edgeanon.config import Config
from edgeanon.inference.backend import Backend

REPO = Path(__file__).resolve().parent.parent
SIZE = (1280, 720)
FPS = 25.0
TICKS = os.sysconf("SC_CLK_TCK")
DEADLINE_MS = Config().pipeline.deadline_ms  # the default both ways run with


def usage(pid: int) -> tuple[float, float] | None:
    """(peak RSS MB, CPU seconds) of a running process, or None once it is gone or a zombie (no memory left to
    read: its last reading stands)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    hwm = next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")), None)
    if hwm is None:
        return None
    return hwm, (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def joined_pays(backend: Backend, sample: dict[str, np.ndarray], rows: int, runs: int = 3,
                margin: float = 0.9) -> tuple[bool, float, float]:
    """Whether one call of `rows` copies of `sample` (one row) costs at most `margin` of `rows` single calls here,
    with the two per-row timings in ms (medians of `runs`, after a warm-up of each)."""
    if rows < 2:
        return False, 0.0, 0.0
    joined = {n: np.concatenate([v] * rows) for n, v in sample.items()}
    single_ms, joined_ms = [], []
    for i in range(runs + 1):
        start = time.perf_counter()
        for _ in range(rows):
            backend.run(sample)
        middle = time.perf_counter()
        backend.run(joined)
        end = time.perf_counter()
        if i:
            single_ms.append((middle - start) * 1000.0 / rows)
            joined_ms.append((end - middle) * 1000.0 / rows)
    single, per_row = float(np.median(single_ms)), float(np.median(joined_ms))
    return per_row <= margin * single, single, per_row


def joined_line(rows: int) -> str:
    """The default detector on a 1280x720 frame: single calls against one call joined by `rows` (why ONNX Runtime
    on the CPU gets one call per request, edgeanon.batching.batch_limit)."""
    from edgeanon.defaults import VIDEO_PROFILE
    from edgeanon.detector import FaceDetector
    from edgeanon.models import default_detector

    detector = FaceDetector.from_path(default_detector(), profile=VIDEO_PROFILE)
    blob = detector.prepare(np.zeros((SIZE[1], SIZE[0], 3), np.uint8)).blob.copy()
    pays, single, joined = joined_pays(detector.backend, {detector.input_name: blob}, rows)
    return (f"{default_detector().name} at {blob.shape[3]}x{blob.shape[2]}, ONNX Runtime CPU: {single:.0f} ms a frame "
            f"in single calls, {joined:.0f} ms a frame joined by {rows} ({'pays' if pays else 'does not pay'})")


def camera_table(camera: str, clip: Path) -> str:
    return f'[[cameras]]\ncamera_id = "{camera}"\n[cameras.source]\nuri = "file://{clip}"\n'


def top_level(port: int, method: str) -> str:
    return (f'[model]\nmethod = "{method}"\n[source]\nrealtime = true\nwidth = {SIZE[0]}\nheight = {SIZE[1]}\n'
            f'[pipeline]\nstats_interval_s = 5.0\n[mqtt]\nhost = "127.0.0.1"\nport = {port}\n')


def run_way(way: str, clips: list[Path], broker: Broker, method: str, workdir: Path, tag: str,
            warmup: float = 0.0) -> dict:
    """Run the N cameras one way ("one" process or "each" its own) to the end of their clips."""
    cameras = [f"{tag}-{way}-{i}" for i in range(len(clips))]
    if way == "one":
        configs = [top_level(broker.port, method) + "".join(camera_table(c, p) for c, p in zip(cameras, clips))]
    else:
        configs = [f'camera_id = "{c}"\n' + top_level(broker.port, method).replace("[source]\n", f'[source]\nuri = '
                                                                                               f'"file://{p}"\n', 1)
                   for c, p in zip(cameras, clips)]
    collector = Collector(broker.port, camera="+")
    procs, logs, seen = [], [], {}
    load_start = os.getloadavg()[0]
    for n, text in enumerate(configs):
        path = workdir / f"{tag}-{way}-{n}.toml"
        path.write_text(text)
        log = workdir / f"{tag}-{way}-{n}.log"
        logs.append(log)
        procs.append(subprocess.Popen([sys.executable, "-m", "edgeanon", "run", "--config", str(path)], cwd=REPO,
                                      stdout=open(log, "wb"), stderr=subprocess.STDOUT))  # noqa: SIM115
    while any(p.poll() is None for p in procs):
        for p in procs:
            got = usage(p.pid)
            if got is not None:
                old = seen.get(p.pid, (0.0, 0.0))
                seen[p.pid] = (max(old[0], got[0]), max(old[1], got[1]))
        time.sleep(0.2)
    collector.wait_for(lambda r: sum(1 for s in r.finals() if s.get("camera") in cameras)
                       >= len(cameras), 15)
    collector.close()
    failed = [(log, p.returncode) for log, p in zip(logs, procs) if p.returncode != 0]
    if failed:
        tail = failed[0][0].read_text(errors="replace").strip().splitlines()[-1:]
        raise SystemExit(f"{way}: exit {failed[0][1]}: {tail}")
    with collector.lock:
        events = [e for e in collector.received.events if e.get("camera") in cameras]
        finals = {s["camera"]: s for s in collector.received.finals() if s.get("camera") in cameras}
    frames = {c: sum(1 for e in events if e["camera"] == c) for c in cameras}
    on_time = sum(1 for e in events if e["latency_ms"] <= DEADLINE_MS)
    steady = sum(1 for e in events if e["latency_ms"] <= DEADLINE_MS and e.get("frame_index", -1) >= warmup * FPS)
    p99 = [float(np.percentile([e["latency_ms"] for e in events if e["camera"] == c], 99)) if frames[c] else None
           for c in cameras]
    dropped = sum(s.get("drops", 0) + s.get("source", {}).get("skipped", 0) for s in finals.values())
    scale = [line.split("edgeanon.speedfit: ", 1)[1][:90] for log in logs
             for line in log.read_text(errors="replace").splitlines() if "edgeanon.speedfit" in line]
    return {"way": way, "cameras": len(clips), "frames": frames, "on_time": on_time, "steady": steady, "p99": p99,
            "dropped": dropped,
            "rss": sum(v[0] for v in seen.values()), "cpu": sum(v[1] for v in seen.values()),
            "processes": len(procs), "scale": scale[:1], "load": (load_start, os.getloadavg()[0])}


def row(r: dict, seconds: float, warmup: float) -> str:
    per = [f / seconds for f in r["frames"].values()]
    p99 = max((p for p in r["p99"] if p is not None), default=float("nan"))
    way = f"one process, {r['cameras']} cameras" if r["way"] == "one" else f"{r['processes']} processes, 1 camera each"
    return (f"| {r['cameras']} | {way} | {np.mean(per):.2f} ({min(per):.2f}-{max(per):.2f}) | "
            f"{sum(r['frames'].values())} | {r['on_time']} | {r['steady']} | {p99:.0f} | {r['dropped']} | "
            f"{r['rss']:.0f} | "
            f"{r['cpu']:.1f} | {r['cpu'] / max(1, sum(r['frames'].values())) * 1000:.0f} | "
            f"{r['load'][0]:.1f}-{r['load'][1]:.1f} |")


def mean_interval(values: list[float], unit: str = "pairs") -> str:
    """Mean and its 95% t interval (two-sided), or the one value."""
    if len(values) < 2:
        return f"{values[0]:.2f}" if values else "-"
    mean, sem = float(np.mean(values)), float(stats.sem(values))
    low, high = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=sem) if sem > 0 else (mean, mean)
    return f"{mean:.2f} (95% interval {low:.2f}-{high:.2f}, {len(values)} {unit})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", default="1,2,4", help="numbers of cameras, comma list (default 1,2,4)")
    parser.add_argument("--seconds", type=float, default=20.0, help="clip length in seconds (default 20)")
    parser.add_argument("--method", default="gan", help="method for both ways (default gan, the default)")
    parser.add_argument("--joined", action="store_true", help="also time the detector's joined calls against single")
    parser.add_argument("--repeat", type=int, default=1,
                        help="pairs of runs per N, interleaved A B, B A, ... (default 1: one process, then N)")
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="seconds at the start of every clip left out of the steady-state ratio (default 5)")
    args = parser.parse_args(argv)
    if args.joined:
        print(joined_line(max(int(n) for n in args.cameras.split(",") if n)))
    counts = [int(n) for n in args.cameras.split(",") if n]
    work = Path(tempfile.mkdtemp(prefix="edgeanon-multicam-"))
    frames = int(args.seconds * FPS)
    master = make_clip(work / "clip.avi", frames=frames, size=SIZE, fps=FPS)
    rows = []
    with Broker(work / "broker") as broker:
        for n in counts:
            clips = []
            for i in range(n):
                clip = work / f"cam{i}.avi"
                if not clip.exists():
                    os.link(master, clip)
                clips.append(clip)
            for pair in range(max(1, args.repeat)):
                for way in ("one", "each") if pair % 2 == 0 else ("each", "one"):
                    print(f"{n} camera(s), pair {pair + 1}, {way} ...", file=sys.stderr, flush=True)
                    result = run_way(way, clips, broker, args.method, work, f"n{n}p{pair}", args.warmup)
                    result["pair"] = pair
                    rows.append(result)
                    print(f"  scale: {result['scale']}; {row(result, args.seconds, args.warmup)}", file=sys.stderr,
                          flush=True)
    print(f"\n{frames} frames of {SIZE[0]}x{SIZE[1]} at {FPS:g} frames/s per camera ({args.seconds:g} s, file:// "
          f"paced in real time), method {args.method}, defaults otherwise; {os.cpu_count()} CPU cores, ONNX Runtime "
          "CPU\n")
    print(f"| cameras | way | delivered frames/s per camera, mean (min-max) | delivered in all | of them within "
          f"{DEADLINE_MS:g} ms | of them after {args.warmup:g} s | p99 ms (slowest camera) | dropped | "
          "peak RSS MB, total | CPU s | CPU ms a delivered "
          "frame | load average, start-end |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(row(r, args.seconds, args.warmup))
    by = {(r["cameras"], r["pair"], r["way"]): r for r in rows}
    for n in counts:
        pairs = [(by[(n, p, "one")], by[(n, p, "each")]) for p in range(max(1, args.repeat))]
        ratios = [one["on_time"] / max(1, each["on_time"]) for one, each in pairs]
        steady = [one["steady"] / max(1, each["steady"]) for one, each in pairs]
        rss = [one["rss"] / each["rss"] for one, each in pairs]
        cpu = {way: [r["cpu"] / max(1, sum(r["frames"].values())) * 1000 for pair in pairs for r in pair
                     if r["way"] == way] for way in ("one", "each")}
        print(f"\nN = {n}: delivered within the deadline, one/each per pair: "
              f"{', '.join(f'{x:.2f}' for x in ratios)}; mean {mean_interval(ratios)}")
        print(f"N = {n}: the same after the first {args.warmup:g} s of every clip: "
              f"{', '.join(f'{x:.2f}' for x in steady)}; mean {mean_interval(steady)}")
        print(f"N = {n}: RSS one/each: mean {mean_interval(rss)}")
        print(f"N = {n}: CPU ms a delivered frame: one process {mean_interval(cpu['one'], 'runs')}; "
              f"{n} processes {mean_interval(cpu['each'], 'runs')}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
