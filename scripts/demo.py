"""`make demo`: the camera daemon end to end on this machine, with the runtime alone installed (no torch).

    .venv/bin/python -m scripts.demo [--out DIR] [--frames N] [--method gan|blur|pixelate|fill]

1. builds a short sample clip from two public-domain pictures (devkit/samples: scikit-image's astronaut and
   cameraman), panning and zooming;
2. starts a local broker: mosquitto when installed, else an embedded amqtt broker (MQTT 3.1.1);
3. runs `edgeanon run` on the clip with the default models on ONNX Runtime (CPU);
4. a subscriber saves every redacted frame it received into a folder, named at the end with a summary, with
   the events and stats messages (events.jsonl, stats.jsonl).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devkit.daemon_kit import Collector, EmbeddedBroker, make_clip, sample_faces
from edgeanon.defaults import METHODS

REPO = Path(__file__).resolve().parent.parent


def start_broker(workdir: Path):
    """(broker, protocol): mosquitto when installed, else the embedded amqtt broker."""
    from devkit.broker import Broker, free_port, mosquitto_binary

    if mosquitto_binary() is not None:
        return Broker(workdir / "broker").start(), "5", "mosquitto"
    try:
        return EmbeddedBroker(free_port()).start(), "3.1.1", "amqtt (embedded, MQTT 3.1.1)"
    except ImportError:
        raise SystemExit("demo: no broker: install mosquitto (apt install mosquitto) or amqtt "
                         "(.venv/bin/pip install amqtt)") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="folder for the clip and what arrived (default: a new temp folder)")
    parser.add_argument("--frames", type=int, default=48, help="clip length in frames (default 48)")
    parser.add_argument("--size", default="960x540", help="clip size WxH (default 960x540)")
    parser.add_argument("--method", choices=METHODS,
                        help="how faces are replaced (default: the daemon's, gan when its generator model is there, "
                             "else blur)")
    args = parser.parse_args(argv)
    from tqdm import tqdm

    out = args.out or Path(tempfile.mkdtemp(prefix="edgeanon-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.lower().split("x"))

    print(f"demo: building a {args.frames}-frame {width}x{height} clip from two public-domain sample pictures")
    clip = make_clip(out / "sample.avi", frames=args.frames, size=(width, height), fps=12.0,
                     faces=sample_faces(use_shared=False, cameraman=True))
    broker, protocol, broker_name = start_broker(out)
    print(f"demo: broker {broker_name} on 127.0.0.1:{broker.port}")
    collector = Collector(broker.port, camera="demo", protocol=protocol)
    config = out / "demo.toml"
    config.write_text(
        f'camera_id = "demo"\n[source]\nuri = "file://{clip.resolve()}"\n[model]\n'
        + (f'method = "{args.method}"\n' if args.method else "")
        + f'[pipeline]\nstats_interval_s = 2.0\ndeadline_ms = 10000.0\n'  # a busy laptop: show frames, not drops
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nprotocol = "{protocol}"\n')
    log = out / "daemon.log"
    print(f"demo: edgeanon run --config {config}  (log {log})")
    started = time.monotonic()
    with open(log, "wb") as log_file:
        daemon = subprocess.Popen([sys.executable, "-m", "edgeanon", "run", "--config", str(config)],
                                  cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT)
        with tqdm(total=args.frames, desc="received", unit="frame") as bar:
            while daemon.poll() is None:
                bar.update(len(collector.received.frames) - bar.n)
                time.sleep(0.2)
            collector.wait_for(lambda r: r.available[-1:] == ["stopped"], 10)
            bar.update(len(collector.received.frames) - bar.n)
    elapsed = time.monotonic() - started
    collector.close()
    broker.stop()
    if daemon.returncode != 0:
        print(log.read_text(errors="replace")[-2000:], file=sys.stderr)
        print(f"demo: the daemon exited with {daemon.returncode}", file=sys.stderr)
        return 1

    received = collector.received
    folder = out / "received"
    folder.mkdir(exist_ok=True)
    for k, (jpeg_index, jpeg) in enumerate(received.frames):
        index = jpeg_index if jpeg_index >= 0 else received.events[k]["frame_index"]  # 3.1.1: no property
        (folder / f"frame_{index:05d}.jpg").write_bytes(jpeg)
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in received.events))
    (folder / "stats.jsonl").write_text("".join(json.dumps(st) + "\n" for st in received.stats))
    final = next((s for s in reversed(received.stats) if s.get("final")), {})
    faces = sum(e["faces"] for e in received.events)
    methods = sorted({m for e in received.events for m in e["methods"]})
    lat = final.get("latency_ms", {})
    print()
    print(f"  frames received : {len(received.frames)} of {args.frames}")
    print(f"  faces redacted  : {faces} ({', '.join(methods) or 'none'}; method {final.get('method')})")
    print(f"  daemon speed    : {final.get('fps_avg', 0):.1f} frames/s end to end, "
          f"latency p50 {lat.get('p50')} ms, p99 {lat.get('p99')} ms")
    print(f"  wall time       : {elapsed:.1f} s including model loading")
    print(f"  availability    : {' -> '.join(received.available)}")
    print(f"\nredacted frames saved in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
