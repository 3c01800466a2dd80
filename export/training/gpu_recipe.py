"""One lent GPU call: fine-tune the face generator from the committed weights for a fixed time, hand back a candidate.

Run in the repository root of the device machine (docs/generator-weights.md, Training, gives the whole call):

    python3 -m scripts.gpu_train --train-set runs/gpu/faces.npz --out "$OUT"

It reads only what travels with the working tree: the crop file packed here from train-generator's
(`python -m scripts.gpu_train --pack .cache/gentrain/faces.npz`: a stable subset that fits, with the tracked files
and the face prior, in the 64 MiB that may travel), the face prior models/centerface.pt and the committed
models/generator.pt; it downloads nothing. It runs for --minutes (default 8.5, loading the crops included, so
the call ends inside its 10 minutes) and writes into --out: generator.pt (the candidate: EMA weights, fp16),
preview.png (held-back crops: originals, inputs, seeds 0-2), checkpoint.pt (light, fp16: `--resume` continues
from it in a later call), train.log and summary.json. The gate then runs here, on the host:
`python -m export gate-generator --candidate .../generator.pt`; it needs dlib, its models and the evaluation
data, which together do not fit in what travels. Options this script does not know go to `train-generator`
(e.g. --lr 1e-4, --diversity-weight 0.5).
`--smoke` runs the same path on the CPU for a few seconds at batch 2 (the recipe's test).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from export.paths import CENTERFACE_WEIGHTS, MODELS_DIR
from export.training import train
from export.training.facecrops import shrink_training_set

log = logging.getLogger(__name__)

DEFAULT_TRAIN_SET = Path("runs/gpu/faces.npz")
MINUTES = 8.5  # the whole run, loading included: a 600 s call keeps 1.5 minutes for start-up and the last save
SAVE_MINUTES = 0.25
BATCH = 128
SMOKE_MINUTES = 0.05
TRAVEL_MIB = 64.0  # what may travel to a lent device: tracked files, untracked ones, carried paths
MARGIN_MIB = 1.0


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(prog="python3 -m scripts.gpu_train", description=__doc__.split("\n\n")[0])
    p.add_argument("--train-set", type=Path, default=DEFAULT_TRAIN_SET,
                   help=f"crop file made by train-generator --prepare-only (default {DEFAULT_TRAIN_SET})")
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "runs/gpu-out")),
                   help="where the candidate, preview and log go (default $OUT, else runs/gpu-out)")
    p.add_argument("--minutes", type=float, default=MINUTES,
                   help=f"wall clock of the whole run, loading the crops included (default {MINUTES})")
    p.add_argument("--batch", type=int, default=BATCH, help=f"batch size (default {BATCH})")
    p.add_argument("--init-generator", type=Path, default=MODELS_DIR / "generator.pt",
                   help="weights to start from (default the committed models/generator.pt)")
    p.add_argument("--face-prior", type=Path, default=CENTERFACE_WEIGHTS,
                   help=f"CenterFace state dict of the face prior (default {CENTERFACE_WEIGHTS})")
    p.add_argument("--resume", type=Path, help="a checkpoint.pt handed back by an earlier call: continue from it")
    p.add_argument("--pack", type=Path, metavar="CROPS",
                   help="here, before the call: write --train-set as the subset of this crop file (train-generator "
                        "--prepare-only's) that fits what may travel, then stop")
    p.add_argument("--max-mib", type=float,
                   help=f"--pack's size for the packed file (default: {TRAVEL_MIB:g} MiB less the tracked files, the "
                        f"face prior and {MARGIN_MIB:g} MiB)")
    p.add_argument("--smoke", action="store_true",
                   help=f"CPU, batch 2, {SMOKE_MINUTES} minutes: checks the recipe anywhere in seconds")
    return p.parse_known_args(argv)


def missing(args: argparse.Namespace) -> str | None:
    for path, what in ((args.train_set, "crop file (train-generator --prepare-only; carry it)"),
                       (args.init_generator, "starting weights"),
                       (args.face_prior, "face prior weights (models/centerface.pt; carry it)"),
                       (args.resume, "checkpoint to resume")):
        if path is not None and not path.is_file():
            return f"{path}: {what} not found"
    return None


def tracked_bytes() -> int:
    """Bytes of the files git tracks in this checkout (they travel with every device call)."""
    files = subprocess.run(["git", "ls-files", "-z"], capture_output=True, check=True).stdout.split(b"\0")
    return sum(os.path.getsize(f) for f in files if f and os.path.isfile(f))


def pack(args: argparse.Namespace) -> int:
    if not args.pack.is_file():
        log.error("%s: crop file not found (python -m export train-generator --prepare-only makes it)", args.pack)
        return 2
    if args.max_mib is None:
        tracked, prior = tracked_bytes() / 2**20, args.face_prior.stat().st_size / 2**20
        args.max_mib = TRAVEL_MIB - tracked - prior - MARGIN_MIB
        log.info("room for the crop file: %g MiB - tracked files %.1f - %s %.1f - margin %g = %.1f MiB", TRAVEL_MIB,
                 tracked, args.face_prior.name, prior, MARGIN_MIB, args.max_mib)
    train_n, held_n = shrink_training_set(args.pack, args.train_set, int(args.max_mib * 2**20))
    log.info("carry %s and %s: %d training crops (and %d for the preview)", args.train_set, args.face_prior,
             train_n, held_n)
    return 0


def main(argv: list[str] | None = None) -> int:
    args, extra = parse(argv)
    if args.pack:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        return pack(args)
    args.out.mkdir(parents=True, exist_ok=True)
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=logging.INFO, format=fmt)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    file_log = logging.FileHandler(args.out / "train.log")
    file_log.setFormatter(logging.Formatter(fmt))
    root.addHandler(file_log)
    try:
        return train_once(args, extra)
    finally:
        root.removeHandler(file_log)
        file_log.close()


def train_once(args: argparse.Namespace, extra: list[str]) -> int:
    t0 = time.monotonic()
    problem = missing(args)
    if problem:
        log.error("%s", problem)
        return 2
    device = "cpu" if args.smoke else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu" and not args.smoke:
        log.warning("no CUDA device: training on the CPU (this recipe is meant for a lent GPU)")
    if args.resume:
        shutil.copyfile(args.resume, args.out / "checkpoint.pt")  # the trainer resumes from its out folder
    minutes, batch = (SMOKE_MINUTES, 2) if args.smoke else (args.minutes, args.batch)
    parser = argparse.ArgumentParser()
    train.register(parser.add_subparsers())
    targs = parser.parse_args(["train-generator", "--train-set", str(args.train_set), "--out", str(args.out),
                               "--init-generator", str(args.init_generator), "--face-prior", str(args.face_prior),
                               "--minutes", str(minutes), "--batch", str(batch), "--device", device,
                               "--light-checkpoints", *extra])
    log.info("training on %s%s for %.2f minutes at batch %d from %s", device,
             f" ({torch.cuda.get_device_name()})" if device == "cuda" else "", minutes, batch,
             args.resume or args.init_generator)
    trainer = train.Trainer(targs, torch.device(device))
    if not args.smoke:  # the budget is the whole run's: loading the crops (a minute or two) comes out of training
        targs.minutes = max(minutes - (time.monotonic() - t0) / 60.0 - SAVE_MINUTES, 0.0)
    log.info("crops loaded after %.0f s; training for %.2f minutes", time.monotonic() - t0, targs.minutes)
    trainer.train()
    state = torch.load(args.out / "checkpoint.pt", map_location="cpu", weights_only=True)
    seconds = time.monotonic() - t0
    summary = {"device": device, "minutes": minutes, "batch": batch, "steps": int(state["step"]),
               "images": int(state["images"]), "seconds": round(seconds, 1), "options": extra,
               "started_from": str(args.resume or args.init_generator),
               "gate": "python -m export gate-generator --candidate OUT/generator.pt --threads 1 (on the host)"}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    log.info("%d steps, %d images in %.0f s; candidate %s; gate it on the host: %s", summary["steps"],
             summary["images"], seconds, args.out / "generator.pt", summary["gate"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
