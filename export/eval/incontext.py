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
landmarks, and the generator the real context around it. `--split tune` lays tuning photos into tuning scenes
instead (export.splits), for choosing without touching the held-back part.
"""

from __future__ import annotations

import argparse
import json
import logging
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edgeanon.anonymize import Anonymizer
from edgeanon.defaults import IMAGE_PROFILE
from edgeanon.detector import FaceDetector
from edgeanon.frames import Frame
from edgeanon.models import DEFAULT_DETECTOR
from edgeanon.tracker import iou_matrix
from export import datasets
from export.eval.identity import SAME_PERSON, Embedder, reidentified, wilson_interval
from export.eval.methods import add_method_options, as_people, build_anonymizers, chosen_methods
from export.paths import shared_data_dir
from export.splits import HOLDOUT, add_generator_split_option, in_generator_split

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
    p.add_argument("--limit", type=int, default=300, help="number of faces (default 300, 0 = all)")
    add_generator_split_option(p)
    add_offset_option(p)
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


@dataclass(frozen=True)
class LaidFace:
    """One laid-in face as an evaluation saw it: the scene, the face's box and landmarks there (from its photo),
    and each method's anonymized scene (export.eval.crowd measures tone, diversity and seams on these)."""

    name: str
    image: np.ndarray
    box: np.ndarray
    landmarks: np.ndarray
    found: bool
    outputs: dict[str, np.ndarray]
    methods: dict[str, str]  # label -> what served the laid-in face ("gan", "blur", ...; "none" if not found)


@dataclass
class InContext:
    """Per-face results of one in-context run: every label (method) saw the same faces in the same scenes."""

    split: str
    scenes: int
    found: list[bool] = field(default_factory=list)  # our detector found the laid-in face
    refs: list[np.ndarray] = field(default_factory=list)  # dlib embeddings of the laid-in faces
    anonymized: dict[str, list[np.ndarray]] = field(default_factory=dict)
    distances: dict[str, list[float]] = field(default_factory=dict)
    served: dict[str, int] = field(default_factory=dict)  # found faces the generator served, per gan label

    @property
    def faces(self) -> int:
        return len(self.refs)

    def row(self, label: str) -> dict:
        """share < 0.6 (and its interval), median distance, rank-1 re-identification, share among found faces."""
        d = np.array(self.distances[label])
        same = int(np.sum(d < SAME_PERSON))
        lo, hi = wilson_interval(same, len(d))
        hits = np.array(self.found, bool)
        return {"method": label, "share_same": same / len(d) if len(d) else float("nan"),
                "share_same_interval": [lo, hi], "median_distance": float(np.median(d)) if len(d) else float("nan"),
                "reid_rank1": reidentified(self.anonymized[label], self.refs),
                "share_same_found_only": float(np.mean(d[hits] < SAME_PERSON)) if hits.any() else float("nan")}


def missing_input(data: Path) -> Path | None:
    """The first input file of this evaluation missing under `data`, else None."""
    for path in (data / datasets.UTK_ZIP, data / datasets.WIDER / "boxes.json"):
        if not path.is_file():
            return path
    return None


