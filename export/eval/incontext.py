"""`python -m export.eval incontext`: identity leak in context — faces laid into real scenes, found by our detector.

Each held-back UTKFace photo is laid into a held-back wider-train scene (a soft-edged ellipse of the photo,
scaled so its face is 80-160 px, placed where it overlaps the scene's own faces least). The project then
anonymizes the whole scene as it would any picture: its own detector with the still-image defaults, every
face found handled by the method (gan, blur, pixelate, ...). dlib's face-recognition ResNet embeds the
laid-in face before and after, in the same rectangle (5-point alignment re-fitted on each image).

Reported per method: the share of faces dlib still calls the same person (distance < 0.6) with its 95%
interval, and rank-1 re-identification (the anonymized face's nearest original, among all laid-in people,
is its own; chance is 1 / faces). A face our detector misses stays as it is and counts as a leak.
This replaces the black-padded crops of `identity`: a face in a scene gets the detector's real box and
landmarks, and the generator the real context around it.
"""

from __future__ import annotations

import argparse
import json
import logging
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edgeanon.detector import FaceDetector
from edgeanon.frames import Frame
from edgeanon.models import DEFAULT_DETECTOR
from edgeanon.tracker import iou_matrix
from export import facecrops
from export.eval.identity import SAME_PERSON, Embedder, reidentified, wilson_interval
from export.eval.methods import add_method_options, as_people, build_anonymizers, chosen_methods
from export.paths import shared_data_dir

log = logging.getLogger(__name__)

FACE_SIZES = (80, 160)  # longest side of the laid-in face, pixels (uniform per photo)
PLACEMENT_TRIES = 12


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "incontext",
        help="identity leak in context: held-back UTKFace faces laid into held-back wider-train scenes",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        epilog="Example: python -m export.eval incontext --data ../shared/data --limit 300 --methods gan,blur,pixelate",
    )
    p.add_argument("--data", type=Path, default=shared_data_dir())
    p.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR, help="our detector (finds the faces)")
    add_method_options(p)
    p.add_argument("--limit", type=int, default=300, help="number of held-back faces (default 300, 0 = all)")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    p.set_defaults(func=run)


def soft_ellipse(h: int, w: int) -> np.ndarray:
    """Alpha (h, w, 1): the photo's inscribed ellipse, opaque in its inner 80%, fading out to its rim."""
    ys = (np.arange(h, dtype=np.float32) + 0.5) / h * 2 - 1
    xs = (np.arange(w, dtype=np.float32) + 0.5) / w * 2 - 1
    r = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    return np.clip((1.0 - r) / 0.2, 0.0, 1.0)[:, :, None]


