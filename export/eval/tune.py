"""Choose the detector's scales and thresholds (and the tracker's hold) by measurement, on one split only.

    python -m export.eval.tune --data ../shared/data --split tune --json out/tune.json

The detector runs once per image (or clip frame) and scale, keeping every candidate above the lowest
threshold tried; each setting then re-selects from those candidates (edgeanon.detector.FaceDetector.select,
the runtime's own NMS) and anonymizes with the runtime's own chain (edgeanon.redactor.Redactor), so a
grid costs one detection pass. Prints leak and collateral per setting (export/eval/leak_metric.py).
Settings are chosen here on `tune`; `python -m export.eval leak --split holdout` reports them held back.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import pickle
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edgeanon.anonymize import Anonymizer
from edgeanon.defaults import IMAGE_SCALING, VIDEO_SCALING
from edgeanon.detector import FaceDetector
from edgeanon.frames import Detection, Frame
from edgeanon.images import load_image
from edgeanon.models import default_detector
from edgeanon.redactor import Redactor
from edgeanon.tracker import Tracker
from edgeanon.video import VideoReader
from export.eval.leak import CLIP_KINDS, build_clip, load_truth, stills
from export.eval.leak_metric import LeakTally
from export.splits import TUNE, add_split_option

LOWEST = 0.05


class CachedDetector:
    """A FaceDetector stand-in that re-combines the cached candidates of the image set by `use(key)` with the
    runtime's own rules (FaceDetector.combine) under the given setting."""

    def __init__(self, base: FaceDetector, cache: dict, scales: tuple[str, ...], setting: dict):
        self.base, self.cache, self.scales, self.setting = base, cache, scales, setting
        self.key = None

    def use(self, key) -> None:
        self.key = key

    def detect(self, image: np.ndarray) -> list[Detection]:
        for name, value in self.setting.items():
            setattr(self.base, name, value)
        return self.base.combine([self.cache[self.key][s] for s in self.scales], image.shape[:2])


def scale_value(name: str, shape: tuple[int, ...], video: bool) -> float:
    if name == "auto":
        return (VIDEO_SCALING if video else IMAGE_SCALING).scale_for(*shape[:2])
    return float(name)


def candidates_at(detector: FaceDetector, image: np.ndarray, scales: tuple[str, ...], video: bool) -> dict:
    detector.low_threshold = LOWEST
    out = {}
    for name in scales:
        prepared = detector.prepare(image, scale_value(name, image.shape, video))
        out[name] = detector.candidates(detector.infer(prepared), prepared)
    return out


class CandidateCache:
    """Candidates per (input, scale) kept on disk, so a new grid does not detect again."""

    def __init__(self, folder: Path, detector_path: Path):
        tag = hashlib.sha1(Path(detector_path).read_bytes()).hexdigest()[:10]
        self.path = folder / f"candidates-{tag}-{LOWEST}.pkl"
        self.data: dict = pickle.loads(self.path.read_bytes()) if self.path.is_file() else {}
        self.dirty = False

    def get(self, key, detector: FaceDetector, image: np.ndarray, scales: tuple[str, ...], video: bool) -> dict:
        have = self.data.setdefault(key, {})
        missing = tuple(s for s in scales if s not in have)
        if missing:
            have.update(candidates_at(detector, image, missing, video))
            self.dirty = True
        return have

    def save(self) -> None:
        if self.dirty:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_bytes(pickle.dumps(self.data))
            self.dirty = False


def tune_stills(detector: FaceDetector, items, scale_sets, settings: list[dict], method: str,
                store: CandidateCache) -> list[dict]:
    all_scales = tuple(sorted({s for ss in scale_sets for s in ss}))
    cache, images = {}, {}
    for path, boxes in tqdm(items, desc="stills: detecting", unit="img"):
        image = load_image(path)
        cache[path.name] = store.get(("still", path.name), detector, image, all_scales, video=False)
        images[path.name] = (image, boxes.tolist())
    store.save()
    rows = []
    anonymizer = Anonymizer(method)
    for scales, setting in itertools.product(scale_sets, settings):
        cached = CachedDetector(detector, cache, scales, setting)
        chain = Redactor(cached, anonymizer)
        tally = LeakTally()
        for name, (image, boxes) in images.items():
            cached.use(name)
            tally.add(chain.process(Frame(0, 0.0, image.copy())).image, image, boxes)
        rows.append({"mode": "stills", "scales": list(scales), **describe(setting), **tally.to_json()})
        print(f"stills {'+'.join(scales):<14} {_text(setting)}: leak {tally.rate:6.2%} ({tally.leaked}/{tally.faces}) "
              f"collateral {tally.collateral:6.2%}", flush=True)
    return rows


