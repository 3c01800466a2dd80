"""What the daemon says it delivered under broker faults, against what a subscriber received.

    .venv/bin/python -m bench.delivery_faults [--checkout DIR ...] [--frames N]

For each checkout (default: this one; give an older one to compare) and each broker, `edgeanon run` runs as a
real process over an N-frame 480x270 clip of real faces (blur, no looping) and the script prints its exit
status, its final log line, and what a subscriber on the broker received (frames, availability messages).
Brokers: a healthy mosquitto; mosquitto with max_packet_size 12000 (a frame is about 25 KB); a real TCP
peer that takes the connection and acknowledges nothing (devkit.broker.SilentBroker); TLS configured
against mosquitto's plain port. Needs mosquitto and openssl.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from devkit.broker import CERTS_SH, Broker, SilentBroker
from devkit.daemon_kit import Collector, make_clip

REPO = Path(__file__).resolve().parent.parent
FINAL = re.compile(r"edgeanon\.pipeline: ((stopped|failed): .*)$", re.M)


def run(checkout: Path, port: int, clip: Path, work: Path, extra: str = "") -> tuple[int, str]:
    config = work / "cam.toml"
    config.write_text(f'camera_id = "cam1"\n[source]\nuri = "file://{clip}"\n[model]\nmethod = "blur"\n'
                      f'[pipeline]\ntarget_fps = 0\ndeadline_ms = 60000.0\n'
                      f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nreconnect_min_s = 1\nreconnect_max_s = 2\n{extra}')
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    proc = subprocess.run([sys.executable, "-m", "edgeanon", "run", "--config", str(config)], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=600)
    found = FINAL.findall(proc.stderr)
    return proc.returncode, found[-1][0] if found else proc.stderr.strip().splitlines()[-1][:200]


def scenario(name: str, checkout: Path, clip: Path, work: Path) -> dict:
    work.mkdir(parents=True)
    if name == "silent":
        with SilentBroker() as silent:
            rc, line = run(checkout, silent.port, clip, work)
            return {"rc": rc, "final": line, "received": f"{silent.published} PUBLISH swallowed, none acknowledged"}
    extra_config = "max_packet_size 12000\n" if name == "max_packet_size 12000" else ""
    with Broker(work / "broker", extra_config=extra_config) as broker:
        collector = Collector(broker.port, camera="cam1")
        extra = ""
        if name == "tls at a plain port":
            subprocess.run([str(CERTS_SH), "--dir", str(work / "pki"), "ca"], check=True, capture_output=True)
            extra = f'[mqtt.tls]\nca = "{work / "pki" / "ca.crt"}"\n'
        rc, line = run(checkout, broker.port, clip, work, extra)
        collector.wait_for(lambda r: r.available[-1:] in (["stopped"], ["failed"]), 5)
        collector.close()
        r = collector.received
        return {"rc": rc, "final": line, "received": f"{len(r.frames)} frames, available {r.available}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", type=Path, action="append", help="a checkout to run (repeatable; default: this)")
    parser.add_argument("--frames", type=int, default=8)
    args = parser.parse_args()
    checkouts = [c.resolve() for c in args.checkout or [REPO]]
    work = Path(tempfile.mkdtemp(prefix="edgeanon-delivery-"))
    clip = make_clip(work / "faces.avi", frames=args.frames, size=(480, 270), fps=10.0)
    print(f"{args.frames}-frame 480x270 clip, blur, one daemon run per row\n")
    print("| checkout | broker | exit | final line | subscriber |")
    print("|---|---|---|---|---|")
    for checkout in checkouts:
        head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip() or checkout.name
        for i, name in enumerate(("healthy", "max_packet_size 12000", "silent", "tls at a plain port")):
            row = scenario(name, checkout, clip, work / f"{head}-{i}")
            print(f"| {head} | {name} | {row['rc']} | {row['final']} | {row['received']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
