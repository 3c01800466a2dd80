"""Licence plates on plates-oi (Open Images photos, CC BY): plate recall, plate leak, and the plate cover's collateral.

    # the numbers of record, on the held-back split (plates-oi's test folder, never tuned on)
    python -m export.eval plates --data ../shared/data --split holdout
    # choosing thresholds and cover: a sweep on the tuning split (plates-oi's train and valid folders) only
    python -m export.eval plates --data ../shared/data --split tune --sweep

The runtime's own pieces do the work (edgeanon.redactor.Redactor with `plates` on): faces and plates are found on
the raw image, faces covered, then plates. Per image:
- *plate leak* (export/eval/leak_metric.py): a labelled plate whose sides are both >= 16 px leaks when its region
  in the output is still structurally the source (mean local SSIM >= 0.85);
- *collateral outside plates and faces*: the pixels that covering plates changed (the output with plates against
  the same chain's output without them, so faces are out of it by construction) outside every labelled plate
  grown 1.6x, by leak_metric's collateral rule;
- *recall*: labelled plates (>= 16 px) matched at IoU >= 0.5 by a confident detection, and by any (doubtful too).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edgeanon.config import ModelConfig, PlatesConfig, model_config
from edgeanon.defaults import DEFAULT_PLATE_METHOD, PLATE_LOW_THRESHOLD, PLATE_MASK_SCALE, PLATE_THRESHOLD
from edgeanon.frames import Frame
from edgeanon.images import load_image
from edgeanon.inference.errors import ModelError
from edgeanon.redactor import Redactor
from edgeanon.tracker import iou_matrix
from edgeanon.video import VideoReader, VideoWriter
from export.datasets import load_plates_oi
from export.eval.clip import SOURCE_CRF, camera_view, in_view
from export.eval.leak import print_and_save
from export.eval.leak_metric import DEFAULT_MIN_SIZE, LeakTally, collateral
from export.paths import shared_data_dir
from export.splits import HOLDOUT, TUNE, add_split_option

log = logging.getLogger(__name__)

SET = "plates-oi"
MATCH_IOU = 0.5


def counted(boxes: np.ndarray, min_size: int = DEFAULT_MIN_SIZE) -> np.ndarray:
    """The plates the numbers count: both sides >= min_size pixels."""
    sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) if len(boxes) else np.zeros(0)
    return boxes[sides >= min_size]


def matched(truth: np.ndarray, found: np.ndarray) -> int:
    """Labelled plates matched (IoU >= MATCH_IOU) by a found box, one to one (greedy by overlap)."""
    if not len(truth) or not len(found):
        return 0
    iou = iou_matrix(truth, found)
    hits = 0
    while iou.size and iou.max() >= MATCH_IOU:
        t, f = np.unravel_index(iou.argmax(), iou.shape)
        hits += 1
        iou[t, :] = -1
        iou[:, f] = -1
    return hits


@dataclass
class PlateTally:
    """Recall, leak and collateral added up over the images of a split."""
    plates: int = 0
    found: int = 0  # confident matches
    found_any: int = 0  # confident or doubtful
    leak: LeakTally = field(default_factory=LeakTally)
    changed: int = 0
    outside: int = 0
    seconds: float = 0.0
    images: int = 0

    def to_json(self) -> dict:
        leak = self.leak.to_json()
        return {"images": self.images, "plates": self.plates,
                "recall": round(self.found / self.plates, 4) if self.plates else 0.0,
                "recall_with_doubtful": round(self.found_any / self.plates, 4) if self.plates else 0.0,
                "leak_rate": leak["leak_rate"], "leaked": leak["leaked"], "counted": leak["faces"],
                "flat_not_counted": leak["flat_not_counted"], "leak_by_size": leak["leak_by_size"],
                "collateral": round(self.changed / self.outside, 4) if self.outside else 0.0,
                "ms_per_image": round(1000 * self.seconds / self.images, 1) if self.images else 0.0}


def detector_recall(detector, items: list[tuple[Path, np.ndarray]], min_size: int = DEFAULT_MIN_SIZE,
                    desc: str = "recall") -> dict:
    """Recall of a plate detector alone (edgeanon.plates.PlateDetector): confident, and with doubtful ones."""
    plates = hits = hits_any = 0
    for path, boxes in tqdm(items, desc=desc, unit="img", mininterval=10):
        truth = counted(boxes, min_size)
        found = detector.detect(load_image(path))
        plates += len(truth)
        hits += matched(truth, np.array([d.box for d in found if d.confident]).reshape(-1, 4))
        hits_any += matched(truth, np.array([d.box for d in found]).reshape(-1, 4))
    return {"plates": plates, "recall": round(hits / plates, 4) if plates else 0.0,
            "recall_with_doubtful": round(hits_any / plates, 4) if plates else 0.0}


def evaluate(chain, items: list[tuple[Path, np.ndarray]], min_size: int = DEFAULT_MIN_SIZE,
             desc: str = "plates") -> PlateTally:
    """Run the chain's pieces on each image: faces then plates covered; recall, leak, collateral."""
    tally = PlateTally()
    for path, boxes in tqdm(items, desc=desc, unit="img", mininterval=10):
        source = load_image(path)
        started = time.perf_counter()
        faces = chain.detector.detect(source)
        plates = chain.plates.find(Frame(0, 0.0, source))
        faces_only = chain.anonymizer.redact(Frame(0, 0.0, source.copy()), faces).image
        both = chain.anonymizer.redact(Frame(0, 0.0, source.copy()), faces, plates).image
        tally.seconds += time.perf_counter() - started
        tally.images += 1
        truth = counted(boxes, min_size)
        tally.plates += len(truth)
        tally.found += matched(truth, np.array([p.box for p in plates if p.confident]).reshape(-1, 4))
        tally.found_any += matched(truth, np.array([p.box for p in plates]).reshape(-1, 4))
        tally.leak.add(both, source, boxes.tolist(), min_size=min_size)
        changed, outside = collateral(both, faces_only, boxes.tolist())
        tally.changed += changed
        tally.outside += outside
    return tally


