"""`python -m export.eval utility`: DeepPrivacy's protocol — an independent detector's AP on anonymized images.

Every ground-truth face of the held-back wider-train images is anonymized with each method through
edgeanon's Anonymizer; dlib's face detector (not our CenterFace) then measures AP on the anonymized
images and on the originals. Also reports the detail ratio: variance of the Laplacian inside the inner
80% of each face box >= 48 px, anonymized / original (median); for gan also over only the faces the
generator served (the rest, e.g. without usable landmarks, get the blur fallback), and per face-size band
(the generator's 128 px crop holds a face of about 75 px: larger faces are pasted enlarged).
`--split tune` uses tuning images instead of the held-back ones (export.splits).

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
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edgeanon.anonymize import Anonymizer
from edgeanon.anonymize.boxmarks import THRESHOLD, BoxLandmarks
from edgeanon.defaults import MADE_UP
from edgeanon.detector import FaceDetector
from edgeanon.frames import Detection, Frame
from edgeanon.models import DEFAULT_DETECTOR
from edgeanon.tracker import iou_matrix
from export import datasets
from export.eval import boxes as box_eval
from export.eval.methods import add_method_options, as_people, build_anonymizers, chosen_methods
from export.paths import package_file, shared_data_dir
from export.splits import HOLDOUT, add_generator_split_option, in_generator_split

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
    p.add_argument("--limit", type=int, default=0, help="use only the first N images of the split (0 = all)")
    add_generator_split_option(p)
    p.add_argument("--all-images", action="store_true", help="use all wider-train images, whatever --split says")
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
    return str(package_file("face_recognition_models", f"models/{name}", "pip install face-recognition-models"))


class Judge:
    """dlib's CNN (mmod) or HOG face detector: boxes (x1, y1, x2, y2) and scores."""

    def __init__(self, kind: str, upsample: int):
        import dlib  # a large native library, loaded only when a dlib measure runs

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


def laplacian_variance(image: np.ndarray, box: np.ndarray, smooth: float = 0.0) -> float:
    """Variance of the Laplacian of the gray inner 80% of a box (after a Gaussian of sigma `smooth` px when > 0:
    blind to pixel-level noise and grain, which a Laplacian weighs most)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    dx, dy = (x2 - x1) * 0.1, (y2 - y1) * 0.1
    h, w = image.shape[:2]
    xa, ya = max(int(round(x1 + dx)), 0), max(int(round(y1 + dy)), 0)
    xb, yb = min(int(round(x2 - dx)), w), min(int(round(y2 - dy)), h)
    if xb - xa < 3 or yb - ya < 3:
        return float("nan")
    gray = cv2.cvtColor(image[ya:yb, xa:xb], cv2.COLOR_BGR2GRAY)
    if smooth > 0:
        gray = cv2.GaussianBlur(gray.astype(np.float64), (0, 0), smooth)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def _median(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else float("nan")


def faces_with_landmarks(gt: np.ndarray, found: list[datasets.Face]) -> list[Detection]:
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


@dataclass
class Utility:
    """Per-image judge results and per-face detail ratios of one run: every label saw the same faces."""

    images: int
    labels: list[str]
    per: dict[str, list] = field(default_factory=dict)  # label (and "original") -> [(gt, found, scores)]
    detail: dict[str, list[float]] = field(default_factory=dict)  # label -> ratio per face >= 48 px
    detail_sizes: list[float] = field(default_factory=list)  # face size of each detail ratio
    generated: dict[str, list[float]] = field(default_factory=dict)  # gan label -> ratios of the faces it served
    generated_sizes: dict[str, list[float]] = field(default_factory=dict)  # gan label -> their face sizes
    generated_smooth: dict[str, list[float]] = field(default_factory=dict)  # the same ratios after a Gaussian
    served: dict[str, list[bool]] = field(default_factory=dict)  # gan label -> served, per face
    served_sizes: list[float] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)  # landmark source -> faces

    @property
    def faces(self) -> int:
        return sum(len(g) for g, _, _ in self.per["original"])

    def rows(self, iou: float = 0.5) -> list[dict]:
        """Per label: AP, AP retention, detail median (faces >= 48 px) and the detail median by face size."""
        ap = {m: average_precision(v, iou) for m, v in self.per.items()}
        sizes = np.array(self.detail_sizes)
        in_band = {band: (sizes >= lo) & (sizes < hi) for band, (lo, hi) in SIZE_BANDS.items()}
        rows = []
        for m in self.labels:
            ratios = np.array(self.detail[m])
            medians = {band: _median(ratios[chosen]) for band, chosen in in_band.items()}
            bands = {band: (v if np.isfinite(v) else None) for band, v in medians.items()}  # JSON has no NaN
            rows.append({"method": m, "ap": ap[m], "original_ap": ap["original"],
                         "retention": ap[m] / ap["original"] if ap["original"] else 0.0,
                         "detail_median": _median(ratios), "faces_detail": int(np.isfinite(ratios).sum()),
                         "detail_by_size": bands, "faces_by_size": {b: int(c.sum()) for b, c in in_band.items()}})
        return rows

    def served_share(self, label: str, min_face: float = SERVED_MIN_FACE) -> float | None:
        """Share of faces >= min_face px the generator of a gan label served (None without such faces)."""
        ok, sizes = np.array(self.served[label], bool), np.array(self.served_sizes)
        counted = sizes >= min_face
        return float(ok[counted].mean()) if counted.any() else None


def chosen_images(gt_all: dict, split: str | None, limit: int = 0) -> list[str]:
    """The split's wider-train images sorted by name (None: all images), the first `limit` (0 = all)."""
    names = sorted(n for n in gt_all if split is None or in_generator_split(n, split))
    return names[:limit] if limit else names


