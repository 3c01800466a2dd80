"""Soak test: the daemon for N minutes on a looping file through a real broker restarted every few minutes.

    nice -n 10 .venv/bin/python -m bench.soak --minutes 20 [--restart-every 180] [--sample-every 60]

`edgeanon run` runs as a real subprocess (blur, a looping 640x360 clip of real faces paced at its
frame rate) and publishes to a real mosquitto that is stopped and started again every
--restart-every seconds (down for --down-for seconds each time). A subscriber counts the frames that
arrive. Every --sample-every seconds the script samples the daemon's RSS, open file descriptors and
threads (/proc) and its latest stats message (sent every second while the broker is up: frames in,
redacted, drops, MQTT delivery counters), and
prints one table row. At the end it says whether RSS and open fds stayed flat after warm-up:
(max - min) / min of the samples after --warmup-min minutes within 5% (for fds: within one descriptor
or 5%, as the broker connection's socket comes and goes). Exit status 0 when both
stayed flat and the daemon never exited on its own, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from devkit.broker import Broker
from devkit.daemon_kit import make_clip
from devkit.process import stop_process

REPO = Path(__file__).resolve().parent.parent

CAMERA = "soak"
FLAT = 0.05


class Counter:
    """A light subscriber: counts frames and keeps the daemon's latest stats (holds no images)."""

    def __init__(self, port: int):
        self.frames = 0
        self.stats: dict = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                                  client_id="edgeanon-soak-counter", protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(
            [(f"edgeanon/{CAMERA}/frame", 0), (f"edgeanon/{CAMERA}/stats", 0)])
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 2)
        self.client.connect_async("127.0.0.1", port, keepalive=30)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            if msg.topic.endswith("/frame"):
                self.frames += 1
            else:
                with contextlib.suppress(ValueError):
                    self.stats = json.loads(msg.payload)

    def snapshot(self) -> tuple[int, dict]:
        with self._lock:
            return self.frames, dict(self.stats)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def proc_sample(pid: int) -> dict:
    """RSS (MB), open fds and threads of a live process, from /proc."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"rss_mb": int(status["VmRSS"].split()[0]) / 1024, "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "threads": int(status["Threads"])}


def sample(pid: int, counter: Counter, minute: float, restarts: int) -> dict:
    """One table row: /proc of the daemon and its latest stats message; printed as it is taken."""
    received, stats = counter.snapshot()
    m = stats.get("mqtt", {})
    row = {"t_min": round(minute, 2), **proc_sample(pid),
           "frames_in": stats.get("frames_in"), "redacted": stats.get("redacted"),
           "acked": m.get("acked"), "received": received, "drops": stats.get("drops"),
           "dropped_queue": m.get("dropped_queue"), "unacked": m.get("unacked"),
           "refused": m.get("refused"), "broker_restarts": restarts}
    print("| " + " | ".join(
        f"{row[k]:.1f}" if k in ("t_min", "rss_mb") else str(row[k] if row[k] is not None else "-")
        for k in ("t_min", "rss_mb", "fds", "threads", "frames_in", "redacted", "acked", "received",
                  "drops", "dropped_queue", "unacked", "refused", "broker_restarts")) + " |", flush=True)
    return row


def drift(values: list[float]) -> float:
    return (max(values) - min(values)) / min(values) if values and min(values) > 0 else 0.0


def fds_flat(values: list[int]) -> bool:
    """A dozen descriptors move by one whenever a sample meets the broker down: allow one, or 5%."""
    return max(values) - min(values) <= max(1, FLAT * min(values))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="how long the daemon runs (default 20)")
    parser.add_argument("--restart-every", type=float, default=180.0, help="broker restart period, s (default 180)")
    parser.add_argument("--down-for", type=float, default=5.0, help="seconds the broker stays down (default 5)")
    parser.add_argument("--sample-every", type=float, default=60.0, help="seconds between samples (default 60)")
    parser.add_argument("--warmup-min", type=float, default=None,
                        help="minutes of warm-up left out of the flatness check (default: a quarter of the run, "
                             "at least 1)")
    parser.add_argument("--fps", type=float, default=10.0, help="clip frame rate the source is paced at (default 10)")
    parser.add_argument("--json", type=Path, help="also write the samples and the verdict here")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.restart_every <= args.down_for or args.sample_every <= 0:
        parser.error("--minutes and --sample-every must be > 0, --restart-every more than --down-for")
    warmup_s = 60.0 * (args.warmup_min if args.warmup_min is not None else max(1.0, args.minutes / 4))

    work = Path(tempfile.mkdtemp(prefix="edgeanon-soak-"))
    clip = make_clip(work / "faces.avi", frames=48, size=(640, 360), fps=args.fps)
    broker = Broker(work / "broker").start()
    config = work / "soak.toml"
    config.write_text(
        f'camera_id = "{CAMERA}"\n[source]\nuri = "file://{clip}"\nloop = true\nrealtime = true\n'
        '[model]\nmethod = "blur"\nthreads = 1\n[pipeline]\nstats_interval_s = 1.0\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nreconnect_min_s = 1\nreconnect_max_s = 2\n'
        '[telemetry]\nenabled = false\n')
    counter = Counter(broker.port)
    log_path = work / "daemon.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    daemon = subprocess.Popen([sys.executable, "-m", "edgeanon", "run", "--config", str(config)], cwd=REPO,
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    print(f"soak: {args.minutes:g} min, broker restarted every {args.restart_every:g} s (down {args.down_for:g} s), "
          f"640x360 clip at {args.fps:g} fps, blur, {os.cpu_count()} CPU cores; warm-up {warmup_s / 60:g} min",
          flush=True)
    header = ("| min | RSS MB | fds | threads | frames in | redacted | acknowledged | received | drops | "
              "queue dropped | unacknowledged | refused | broker restarts |")
    print(header)
    print("|" + "|".join("---" for _ in header.split("|")[1:-1]) + "|", flush=True)
    samples: list[dict] = []
    restarts = 0
    started = time.monotonic()
    # Samples fall half-way between broker restarts' multiples, so they show the steady state.
    next_sample = started + args.sample_every / 2
    next_restart = started + args.restart_every
    end = started + 60.0 * args.minutes
    exited_early = None
    try:
        while time.monotonic() < end:
            if daemon.poll() is not None:
                exited_early = daemon.returncode
                break
            now = time.monotonic()
            if now >= next_restart:
                broker.restart(down_for=args.down_for)
                restarts += 1
                next_restart += args.restart_every
            if now >= next_sample:
                next_sample += args.sample_every
                samples.append(sample(daemon.pid, counter, (now - started) / 60.0, restarts))
            time.sleep(0.5)
        if daemon.poll() is None:
            samples.append(sample(daemon.pid, counter, (time.monotonic() - started) / 60.0, restarts))
    finally:
        stop_process(daemon, 30)
        time.sleep(1.0)  # the final stats message
        log.close()
        counter.close()
        broker.stop()
    _, final = counter.snapshot()
    if final.get("final"):
        m = final.get("mqtt", {})
        print(f"\nfinal stats: {final['frames_in']} frames in, {final['redacted']} redacted, "
              f"{m.get('acked')} acknowledged by the broker; dropped: {final['dropped_error']} redaction error, "
              f"{final['dropped_deadline']} past the deadline, {final['dropped_publish']} refused by the publisher, "
              f"{m.get('dropped_queue')} oldest dropped from the queue while the broker was away, "
              f"{m.get('unacked')} unacknowledged, {m.get('refused')} refused by the broker, "
              f"{m.get('dropped_error')} send errors; {m.get('connects')} connects")

    settled = [s for s in samples if s["t_min"] * 60.0 >= warmup_s]
    rss_drift, fd_drift = drift([s["rss_mb"] for s in settled]), drift([s["fds"] for s in settled])
    flat = len(settled) >= 2 and rss_drift <= FLAT and fds_flat([s["fds"] for s in settled])
    print(f"after warm-up ({len(settled)} samples): RSS {min(s['rss_mb'] for s in settled):.1f}-"
          f"{max(s['rss_mb'] for s in settled):.1f} MB (drift {100 * rss_drift:.1f}%), open fds "
          f"{min(s['fds'] for s in settled)}-{max(s['fds'] for s in settled)}, threads "
          f"{min(s['threads'] for s in settled)}-{max(s['threads'] for s in settled)}: "
          f"{'FLAT' if flat else 'NOT FLAT'} (RSS within {100 * FLAT:.0f}%, fds within one or {100 * FLAT:.0f}%)"
          if settled else "no samples after warm-up")
    if exited_early is not None:
        print(f"the daemon exited on its own with {exited_early}; its log: {log_path}")
    print(f"daemon exit code after SIGTERM: {daemon.returncode}")
    if args.json:
        args.json.write_text(json.dumps({"samples": samples, "rss_drift": rss_drift, "fd_drift": fd_drift,
                                         "flat": flat, "exited_early": exited_early,
                                         "exit_code": daemon.returncode}, indent=1))
    ok = flat and exited_early is None
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept for a look: {work} (the daemon's log is daemon.log)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
