"""`python -m export.eval identity`: identity leak — dlib ResNet embedding distance, original vs anonymized.

For each held-back UTKFace crop, the face (box and landmarks from our detector, cached) is anonymized
with each method; dlib's face-recognition ResNet embeds the original and the anonymized face (same
rectangle, 5-point alignment re-fitted on each image). A distance under 0.6 is dlib's "same person":
the share under 0.6 is the identity leak (lower is better). Re-identification is the attacker's view:
the share of anonymized faces whose nearest original, among all evaluated people, is their own
(chance is 1 / faces).

For scale, the "stranger" row is the same share over pairs of two different held-back people of the
same gender, race and age (within 5 years, from UTKFace's file names): what a realistic face of a
look-alike stranger scores. A generator that keeps age, gender and skin tone cannot be expected to
score below it; only methods that leave no face (fill, pixelation) can. The "vs look-alike" column is
each method's false-match floor: the share under 0.6 between an anonymized face and the original of a
look-alike it was *not* made from. A share at that floor says the output is no closer to its own
person than to a stranger; only the part above it is specific to the person.
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
from export import datasets
from export.eval.methods import add_method_options, as_people, build_anonymizers, chosen_methods
from export.eval.utility import dlib_model
from export.paths import shared_data_dir
from export.splits import generator_holdout

log = logging.getLogger(__name__)

SAME_PERSON = 0.6
STRANGER_AGE_GAP = 5
# UTKFace age bands (lower edges, years; the last edge closes the top band): the ksame bank's references each
# hold people of one band, and the crowd measures re-identification within them (what is left once the age a
# method keeps is known).
AGE_BANDS = (0, 4, 13, 20, 30, 45, 60, 200)


def demographics(name: str) -> tuple[int, int, int] | None:
    """(age, gender, race) from a UTKFace file name such as utkface/26_1_2_2017...jpg.chip.jpg."""
    parts = Path(name).name.split("_")
    try:
        return int(parts[0]), int(parts[1]), int(parts[2])
    except (IndexError, ValueError):
        return None


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a share k / n: how far a share measured on n faces can be trusted."""
    if n <= 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def reidentified(anonymized: list[np.ndarray], originals: list[np.ndarray]) -> float:
    """Share of anonymized faces whose nearest original embedding is their own."""
    if not anonymized:
        return float("nan")
    a, o = np.array(anonymized), np.array(originals)
    nearest = np.argmin(np.linalg.norm(a[:, None] - o[None], axis=2), axis=1)
    return float(np.mean(nearest == np.arange(len(a))))


def lookalike_pairs(names: list[str]) -> np.ndarray:
    """(k, 2) index pairs i < j of different people with the same gender and race, ages within 5 years."""
    info = [demographics(n) for n in names]
    pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))
             if info[i] and info[j] and info[i][1:] == info[j][1:] and abs(info[i][0] - info[j][0]) <= STRANGER_AGE_GAP]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def stranger_distances(pairs: np.ndarray, embeddings: list[np.ndarray]) -> np.ndarray:
    """Distances between the originals of look-alike pairs (lookalike_pairs)."""
    emb = np.array(embeddings)
    return np.linalg.norm(emb[pairs[:, 0]] - emb[pairs[:, 1]], axis=1) if len(pairs) else np.zeros(0)


def lookalike_distances(pairs: np.ndarray, anonymized: list[np.ndarray], originals: list[np.ndarray]) -> np.ndarray:
    """Distances from each anonymized face to the original of each of its look-alikes (both ways round): how
    often a method's output is "the same person" as somebody it was never made from, its false-match floor."""
    a, o = np.array(anonymized), np.array(originals)
    if not len(pairs):
        return np.zeros(0)
    i, j = pairs[:, 0], pairs[:, 1]
    return np.concatenate([np.linalg.norm(a[i] - o[j], axis=1), np.linalg.norm(a[j] - o[i], axis=1)])


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "identity",
        help="identity leak: share of anonymized held-back UTKFace faces dlib still calls the same person",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        epilog="Example: python -m export.eval identity --data ../shared/data --limit 300",
    )
    p.add_argument("--data", type=Path, default=shared_data_dir())
    p.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR,
                   help="our detector, for the face box and the generator's landmarks")
    add_method_options(p)
    p.add_argument("--limit", type=int, default=400, help="number of held-back faces (default 400, 0 = all)")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    p.set_defaults(func=run)