def chosen_faces(zf: zipfile.ZipFile, split: str, limit: int, offset: int = 0) -> list[str]:
    """The split's UTKFace photos, evenly spread over the sorted names (`limit` of them; 0 = all), starting at
    the `offset`-th name: with a step of 2 or more, offset 1 takes the photos between those of offset 0 (a part
    of the split no earlier run of the same limit saw)."""
    names = sorted(n for n in zf.namelist()
                   if n.lower().endswith(".jpg") and in_generator_split(n, split, halved=False))
    return names[offset :: max(1, len(names) // limit)][:limit] if limit else names[offset:]


def add_offset_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--offset", type=int, default=0,
                   help="start the evenly spread faces at this name of the split (default 0); with --limit under "
                        "half the split, --offset 1 takes faces that --offset 0 never took (a fresh part)")


def evaluate(data: Path, detector_path: Path, anonymizers: dict[str, Anonymizer], limit: int = 300,
             split: str = HOLDOUT, threads: int | None = None, progress: bool = True,
             observe: Callable[[LaidFace], None] | None = None, offset: int = 0) -> InContext:
    """Lay `limit` UTKFace photos of the split into the split's wider-train scenes; anonymize each scene with
    every anonymizer (the same faces, boxes and seeds for each) and embed the laid-in face before and after.
    `observe`, if given, sees every laid-in face with all its outputs."""
    # The still-image chain's detector, as `edgeanon anonymize` builds it.
    detector = FaceDetector.from_path(detector_path, profile=IMAGE_PROFILE, threads=threads)
    zf = zipfile.ZipFile(data / datasets.UTK_ZIP)
    names = chosen_faces(zf, split, limit, offset)
    gt_all = json.loads((data / datasets.WIDER / "boxes.json").read_text())
    scenes = sorted(n for n in gt_all if in_generator_split(n, split))
    result = InContext(split, len(scenes), anonymized={m: [] for m in anonymizers},
                       distances={m: [] for m in anonymizers},
                       served={m: 0 for m, a in anonymizers.items() if a.method == "gan"})
    embed = Embedder()
    pad = datasets.UTK_PAD
    for i, name in enumerate(tqdm(names, desc="incontext", unit="face", disable=not progress)):
        photo = datasets.decode(zf.read(name))
        padded = cv2.copyMakeBorder(photo, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        own = detector.detect(padded)
        if not own:
            continue  # no face box to place and to measure: not a usable photo
        best = max(own, key=lambda d: d.score)
        face_box = best.box - [pad, pad, pad, pad]
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        scene_name = scenes[i % len(scenes)]
        scene = cv2.imread(str(data / datasets.WIDER / scene_name))
        gt = np.array(gt_all[scene_name], np.float32).reshape(-1, 4)
        laid = lay_in(scene, photo, face_box, gt, rng)
        if laid is None:
            continue
        image, box = laid
        faces = detector.detect(image)
        hit = iou_matrix(np.array([box]), np.array([f.box for f in faces], np.float32).reshape(-1, 4))
        found = bool(hit.size and hit.max() >= 0.4)
        result.found.append(found)
        ref = embed(image, box)
        result.refs.append(ref)
        people = as_people(faces, f"{scene_name}:{name}")
        outputs, served_by = {}, {}
        for m, anonymizer in anonymizers.items():
            work = image.copy()
            red = anonymizer.redact(Frame(0, 0.0, work), people)
            served_by[m] = red.faces[int(np.argmax(hit[0]))].method if found else "none"
            if m in result.served and found:
                result.served[m] += served_by[m] == "gan"
            result.anonymized[m].append(embed(work, box))
            result.distances[m].append(float(np.linalg.norm(result.anonymized[m][-1] - ref)))
            outputs[m] = work
        if observe is not None:
            k = (box[2] - box[0]) / max(float(face_box[2] - face_box[0]), 1e-6)
            landmarks = (best.landmarks - pad - face_box[:2]) * k + box[:2]
            observe(LaidFace(name, image, box, landmarks.astype(np.float32), found, outputs, served_by))
    return result


def run(args: argparse.Namespace) -> int:
    methods = chosen_methods(args)
    if methods is None:
        return 2
    missing = missing_input(args.data)
    if missing is not None:
        log.error("%s: not found (set --data)", missing)
        return 2
    res = evaluate(args.data, args.detector, build_anonymizers(methods, args), args.limit, args.split,
                   offset=args.offset)
    n, found = res.faces, sum(res.found)
    part = "held-back" if args.split == HOLDOUT else "tuning"
    print(f"faces: {n} {part} UTKFace photos laid into {min(n, res.scenes)} {part} wider-train scenes "
          f"(faces {FACE_SIZES[0]}-{FACE_SIZES[1]} px); our detector found {found} ({100.0 * found / max(n, 1):.1f}%)")
    if "gan" in methods:
        print(f"gan served {res.served['gan']} of the {found} found (rest: classic fallback)")
    print(f"re-identification chance level: {100.0 / max(n, 1):.2f}%")
    print(f"{'method':<10} {'share < 0.6':>12} {'95% interval':>14} {'median dist':>12} {'re-id rank-1':>13} "
          f"{'share, found only':>18}")
    rows = [res.row(m) for m in methods]
    for r in rows:
        lo, hi = r["share_same_interval"]
        print(f"{r['method']:<10} {r['share_same'] * 100:11.1f}% {f'{lo * 100:.1f}-{hi * 100:.1f}%':>14} "
              f"{r['median_distance']:12.3f} {r['reid_rank1'] * 100:12.1f}% {r['share_same_found_only'] * 100:17.1f}%")
    if args.json:
        args.json.write_text(json.dumps({"faces": n, "found": found, "gan_served": res.served.get("gan", 0),
                                         "split": args.split, "rows": rows, "found_per_face": res.found,
                                         "distances": res.distances}, indent=2))
    return 0
