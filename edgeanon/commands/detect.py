"""`edgeanon detect`: find faces (and with --plates licence plates) in images and write them as JSON."""

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
from edgeanon.commands.user_errors import UserError, reporting, say
from edgeanon.defaults import DEFAULT_THRESHOLD, PLATE_THRESHOLD
from edgeanon.detector import DEFAULT_NMS_IOU, FaceDetector
from edgeanon.frames import Detection
from edgeanon.images import IMAGE_SUFFIXES, ImageError, load_image, save_image
from edgeanon.inference.errors import ModelError
from edgeanon.inputs import InputError, collect, skipped_warning
from edgeanon.models import DEFAULT_PLATES, default_detector
from edgeanon.plates import PlateDetector
from edgeanon.selftest import check_plates

log = logging.getLogger(__name__)


def draw(image: np.ndarray, faces: list[Detection], plates: list[Detection] = ()) -> np.ndarray:
    """A copy of the image with boxes, scores and landmarks drawn on it (faces green, plates orange)."""
    out = image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 500))
    for face, colour in [(f, (0, 255, 0)) for f in faces] + [(p, (0, 160, 255)) for p in plates]:
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
        cv2.putText(out, f"{face.score:.2f}", (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4 * thickness, colour, thickness)
        if face.landmarks is not None:
            for x, y in face.landmarks:
                cv2.circle(out, (int(x), int(y)), thickness + 1, (0, 0, 255), -1)
    return out


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
    for problem in found.problems:
        say("detect", problem)
    for line in skipped_warning(found):
        print(line, file=sys.stderr)
    if not found.files:
        raise UserError("no images found in the given inputs")
    try:
        detector = FaceDetector.from_path(args.detector_model, backend=args.backend, threshold=args.threshold,
                                          nms_iou=args.nms_iou, input_scale=args.input_scale)
        plates = None
        if args.plates:
            plates = PlateDetector.from_path(args.plate_model or DEFAULT_PLATES, backend=args.backend,
                                             threshold=args.plate_threshold)
            check_plates(plates, str(args.plate_model or DEFAULT_PLATES))
            log.info("plates: %s", plates.describe())
    except (ModelError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    results: dict[str, list[dict]] = {}
    plates_total = 0
    failures = len(found.problems)
    for item in tqdm(found.files, unit="img", disable=len(found.files) < 5 or not sys.stderr.isatty()):
        try:
            image = load_image(item.path)  # upright: boxes are in the picture as displayed
            faces = detector.detect(image)
            found_plates = plates.detect(image) if plates is not None else []
            if args.draw:
                save_image(Path(args.draw) / f"{item.name}.faces.jpg", draw(image, faces, found_plates), ".jpg")
        except (ImageError, UserError, ModelError) as exc:
            say("detect", f"{item.path}: {exc}" if isinstance(exc, ModelError) else str(exc))
            failures += 1
            continue
        results[item.name] = [face.to_json() for face in faces] + [{**p.to_json(), "kind": "plate"}
                                                                    for p in found_plates]
        plates_total += len(found_plates)
    text = json.dumps(results, indent=1)
    if args.json in (None, "-"):
        print(text)
    else:
        try:
            with atomic_path(args.json) as tmp:
                tmp.write_text(text)
        except OSError as exc:
            raise UserError(f"cannot write {args.json}: {exc.strerror}") from exc
    faces_total = sum(len(v) for v in results.values()) - plates_total
    log.info("%d faces%s in %d images (%d unreadable)", faces_total,
             f" and {plates_total} plates" if plates is not None else "", len(results), failures)
    return 1 if failures else 0


run = reporting("detect", _run)


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
    p.add_argument("--plates", action="store_true",
                   help='licence plates too, in the same lists with "kind": "plate" (so --boxes covers them too); '
                        "needs models/plates.onnx from `python -m export plates`, whose weights are AGPL-3.0")
    p.add_argument("--plate-threshold", type=float, default=PLATE_THRESHOLD,
                   help="plate score threshold (default %(default)s)")
    p.add_argument("--plate-model", type=Path, help="plate detector (default models/plates.onnx)")
    p.set_defaults(func=run)
