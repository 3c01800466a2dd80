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

from edgeanon.detector import DEFAULT_NMS_IOU, DEFAULT_THRESHOLD, FaceDetector
from edgeanon.frames import Detection
from edgeanon.images import ImageError, list_images, load_image
from edgeanon.inference.errors import ModelError
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


def run(args: argparse.Namespace) -> int:
    try:
        detector = FaceDetector.from_path(args.detector_model, backend=args.backend, threshold=args.threshold,
                                          nms_iou=args.nms_iou, input_scale=args.input_scale)
    except (ModelError, ValueError) as exc:
        print(f"edgeanon detect: {exc}", file=sys.stderr)
        return 2
    paths = list_images(args.inputs)
    if not paths:
        print("edgeanon detect: no images found in the given inputs", file=sys.stderr)
        return 2
    results: dict[str, list[dict]] = {}
    failures = 0
    for path in tqdm(paths, unit="img", disable=len(paths) < 5 or not sys.stderr.isatty()):
        try:
            image = load_image(path)
        except ImageError as exc:
            print(f"edgeanon detect: {exc}", file=sys.stderr)
            failures += 1
            continue
        faces = detector.detect(image)
        results[path.name] = [face.to_json() for face in faces]
        if args.draw:
            Path(args.draw).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(Path(args.draw) / f"{path.stem}.faces.jpg"), draw(image, faces))
    text = json.dumps(results, indent=1)
    if args.json in (None, "-"):
        print(text)
    else:
        try:
            Path(args.json).write_text(text)
        except OSError as exc:
            print(f"edgeanon detect: cannot write {args.json}: {exc.strerror}", file=sys.stderr)
            return 2
    faces_total = sum(len(v) for v in results.values())
    log.info("%d faces in %d images (%d unreadable)", faces_total, len(results), failures)
    return 1 if failures else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "detect", help="find faces in images, write boxes + landmarks as JSON",
        description="Detect faces with CenterFace on ONNX Runtime (or TensorRT). INPUT is image files and/or "
                    "folders. The JSON maps each image's file name to a list of "
                    '{"box": [x1, y1, x2, y2], "score": s, "landmarks": [[x, y] x 5]} in original pixels.',
        epilog="Example: edgeanon detect photos/ --json faces.json --draw preview/")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    p.add_argument("--json", metavar="OUT.json", help="write results here (default: standard output)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help="heatmap score a face needs (default: %(default)s; lower finds more, with more false hits)")
    p.add_argument("--nms-iou", type=float, default=DEFAULT_NMS_IOU, help="NMS overlap (default: %(default)s)")
    p.add_argument("--input-scale", type=float, default=None,
                   help="scale images by this before detecting (>1 finds smaller faces, slower; default: images "
                        "smaller than 1280 px are scaled up to 1280, at most 2x)")
    p.add_argument("--detector-model", default=str(default_detector()), help="ONNX or engine (default: %(default)s)")
    p.add_argument("--backend", choices=("auto", "ort", "trt"), default="auto", help="inference backend")
    p.add_argument("--draw", metavar="DIR", help="also save each image with its faces drawn into DIR")
    p.set_defaults(func=run)