def evaluate(data: Path, names: list[str], anonymizers: dict[str, Anonymizer], detector_path: Path,
             judge: Judge, landmarks: str = "boxes", threads: int | None = None, progress: bool = True,
             smooth: float = 0.0) -> Utility:
    """Anonymize every ground-truth box of the named wider-train images with each anonymizer (the same faces,
    landmarks and seeds for each), judge the originals and every output, and measure detail on faces >= 48 px
    (with `smooth` > 0 also, for the faces a made-up method served, after a Gaussian of that sigma)."""
    gt_all = json.loads((data / datasets.WIDER / "boxes.json").read_text())
    finder = found = None
    if landmarks == "boxes":
        finder = BoxLandmarks(FaceDetector.from_path(detector_path, threshold=THRESHOLD, input_scale=1.0,
                                                     threads=threads))
    else:
        found = datasets.wider_detections(data, detector_path)
    gans = [m for m, a in anonymizers.items() if a.method in MADE_UP]
    res = Utility(len(names), list(anonymizers), per={m: [] for m in ["original", *anonymizers]},
                  detail={m: [] for m in anonymizers}, generated={m: [] for m in gans}, served={m: [] for m in gans},
                  generated_sizes={m: [] for m in gans}, generated_smooth={m: [] for m in gans})
    for name in tqdm(names, desc="utility", unit="img", disable=not progress):
        image = cv2.imread(str(data / datasets.WIDER / name))
        gt = np.array(gt_all[name], np.float32).reshape(-1, 4)
        if finder is not None:
            given = finder.faces(image, gt)
            for f in given:
                res.sources[f.source] = res.sources.get(f.source, 0) + 1
        else:
            given = faces_with_landmarks(gt, found.get(name, []))
        faces = as_people(given, name)
        res.per["original"].append((gt, *judge(image)))
        big = [i for i, f in enumerate(faces) if max(f.width, f.height) >= DETAIL_MIN_FACE]
        base = [laplacian_variance(image, faces[i].box) for i in big]
        base_smooth = [laplacian_variance(image, faces[i].box, smooth) if smooth > 0 else 0.0 for i in big]
        res.detail_sizes += [max(faces[i].width, faces[i].height)
                             for i, v0 in zip(big, base, strict=True) if v0 > 1e-6]
        res.served_sizes += [max(f.width, f.height) for f in faces]
        for m, anonymizer in anonymizers.items():
            work = image.copy()
            red = anonymizer.redact(Frame(0, 0.0, work), faces)
            if m in res.served:
                res.served[m] += [r.method == anonymizer.method for r in red.faces]
            res.per[m].append((gt, *judge(work)))
            for i, v0, s0 in zip(big, base, base_smooth, strict=True):
                if v0 > 1e-6:
                    v1 = laplacian_variance(work, faces[i].box)
                    res.detail[m].append(v1 / v0 if np.isfinite(v1) else float("nan"))
                    if m in res.generated and red.faces[i].method == anonymizer.method and np.isfinite(v1):
                        res.generated[m].append(v1 / v0)
                        res.generated_sizes[m].append(max(faces[i].width, faces[i].height))
                        if smooth > 0:
                            s1 = laplacian_variance(work, faces[i].box, smooth)
                            res.generated_smooth[m].append(s1 / s0 if s0 > 1e-9 else float("nan"))
    return res


