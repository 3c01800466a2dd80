"""`python -m export gate-generator`: new generator weights replace the committed ones only if nothing gets worse.

The candidate and the committed weights are evaluated side by side on the tuning split (export.eval.splits,
never the held-back faces and scenes the published numbers come from), on the same faces with the same seeds:
AP retention of dlib's HOG judge on given boxes and the detail ratio of faces >= 48 px (export.eval.utility),
identity in context, the share dlib still calls the same person and rank-1 re-identification
(export.eval.incontext), and the crowd's measures on the same faces (export.eval.crowd): tone fidelity
(L* correlation, worst group's median |delta ITA|), diversity and identity with controls (own person minus
look-alike stranger, re-identification) under dlib and SFace, and the seam's gradient energy. Only when
every measure is at least as good and one is better is the candidate
copied over the committed weights and the ONNX model re-exported. Exit status 0: promoted, 1: kept, 2: error.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeanon.anonymize import Anonymizer
from edgeanon.anonymize.gan import FaceGenerator
from edgeanon.atomic import atomic_path
from edgeanon.models import DEFAULT_DETECTOR, DEFAULT_GENERATOR
from export.conversion.onnx_export import export_generator
from export.eval import crowd, incontext, utility
from export.paths import shared_data_dir

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = DEFAULT_GENERATOR.with_suffix(".pt")
# The sizes of the published held-back runs (utility: 50 images, incontext: 300 faces), on the tuning split.
GATE_IMAGES = 50
GATE_FACES = 300


@dataclass(frozen=True)
class Measure:
    key: str
    name: str
    higher_is_better: bool
    percent: bool


MEASURES = (
    Measure("ap_retention", "AP retention (dlib HOG judge, given boxes)", True, True),
    Measure("detail", "detail ratio median, faces >= 48 px", True, False),
    Measure("identity_share", "identity in context: share distance < 0.6", False, True),
    Measure("reid_rank1", "identity in context: rank-1 re-identification", False, True),
    Measure("tone_r", "tone: L* correlation, original vs output", True, False),
    Measure("dita_worst", "tone: worst UTKFace group's median |dITA|", False, False),
    Measure("dlib_diversity", "diversity (dlib), outputs over originals", True, False),
    Measure("sface_diversity", "diversity (SFace), outputs over originals", True, False),
    Measure("dlib_gap", "identity (dlib): own minus look-alike share", False, True),
    Measure("sface_gap", "identity (SFace): own minus look-alike share", False, True),
    Measure("sface_reid_x_chance", "identity (SFace): rank-1 re-id over chance", False, False),
    Measure("seam", "seam: gradient energy in the blend band", False, False),
)
# The crowd measures (export.eval.crowd.summary keys) among MEASURES.
CROWD_KEYS = tuple(m.key for m in MEASURES[4:])


@dataclass(frozen=True)
class Verdict:
    promote: bool
    outcome: dict[str, str]  # measure key -> "better", "same" or "worse"
    reason: str


def compare(committed: float, candidate: float, higher_is_better: bool) -> str:
    """'better', 'same' or 'worse' for the candidate; a missing (NaN) value is 'worse', unless both miss it (a
    correlation over too few faces, a tone group with no face): then 'same'."""
    if not (math.isfinite(committed) or math.isfinite(candidate)):
        return "same"
    if not (math.isfinite(committed) and math.isfinite(candidate)):
        return "worse"
    if candidate == committed:
        return "same"
    return "better" if (candidate > committed) == higher_is_better else "worse"


def decide(committed: dict[str, float], candidate: dict[str, float],
           measures: tuple[Measure, ...] = MEASURES) -> Verdict:
    """Promote only when every measure is at least as good and at least one is better."""
    outcome = {m.key: compare(committed[m.key], candidate[m.key], m.higher_is_better) for m in measures}
    worse = [m.name for m in measures if outcome[m.key] == "worse"]
    if worse:
        return Verdict(False, outcome, "worse: " + "; ".join(worse))
    if "better" not in outcome.values():
        return Verdict(False, outcome, "no measure is better")
    return Verdict(True, outcome, "every measure at least as good, "
                   + "; ".join(m.name for m in measures if outcome[m.key] == "better") + " better")


def format_value(measure: Measure, value: float) -> str:
    return f"{value * 100:.1f}%" if measure.percent else f"{value:.3f}"


def table(committed: dict[str, float], candidate: dict[str, float], verdict: Verdict) -> str:
    """The side-by-side comparison, one line per measure."""
    lines = [f"{'measure':<48} {'committed':>10} {'candidate':>10}  result"]
    for m in MEASURES:
        lines.append(f"{m.name:<48} {format_value(m, committed[m.key]):>10} {format_value(m, candidate[m.key]):>10}"
                     f"  {verdict.outcome[m.key]}")
    return "\n".join(lines)


def add_gate_options(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """What the gate replaces, and its evaluation's sizes (train-generator --gate takes them with a `gate-` prefix)."""
    p.add_argument(f"--{prefix}committed", type=Path, default=DEFAULT_WEIGHTS,
                   help=f"the weights to beat, replaced on promotion (default {DEFAULT_WEIGHTS})")
    p.add_argument(f"--{prefix}onnx", type=Path, default=DEFAULT_GENERATOR,
                   help=f"the ONNX model re-exported on promotion (default {DEFAULT_GENERATOR})")
    p.add_argument(f"--{prefix}images", type=int, default=GATE_IMAGES,
                   help=f"tuning wider-train images for AP retention and detail (default {GATE_IMAGES})")
    p.add_argument(f"--{prefix}faces", type=int, default=GATE_FACES,
                   help=f"tuning UTKFace photos laid into tuning scenes for identity (default {GATE_FACES})")
    p.add_argument(f"--{prefix}threads", type=int, default=None,
                   help="ONNX Runtime threads for the detector and generators (default: all cores)")
    p.add_argument(f"--{prefix}work", type=Path, default=Path("runs/gate"),
                   help="folder for the ONNX exports of both weights and gate.json (default runs/gate)")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "gate-generator",
        help="promote candidate generator weights only if utility, detail and identity all hold (tuning split)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        epilog="Example: python -m export gate-generator --candidate runs/gen/generator.pt",
    )
    p.add_argument("--candidate", type=Path, required=True, help="the new weights (generator.pt of a training run)")
    p.add_argument("--data", type=Path, default=shared_data_dir())
    p.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR,
                   help="our detector (default models/detector.onnx)")
    add_gate_options(p)
    p.add_argument("--dry-run", action="store_true", help="print the comparison and the verdict, change nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return gate(args.candidate, args.committed, args.onnx, args.data, args.detector, args.images, args.faces,
                args.threads, args.work, dry_run=args.dry_run)