class Embedder:
    """dlib's 128-d face descriptor (ResNet) after 5-point alignment inside a given rectangle."""

    def __init__(self):
        import dlib  # a large native library, loaded only when a dlib measure runs

        self.dlib = dlib
        self.shape = dlib.shape_predictor(dlib_model('shape_predictor_5_face_landmarks.dat'))
        self.net = dlib.face_recognition_model_v1(dlib_model('dlib_face_recognition_resnet_model_v1.dat'))

    def __call__(self, bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        shape = self.shape(rgb, self.dlib.rectangle(x1, y1, x2, y2))
        return np.array(self.net.compute_face_descriptor(rgb, shape))


def run(args: argparse.Namespace) -> int:
    methods = chosen_methods(args)
    if methods is None:
        return 2
    if not (args.data / datasets.UTK_ZIP).is_file():
        log.error("%s: not found (set --data)", args.data / datasets.UTK_ZIP)
        return 2
    anonymizers = build_anonymizers(methods, args)
    zf, found = datasets.utk_detections(args.data, args.detector)
    names = [n for n in sorted(found) if generator_holdout(n) and found[n]]
    if args.limit:
        # Evenly spread over the sorted names (they sort by age): every age group, not only the first.
        names = names[:: max(1, len(names) // args.limit)][: args.limit]
    embed = Embedder()
    dists: dict[str, list[float]] = {m: [] for m in methods}
    anonymized: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    served = 0
    refs = []
    pad = datasets.UTK_PAD
    for name in tqdm(names, desc="identity", unit="face"):
        # The same padded canvas the detector saw, so its box and landmarks apply as they are.
        image = cv2.copyMakeBorder(datasets.decode(zf.read(name)), pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        f = max(found[name], key=lambda d: d.score)
        ref = embed(image, f.box)
        refs.append(ref)
        person = as_people([Detection(f.box, f.score, f.landmarks)], name)
        for m in methods:
            work = image.copy()
            red = anonymizers[m].redact(Frame(0, 0.0, work), person)
            served += m == "gan" and red.faces[0].method == "gan"
            anonymized[m].append(embed(work, f.box))
            dists[m].append(float(np.linalg.norm(anonymized[m][-1] - ref)))
    print(f"faces: {len(names)} held-back UTKFace crops; dlib ResNet distance, same person < {SAME_PERSON}")
    print(f"re-identification chance level: {100.0 / max(len(names), 1):.2f}%")
    if "gan" in methods:
        print(f"gan served {served}/{len(names)} faces (rest: classic fallback)")
    print(f"{'method':<10} {'share < 0.6':>12} {'95% interval':>14} {'median dist':>12} {'re-id rank-1':>13} "
          f"{'vs look-alike':>14}")
    pairs = lookalike_pairs(names)
    rows = []
    for m in methods:
        d = np.array(dists[m])
        same = int(np.sum(d < SAME_PERSON))
        share = same / len(d) if len(d) else float("nan")
        lo, hi = wilson_interval(same, len(d))
        med = float(np.median(d)) if len(d) else float("nan")
        reid = reidentified(anonymized[m], refs)
        cross = lookalike_distances(pairs, anonymized[m], refs)
        floor = float(np.mean(cross < SAME_PERSON)) if len(cross) else float("nan")
        rows.append({"method": m, "share_same": share, "share_same_interval": [lo, hi], "median_distance": med,
                     "reid_rank1": reid, "share_same_vs_lookalike": floor})
        print(f"{m:<10} {share * 100:11.1f}% {f'{lo * 100:.1f}-{hi * 100:.1f}%':>14} {med:12.3f} "
              f"{reid * 100:12.1f}% {floor * 100:13.1f}%")
    strangers = stranger_distances(pairs, refs)
    if len(strangers):
        share, med = float(np.mean(strangers < SAME_PERSON)), float(np.median(strangers))
        print(f"{'stranger':<10} {share * 100:11.1f}% {'':>14} {med:12.3f} {'-':>13}  "
              f"({len(strangers)} look-alike pairs, reference)")
        rows.append({"method": "stranger", "share_same": share, "median_distance": med, "pairs": len(strangers)})
    if args.json:
        args.json.write_text(json.dumps({"faces": len(names), "rows": rows}, indent=2))
    return 0