def run(args: argparse.Namespace) -> int:
    methods = chosen_methods(args)
    if methods is None:
        return 2
    boxes_file = args.data / datasets.WIDER / "boxes.json"
    if not boxes_file.is_file():
        log.error("%s: not found (set --data)", boxes_file)
        return 2
    names = chosen_images(json.loads(boxes_file.read_text()), None if args.all_images else args.split, args.limit)
    res = evaluate(args.data, names, build_anonymizers(methods, args), args.detector, Judge(args.judge, args.upsample),
                   args.landmarks)
    rows = res.rows(args.iou)
    original_ap = rows[0]["original_ap"] if rows else average_precision(res.per["original"], args.iou)
    split = "all" if args.all_images else ("held-back" if args.split == HOLDOUT else "tuning")
    print(f"images: {len(names)} ({split} wider-train), faces: {res.faces}, judge: dlib {args.judge} "
          f"(upsample {args.upsample}), AP@IoU{args.iou}: original {original_ap:.4f}")
    served_16, generated_median = {}, {}
    for m in res.served:  # the made-up methods (gan, ksame)
        served_16[m] = res.served_share(m)
        ok, counted = np.array(res.served[m], bool), np.array(res.served_sizes) >= SERVED_MIN_FACE
        print(f"{m} served {int(ok[counted].sum())}/{int(counted.sum())} faces >= {SERVED_MIN_FACE} px "
              f"({100.0 * (served_16[m] or 0):.1f}%); landmarks: "
              + (", ".join(f"{k} {v}" for k, v in sorted(res.sources.items())) or "our detector's faces"))
        generated_median[m] = _median(np.array(res.generated[m], dtype=float))
        big_faces = rows[methods.index(m)]["faces_detail"]
        print(f"{m} served {int(ok.sum())}/{len(ok)} faces (rest: classic fallback); of the {big_faces} faces "
              f">= {DETAIL_MIN_FACE} px, {len(res.generated[m])} made up: their detail median "
              f"{generated_median[m]:.3f}")
    print(f"{'method':<10} {'AP':>8} {'retention':>10} {'detail median':>14} {'faces>=48':>10}")
    for r in rows:
        print(f"{r['method']:<10} {r['ap']:8.4f} {r['retention'] * 100:9.1f}% {r['detail_median']:14.3f} "
              f"{r['faces_detail']:10d}")
    print("detail median by face size (longest side, px):")
    print(f"{'size':<10} {'faces':>6}" + "".join(f"{m:>10}" for m in methods))
    for band in SIZE_BANDS:
        values = (r["detail_by_size"][band] for r in rows)
        count = rows[0]["faces_by_size"][band] if rows else 0
        print(f"{band:<10} {count:6d}" + "".join(f"{v:10.3f}" if v is not None else f"{'-':>10}" for v in values))
    if args.json:
        generated = {m: {"faces": len(v), "detail_median": generated_median[m] if v else None}
                     for m, v in res.generated.items()}
        args.json.write_text(json.dumps({"original_ap": original_ap, "rows": rows, "images": len(names),
                                         "faces": res.faces, "judge": args.judge, "split": split,
                                         "gan_generated": generated.get("gan"),
                                         "gan_served_16px": served_16.get("gan"), "made_up": generated,
                                         "served_16px": served_16,
                                         "landmarks": args.landmarks, "landmark_sources": res.sources},
                                        indent=2))
    return 0
