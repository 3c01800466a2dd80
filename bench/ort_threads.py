"""Parallel across frames or within a frame: ONNX Runtime CPU frames/s of one shared session, two ways.

    nice -n 10 .venv/bin/python -m bench.ort_threads --seconds 4

For the detector (INT8 and FP32, at the daemon's full and half size of a 1280x720 frame) and the generator
(two faces a call), one session is run two ways with the same number of cores:
- `intra`: one thread calls the session, whose intra-op pool has `cores` threads (what one camera does, and
  what a shared model's single server thread did for every camera);
- `across`: `cores` threads call one session at once, each call single-threaded (`intra_op_num_threads = 1`):
  several frames in parallel, each on its own core, with no per-layer synchronisation between threads.
Reported: calls/s and process CPU-seconds per call (all threads), and `across` / `intra`. Spinning is off in
both (as in edgeanon.inference.ort). Other work on the machine moves both; the two ways alternate per round.

With `--batches 1,2,4`, also the CPU a row (frame or face) costs when that many rows go in one call
(`intra`): whether joining requests along the batch axis pays on this CPU (edgeanon.batching.batch_limit).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

REPO = Path(__file__).resolve().parent.parent


def session(path: Path, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def measure(sess: ort.InferenceSession, feeds: dict[str, np.ndarray], callers: int,
            seconds: float) -> tuple[float, float]:
    """Calls/s and CPU-seconds a call with `callers` threads calling `sess` for `seconds`."""
    sess.run(None, feeds)  # warm
    counts = [0] * callers
    stop = time.monotonic() + seconds

    def loop(i: int) -> None:
        while time.monotonic() < stop:
            sess.run(None, feeds)
            counts[i] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(callers)]
    wall, cpu = time.monotonic(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    calls = sum(counts)
    return calls / wall, cpu / max(1, calls)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0, help="per way and case per round (default 4)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, the two ways alternating (default 2)")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="threads either way (default: all)")
    parser.add_argument("--models", type=Path, default=REPO / "models")
    parser.add_argument("--batches", default="", help="also time joined calls of these many rows, e.g. 1,2,4")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    cases = []
    for name in ("detector.int8.onnx", "detector.onnx"):
        for label, (h, w) in (("full 1280x736", (736, 1280)), ("half 640x384", (384, 640))):
            cases.append((f"{name} {label}", args.models / name,
                          {"input": rng.uniform(0, 255, (1, 3, h, w)).astype(np.float32)}))
    cases.append(("generator.onnx 2 faces", args.models / "generator.onnx",
                  {"condition": rng.uniform(-1, 1, (2, 9, 128, 128)).astype(np.float32),
                   "latent": rng.standard_normal((2, 32)).astype(np.float32)}))
    print(f"cores {args.cores}; load average at start {os.getloadavg()[0]:.2f}", flush=True)
    print("| case | intra: calls/s | intra: CPU ms a call | across: calls/s | across: CPU ms a call | across / intra |")
    print("|---|---|---|---|---|---|")
    for label, path, feeds in cases:
        if not path.is_file():
            print(f"| {label} | missing | | | | |")
            continue
        intra_s, across_s = session(path, args.cores), session(path, 1)
        res: dict[str, list[tuple[float, float]]] = {"intra": [], "across": []}
        for r in range(args.rounds):
            order = ("intra", "across") if r % 2 == 0 else ("across", "intra")
            for way in order:
                sess, callers = (intra_s, 1) if way == "intra" else (across_s, args.cores)
                res[way].append(measure(sess, feeds, callers, args.seconds))
        (ri, ci), (ra, ca) = (np.mean(res["intra"], axis=0), np.mean(res["across"], axis=0))
        print(f"| {label} | {ri:.2f} | {ci * 1000:.0f} | {ra:.2f} | {ca * 1000:.0f} | {ra / ri:.2f}x |", flush=True)
    batches = [int(b) for b in args.batches.split(",") if b]
    if batches:
        print(f"\n| case | {' | '.join(f'CPU ms a row, {b} a call' for b in batches)} |")
        print("|---|" + "---|" * len(batches))
    for label, path, feeds in cases if batches else []:
        if not path.is_file():
            continue
        sess, cells = session(path, args.cores), []
        for b in batches:
            joined = {n: np.concatenate([v] * b) for n, v in feeds.items()}
            _, cpu = measure(sess, joined, 1, args.seconds)
            cells.append(f"{cpu * 1000 / (b * len(next(iter(feeds.values())))):.1f}")  # a frame, or a face
        print(f"| {label} | {' | '.join(cells)} |", flush=True)
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