CLIP_SCENES = 6
CLIP_FRAMES_PER_SCENE = 24
CLIP_FPS = 12.0
CLIP_MIN_PLATE = 20  # px (short side, in the photo) of the plate a scene image must have


def make_plate_clip(data: Path, split: str, out: Path, scenes: int = CLIP_SCENES,
                    frames_per_scene: int = CLIP_FRAMES_PER_SCENE, fps: float = CLIP_FPS,
                    size: tuple[int, int] = (1280, 720)) -> dict:
    """A 720p clip of plates-oi photos of a split under a moving camera (export.eval.clip's zooms and pans, a cut
    between scenes), written once, with per-frame plate boxes {"frames": [{"index", "faces": [{"id", "box"}]}]}
    (leak.load_truth's format; "faces" are the plates here)."""


    truth_path = out.with_suffix(".truth.json")
    if out.is_file() and truth_path.is_file():
        return json.loads(truth_path.read_text())
    items = [(p, b) for p, b in load_plates_oi(data, split) if len(counted(b, CLIP_MIN_PLATE))]
    step = max(1, len(items) // scenes)
    chosen = items[::step][:scenes]
    width, height = size
    truth: dict = {"width": width, "height": height, "fps": fps, "images": [p.name for p, _ in chosen], "frames": []}
    out.parent.mkdir(parents=True, exist_ok=True)
    index = 0
    with VideoWriter(out, fps, size, crf=SOURCE_CRF) as writer:
        for scene, (path, boxes) in enumerate(chosen):
            image = load_image(path)
            for k in range(frames_per_scene):
                frame, moved = camera_view(image, boxes, k / max(1, frames_per_scene - 1), scene, size)
                writer.write(frame)
                truth["frames"].append({"index": index, "faces": in_view(moved, size, scene * 100)})
                index += 1
    truth_path.write_text(json.dumps(truth))
    return truth


def clip_run(chain, clip: Path, truth: dict, desc: str) -> dict:
    """The chain over the clip as the daemon runs it (tracking): plate leak, and ms per frame of the whole chain."""
    tally = LeakTally()
    seconds = 0.0
    chain.reset()
    frames = {f["index"]: f["faces"] for f in truth["frames"]}
    with VideoReader(clip) as reader:
        for frame in tqdm(reader, total=reader.info.frame_count, desc=desc, unit="f", mininterval=10):
            source = frame.image.copy()
            started = time.perf_counter()
            output = chain.process(frame).image
            seconds += time.perf_counter() - started
            plates = frames.get(frame.index, [])
            tally.add(output, source, [p["box"] for p in plates], [p["id"] for p in plates])
    result = tally.to_json()
    return {"frames": tally.frames, "plates": tally.faces, "leaked": tally.leaked, "leak_rate": round(tally.rate, 4),
            "plates_leaked_once": result.get("people_leaked", 0), "distinct_plates": result.get("people", 0),
            "ms_per_frame": round(1000 * seconds / max(1, tally.frames), 1)}


def clip_benchmark(args: argparse.Namespace) -> int:
    """Every N frames against every frame, on the split's clip: leak and cost of the chain per 720p frame."""
    clip = Path(args.work) / f"plates-{args.split}.mp4"
    truth = make_plate_clip(args.data, args.split, clip)
    lines = [f"{SET} {args.split} clip: {len(truth['frames'])} frames of 1280x720 ({len(truth['images'])} scenes, "
             f"{CLIP_FPS:g} fps, zooms and pans); leak = labelled plates (both sides >= {DEFAULT_MIN_SIZE} px) still "
             "structurally the source; ms = the whole chain (faces and plates) per frame", "",
             "| plates                 | leak (leaked/plates) | plates leaked in a frame | ms/frame |",
             "|------------------------|----------------------|--------------------------|----------|"]
    report: dict = {"split": args.split, "clip": str(clip), "runs": {}}
    for every in [0, *(int(v) for v in args.every.split(","))]:
        plates = None if every == 0 else PlatesConfig(
            enabled=True, model=str(args.plate_model) if args.plate_model else None, method=args.methods.split(",")[0],
            threshold=args.threshold, low_threshold=args.low_threshold, mask_scale=args.mask_scale, every=every)
        chain = Redactor.from_config(faces_blurred(args), video=True, plates=plates)
        name = "off (faces only)" if every == 0 else f"every {every} frame(s)"
        r = clip_run(chain, clip, truth, name)
        report["runs"][name] = r
        lines.append(f"| {name:<22} | {r['leak_rate']:6.2%} ({r['leaked']}/{r['plates']}) | "
                     f"{r['plates_leaked_once']} of {r['distinct_plates']} | {r['ms_per_frame']:8.1f} |")
        log.info("%s", lines[-1])
    return print_and_save(lines, report, args.json)


def build_chain(args: argparse.Namespace, threshold: float, low_threshold: float, mask_scale: float, method: str):
    plates = PlatesConfig(enabled=True, model=str(args.plate_model) if args.plate_model else None, method=method,
                          threshold=threshold, low_threshold=low_threshold, mask_scale=mask_scale)
    return Redactor.from_config(dataclasses.replace(faces_blurred(args), track=False), plates=plates)


def faces_blurred(args: argparse.Namespace) -> ModelConfig:
    """The face chain under the plates: blur, the given detector and threads."""
    return model_config(method="blur", threads=args.threads,
                        detector=str(args.detector_model) if args.detector_model else None)


def _row(name: str, r: dict) -> str:
    return (f"| {name:<40} | {r['plates']:4d} | {r['recall']:.3f} | {r['recall_with_doubtful']:.3f} | "
            f"{r['leak_rate']:6.2%} ({r['leaked']}/{r['counted']}) | {r['collateral']:6.2%} | "
            f"{r['ms_per_image']:6.1f} |")


HEADER = ["| run                                      | plates | recall | +doubtful | leak (leaked/counted) | collat. "
          "| ms/img |",
          "|------------------------------------------|--------|--------|-----------|-----------------------|---------"
          "|--------|"]


def run(args: argparse.Namespace) -> int:
    if args.clip:
        try:
            return clip_benchmark(args)
        except (FileNotFoundError, ValueError, ModelError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    try:
        items = load_plates_oi(args.data, args.split)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.limit:
        items = items[:args.limit]
    if args.sweep:
        default = (PLATE_THRESHOLD, PLATE_LOW_THRESHOLD, PLATE_MASK_SCALE)
        runs = ([(t, lo, PLATE_MASK_SCALE, "blur") for t in (0.15, 0.25, 0.4) for lo in (0.05, 0.1)]
                + [(*default[:2], s, "blur") for s in (1.0, 1.4)]
                + [(*default, m) for m in ("synthetic", "fill", "pixelate")])
    else:
        runs = [(args.threshold, args.low_threshold, args.mask_scale, m) for m in args.methods.split(",")]
    lines = [f"{SET} {args.split}: {len(items)} images; plates counted: both sides >= {args.min_size} px; leak = "
             "mean local SSIM >= 0.85 to the source; collateral = pixels the plate cover changed outside the labelled "
             "plates grown 1.6x", "", *HEADER]
    report: dict = {"split": args.split, "data": str(args.data), "runs": {}}
    for threshold, low, scale, method in runs:
        name = f"{method} t={threshold:g} low={low:g} scale={scale:g}"
        try:
            chain = build_chain(args, threshold, low, scale, method)
        except (ModelError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        result = evaluate(chain, items, args.min_size, desc=name).to_json()
        report["runs"][name] = result
        lines.append(_row(name, result))
        log.info("%s", lines[-1])
    return print_and_save(lines, report, args.json)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("plates", help="plate recall, leak and collateral on plates-oi",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=shared_data_dir(), help="shared data folder (has plates-oi/)")
    add_split_option(p, help=f"{HOLDOUT}: plates-oi's test folder, never tuned on (default); {TUNE}: its train and "
                             "valid folders, where settings are chosen")
    p.add_argument("--methods", default=DEFAULT_PLATE_METHOD, help="plate methods to run, comma-separated")
    p.add_argument("--threshold", type=float, default=PLATE_THRESHOLD)
    p.add_argument("--low-threshold", type=float, default=PLATE_LOW_THRESHOLD)
    p.add_argument("--mask-scale", type=float, default=PLATE_MASK_SCALE)
    p.add_argument("--sweep", action="store_true", help="try thresholds and mask scales (use it on --split tune)")
    p.add_argument("--plate-model", type=Path, help="plate detector (default models/plates.onnx)")
    p.add_argument("--detector-model", type=Path, help="face detector (default: the runtime's)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--limit", type=int, default=None, help="at most this many images")
    p.add_argument("--min-size", type=int, default=DEFAULT_MIN_SIZE, help="smallest plate side that counts (px)")
    p.add_argument("--clip", action="store_true",
                   help="video: a 720p clip of the split's photos under a moving camera; every frame against every N "
                        "frames (--every) with the tracker holding the plates between")
    p.add_argument("--every", default="1,2,3,5", help="with --clip: the N to try (default %(default)s)")
    p.add_argument("--work", type=Path, default=Path("out/plates"), help="where the clips are built")
    p.add_argument("--json", type=Path, help="also write the numbers as JSON here")
    p.set_defaults(func=run)