def lay_in(scene: np.ndarray, photo: np.ndarray, face_box: np.ndarray, gt: np.ndarray,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """The scene with the photo laid in (face FACE_SIZES px) and the face's box there; None if it cannot fit."""
    side = max(face_box[2] - face_box[0], face_box[3] - face_box[1])
    k = rng.uniform(*FACE_SIZES) / max(side, 1.0)
    ph, pw = round(photo.shape[0] * k), round(photo.shape[1] * k)
    sh, sw = scene.shape[:2]
    if ph >= sh or pw >= sw:
        return None
    small = cv2.resize(photo, (pw, ph), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)
    best, best_overlap = None, np.inf
    for _ in range(PLACEMENT_TRIES):
        x, y = int(rng.integers(0, sw - pw + 1)), int(rng.integers(0, sh - ph + 1))
        overlap = float(iou_matrix(np.array([[x, y, x + pw, y + ph]], np.float32), gt).sum()) if len(gt) else 0.0
        if overlap < best_overlap:
            best, best_overlap = (x, y), overlap
    x, y = best
    out = scene.copy()
    alpha = soft_ellipse(ph, pw)
    region = out[y : y + ph, x : x + pw].astype(np.float32)
    out[y : y + ph, x : x + pw] = (small * alpha + region * (1 - alpha) + 0.5).astype(np.uint8)
    return out, (face_box * k + [x, y, x, y]).astype(np.float32)


def run(args: argparse.Namespace) -> int:
    methods = chosen_methods(args)
    if methods is None:
        return 2
    zip_path, boxes_file = args.data / facecrops.UTK_ZIP, args.data / facecrops.WIDER / "boxes.json"
    for path in (zip_path, boxes_file):
        if not path.is_file():
            log.error("%s: not found (set --data)", path)
            return 2
    from edgeanon.detector import DEFAULT_THRESHOLD, IMAGE_SCALING

    anonymizers = build_anonymizers(methods, args)
    # The still-image chain's detector, as `edgeanon anonymize` builds it.
    detector = FaceDetector.from_path(args.detector, threshold=DEFAULT_THRESHOLD, scaling=IMAGE_SCALING)
    zf = zipfile.ZipFile(zip_path)
    names = sorted(n for n in zf.namelist() if n.lower().endswith(".jpg") and facecrops.held_out(n))
    if args.limit:
        names = names[:: max(1, len(names) // args.limit)][: args.limit]
    gt_all = json.loads(boxes_file.read_text())
    scenes = sorted(n for n in gt_all if facecrops.held_out(n))
    embed = Embedder()
    refs: list[np.ndarray] = []
    anonymized: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    dists: dict[str, list[float]] = {m: [] for m in methods}
    found = served = 0
    was_found: list[bool] = []
    pad = facecrops.UTK_PAD
    for i, name in enumerate(tqdm(names, desc="incontext", unit="face")):
        photo = facecrops.decode(zf.read(name))
        padded = cv2.copyMakeBorder(photo, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        own = detector.detect(padded)
        if not own:
            continue  # no face box to place and to measure: not a usable photo
        face_box = max(own, key=lambda d: d.score).box - [pad, pad, pad, pad]
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        scene_name = scenes[i % len(scenes)]
        scene = cv2.imread(str(args.data / facecrops.WIDER / scene_name))
        gt = np.array(gt_all[scene_name], np.float32).reshape(-1, 4)
        laid = lay_in(scene, photo, face_box, gt, rng)
        if laid is None:
            continue
        image, box = laid
        faces = detector.detect(image)
        hit = iou_matrix(np.array([box]), np.array([f.box for f in faces], np.float32).reshape(-1, 4))
        was_found.append(bool(hit.size and hit.max() >= 0.4))
        found += was_found[-1]
        ref = embed(image, box)
        refs.append(ref)
        people = as_people(faces, f"{scene_name}:{name}")
        for m in methods:
            work = image.copy()
            red = anonymizers[m].redact(Frame(0, 0.0, work), people)
            if m == "gan" and hit.size and hit.max() >= 0.4:
                served += red.faces[int(np.argmax(hit[0]))].method == "gan"
            anonymized[m].append(embed(work, box))
            dists[m].append(float(np.linalg.norm(anonymized[m][-1] - ref)))
    n = len(refs)
    print(f"faces: {n} held-back UTKFace photos laid into {min(n, len(scenes))} held-back wider-train scenes "
          f"(faces {FACE_SIZES[0]}-{FACE_SIZES[1]} px); our detector found {found} ({100.0 * found / max(n, 1):.1f}%)")
    if "gan" in methods:
        print(f"gan served {served} of the {found} found (rest: classic fallback)")
    print(f"re-identification chance level: {100.0 / max(n, 1):.2f}%")
    print(f"{'method':<10} {'share < 0.6':>12} {'95% interval':>14} {'median dist':>12} {'re-id rank-1':>13} "
          f"{'share, found only':>18}")
    hits = np.array(was_found, bool)
    rows = []
    for m in methods:
        d = np.array(dists[m])
        same = int(np.sum(d < SAME_PERSON))
        share = same / len(d) if len(d) else float("nan")
        lo, hi = wilson_interval(same, len(d))
        med = float(np.median(d)) if len(d) else float("nan")
        reid = reidentified(anonymized[m], refs)
        found_share = float(np.mean(d[hits] < SAME_PERSON)) if hits.any() else float("nan")
        rows.append({"method": m, "share_same": share, "share_same_interval": [lo, hi], "median_distance": med,
                     "reid_rank1": reid, "share_same_found_only": found_share})
        print(f"{m:<10} {share * 100:11.1f}% {f'{lo * 100:.1f}-{hi * 100:.1f}%':>14} {med:12.3f} {reid * 100:12.1f}% "
              f"{found_share * 100:17.1f}%")
    if args.json:
        args.json.write_text(json.dumps({"faces": n, "found": found, "gan_served": served, "rows": rows,
                                         "found_per_face": was_found,
                                         "distances": {m: dists[m] for m in methods}}, indent=2))
    return 0
