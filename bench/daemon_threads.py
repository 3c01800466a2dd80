"""Where one daemon's CPU goes: CPU seconds per thread of `edgeanon run` with N cameras, and per delivered frame.

    .venv/bin/python -m bench.daemon_threads --cameras 4 --seconds 20 [--py-spy /path/to/py-spy]

The cameras are the multicam benchmark's (bench.multicam_bench: a 1280x720 clip of moving faces per camera,
`file://` paced in real time, the project's defaults, one real mosquitto) in one daemon ([[cameras]]).
Every thread's user+system time is read from /proc/PID/task/TID/stat while the daemon runs (its last reading
stands). Python 3.11 does not give its threads an OS name, so with `--py-spy` (github.com/benfred/py-spy;
its wheel holds a static binary) one `py-spy dump` midway names the Python threads (camera-*, shared-*,
mqtt-*); threads it does not name are native ones (ONNX Runtime's intra-op pools, FFmpeg's). Printed: CPU s
per thread name (a thread that ended before a reading, as the start-up timing's, is not listed), the process's
total (/proc/PID/stat), frames redacted (the daemon's final log lines) and CPU ms a redacted frame.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.multicam_bench import FPS, SIZE, TICKS, camera_table, top_level, usage
from devkit.broker import Broker
from devkit.daemon_kit import make_clip

REPO = Path(__file__).resolve().parent.parent


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of every thread of a running process, by thread id (empty once it is gone)."""
    found = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[tid] = (int(fields[11]) + int(fields[12])) / TICKS
    return found


def thread_names(py_spy: Path, pid: int) -> dict[str, str]:
    """Thread id -> Python thread name, from one `py-spy dump`."""
    out = subprocess.run([str(py_spy), "dump", "-p", str(pid)], capture_output=True, text=True, timeout=60).stdout
    return {m.group(1): m.group(2) for m in re.finditer(r'^Thread (?:0x[0-9A-Fa-f]+ )?\(?(\d+)\)?[^:\n]*: "([^"]+)"',
                                                           out, re.MULTILINE)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=4, help="cameras in the one daemon (default 4)")
    parser.add_argument("--seconds", type=float, default=20.0, help="clip length in seconds (default 20)")
    parser.add_argument("--method", default="gan", help="method (default gan, the default)")
    parser.add_argument("--py-spy", type=Path, help="py-spy binary, to name the Python threads")
    args = parser.parse_args(argv)
    if args.py_spy is not None and not args.py_spy.is_file():
        print(f"error: --py-spy {args.py_spy}: no such file", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="edgeanon-threads-"))
    master = make_clip(work / "clip.avi", frames=int(args.seconds * FPS), size=SIZE, fps=FPS)
    names: dict[str, str] = {}
    seen: dict[str, float] = {}
    process_cpu = 0.0
    with Broker(work / "broker") as broker:
        clips = []
        for i in range(args.cameras):
            clip = work / f"cam{i}.avi"
            os.link(master, clip)
            clips.append(clip)
        config = work / "device.toml"
        config.write_text(top_level(broker.port, args.method) +
                          "".join(camera_table(f"t{i}", c) for i, c in enumerate(clips)))
        log = work / "daemon.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "edgeanon", "run", "--config", str(config)], cwd=REPO,
                                    stdout=out, stderr=subprocess.STDOUT)
            start, load = time.monotonic(), os.getloadavg()[0]
            while proc.poll() is None:
                seen.update(thread_cpu(proc.pid))
                got = usage(proc.pid)
                process_cpu = max(process_cpu, got[1]) if got else process_cpu
                if args.py_spy is not None and not names and time.monotonic() - start > 12:
                    names = thread_names(args.py_spy, proc.pid)
                time.sleep(0.25)
    text = log.read_text(errors="replace")
    if proc.returncode != 0:
        print(f"error: edgeanon run exited {proc.returncode}: {text.strip().splitlines()[-1:]}", file=sys.stderr)
        return 1
    by_name: dict[str, float] = defaultdict(float)
    for tid, cpu in seen.items():
        by_name[names.get(tid, "native (not a Python thread)" if names else f"thread {tid}")] += cpu
    total = sum(by_name.values())
    frames = sum(int(n) for n in re.findall(r"stopped: \d+ in, (\d+) redacted", text))
    print(f"{args.cameras} camera(s) in one daemon, {args.seconds:g} s of {SIZE[0]}x{SIZE[1]} at {FPS:g} frames/s "
          f"each, method {args.method}; load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end\n")
    print("| thread | CPU s | share |\n|---|---|---|")
    for name, cpu in sorted(by_name.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {cpu:.2f} | {cpu / total:.1%} |")
    print(f"\nthreads listed {total:.1f} CPU s; the process {process_cpu:.1f} CPU s; {frames} frames redacted; "
          f"{process_cpu / max(1, frames) * 1000:.0f} CPU ms a frame")
    return 0


if __name__ == "__main__":
    sys.exit(main())