def tune_clip(detector: FaceDetector, clip: Path, truth_path: Path, scale_sets, settings: list[dict], holds,
              method: str, store: CandidateCache, growths: tuple[float, ...] = (0.0,),
              kind: str = "clip") -> list[dict]:
    """Every setting on one evaluation clip; `kind` (CLIP_KINDS: clip or crowd) labels its rows."""
    all_scales = tuple(sorted({s for ss in scale_sets for s in ss}))
    truth, _ = load_truth(truth_path)
    cache, frames = {}, []
    with VideoReader(clip) as reader:
        for frame in tqdm(reader, total=reader.info.frame_count, desc="clip: detecting", unit="f"):
            cache[frame.index] = store.get(("clip", clip.name, frame.index), detector, frame.image, all_scales,
                                           video=True)
            frames.append(frame)
    store.save()
    rows = []
    anonymizer = Anonymizer(method)
    for scales, setting, hold, growth in itertools.product(scale_sets, settings, holds, growths):
        cached = CachedDetector(detector, cache, scales, setting)
        chain = Redactor(cached, anonymizer, Tracker(hold_s=hold, growth=growth) if hold > 0 else None)
        tally = LeakTally()
        for frame in frames:
            cached.use(frame.index)
            faces = truth.get(str(frame.index), [])
            out = chain.process(Frame(frame.index, frame.timestamp, frame.image.copy())).image
            tally.add(out, frame.image, [f["box"] for f in faces], [f["id"] for f in faces])
        rows.append({"mode": kind, "scales": list(scales), **describe(setting), "hold": hold, "growth": growth,
                     **tally.to_json()})
        print(f"{kind} {'+'.join(scales):<14} {_text(setting)} hold {hold:.1f} growth {growth:.1f}: "
              f"leak {tally.rate:6.2%} ({tally.leaked}/{tally.faces}) collateral {tally.collateral:6.2%}", flush=True)
    return rows


def grid(thresholds, lows, extra_thresholds, doubt_max) -> list[dict]:
    """Every consistent detector setting (attribute values of FaceDetector) of the grid."""
    out = []
    for thr, low, extra, top in itertools.product(thresholds, lows, extra_thresholds, doubt_max):
        if low > thr:
            continue
        out.append({"threshold": thr, "low_threshold": low, "extra_threshold": max(extra, thr),
                    "doubt_sides": (12.0, top)})
    return out


def describe(setting: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in setting.items()}


def _text(setting: dict) -> str:
    return (f"thr {setting['threshold']:.2f} low {setting['low_threshold']:.2f} extra {setting['extra_threshold']:.2f} "
            f"doubt<{setting['doubt_sides'][1]:g}")


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _scale_sets(text: str) -> list[tuple[str, ...]]:
    return [tuple(s.split("+")) for s in text.split(",") if s.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export.eval.tune", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="shared data folder (has wider-train/)")
    add_split_option(p, TUNE)
    p.add_argument("--modes", default="stills,clip,crowd", help="any of stills, clip, crowd (see export.eval leak)")
    p.add_argument("--method", default="blur")
    p.add_argument("--limit", type=int, default=None, help="at most this many still images")
    p.add_argument("--detector-model", type=Path, default=None)
    p.add_argument("--still-scales", default="auto,auto+0.5,auto+1.0+0.5",
                   help="scale sets to try for stills: '+' joins scales of one set, ',' separates sets")
    p.add_argument("--clip-scales", default="0.5,auto,auto+0.5", help="scale sets to try for the clip")
    p.add_argument("--thresholds", default="0.2")
    p.add_argument("--lows", default="0.05,0.1,0.2")
    p.add_argument("--extra-thresholds", default="0.2,0.4", help="confident threshold of the extra scales")
    p.add_argument("--doubt-max", default="48,inf", help="largest box side (px) a doubtful candidate may have")
    p.add_argument("--holds", default="0,0.3", help="tracker hold times to try, seconds (0 = no tracker)")
    p.add_argument("--growths", default="0", help="tracker growth per second while a face coasts (default 0, as the "
                   "runtime's tracker)")
    p.add_argument("--work", type=Path, default=Path("out/leak"))
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    detector_path = args.detector_model or default_detector()
    detector = FaceDetector.from_path(detector_path)
    store = CandidateCache(args.work, detector_path)
    settings = grid(_floats(args.thresholds), _floats(args.lows), _floats(args.extra_thresholds),
                    _floats(args.doubt_max))
    rows = []
    if "stills" in args.modes:
        rows += tune_stills(detector, stills(args.data, args.split, args.limit), _scale_sets(args.still_scales),
                            settings, args.method, store)
    for kind in CLIP_KINDS:
        if kind not in args.modes:
            continue
        clip, truth = build_clip(args.data, args.split, args.work, kind=kind)
        rows += tune_clip(detector, clip, truth, _scale_sets(args.clip_scales), settings, _floats(args.holds),
                          args.method, store, tuple(_floats(args.growths)), kind)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
