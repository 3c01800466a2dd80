"""`edgeanon detect`: find faces in images and write them as JSON (boxes, scores, 5 landmarks)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edgeanon.atomic import atomic_path, folder_problem, target_problem
from edgeanon.detector import DEFAULT_NMS_IOU, DEFAULT_THRESHOLD, FaceDetector
from edgeanon.frames import Detection
from edgeanon.images import IMAGE_SUFFIXES, ImageError, load_image
from edgeanon.inference.errors import ModelError
from edgeanon.inputs import InputError, collect, skipped_warning
from edgeanon.models import default_detector

log = logging.getLogger(__name__)


def draw(image: np.ndarray, faces: list[Detection]) -> np.ndarray:
    """A copy of the image with boxes, scores and landmarks drawn on it."""
    out = image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 500))
    for face in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 255, 0), thickness)
        cv2.putText(out, f"{face.score:.2f}", (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4 * thickness, (0, 255, 0), thickness)
        if face.landmarks is not None:
            for x, y in face.landmarks:
                cv2.circle(out, (int(x), int(y)), thickness + 1, (0, 0, 255), -1)
    return out


class UserError(Exception):
    """A mistake the user can fix; reported as one line."""


def save_drawing(target: Path, image: np.ndarray) -> None:
    """Write one drawing (JPEG), or UserError naming the file."""
    ok, data = cv2.imencode(".jpg", image)
    if not ok:
        raise UserError(f"{target}: cannot encode the drawing")
    try:
        with atomic_path(target) as tmp:
            tmp.write_bytes(data.tobytes())
    except OSError as exc:
        raise UserError(f"{target}: cannot write ({exc.strerror})") from exc


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except UserError as exc:
        print(f"edgeanon detect: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.json not in (None, "-"):
        problem = target_problem(args.json)
        if problem:
            raise UserError(f"--json {args.json}: {problem}")
    problem = folder_problem(args.draw) if args.draw else None
    if problem:
        raise UserError(f"--draw {args.draw}: {problem}")
    try:
        found = collect(args.inputs, IMAGE_SUFFIXES, recursive=args.recursive)
    except InputError as exc:
        raise UserError(str(exc)) from exc
    for line in [f"edgeanon detect: {p}" for p in found.problems] + skipped_warning(found):
        print(line, file=sys.stderr)
    if not found.files:
        raise UserError("no images found in the given inputs")
    try:
        detector = FaceDetector.from_path(args.detector_model, backend=args.backend, threshold=args.threshold,
                                          nms_iou=args.nms_iou, input_scale=args.input_scale)
    except (ModelError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    results: dict[str, list[dict]] = {}
    failures = len(found.problems)
    for item in tqdm(found.files, unit="img", disable=len(found.files) < 5 or not sys.stderr.isatty()):
        try:
            image = load_image(item.path)  # upright: boxes are in the picture as displayed
            faces = detector.detect(image)
            if args.draw:
                save_drawing(Path(args.draw) / f"{item.name}.faces.jpg", draw(image, faces))
        except (ImageError, UserError, ModelError) as exc:
            print(f"edgeanon detect: {item.path}: {exc}" if isinstance(exc, ModelError)
                  else f"edgeanon detect: {exc}", file=sys.stderr)
            failures += 1
            continue
        results[item.name] = [face.to_json() for face in faces]
    text = json.dumps(results, indent=1)
    if args.json in (None, "-"):
        print(text)
    else:
        try:
            with atomic_path(args.json) as tmp:
                tmp.write_text(text)
        except OSError as exc:
            raise UserError(f"cannot write {args.json}: {exc.strerror}") from exc
    faces_total = sum(len(v) for v in results.values())
    log.info("%d faces in %d images (%d unreadable)", faces_total, len(results), failures)
    return 1 if failures else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "detect", help="find faces in images, write boxes + landmarks as JSON",
        description="Detect faces with CenterFace on ONNX Runtime (or TensorRT). INPUT is image files and/or "
                    "folders. The JSON maps each image's name (its file name, or its path inside the folder given) "
                    'to a list of {"box": [x1, y1, x2, y2], "score": s, "confident": true|false, '
                    '"landmarks": [[x, y] x 5]} in pixels of the picture as displayed: upright, after its EXIF '
                    "orientation is applied. `edgeanon anonymize --boxes` reads this file as it is. Two inputs with "
                    "the same name are refused.",
        epilog="Example: edgeanon detect photos/ --json faces.json --draw preview/ && "
               "edgeanon anonymize photos/ -o anon/ --boxes faces.json")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    p.add_argument("-r", "--recursive", action="store_true",
                   help="search folders' subfolders too (default: only their top level, with a warning naming "
                        "how many files below it were skipped)")
    p.add_argument("--json", metavar="OUT.json", help="write results here (default: standard output)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help="heatmap score a face needs (default: %(default)s; lower finds more, with more false hits)")
    p.add_argument("--nms-iou", type=float, default=DEFAULT_NMS_IOU,
                   help="NMS overlap, in (0, 1] (default: %(default)s)")
    p.add_argument("--input-scale", type=float, default=None,
                   help="scale images by this before detecting (>1 finds smaller faces, slower; default: images "
                        "smaller than 1280 px are scaled up to 1280, at most 2x)")
    p.add_argument("--detector-model", default=str(default_detector()), help="ONNX or engine (default: %(default)s)")
    p.add_argument("--backend", choices=("auto", "ort", "trt"), default="auto", help="inference backend")
    p.add_argument("--draw", metavar="DIR",
                   help="also save each image with its faces drawn into DIR, as NAME.faces.jpg (a folder; made if "
                        "missing)")
    p.set_defaults(func=run)