def missing_input(candidate: Path, committed: Path, data: Path, detector: Path) -> str | None:
    """One line naming the first input the gate lacks, else None."""
    for path, what in ((candidate, "candidate weights"), (committed, "committed weights"), (detector, "detector")):
        if not path.is_file():
            return f"{path}: {what} not found"
    absent = incontext.missing_input(data)
    return f"{absent}: not found (set --data)" if absent else None


def gate(candidate: Path, committed: Path, onnx_path: Path, data: Path, detector: Path, images: int = GATE_IMAGES,
         faces: int = GATE_FACES, threads: int | None = None, work: Path = Path("runs/gate"),
         dry_run: bool = False) -> int:
    """Evaluate, print the table and the verdict, promote when it says so; 0 promoted, 1 kept, 2 error."""
    problem = missing_input(candidate, committed, data, detector)
    if problem:
        log.error("%s", problem)
        return 2
    if candidate.resolve() == committed.resolve():
        log.error("%s: the candidate is the committed weights", candidate)
        return 2
    result = evaluate_pair(committed, candidate, data, detector, images, faces, threads, work)
    verdict = decide(result["committed"], result["candidate"])
    scenes = min(result["faces"], result["scenes"])
    print(f"generator gate on the tuning split: {result['images']} wider-train images ({result['faces_detail']} "
          f"faces >= 48 px), {result['faces']} UTKFace photos in {scenes} scenes; same faces, same seeds")
    print(table(result["committed"], result["candidate"], verdict))
    paired = result["paired_distance"]
    print(f"paired change of each face's dlib distance, candidate - committed: {paired['mean']:+.4f} "
          f"(SE {paired['se']:.4f}); farther for {paired['farther']}, closer for {paired['closer']} of {paired['n']}")
    promoted = verdict.promote and not dry_run
    result.update(verdict=verdict.reason, outcome=verdict.outcome, promoted=promoted)
    (work / "gate.json").write_text(json.dumps(result, indent=2))
    if not verdict.promote:
        print(f"kept {committed}: {verdict.reason}")
        return 1
    if dry_run:
        print(f"would promote {candidate} ({verdict.reason}); --dry-run: nothing changed")
        return 0
    promote(candidate, committed, onnx_path)
    print(f"promoted {candidate} -> {committed}, re-exported {onnx_path} ({verdict.reason})")
    return 0


def promote(candidate: Path, committed: Path, onnx_path: Path) -> None:
    """Copy the candidate weights over the committed ones and re-export the ONNX model from them."""
    with atomic_path(committed) as tmp:
        tmp.write_bytes(candidate.read_bytes())
    export_generator(committed, onnx_path)


def evaluate_pair(committed: Path, candidate: Path, data: Path, detector: Path, images: int, faces: int,
                  threads: int | None, work: Path) -> dict:
    """Both weights through the runtime (each exported to ONNX in `work`), on the same tuning faces and seeds."""
    work.mkdir(parents=True, exist_ok=True)
    models = {"committed": export_generator(committed, work / "committed.onnx"),
              "candidate": export_generator(candidate, work / "candidate.onnx")}
    anonymizers = {label: Anonymizer("gan", generator=FaceGenerator.from_path(path, backend="ort", threads=threads))
                   for label, path in models.items()}
    gt_all = json.loads((data / "wider-train" / "boxes.json").read_text())
    names = utility.chosen_images(gt_all, "tune", images)
    util = utility.evaluate(data, names, anonymizers, detector, utility.Judge("hog", 1), threads=threads)
    rows = {r["method"]: r for r in util.rows()}
    ctx, seen = crowd.collect(data, detector, anonymizers, faces, "tune", threads=threads)
    ident = {label: ctx.row(label) for label in anonymizers}
    everyone = np.arange(len(seen.names))
    values = {}
    for label in anonymizers:
        summary = crowd.summary(seen.per_face(label), seen.groups(), everyone)
        values[label] = {"ap_retention": rows[label]["retention"], "detail": rows[label]["detail_median"],
                         "identity_share": ident[label]["share_same"], "reid_rank1": ident[label]["reid_rank1"],
                         **{key: summary[key] for key in CROWD_KEYS}}
    diff = np.array(ctx.distances["candidate"]) - np.array(ctx.distances["committed"])
    paired = {"n": len(diff), "mean": float(diff.mean()) if len(diff) else float("nan"),
              "se": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan"),
              "farther": int((diff > 0).sum()), "closer": int((diff < 0).sum())}
    return {**values, "images": len(names), "faces_detail": rows["committed"]["faces_detail"], "faces": ctx.faces,
            "scenes": ctx.scenes, "split": "tune", "paired_distance": paired,
            "served_16px": {label: util.served_share(label) for label in anonymizers}}
