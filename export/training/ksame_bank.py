"""`python -m export ksame-bank`: the k-Same reference bank (edgeanon.anonymize.ksame) from UTKFace's tuning faces.

Only UTKFace photos of the generator's tuning split go in (`export.splits.in_generator_split(name, "tune")`): the
held-back faces, on which identity is reported, never enter the bank. Each photo with one face found by our
detector (cached detections), plausible landmarks, a head turn within gan.MAX_TURN and colour (grey photos have no
skin tone) is aligned by the
least-squares affine map of its 5 landmarks onto the canvas template (ksame.REF_LANDMARKS); a head turned to the
left is mirrored, so every reference turns right and the runtime mirrors it back (mirroring doubles the faces
of each turn). Photos are grouped by age band and gender (from the file name: build-time only), by head-turn
band, and within that by skin tone (the individual typology angle as `tone.target` reads it): k neighbours in
tone make one reference, their pixel average (each photo counts only where it has pixels; what no half of them
covers is filled in smoothly). At most `--refs` references are kept, spread evenly over tone and turn bands so
dark skin and turned heads are covered. Each reference is then pushed away from the mean of its neighbours in
the bank (references of about its age, head turn and skin tone) by `--exaggerate`: an average of k people keeps
about 1/sqrt(k) of what sets a person apart, so plain averages all look alike. The bank records each reference's
mean age and holds an age cue fitted on the same photos (export.training.age_cue), so the runtime can choose a
reference of about the person's age; nothing reads gender or race at run time.

With `--measure`, each reference is checked against the people in it: the share of (reference, contributor)
pairs a recognizer takes for the same person, beside the share of (reference, look-alike stranger) pairs (a
photo in no reference with what the reference's people share: age band, gender, turn band, skin tone within 3
degrees of ITA of theirs), under SFace and dlib; and the diversity of
the references (their mean recognizer distance over that of as many original photos).

With `--align pool` the references keep the affine average's coarse face and take their fine detail from the
average of `--pool` other people of the bank (same stratum, near in tone), each warped onto the group's mean
68-point shape: detail that belongs to none of the group (docs/ksame.md).

With `--align shape` (or `common`) each photo is also warped, triangle by triangle, onto the group's (or its
stratum's) mean 68-point shape before averaging (export.training.ksame_shape: dlib's 68-point model, iBUG 300-W,
non-commercial): sharper references, whose people a recognizer also finds more often (docs/ksame.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from edgeanon.anonymize import blend, crops, gan, ksame, tone
from edgeanon.atomic import atomic_path
from edgeanon.models import DEFAULT_DETECTOR, DEFAULT_KSAME_BANK
from export.datasets import UTK_PAD, UTK_ZIP, decode, utk_detections
from export.eval.crowd import RECOGNIZERS, distances
from export.eval.identity import AGE_BANDS, Embedder, demographics
from export.eval.incontext import chosen_faces
from export.eval.sface import SFace
from export.paths import shared_data_dir
from export.splits import TUNE, in_generator_split
from export.training import age_cue
from export.training.ksame_shape import ShapeFinder, warp_group

log = logging.getLogger(__name__)

# Chosen on the tuning split (docs/ksame.md): k people per reference, at most REFS references.
K = 8
REFS = 360
TURN_BANDS = (0.0, 0.12, 0.25, gan.MAX_TURN + 1e-6)
# References are spread over skin-tone bands of this many degrees of ITA (and the turn bands).
ITA_BAND = 8.0
# A reference whose people span more ITA than this is not made (tones too far apart to average).
MAX_ITA_SPREAD = 12.0
# Each reference becomes mean + EXAGGERATE * (reference - mean), the mean being that of the other references
# weighted by closeness in log(1 + years), head turn and ITA degrees (Gaussian widths NEIGHBOURHOOD). Chosen on the
# tuning split (docs/ksame.md, "Distinct references"): 1.5 against 1 (plain averages) raised the outputs' SFace
# diversity from 0.878 to 0.923 and their detail from 0.29 to 0.57, ages kept; 2.0 over-sharpens (detail 0.94).
EXAGGERATE = 1.5
NEIGHBOURHOOD = (0.3, 0.1, 10.0)
# Canvas pixels covered by fewer than this share of a reference's people are filled in from around them, and
# the bank's alpha fades the references out toward where fewer than ALPHA_COVER[1] of all photos have pixels.
MIN_COVER = 0.5
ALPHA_COVER = (0.5, 0.9)
# Each photo's weight rises over this many pixels from the edge of its pixels (no step where one photo ends).
# (starting 3 px in: resampling mixes the black padding into the outermost ones), and pixels whose weights sum
# to less than MIN_WEIGHT are filled in as well.
EDGE_PX = 6.0
MIN_WEIGHT = 0.5
SEED = 0
# The tuning evaluations' face counts (crowd, gate: 300; crowd --seeds runs: 150): their faces are not averaged.
EVALUATED = (150, 300)
# How a reference's photos are lined up before they are averaged: "affine" leaves them as the 5-point affine map
# put them (the default, the committed bank); "shape" warps each onto the group's mean 68-point shape
# (ksame_shape: sharper eyes, brows and mouth), "common" onto the mean shape of every photo of the group's stratum
# (age band, gender, turn band: the group's own face shape is not kept). On the tuning split (docs/ksame.md,
# "Sharper references") "shape" lifts ksame's detail from 0.216 to 0.315 but makes the references' own people
# more recognisable (SFace contributor pairs 16.8% -> 23.9%, dlib 33.5% -> 38.5%), so it is not the default.
# "pool" keeps the affine average's coarse face (below DETAIL_SIGMA) and lays over it the fine detail of a larger
# pool: POOL other people of the bank of the group's stratum, nearest in skin tone, each warped onto the group's
# mean 68-point shape (docs/ksame.md, "Detail from a larger pool"): detail that belongs to none of the group.
ALIGNS = ("affine", "shape", "common", "pool")
ALIGN = "affine"
POOL = 48
DETAIL_SIGMA = 2.0
# The pool's detail is scaled to the strength of the group's own shape-aligned detail, by a factor in this range.
DETAIL_GAIN = (1.0, 3.0)
# Where (x0, y0, x1, y1, canvas pixels: the inner face) the Laplacian spread of pool and group is compared.
LAPLACIAN_BOX = (35, 40, 125, 140)
# --measure checks this many references (a random subset): dlib takes about 0.1-0.3 s a face on this machine.
MEASURED = 120
# A look-alike stranger of a reference has a skin tone within this many degrees of ITA of its people's range.
STRANGER_ITA = 3.0
# With --typical-tone: only photos whose ITA lies between these percentiles of their own UTKFace race label's ITA
# (over the usable tuning photos) go in, and groups are made within one label (build time only, as age and gender
# are; the photos left over are grouped again with ages mixed: `groups`). ITA is skin as the camera sees it,
# light included: the tails of each label are mostly photos lit unlike the rest (dim photos of light skin reach
# the ITA of brightly lit dark skin), so cutting them lets a dark ITA at run time be served by people whose skin
# is dark in ordinary light. 15-85 keeps 70% of every label; chosen once, before any crowd run (docs/ksame.md).
TYPICAL_TONE = (15.0, 85.0)


@dataclass
class Photo:
    name: str
    canvas: np.ndarray  # aligned, mirrored to turn >= 0, uint8
    valid: np.ndarray  # where the photo has pixels, uint8 0/1
    landmarks: np.ndarray  # (5, 2) in the canvas
    box: np.ndarray  # detector box in the canvas
    turn: float
    ita: float
    age: int
    gender: int
    race: int
    original_landmarks: np.ndarray  # in the padded photo (for the recognizers)
    original_box: np.ndarray
    shape: np.ndarray | None = None  # 68 points in the canvas (ksame_shape), None: not found or implausible
    jpeg: bytes = b""  # the photo as stored in the zip (warped again from it, when shapes are averaged)
    to_canvas: np.ndarray | None = None  # the 2x3 map from the padded photo onto the (unmirrored) canvas
    mirrored: bool = False  # turned left in the photo, so mirrored on the canvas


def register(subparsers) -> None:
    p = subparsers.add_parser("ksame-bank", help="build the k-Same reference bank from UTKFace's tuning faces",
                              description=__doc__.split("\n\n", 1)[1])
    p.add_argument("--data", type=Path, default=shared_data_dir())
    p.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR, help="our detector (cached detections)")
    p.add_argument("--k", type=int, default=K, help=f"people per reference (default {K})")
    p.add_argument("--refs", type=int, default=REFS, help=f"at most this many references (default {REFS})")
    p.add_argument("--exaggerate", type=float, default=EXAGGERATE, metavar="GAIN",
                   help=f"push each reference away from the mean of the references of about its age, head turn and "
                        f"skin tone by this factor: more distinct and sharper faces (1 = plain averages; default "
                        f"{EXAGGERATE:g})")
    p.add_argument("--align", choices=ALIGNS, default=ALIGN,
                   help=f"line the photos up by the 5-point affine map only, or also warp them onto the group's "
                        f"(shape) or their stratum's (common) mean 68-point shape: sharper, and its people more "
                        f"recognisable; pool: the affine average's coarse face with the detail of --pool others "
                        f"warped onto its mean shape (default {ALIGN})")
    p.add_argument("--pool", type=int, default=POOL,
                   help=f"with --align pool: how many other people lend each reference its detail (default {POOL})")
    p.add_argument("--typical-tone", action="store_true",
                   help=f"keep only photos whose skin tone (ITA) lies between the {TYPICAL_TONE[0]:g}th and "
                        f"{TYPICAL_TONE[1]:g}th percentile of their UTKFace race label's, and group within one "
                        f"label (build time only; keeps more of the group's look, but SFace's identity gap rises "
                        f"and dim or warm light hands other groups' features: not adopted, docs/ksame.md)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N tuning photos (0 = all; for tests)")
    p.add_argument("--hold-back", type=int, action="append", default=[], metavar="OFFSET",
                   help=f"also leave out the {max(EVALUATED)} tuning faces `export.eval crowd --offset OFFSET` "
                        f"takes, so a check of a choice runs on people no reference and no age cue has seen "
                        f"(repeatable; not for the shipped bank)")
    p.add_argument("--out", type=Path, default=DEFAULT_KSAME_BANK)
    p.add_argument("--measure", action="store_true",
                   help="check the references against their people and look-alike strangers (SFace, dlib)")
    p.add_argument("--json", type=Path, help="write the measures here, with each measured reference's matches "
                   "(scripts.ksame_bank_pairs compares two such files)")
    p.set_defaults(func=run)


def align(image: np.ndarray, box: np.ndarray, landmarks: np.ndarray, pad: int) -> tuple:
    """The padded photo on the canvas: (canvas, valid, landmarks, box) in canvas coordinates."""
    m = crops.affine_fit(landmarks, ksame.REF_LANDMARKS)
    size = (ksame.REF_SIDE, ksame.REF_SIDE)
    canvas = cv2.warpAffine(image, m, size, flags=cv2.INTER_AREA if abs(np.linalg.det(m[:, :2])) < 1 else
                            cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    inside = np.zeros(image.shape[:2], np.uint8)
    inside[pad : image.shape[0] - pad, pad : image.shape[1] - pad] = 1
    valid = cv2.warpAffine(inside, m, size, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)
    lm = np.asarray(landmarks, np.float64) @ m[:, :2].T + m[:, 2]
    corners = np.array([[box[0], box[1]], [box[2], box[3]]], np.float64) @ m[:, :2].T + m[:, 2]
    return canvas, valid, lm, np.array([*corners.min(0), *corners.max(0)])


def padded(jpeg: bytes) -> np.ndarray:
    """A UTKFace photo decoded and padded by UTK_PAD (where its detections and landmarks are)."""
    return cv2.copyMakeBorder(decode(jpeg), *[UTK_PAD] * 4, cv2.BORDER_CONSTANT, value=0)


def load_photos(data: Path, detector: Path, limit: int = 0, shapes: bool = True,
                hold_back: tuple[int, ...] = ()) -> list[Photo]:
    """Every usable tuning photo, aligned (see the module docstring); with `shapes`, each with its 68 points.
    `hold_back`: offsets of more crowd evaluations' faces to leave out (`--hold-back`)."""
    zf, found = utk_detections(data, detector)
    # The tuning faces the crowd and gate evaluations use (incontext.chosen_faces) stay out too: identity on
    # them would be void if their own face were averaged into a reference.
    evaluated = {n for limit in EVALUATED for n in chosen_faces(zf, TUNE, limit)}
    evaluated |= {n for offset in hold_back for n in chosen_faces(zf, TUNE, max(EVALUATED), offset)}
    names = [n for n in sorted(found) if in_generator_split(n, TUNE, halved=False) and len(found[n]) == 1
             and demographics(n) is not None and n not in evaluated]
    if limit:
        names = names[:: max(1, len(names) // limit)][:limit]
    finder = ShapeFinder() if shapes else None
    photos = []
    for name in names:
        face = found[name][0]
        if not crops.landmarks_plausible(face.box, face.landmarks):
            continue
        turn = crops.head_turn(face.landmarks)
        if abs(turn) > gan.MAX_TURN:
            continue
        image = padded(zf.read(name))
        canvas, valid, lm, box = align(image, face.box, face.landmarks, UTK_PAD)
        if turn < 0:
            canvas, lm = ksame.mirror(canvas, lm)
            valid = np.ascontiguousarray(valid[:, ::-1])
            box = np.array([ksame.REF_SIDE - box[2], box[1], ksame.REF_SIDE - box[0], box[3]])
        skin = tone.target(canvas, box, "face", 1.0, landmarks=lm)
        if skin is None or blend.is_grey(canvas):  # a grey photo has no skin tone to average
            continue
        age, gender, race = demographics(name)
        m = crops.affine_fit(face.landmarks, ksame.REF_LANDMARKS)
        shape = None if finder is None else finder(image, m, turn < 0, lm)
        photos.append(Photo(name, canvas, valid, lm, box, abs(turn), float(tone.ita(skin)), age, gender, race,
                            np.asarray(face.landmarks, np.float64), np.asarray(face.box, np.float64), shape,
                            zf.read(name) if shape is not None else b"", m, bool(turn < 0)))
    log.info("%d usable tuning photos of %d%s", len(photos), len(names), "" if finder is None else
             f"; a plausible 68-point shape for {sum(p.shape is not None for p in photos)}")
    return photos


def band(value: float, edges: tuple[float, ...]) -> int:
    return int(np.searchsorted(edges, value, side="right") - 1)


def typical_tone(photos: list[Photo], percentiles: tuple[float, float] = TYPICAL_TONE) -> list[Photo]:
    """The photos whose ITA lies within `percentiles` of the ITA of the photos with their race label."""
    labels = sorted({p.race for p in photos})
    ranges = {r: np.percentile([p.ita for p in photos if p.race == r], percentiles) for r in labels}
    for r in labels:
        log.info("race label %d: typical ITA %.1f to %.1f", r, *ranges[r])
    return [p for p in photos if ranges[p.race][0] <= p.ita <= ranges[p.race][1]]


def groups(photos: list[Photo], k: int, by_label: bool = False) -> list[list[int]]:
    """Groups of k photos: same age band, gender and turn band, consecutive in skin tone (ITA). With `by_label`,
    also the same race label, and the photos left over are grouped again within label, gender and turn band, ages
    mixed: the tuning split holds only 306 usable photos labelled black, too few for dark groups of K within one
    age band (the runtime draws references by tone and turn only)."""
    if not by_label:
        return tone_runs(photos, range(len(photos)), k, stratum)
    out = tone_runs(photos, range(len(photos)), k, lambda p: (p.race, *stratum(p)))
    used = {i for g in out for i in g}
    left = [i for i in range(len(photos)) if i not in used]
    return out + tone_runs(photos, left, k, lambda p: (p.race, p.gender, band(p.turn, TURN_BANDS)))


def tone_runs(photos: list[Photo], indices, k: int, key) -> list[list[int]]:
    """Within each `key` of the photos at `indices`, runs of k consecutive in ITA spanning at most MAX_ITA_SPREAD."""
    strata: dict[tuple, list[int]] = {}
    for i in indices:
        strata.setdefault(key(photos[i]), []).append(i)
    out = []
    for members in strata.values():
        members.sort(key=lambda i: photos[i].ita)
        for s in range(0, len(members) - k + 1, k):
            chunk = members[s : s + k]
            if photos[chunk[-1]].ita - photos[chunk[0]].ita <= MAX_ITA_SPREAD:
                out.append(chunk)
    return out


def spread(photos: list[Photo], found: list[list[int]], refs: int, seed: int = SEED) -> list[list[int]]:
    """At most `refs` groups, taken in turn from each (tone band, turn band) cell so sparse cells are kept."""
    rng = np.random.default_rng(seed)
    cells: dict[tuple, list[list[int]]] = {}
    for g in found:
        mean_ita = float(np.mean([photos[i].ita for i in g]))
        mean_turn = float(np.mean([photos[i].turn for i in g]))
        cells.setdefault((int(np.floor(mean_ita / ITA_BAND)), band(mean_turn, TURN_BANDS)), []).append(g)
    for members in cells.values():
        rng.shuffle(members)
    chosen, depth = [], 0
    while len(chosen) < refs and any(depth < len(m) for m in cells.values()):
        for key in sorted(cells):
            if depth < len(cells[key]) and len(chosen) < refs:
                chosen.append(cells[key][depth])
        depth += 1
    return chosen


def edge_weight(valid: np.ndarray) -> np.ndarray:
    """0 outside a photo's pixels, rising to 1 over EDGE_PX inside them (float32)."""
    inside = np.pad(valid, 1)  # the canvas edge counts as an edge too
    return np.clip(cv2.distanceTransform(inside, cv2.DIST_L2, 3)[1:-1, 1:-1] - 3.0, 0, EDGE_PX) / EDGE_PX


def fill_holes(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """`image` (float32) with the pixels where `known` is 0 filled by a normalised blur of the known ones, coarser
    and coarser until every hole is reached (smooth colour, no streaks)."""
    out, have = image.copy(), known.astype(np.float32)
    for sigma in (4.0, 8.0, 16.0, 32.0, 64.0):
        if have.min() > 0.99:
            break
        num = cv2.GaussianBlur(out * have[:, :, None], (0, 0), sigma)
        den = cv2.GaussianBlur(have, (0, 0), sigma)[:, :, None]
        fill = num / np.maximum(den, 1e-6)
        take = (den[:, :, 0] > 1e-3) & (have < 0.99)
        out[take] = out[take] * have[take, None] + fill[take] * (1.0 - have[take, None])
        have = np.where(take, 1.0, have)
    return out


def stratum(p: Photo) -> tuple[int, int, int]:
    """Age band, gender and head-turn band: a reference's people share all three."""
    return band(p.age, AGE_BANDS), p.gender, band(p.turn, TURN_BANDS)


def common_shapes(photos: list[Photo]) -> dict[tuple[int, int, int], np.ndarray]:
    """The mean 68-point shape of each stratum's photos (those with a plausible shape)."""
    shapes: dict[tuple[int, int, int], list[np.ndarray]] = {}
    for p in photos:
        if p.shape is not None:
            shapes.setdefault(stratum(p), []).append(p.shape)
    return {key: np.mean(v, axis=0) for key, v in shapes.items()}


def feathered_mean(canvases: list[np.ndarray], valids: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The canvases' pixel average (float32), each counted where it has pixels and feathered at its edge
    (edge_weight), and the summed weight at each pixel."""
    total = np.zeros((ksame.REF_SIDE, ksame.REF_SIDE, 3), np.float32)
    weight = np.zeros((ksame.REF_SIDE, ksame.REF_SIDE), np.float32)
    for canvas, valid in zip(canvases, valids, strict=True):
        w = edge_weight(valid)
        total += canvas * w[:, :, None]
        weight += w
    return total / np.maximum(weight, 1e-6)[:, :, None], weight


def average(photos: list[Photo], members: list[int], align: str = ALIGN,
            target: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The members' pixel average on the canvas (each where it has pixels, feathered at its edge), the share of
    them covering each pixel, and their mean landmarks. With align "shape" each is first warped onto the members'
    mean 68-point shape (those without a plausible shape stay as they are), and the landmarks are the mean of
    where that warp took each member's 5 points."""
    canvases = [photos[i].canvas for i in members]
    valids = [photos[i].valid for i in members]
    if align in ("shape", "common"):
        sources = [(padded(photos[i].jpeg), photos[i].to_canvas, photos[i].mirrored)
                   if photos[i].shape is not None else None for i in members]
        canvases, valids, landmarks, _ = warp_group(canvases, valids, [photos[i].shape for i in members],
                                                    [photos[i].landmarks for i in members], sources,
                                                    target if align == "common" else None)
    else:
        landmarks = np.mean([photos[i].landmarks for i in members], axis=0)
    mean, weight = feathered_mean(canvases, valids)
    share = np.sum(valids, axis=0, dtype=np.float32) / len(members)
    mean = fill_holes(mean, (share >= MIN_COVER) & (weight >= MIN_WEIGHT))
    mean = to_uint8(mean)
    return mean, share, landmarks


def pool_for(photos: list[Photo], chosen: list[list[int]], group: list[int], size: int) -> list[int]:
    """Up to `size` people of other references of the group's stratum who have a 68-point shape, nearest to the
    group's mean skin tone (only the bank's own people: the look-alike strangers --measure uses stay out)."""
    key, ita = stratum(photos[group[0]]), float(np.mean([photos[i].ita for i in group]))
    mine = set(group)
    candidates = sorted({i for g in chosen for i in g if i not in mine and photos[i].shape is not None
                         and stratum(photos[i]) == key}, key=lambda i: (abs(photos[i].ita - ita), i))
    return candidates[:size]


def pooled_detail(photos: list[Photo], group: list[int], base: np.ndarray, pool: list[int],
                  sigma: float = DETAIL_SIGMA, match: str = "laplacian") -> np.ndarray:
    """`base` (the group's affine average, uint8) with its detail finer than `sigma` replaced by that of the pool's
    average, every pool photo warped onto the group's mean 68-point shape, where at least MIN_COVER of the pool
    has pixels (the base's own detail elsewhere, blended smoothly). The group's photos lend no detail pattern,
    only its strength: an average of many is smoother than one of 8, so with `match` "std" the pool's detail is
    scaled by one factor (within DETAIL_GAIN) to the spread of the detail of the group's own shape-aligned
    average, and with "laplacian" (the builder's way) the result's detail is then scaled once more (within
    DETAIL_GAIN) to that average's Laplacian spread inside LAPLACIAN_BOX, the yardstick of the detail measure;
    "none" leaves it as the pool's average has it."""
    have = [photos[i].shape for i in group if photos[i].shape is not None]
    if len(have) < 2 or not pool:
        return base
    sources = [(padded(photos[i].jpeg), photos[i].to_canvas, photos[i].mirrored) for i in pool]
    canvases, valids, _, _ = warp_group([photos[i].canvas for i in pool], [photos[i].valid for i in pool],
                                        [photos[i].shape for i in pool], [photos[i].landmarks for i in pool],
                                        sources, np.mean(have, axis=0))
    mean, weight = feathered_mean(canvases, valids)
    fine = split_detail(mean, sigma)[1]
    b = base.astype(np.float32)
    coarse, own_detail = split_detail(b, sigma)
    covered = weight >= MIN_COVER * len(pool)
    inside = cv2.GaussianBlur(covered.astype(np.float32), (0, 0), 3.0)[:, :, None]
    own = average(photos, group, "shape")[0] if match != "none" else None
    if own is not None:
        own_fine = split_detail(own, sigma)[1]
        fine *= float(np.clip(own_fine[covered].std() / max(float(fine[covered].std()), 1e-6), *DETAIL_GAIN))
    out = to_uint8(coarse + fine * inside + own_detail * (1.0 - inside))
    if match != "laplacian":
        return out
    factor = float(np.clip(laplacian_spread(own) / max(laplacian_spread(out), 1e-6), *DETAIL_GAIN))
    c, d = split_detail(out, sigma)
    return to_uint8(c + d * factor)


def split_detail(image: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The image (float32) as its coarse part, below a Gaussian of `sigma` px, and its detail, the rest."""
    f = image.astype(np.float32)
    coarse = cv2.GaussianBlur(f, (0, 0), sigma)
    return coarse, f - coarse


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def laplacian_spread(image: np.ndarray) -> float:
    """The standard deviation of the grey image's Laplacian inside LAPLACIAN_BOX (the inner face on the canvas)."""
    x0, y0, x1, y1 = LAPLACIAN_BOX
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_32F)[y0:y1, x0:x1].std())


def build(photos: list[Photo], k: int, refs: int, align: str = ALIGN, pool: int = POOL,
          by_label: bool = False, gain: float = EXAGGERATE) -> tuple[ksame.Bank, list[list[int]]]:
    """The bank and, per reference, the indices of its people (with align "pool", `pool` others lend detail; with
    `by_label`, each reference's people share a race label; `gain`: see `exaggerate`). Each reference's skin tone
    (`lab`, what the runtime chooses by) is its people's, read before the exaggeration."""
    chosen = spread(photos, groups(photos, k, by_label), refs)
    if not chosen:
        raise ValueError(f"no group of {k} photos: too few tuning photos")
    box = np.median([photos[i].box for g in chosen for i in g], axis=0).astype(np.float32)
    images, landmarks, labs, turns, shares = [], [], [], [], []
    common = common_shapes(photos) if align == "common" else {}
    for g in chosen:
        img, share, lm = average(photos, g, "affine" if align == "pool" else align, common.get(stratum(photos[g[0]])))
        if align == "pool":  # the stored landmarks stay the affine average's: its coarse face is kept
            img = pooled_detail(photos, g, img, pool_for(photos, chosen, g, pool))
        images.append(img)
        shares.append(share)
        landmarks.append(lm)
        labs.append(tone.target(img, box, "face", 1.0, landmarks=lm))
        turns.append(abs(crops.head_turn(lm)))
    lo, hi = ALPHA_COVER
    alpha = cv2.GaussianBlur(np.clip((np.mean(shares, axis=0) - lo) / (hi - lo), 0, 1), (0, 0), 3.0)
    ages = np.array([np.mean([photos[i].age for i in g]) for g in chosen], np.float32)
    labs, turns = np.array(labs, np.float32), np.array(turns, np.float32)
    images = exaggerate(np.stack(images), ages, turns, tone.ita(labs), gain)
    bank = ksame.Bank(images, np.array(landmarks, np.float32), labs, turns, np.full(len(chosen), k, np.int32), box,
                      to_uint8(alpha * 255), ages)
    return bank, chosen


def exaggerate(images: np.ndarray, years: np.ndarray, turns: np.ndarray, itas: np.ndarray,
               gain: float = EXAGGERATE) -> np.ndarray:
    """Each image moved to mean + gain * (image - mean), the mean being that of the other images weighted by
    closeness in log(1 + years), turn and ITA (NEIGHBOURHOOD); gain 1 (or no neighbour) leaves it as it is."""
    if gain == 1.0 or len(images) < 2:
        return images
    where = np.stack([np.log1p(years), turns, itas], axis=1) / np.asarray(NEIGHBOURHOOD)
    pixels = images.astype(np.float32)
    out = images.copy()
    for i in range(len(images)):
        weight = np.exp(-0.5 * np.sum((where - where[i]) ** 2, axis=1))
        weight[i] = 0.0
        if weight.sum() > 0:
            mean = np.tensordot(weight / weight.sum(), pixels, axes=1)
            out[i] = to_uint8(mean + gain * (pixels[i] - mean))
    return out


def measure(photos: list[Photo], bank: ksame.Bank, chosen: list[list[int]], data: Path, seed: int = SEED,
            cache: dict | None = None, refs: int = MEASURED, recognizers: tuple[str, ...] = ("sface", "dlib"),
            pairs: bool = False) -> dict:
    """Contributor vs look-alike stranger shares and the references' diversity on `refs` of the references
    (a random subset), under SFace and dlib (`cache`: the photos' embeddings, kept between calls). With `pairs`,
    each recognizer's entry also holds every measured reference's matches (0/1 per contributor and per stranger),
    for paired comparisons of two banks made of the same groups."""

    rng = np.random.default_rng(seed)
    zf = zipfile.ZipFile(data / UTK_ZIP)
    contributors = {i for g in chosen for i in g}
    picked = sorted(rng.choice(len(chosen), size=min(refs, len(chosen)), replace=False))
    # Look-alike strangers of each reference: photos in no reference that share what its people share (age band,
    # gender, turn band, skin tone within STRANGER_ITA of theirs), as many as it has people. A recognizer that
    # takes the reference for them as often as for its own people sees the group in it, not a person.
    strangers = {}
    for r in picked:
        g = [photos[i] for i in chosen[r]]
        lo, hi = min(p.ita for p in g) - STRANGER_ITA, max(p.ita for p in g) + STRANGER_ITA
        key = stratum(g[0])
        pool = [j for j, p in enumerate(photos) if j not in contributors and lo <= p.ita <= hi
                and stratum(p) == key]
        strangers[r] = list(rng.choice(pool, size=min(len(g), len(pool)), replace=False)) if pool else []
    sample = list(rng.choice(len(photos), size=min(len(picked), len(photos)), replace=False))
    needed = sorted({i for r in picked for i in chosen[r]} | {j for s in strangers.values() for j in s} | set(sample))
    if cache is None:
        cache = {}
    cache.setdefault("originals", {r: {} for r in RECOGNIZERS})
    if "sface" in recognizers and "sface" not in cache:
        cache["sface"] = SFace()
    if "dlib" in recognizers and "dlib" not in cache:
        cache["dlib"] = Embedder()
    originals = cache["originals"]
    embed = {"sface": lambda img, lm, box: cache["sface"](img, lm),
             "dlib": lambda img, lm, box: cache["dlib"](img, box)}
    out: dict = {"references": len(chosen), "measured": len(picked), "k": int(bank.k[0]), "photos": len(photos),
                 "contributors": len(contributors)}
    for j in needed:
        if all(j in originals[rec] for rec in recognizers):
            continue
        p = photos[j]
        image = padded(zf.read(p.name))
        for rec in recognizers:
            originals[rec][j] = embed[rec](image, p.original_landmarks, p.original_box)
    for rec in recognizers:
        threshold = RECOGNIZERS[rec]
        ref_emb = np.array([embed[rec](bank.images[r], bank.landmarks[r], bank.box) for r in picked])
        own, other, own_any, other_any, per_ref = [], [], [], [], []
        for e, r in zip(ref_emb, picked, strict=True):
            d_own = distances(e[None], np.array([originals[rec][i] for i in chosen[r]]), rec)[0]
            own += list(d_own < threshold)
            own_any.append(bool((d_own < threshold).any()))
            d_other = np.zeros(0)
            if strangers[r]:
                d_other = distances(e[None], np.array([originals[rec][j] for j in strangers[r]]), rec)[0]
                other += list(d_other < threshold)
                other_any.append(bool((d_other < threshold).any()))
            per_ref.append({"reference": int(r), "contributors": [int(v) for v in d_own < threshold],
                            "strangers": [int(v) for v in d_other < threshold]})
        orig = np.array([originals[rec][j] for j in sample])
        off = ~np.eye(len(ref_emb), dtype=bool)
        off_o = ~np.eye(len(orig), dtype=bool)
        out[rec] = {
            "contributor_pair_share": float(np.mean(own)), "stranger_pair_share": float(np.mean(other)),
            "reference_taken_for_a_contributor": float(np.mean(own_any)),
            "reference_taken_for_a_stranger": float(np.mean(other_any)),
            "diversity": float(distances(ref_emb, ref_emb, rec)[off].mean()
                               / distances(orig, orig, rec)[off_o].mean()),
        }
        if pairs:
            out[rec]["pairs"] = per_ref
    return out


def run(args: argparse.Namespace) -> int:
    if not (args.data / UTK_ZIP).is_file():
        log.error("%s: not found (set --data)", args.data / UTK_ZIP)
        return 2
    if args.k < 2 or args.refs < 1 or args.exaggerate < 1:
        log.error("--k must be at least 2, --refs at least 1 and --exaggerate at least 1")
        return 2
    photos = load_photos(args.data, args.detector, args.limit, shapes=args.align != "affine",
                         hold_back=tuple(args.hold_back))
    if args.typical_tone:
        photos = typical_tone(photos)
        log.info("%d photos of typical tone for their label", len(photos))
    try:
        bank, chosen = build(photos, args.k, args.refs, args.align, args.pool, args.typical_tone, args.exaggerate)
        with zipfile.ZipFile(args.data / UTK_ZIP) as zf:
            bank = replace(bank, age_cue=age_cue.train([(p.name, p.original_landmarks, p.age) for p in photos],
                                                       lambda name: padded(zf.read(name)), AGE_BANDS))
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    with atomic_path(args.out) as tmp:
        bank.save(tmp)
    log.info("%s: %d references of %d people each (%.1f MB), turn 0-%.2f, ITA %.0f to %.0f", args.out,
             len(chosen), args.k, args.out.stat().st_size / 1e6, bank.turn.max(), bank.ita.min(), bank.ita.max())
    if args.measure:
        stats = measure(photos, bank, chosen, args.data, pairs=args.json is not None)
        pairs = {rec: stats[rec].pop("pairs") for rec in ("sface", "dlib") if "pairs" in stats.get(rec, {})}
        print(json.dumps(stats, indent=1))
        if args.json:  # with every measured reference's matches, for scripts.ksame_bank_pairs
            for rec, per_ref in pairs.items():
                stats[rec]["pairs"] = per_ref
            args.json.write_text(json.dumps(stats))
    return 0
