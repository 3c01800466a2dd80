"""`python -m export.eval closeup`: close-ups — tight portraits whose face fills the frame, served by gan or not.

Each held-back UTKFace photo (200x200, the face filling most of it) is used as it is, no padding: what a
doorbell camera or a kiosk sees. The project's detector finds the face; gan anonymizes it with each crop
border (how the generator's context window is filled where it leaves the frame). Reported per border:
the share of portraits served by the generator (a portrait whose face the detector misses counts as not
served), whether an independent judge (dlib's HOG face detector) still finds a face in the output (a
face a person would take for a face), and the detail ratio (Laplacian variance inside the box,
anonymized / original, median).
"""

from __future__ import annotations

import argparse
import json
import logging
import zipfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edgeanon.anonymize import Anonymizer, crops, gan
from edgeanon.anonymize.gan import DEFAULT_GENERATOR, FaceGenerator
from edgeanon.anonymize.ksame import KSameFaces
from edgeanon.defaults import IMAGE_PROFILE, MADE_UP
from edgeanon.detector import FaceDetector
from edgeanon.frames import Frame
from edgeanon.models import DEFAULT_DETECTOR, DEFAULT_KSAME_BANK
from export import datasets
from export.eval import incontext
from export.eval.methods import as_people
from export.eval.utility import Judge, laplacian_variance
from export.paths import shared_data_dir
from export.splits import HOLDOUT

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "closeup",
        help="close-ups: share of tight UTKFace portraits served by gan, per crop border",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        epilog="Example: python -m export.eval closeup --data ../shared/data --limit 300",
    )
    p.add_argument("--data", type=Path, default=shared_data_dir())
    p.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR)
    p.add_argument("--generator", type=Path, default=None, help="generator model (default models/generator.onnx)")
    p.add_argument("--method", choices=MADE_UP, default="gan", help="the made-up face to serve them with")
    p.add_argument("--bank", type=Path, default=DEFAULT_KSAME_BANK, help="ksame's reference bank")
    p.add_argument("--borders", default=",".join(crops.BORDERS), help="comma list (default: all)")
    p.add_argument("--limit", type=int, default=300, help="number of held-back portraits (default 300, 0 = all)")
    incontext.add_offset_option(p)
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    p.set_defaults(func=run)


def old_rule_servable(shape: tuple[int, ...], box: np.ndarray) -> bool:
    """The rule before close-ups were served: at most 800 px, and the 1.7x crop window at least half inside."""
    side = max(box[2] - box[0], box[3] - box[1])
    return bool(side <= 800 and crops.crop_region(box).inside_fraction(shape[1], shape[0]) >= 0.5)


def run(args: argparse.Namespace) -> int:
    zip_path = args.data / datasets.UTK_ZIP
    if not zip_path.is_file():
        log.error("%s: not found (set --data)", zip_path)
        return 2
    borders = [b.strip() for b in args.borders.split(",") if b.strip()]
    bad = [b for b in borders if b not in crops.BORDERS]
    if bad:
        log.error("unknown border(s) %s: choose from %s", ", ".join(bad), ", ".join(crops.BORDERS))
        return 2
    zf = zipfile.ZipFile(zip_path)
    names = incontext.chosen_faces(zf, HOLDOUT, args.limit, args.offset)
    # The still-image chain's detector, as `edgeanon anonymize` builds it (its half-scale pass finds the close-ups
    # larger than the main scale's reach: the plain detector missed 24 of 300 held-back portraits, this none).
    detector = FaceDetector.from_path(args.detector, profile=IMAGE_PROFILE)
    generator_path = args.generator or DEFAULT_GENERATOR
    if args.method == "ksame":  # the bank reads its window's border as gan does (gan.BORDER); one row
        anonymizers = {gan.BORDER: Anonymizer("ksame", generator=KSameFaces.from_path(args.bank))}
        borders = [gan.BORDER]
    else:
        anonymizers = {b: Anonymizer("gan", generator=FaceGenerator.from_path(generator_path, border=b))
                       for b in borders}
    judge = Judge("hog", 1)
    detected = old_served = judged_original = 0
    served = {b: 0 for b in borders}
    judged = {b: 0 for b in borders}
    detail: dict[str, list[float]] = {b: [] for b in borders}
    for name in tqdm(names, desc="closeup", unit="photo"):
        image = datasets.decode(zf.read(name))
        faces = detector.detect(image)
        judged_original += len(judge(image)[0]) > 0
        if not faces:
            continue
        detected += 1
        face = max(faces, key=lambda f: f.score)
        old_served += old_rule_servable(image.shape, face.box)
        base = laplacian_variance(image, face.box)
        for b in borders:
            work = image.copy()
            red = anonymizers[b].redact(Frame(0, 0.0, work), as_people([face], name))
            served[b] += red.faces[0].method == args.method
            judged[b] += len(judge(work)[0]) > 0
            if base > 1e-6:
                detail[b].append(laplacian_variance(work, face.box) / base)
    n = len(names)
    print(f"portraits: {n} held-back UTKFace photos as they are (200x200); our detector found a face in "
          f"{detected} ({100.0 * detected / max(n, 1):.1f}%); the rule before (crop window half inside) would "
          f"have served {old_served} ({100.0 * old_served / max(n, 1):.1f}%)")
    print(f"independent judge (dlib HOG) finds a face in {100.0 * judged_original / max(n, 1):.1f}% of the originals")
    print(f"{'border':<10} {'served by ' + args.method:>14} {'judge finds a face':>19} {'detail median':>14}")
    rows = []
    for b in borders:
        med = float(np.median(detail[b])) if detail[b] else float("nan")
        rows.append({"border": b, "served": served[b] / max(n, 1), "judged_face": judged[b] / max(n, 1),
                     "detail_median": med})
        print(f"{b:<10} {100.0 * served[b] / max(n, 1):13.1f}% {100.0 * judged[b] / max(n, 1):18.1f}% {med:14.3f}")
    if args.json:
        args.json.write_text(json.dumps({"portraits": n, "detected": detected, "old_rule_served": old_served,
                                         "judged_original": judged_original, "rows": rows}, indent=2))
    return 0
