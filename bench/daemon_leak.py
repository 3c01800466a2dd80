"""What the camera daemon publishes, checked for leaks: `edgeanon run` with its defaults on a split's clip.

    nice -n 10 .venv/bin/python -m bench.daemon_leak --data ../shared/data --split holdout --kinds clip,crowd

For each clip (export/eval/leak.py's evaluation clips: `clip`, six scenes of four or more faces; `crowd`,
six scenes of 40 or more) and each method, the daemon runs as a real process on the clip (`file://`
source, the project's defaults: detector, scale chosen by the start-up timing, thresholds, tracker) and
publishes to a real mosquitto, which is restarted once mid-stream (down for `--down-for` seconds). A
subscriber keeps every frame that arrives; each is decoded and compared with the clip's frame of the same
`frame_index` by the leak check of export/eval/leak_metric.py (SSIM >= 0.85 on a ground-truth face, faces
of 16 px and more; collateral outside the faces grown 1.6x). Frames the daemon dropped (deadline, broker
down, queue full) publish nothing and leak nothing; the table says how many arrived.

With `--cameras 1,2` the same clip also goes through one daemon serving two cameras ([[cameras]], shared
models; each camera reads its own copy of the clip): a row per camera, beside the one-camera row of the same run.

The control row publishes nothing: it JPEG-encodes the source frames at the daemon's quality unanonymized,
so the check must call ~100% of faces leaked there, and its collateral is what JPEG alone costs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np

from bench.make_clip import default_data
from devkit.broker import Broker
from devkit.daemon_kit import Collector, decode_jpeg
from edgeanon.config import Config
from edgeanon.video import VideoReader
from export.eval.leak import CLIP_KINDS, build_clip, load_truth
from export.eval.leak_metric import LeakTally
from export.splits import HALVES, HOLDOUT

REPO = Path(__file__).resolve().parent.parent


def source_frames(clip: Path) -> dict[int, np.ndarray]:
    with VideoReader(clip) as reader:
        return {frame.index: frame.image for frame in reader}


def run_daemon(clip: Path, broker: Broker, method: str, workdir: Path, total: int,
               down_for: float, cameras: int = 1, input_scale: float = 0.0) -> tuple[dict, dict[str, list]]:
    """Run the daemon on the clip with its defaults (as `cameras` cameras of one daemon when more than one);
    restart the broker once half the frames have arrived. `input_scale` other than 0 fixes the detection scale
    (`model.input_scale`) instead of the start-up timing's choice. Returns the frames that arrived, by camera."""
    camera = f"leak-{method}-{clip.stem}" + (f"-of{cameras}" if cameras > 1 else "")
    config = workdir / f"{camera}.toml"
    scale = f"input_scale = {input_scale}\n" if input_scale else ""
    common = f'[model]\nmethod = "{method}"\n{scale}[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
    if cameras == 1:
        config.write_text(f'camera_id = "{camera}"\n[source]\nuri = "file://{clip}"\n' + common)
        names = [camera]
    else:
        names = [f"{camera}-{i}" for i in range(cameras)]
        copies = []
        for i in range(cameras):  # each camera its own file, as its own camera would be
            copy = workdir / f"{names[i]}{clip.suffix}"
            if not copy.exists():
                copy.symlink_to(clip)
            copies.append(copy)
        config.write_text(common + "".join(f'[[cameras]]\ncamera_id = "{n}"\n[cameras.source]\nuri = "file://{c}"\n'
                                           for n, c in zip(names, copies)))
    collector = Collector(broker.port, camera=camera if cameras == 1 else "+")
    restarted = threading.Event()

    def restart_midway() -> None:
        if collector.wait_for(lambda r: len(r.frames) >= cameras * total // 2, 600):
            broker.restart(down_for=down_for)
            restarted.set()

    watcher = threading.Thread(target=restart_midway, daemon=True)
    watcher.start()
    log = workdir / f"{camera}.log"
    with open(log, "wb") as log_file:
        proc = subprocess.run([sys.executable, "-m", "edgeanon", "run", "--config", str(config)], cwd=REPO,
                              stdout=log_file, stderr=subprocess.STDOUT, timeout=1800)
    collector.wait_for(lambda r: sum(1 for s in r.finals() if s.get("camera") in names)
                       >= len(names), 10)
    collector.close()
    if proc.returncode != 0:
        raise SystemExit(f"edgeanon run exited {proc.returncode}; see {log}")
    with collector.lock:
        frames = {n: [f for f, topic in zip(collector.received.frames, collector.received.frame_topics)
                      if topic == f"edgeanon/{n}/frame"] for n in names}
    lines = log.read_text(errors="replace").splitlines()
    chosen = next((line for line in lines if "edgeanon.speedfit" in line), "")  # the scale the start-up timing chose
    stopped = next((line for line in reversed(lines) if "stopped:" in line), "")
    info = {"restarted": restarted.is_set(), "speedfit": chosen.strip()[-200:], "stopped": stopped.strip()[-200:]}
    return info, frames


def tally(received: list[tuple[int, bytes]], sources: dict[int, np.ndarray], truth: dict) -> tuple[LeakTally, int]:
    """Leak and collateral of the received frames against their sources; also how many came downscaled."""
    result, resized = LeakTally(), 0
    for index, payload in sorted(received, key=lambda item: item[0]):
        source = sources.get(index)
        if source is None:
            raise SystemExit(f"a published frame has frame_index {index}, which the clip does not have")
        image = decode_jpeg(payload)
        if image.shape != source.shape:  # the encoder scales a frame down when it would not fit the payload limit
            image = cv2.resize(image, (source.shape[1], source.shape[0]), interpolation=cv2.INTER_LINEAR)
            resized += 1
        faces = truth.get(str(index), [])
        result.add(image, source, [f["box"] for f in faces], [f["id"] for f in faces])
    return result, resized


def jpeg_control(sources: dict[int, np.ndarray], quality: int) -> list[tuple[int, bytes]]:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    return [(i, cv2.imencode(".jpg", image, params)[1].tobytes()) for i, image in sources.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=default_data(), help="shared data folder (has wider-train/)")
    parser.add_argument("--split", default=HOLDOUT, choices=HALVES,
                        help="wider-train half the clips are made from (default holdout: settings were chosen on tune)")
    parser.add_argument("--kinds", default=",".join(CLIP_KINDS), help="clips: clip, crowd (default both)")
    parser.add_argument("--methods", default="blur,gan", help="daemon methods (default blur,gan)")
    parser.add_argument("--down-for", type=float, default=2.0, help="seconds the broker stays down mid-stream")
    parser.add_argument("--work", type=Path, default=REPO / "out" / "leak", help="where the clips are (built once)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--cameras", default="1", help="cameras per daemon, comma list: 1,2 runs the one-camera "
                                                       "daemon and a two-camera one on the clip (default 1)")
    parser.add_argument("--input-scale", type=float, default=0.0,
                        help="fix model.input_scale for every daemon (e.g. 1.0 or 0.5) so that one camera and "
                             "several compare at the same detection scale; default 0, the start-up timing chooses")
    args = parser.parse_args(argv)
    if not (args.data / "wider-train" / "boxes.json").is_file():
        print(f"error: {args.data}/wider-train not found (set EDGEANON_DATA or --data)", file=sys.stderr)
        return 2
    quality = Config().encode.quality
    rows, report = [], {"split": args.split, "input_scale": args.input_scale, "runs": []}
    workdir = Path(tempfile.mkdtemp(prefix="edgeanon-daemon-leak-"))
    with Broker(workdir / "broker") as broker:
        for kind in [k for k in args.kinds.split(",") if k]:
            clip, truth_path = build_clip(args.data, args.split, args.work, kind=kind)
            truth, _ = load_truth(truth_path)
            sources = source_frames(clip)
            control, _ = tally(jpeg_control(sources, quality), sources, truth)
            rows.append((f"{kind}: source as JPEG q{quality}, nothing anonymized (control)", control, len(sources),
                         len(sources), 0, ""))
            for method in [m for m in args.methods.split(",") if m]:
                for cameras in [int(n) for n in args.cameras.split(",") if n]:
                    print(f"{kind}: edgeanon run, {method}, {cameras} camera(s) ...", file=sys.stderr, flush=True)
                    info, by_camera = run_daemon(clip, broker, method, workdir, len(sources), args.down_for, cameras,
                                                 args.input_scale)
                    note = ("broker restarted mid-stream" if info["restarted"]
                            else "broker NOT restarted (too few frames)")
                    for n, (name, received) in enumerate(by_camera.items()):
                        result, resized = tally(received, sources, truth)
                        which = "" if cameras == 1 else f", camera {n + 1} of {cameras} in one daemon"
                        settings = f"input_scale {args.input_scale:g}" if args.input_scale else "defaults"
                        rows.append((f"{kind}: edgeanon run, {method}, {settings}{which}", result, len(received),
                                     len(sources), resized, note))
                        report["runs"].append({"clip": kind, "method": method, "cameras": cameras, "camera": name,
                                               **info, "arrived": len(received), "frames": len(sources),
                                               "downscaled": resized, **result.to_json()})
    shutil.rmtree(workdir, ignore_errors=True)
    lines = [f"split: {args.split}; leak = faces >= 16 px whose mean local SSIM to the source is >= 0.85",
             "", "| run | frames arrived | leak | leaked / faces | collateral | note |", "|---|---|---|---|---|---|"]
    for name, result, arrived, total, resized, note in rows:
        extra = f"; {resized} downscaled" if resized else ""
        lines.append(f"| {name} | {arrived} / {total} | {result.rate:.2%} | {result.leaked} / {result.faces} | "
                     f"{result.collateral:.2%} | {note}{extra} |")
    table = "\n".join(lines)
    print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**report, "table": table}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
