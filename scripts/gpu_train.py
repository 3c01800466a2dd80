"""One lent GPU call: fine-tune the face generator from the committed weights for a fixed time, hand back a candidate.

Run in the repository root of the device machine (docs/generator-weights.md, Training, gives the whole call):

    python3 -m scripts.gpu_train --train-set runs/gpu/faces.npz --out "$OUT"

It reads only what travels with the working tree: the crop file made here by `python -m export train-generator
--prepare-only --train-set runs/gpu/faces.npz`, the face prior models/centerface.pt and the committed
models/generator.pt; it downloads nothing. It trains for --minutes (default 7, so the call ends well inside its
10 minutes) and writes into --out: generator.pt (the candidate: EMA weights, fp16), preview.png (held-back crops:
originals, inputs, seeds 0-2), checkpoint.pt (light, fp16: `--resume` continues from it in a later call),
train.log and summary.json. The gate then runs here, on the host: `python -m export gate-generator --candidate
.../generator.pt`; it needs dlib, its models and the evaluation data, which together do not fit in what travels.
Options it does not know go to `train-generator` (e.g. --lr 1e-4, --diversity-weight 0.5).
`--smoke` runs the same path on the CPU for a few seconds at batch 2 (the recipe's test).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from export.paths import CENTERFACE_WEIGHTS, MODELS_DIR

log = logging.getLogger("scripts.gpu_train")

DEFAULT_TRAIN_SET = Path("runs/gpu/faces.npz")
MINUTES = 7.0
BATCH = 128
SMOKE_MINUTES = 0.05


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(prog="python3 -m scripts.gpu_train", description=__doc__.split("\n\n")[0])
    p.add_argument("--train-set", type=Path, default=DEFAULT_TRAIN_SET,
                   help=f"crop file made by train-generator --prepare-only (default {DEFAULT_TRAIN_SET})")
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "runs/gpu-out")),
                   help="where the candidate, preview and log go (default $OUT, else runs/gpu-out)")
    p.add_argument("--minutes", type=float, default=MINUTES, help=f"training wall clock (default {MINUTES})")
    p.add_argument("--batch", type=int, default=BATCH, help=f"batch size (default {BATCH})")
    p.add_argument("--init-generator", type=Path, default=MODELS_DIR / "generator.pt",
                   help="weights to start from (default the committed models/generator.pt)")
    p.add_argument("--face-prior", type=Path, default=CENTERFACE_WEIGHTS,
                   help=f"CenterFace state dict of the face prior (default {CENTERFACE_WEIGHTS})")
    p.add_argument("--resume", type=Path, help="a checkpoint.pt handed back by an earlier call: continue from it")
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


def main(argv: list[str] | None = None) -> int:
    args, extra = parse(argv)
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
    problem = missing(args)
    if problem:
        log.error("%s", problem)
        return 2
    import torch

    from export import train

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
    t0 = time.monotonic()
    status = targs.func(targs)
    if status:
        return status
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
