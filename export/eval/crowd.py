"""`python -m export.eval crowd`: does a crowd stay a crowd? Tone, diversity, identity with controls, seams.

The faces are those of `incontext` (UTKFace photos laid into wider-train scenes, found by our detector, every
method on the same faces with the same seeds), on the tuning split by default (`--split holdout` for the
numbers that get published, once, at the end). Per method, under two recognizers (dlib's ResNet, and SFace: see
export.eval.sface):

- tone: Pearson r of skin L* (CIELAB; median over discs on both cheeks and the nose bridge, placed by the
  face's 5 landmarks) between original and output, the median |L* out - in|, the median signed L* error of the
  darkest tenth of the faces (+: the output is lighter), and the median |delta ITA| (individual typology angle,
  degrees) per UTKFace race label (0 white, 1 black, 2 asian, 3 indian, 4 other);
- diversity: the mean recognizer distance between the outputs of different people over the same between
  their originals (1.0: as varied as the people; a generator painting one face on everyone goes to 0);
- identity with controls: the share of outputs taken for their own person (distance under the recognizer's
  threshold) minus the share taken for a look-alike stranger (same gender and race, age within 5 years:
  `identity.lookalike_pairs`); beside it, how often one real look-alike is taken for another (the
  recognizer's own false-match rate on these faces), and rank-1 re-identification over chance (1.0 = chance);
  the same on the faces our detector found (a face it misses stays original under every method: that leak is
  the detector's, measured by `leak`, and it alone puts rank-1 re-identification at (missed faces)x chance);
  and, over the found faces, each output's own original's rank (`own_rank`: the share of the other originals
  nearer to the output than its own; 0.5 = chance, 0 = always nearest), the weak signal behind rank-1 that a
  few re-identified faces cannot show; and both again within the person's age band (identity.AGE_BANDS, from
  the file name): the gallery only the originals of that band, chance 1 / its size, so that what a method
  re-identifies by the age it keeps (as a generated face should) is told apart from what it keeps of the person;
- diversity across seeds (`--seeds`, gan methods): each laid-in face anonymized alone twice, with two seeds
  (track ids); the recognizer distance between the two outputs over the mean distance between the outputs
  of different people (1.0: a new track gets as different a face as another person would; 0: the latent
  does nothing);
- group look (export.eval.group_probe): a nearest-centroid probe on each recognizer's embeddings names a UTKFace
  race label for every original and output; per label its lift (how much more often it names the label for
  that label's people than for everyone else) on the outputs, beside the originals' lift, and their ratio
  averaged over labels (1.0: outputs keep the look of the people's groups as well as the people; 0: nothing
  of it, as a blur). The tone measures above read the skin patches the methods match; this one sees the face;
- seam: gradient energy (Sobel magnitude squared, grey) of the output over the original's in the band where
  the generated face is blended in (box ellipse radii SEAM_BAND); a dotted ring raises it, a blur lowers it.

Every value comes with a 95% bootstrap interval over faces, and for each pair of methods the paired
difference (same resampled faces for both) with its interval.
"""

from __future__ import annotations

import argparse
import json
import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgeanon.anonymize.crops import head_turn
from edgeanon.anonymize.tone import ita
from edgeanon.defaults import MADE_UP
from edgeanon.detector import FaceDetector
from edgeanon.frames import Frame
from edgeanon.models import DEFAULT_DETECTOR
from edgeanon.tracker import Track, iou_matrix
from export.eval import incontext
from export.eval.group_probe import lift, predicted_labels
from export.eval.identity import AGE_BANDS, SAME_PERSON, demographics, lookalike_pairs
from export.eval.methods import add_method_options, build_anonymizers, chosen_methods
from export.eval.sface import SAME_PERSON as SFACE_SAME
from export.eval.sface import SFace
from export.paths import shared_data_dir
from export.splits import HOLDOUT, TUNE, add_generator_split_option

log = logging.getLogger(__name__)

RACES = ("white", "black", "asian", "indian", "other")
# Age classes for the age probe (years, from UTKFace's file names; evaluation only), their lower bounds.
AGE_CLASSES = ("0-12", "13-29", "30-59", "60+")
AGE_STARTS = (0, 13, 30, 60)
# Skin sample discs: radius as a share of the eye distance; cheeks pushed outward by CHEEK_OUT eye distances.
SKIN_RADIUS = 0.18
CHEEK_OUT = 0.12
# The seam band: radii of the face box's inscribed ellipse (1 = the box's ellipse). The generated ellipse
# ends at crops.MASK_SCALE (1.3) and is opaque to crops.PASTE_INNER (1.15).
SEAM_BAND = (1.1, 1.45)
RECOGNIZERS = {"dlib": SAME_PERSON, "sface": SFACE_SAME}
# The darkest faces' tone error is reported on the faces at or under this percentile of the originals' L*.
DARKEST = 10
BOOTSTRAP = 1000
# Head-turn bins (|crops.head_turn|) for the served-by table.
TURN_BINS = (0.0, 0.2, 0.4, 0.6, 1.01)


def skin_points(landmarks: np.ndarray) -> np.ndarray:
    """(3, 2) centres of the skin discs: left cheek, right cheek, nose bridge (from eyes, nose, mouth corners)."""
    lm = np.asarray(landmarks, np.float64).reshape(5, 2)
    across = lm[1] - lm[0]
    left = (lm[0] + lm[3]) / 2 - CHEEK_OUT * across
    right = (lm[1] + lm[4]) / 2 + CHEEK_OUT * across
    bridge = 0.6 * lm[2] + 0.4 * (lm[0] + lm[1]) / 2
    return np.array([left, right, bridge])


def skin_tone(bgr: np.ndarray, landmarks: np.ndarray) -> tuple[float, float]:
    """(L*, ITA in degrees) of the skin discs: medians of L* and b* over their pixels."""
    lm = np.asarray(landmarks, np.float64).reshape(5, 2)
    radius = max(1.0, SKIN_RADIUS * float(np.hypot(*(lm[1] - lm[0]))))
    mask = np.zeros(bgr.shape[:2], np.uint8)
    for x, y in skin_points(lm):
        cv2.circle(mask, (int(round(x)), int(round(y))), int(round(radius)), 1, -1)
    if not mask.any():
        return float("nan"), float("nan")
    lab = cv2.cvtColor(bgr.astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)
    lightness, b = float(np.median(lab[..., 0][mask > 0])), float(np.median(lab[..., 2][mask > 0]))
    return lightness, float(ita((lightness, 0.0, b)))


def seam_energy(original: np.ndarray, output: np.ndarray, box: np.ndarray) -> float:
    """Gradient energy of `output` over `original`'s in the blend band around the face (SEAM_BAND)."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, 1.0) / 2, max(y2 - y1, 1.0) / 2
    h, w = original.shape[:2]
    wx1, wy1 = max(0, int(cx - rx * 1.6)), max(0, int(cy - ry * 1.6))
    wx2, wy2 = min(w, int(cx + rx * 1.6) + 1), min(h, int(cy + ry * 1.6) + 1)
    ys = (np.arange(wy1, wy2) + 0.5 - cy) / ry
    xs = (np.arange(wx1, wx2) + 0.5 - cx) / rx
    r = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    band = (r >= SEAM_BAND[0]) & (r < SEAM_BAND[1])

    def energy(img: np.ndarray) -> float:
        grey = cv2.cvtColor(img[wy1:wy2, wx1:wx2], cv2.COLOR_BGR2GRAY).astype(np.float32)
        gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
        return float(np.mean((gx * gx + gy * gy)[band])) if band.any() else float("nan")

    return energy(output) / max(energy(original), 1e-6)


def attacker_landmarks(finder: FaceDetector, image: np.ndarray, box: np.ndarray,
                       fallback: np.ndarray) -> np.ndarray:
    """The landmarks our detector finds on `image` itself for the face at `box` (in a window of twice the box
    around it; the detection overlapping the box most, IoU >= 0.3), as an attacker would align the face: a method
    that moves the features is judged where they now are. `fallback` (the original's) where it finds none."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    side = max(x2 - x1, y2 - y1)
    h, w = image.shape[:2]
    wx1, wy1 = max(0, int((x1 + x2) / 2 - side)), max(0, int((y1 + y2) / 2 - side))
    wx2, wy2 = min(w, int((x1 + x2) / 2 + side)), min(h, int((y1 + y2) / 2 + side))
    found = [f for f in finder.detect(image[wy1:wy2, wx1:wx2]) if f.landmarks is not None]
    if not found:
        return np.asarray(fallback, np.float32)
    shift = np.array([wx1, wy1, wx1, wy1], np.float32)
    overlap = iou_matrix(np.array([box[:4]], np.float32), np.array([f.box for f in found], np.float32) + shift)[0]
    best = int(np.argmax(overlap))
    if overlap[best] < 0.3:
        return np.asarray(fallback, np.float32)
    return (np.asarray(found[best].landmarks, np.float32) + shift[:2]).astype(np.float32)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def race_labels(names: list[str]) -> np.ndarray:
    """Per UTKFace file name, its race label (RACES index; -1: none in the name)."""
    return np.array([(demographics(n) or (0, 0, -1))[2] for n in names])


def age_index(names: list[str], starts: tuple[int, ...]) -> np.ndarray:
    """Per UTKFace file name, the index of the age range its age falls in (`starts`: the ranges' lower edges,
    rising; -1: no age in the name)."""
    return np.array([int(np.searchsorted(starts, d[0], side="right")) - 1 if d else -1
                     for d in map(demographics, names)])


def distances(a: np.ndarray, b: np.ndarray, recognizer: str) -> np.ndarray:
    """(len(a), len(b)) distance matrix: Euclidean for dlib, 1 - cosine for SFace (unit vectors)."""
    if recognizer == "sface":
        return 1.0 - a @ b.T
    return np.linalg.norm(a[:, None] - b[None], axis=2)


def own_rank(d_ao: np.ndarray, among: np.ndarray | None = None) -> np.ndarray:
    """Per output i, the share of the other originals j != i nearer to it than its own original (d_ao[i, j] <
    d_ao[i, i]; ties count half): 0 = its own original is the nearest, 0.5 = chance, 1 = the farthest.
    `among` (n, n booleans): only the originals j with among[i, j] count (NaN where none does)."""
    d = np.asarray(d_ao, np.float64)
    n = len(d)
    others = ~np.eye(n, dtype=bool)
    if among is not None:
        others &= np.asarray(among, bool)
    count = others.sum(1)
    own = np.diag(d)[:, None]
    nearer = ((d < own) & others).sum(1) + 0.5 * ((d == own) & others).sum(1)
    return np.where(count > 0, nearer / np.maximum(count, 1), np.nan)


def reid_among(d_ao: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Per output i, 1.0 where its own original is nearer than every other original j with among[i, j]."""
    d = np.where(np.asarray(among, bool) | np.eye(len(d_ao), dtype=bool), np.asarray(d_ao, np.float64), np.inf)
    return (np.argmin(d, axis=1) == np.arange(len(d))).astype(float)


@dataclass
class Faces:
    """Per-face values of one method (or of the originals), aligned over the same faces."""

    lightness: list[float] = field(default_factory=list)
    ita: list[float] = field(default_factory=list)
    seam: list[float] = field(default_factory=list)
    served: list[str] = field(default_factory=list)
    embeddings: dict[str, list[np.ndarray]] = field(default_factory=lambda: {r: [] for r in RECOGNIZERS})
    # Per face, the distance between two outputs of the face alone under two seeds (collect's `seeds`; empty
    # when not asked for; NaN where the generator did not serve it).
    reseeded: dict[str, list[float]] = field(default_factory=lambda: {r: [] for r in RECOGNIZERS})
    # SFace at the landmarks our detector finds on this image itself (an attacker's alignment; the originals'
    # own landmarks where it finds none): `attacker_landmarks`. Outputs only: empty for the originals.
    attacker: list[np.ndarray] = field(default_factory=list)


@dataclass
class Crowd:
    """What `collect` saw: the originals, every method's outputs, and each face's demographics and head turn."""

    names: list[str] = field(default_factory=list)
    turn: list[float] = field(default_factory=list)
    found: list[bool] = field(default_factory=list)  # our detector found the laid-in face
    original: Faces = field(default_factory=Faces)
    methods: dict[str, Faces] = field(default_factory=dict)

    def per_face(self, label: str) -> dict[str, np.ndarray]:
        """Per-face quantities every summary is a mean, median or correlation of (so one bootstrap serves all)."""
        out, ref = self.methods[label], self.original
        values = {"l_orig": np.array(ref.lightness), "l_out": np.array(out.lightness),
                  "dita": np.abs(np.array(out.ita) - np.array(ref.ita)), "seam": np.array(out.seam),
                  "found": np.array(self.found, float)}
        pairs = lookalike_pairs(self.names)
        n = len(self.names)
        labels, ages = self.groups(), self.age_classes()
        values["age_class"] = ages.astype(float)
        values["gallery"] = np.full(n, float(n))
        bands = self.age_bands()
        same_band = bands[:, None] == bands[None, :]
        values["band_size"] = same_band.sum(1).astype(float)
        for rec, threshold in RECOGNIZERS.items():
            a, o = np.array(out.embeddings[rec]), np.array(ref.embeddings[rec])
            d_ao = distances(a, o, rec)
            off = ~np.eye(n, dtype=bool)
            values[f"{rec}_own"] = (np.diag(d_ao) < threshold).astype(float)
            values[f"{rec}_reid"] = (np.argmin(d_ao, axis=1) == np.arange(n)).astype(float)
            values[f"{rec}_own_rank"] = own_rank(d_ao)
            # The same within the person's age band: what is left once the age a method keeps is known.
            values[f"{rec}_band_reid"] = reid_among(d_ao, same_band)
            values[f"{rec}_band_rank"] = own_rank(d_ao, same_band)
            # Each face's mean distance to every other face, outputs among themselves and originals likewise.
            values[f"{rec}_spread_out"] = (distances(a, a, rec) * off).sum(1) / max(n - 1, 1)
            values[f"{rec}_spread_orig"] = (distances(o, o, rec) * off).sum(1) / max(n - 1, 1)
            if len(out.reseeded[rec]) == n:
                values[f"{rec}_seed_distance"] = np.array(out.reseeded[rec])
            # Per face: matches of its output to its look-alikes' originals, and of its original to theirs.
            hits, real, count = np.zeros(n), np.zeros(n), np.zeros(n)
            d_oo = distances(o, o, rec)
            for i, j in pairs:
                hits[i] += d_ao[i, j] < threshold
                hits[j] += d_ao[j, i] < threshold
                real[i] += d_oo[i, j] < threshold
                real[j] += d_oo[i, j] < threshold
                count[i] += 1
                count[j] += 1
            values[f"{rec}_stranger_hits"], values[f"{rec}_real_hits"], values["pairs"] = hits, real, count
            values[f"{rec}_group_orig"], values[f"{rec}_group_out"] = predicted_labels(o, a, labels, len(RACES))
            values[f"{rec}_age_orig"], values[f"{rec}_age_out"] = predicted_labels(o, a, ages, len(AGE_CLASSES))
        if len(out.attacker) == n:
            d_att = distances(np.array(out.attacker), np.array(ref.embeddings["sface"]), "sface")
            values["sface_attacker_reid"] = (np.argmin(d_att, axis=1) == np.arange(n)).astype(float)
            values["sface_attacker_own_rank"] = own_rank(d_att)
        return values

    def groups(self) -> np.ndarray:
        return race_labels(self.names)

    def age_bands(self) -> np.ndarray:
        """Per face, its identity.AGE_BANDS index (-1: no age in the file name)."""
        return age_index(self.names, AGE_BANDS)

    def age_classes(self) -> np.ndarray:
        """Per face, its AGE_CLASSES index (-1: no age in the file name)."""
        return age_index(self.names, AGE_STARTS)


def probe_kept(v: dict[str, np.ndarray], key: str, labels: np.ndarray, names: tuple[str, ...], idx: np.ndarray,
               s: dict[str, float]) -> None:
    """A probe's lift per label on the outputs (`key`_NAME) and the originals (`key`_orig_NAME), and their ratio
    averaged over labels (`key`_kept: 1.0 = the outputs keep it as well as the people, 0 = nothing of it)."""
    lifts = {which: [lift(v[f"{key}_{which}"][idx], labels[idx], g) for g in range(len(names))]
             for which in ("orig", "out")}
    for g, label in enumerate(names):
        s[f"{key}_{label}"] = lifts["out"][g]
        s[f"{key}_orig_{label}"] = lifts["orig"][g]
    out, orig = np.array(lifts["out"]), np.array(lifts["orig"])
    ok = np.isfinite(out) & np.isfinite(orig)  # labels with faces on both sides of the lift
    s[f"{key}_kept"] = float(out[ok].mean() / max(orig[ok].mean(), 1e-9)) if ok.any() else float("nan")


def summary(v: dict[str, np.ndarray], race: np.ndarray, idx: np.ndarray) -> dict[str, float]:
    """Every measure of one method on the faces `idx` (a bootstrap resample, or all of them)."""
    s = {"tone_r": pearson(v["l_orig"][idx], v["l_out"][idx]), "seam": float(np.nanmedian(v["seam"][idx]))}
    # The darkest tenth of the faces (by the original's L*): the output's L* error there, signed (+ = lighter).
    l_orig, l_err = v["l_orig"][idx], v["l_out"][idx] - v["l_orig"][idx]
    ok = np.isfinite(l_err)
    dark = ok & (l_orig <= np.percentile(l_orig[ok], DARKEST)) if ok.any() else ok
    s["tone_dark_dl"] = float(np.median(l_err[dark])) if dark.any() else float("nan")
    s["tone_abs_dl"] = float(np.median(np.abs(l_err[ok]))) if ok.any() else float("nan")
    worst = 0.0
    for g, label in enumerate(RACES):
        sel = idx[race[idx] == g]
        s[f"dita_{label}"] = float(np.nanmedian(v["dita"][sel])) if len(sel) else float("nan")
        if len(sel):
            worst = max(worst, s[f"dita_{label}"])
    s["dita_worst"] = worst
    pairs = max(float(v["pairs"][idx].sum()), 1.0)
    # Chance of rank-1 re-identification is 1 / the originals each output was ranked among (its run's faces;
    # Crowd.per_face and pool both set it).
    gallery = v["gallery"]
    for rec in RECOGNIZERS:
        spread = max(float(v[f"{rec}_spread_orig"][idx].mean()), 1e-9)
        s[f"{rec}_diversity"] = float(v[f"{rec}_spread_out"][idx].mean()) / spread
        if f"{rec}_seed_distance" in v:
            s[f"{rec}_seed_diversity"] = float(np.nanmean(v[f"{rec}_seed_distance"][idx])) / max(
                float(v[f"{rec}_spread_out"][idx].mean()), 1e-9)
        s[f"{rec}_own"] = float(v[f"{rec}_own"][idx].mean())
        s[f"{rec}_stranger"] = float(v[f"{rec}_stranger_hits"][idx].sum() / pairs)
        s[f"{rec}_gap"] = s[f"{rec}_own"] - s[f"{rec}_stranger"]
        s[f"{rec}_real"] = float(v[f"{rec}_real_hits"][idx].sum() / pairs)
        s[f"{rec}_reid_x_chance"] = float((v[f"{rec}_reid"] * gallery)[idx].mean())
        # The same two on the faces our detector found (the gallery stays every original: chance is unchanged).
        found = v["found"][idx] > 0
        if found.any():
            s[f"{rec}_gap_found"] = float(v[f"{rec}_own"][idx][found].mean()) - float(
                v[f"{rec}_stranger_hits"][idx][found].sum() / max(float(v["pairs"][idx][found].sum()), 1.0))
            s[f"{rec}_reid_found_x_chance"] = float((v[f"{rec}_reid"] * gallery)[idx][found].mean())
            s[f"{rec}_own_rank_found"] = float(np.nanmean(v[f"{rec}_own_rank"][idx][found]))
            if f"{rec}_band_reid" in v:  # chance within a band of m originals is 1/m
                s[f"{rec}_band_reid_found_x_chance"] = float(
                    (v[f"{rec}_band_reid"] * v["band_size"])[idx][found].mean())
                ranked = v[f"{rec}_band_rank"][idx][found]
                ranked = ranked[np.isfinite(ranked)]  # NaN: nobody else of the person's band in the run
                s[f"{rec}_band_rank_found"] = float(ranked.mean()) if len(ranked) else float("nan")
            if rec == "sface" and "sface_attacker_reid" in v:
                s["sface_attacker_reid_found_x_chance"] = float(
                    (v["sface_attacker_reid"] * gallery)[idx][found].mean())
                s["sface_attacker_own_rank_found"] = float(np.nanmean(v["sface_attacker_own_rank"][idx][found]))
        # The probes: each label's lift on the outputs, over its lift on the originals (mean over labels).
        probe_kept(v, f"{rec}_group", race, RACES, idx, s)
        if "age_class" in v:
            probe_kept(v, f"{rec}_age", v["age_class"].astype(int), AGE_CLASSES, idx, s)
    return s


def bootstrap(per_face: dict[str, dict[str, np.ndarray]], race: np.ndarray, reps: int = BOOTSTRAP,
              seed: int = 0) -> dict:
    """Each method's summary with 95% intervals, and every pair's paired difference (same resamples)."""
    n = len(race)
    rng = np.random.default_rng(seed)
    everyone = np.arange(n)
    point = {m: summary(v, race, everyone) for m, v in per_face.items()}
    draws = {m: [] for m in per_face}
    for _ in range(reps):
        idx = rng.integers(0, n, n)
        for m, v in per_face.items():
            draws[m].append(summary(v, race, idx))

    def interval(samples: list[float]) -> list[float]:
        arr = np.array(samples, float)
        arr = arr[np.isfinite(arr)]
        return [float(np.percentile(arr, 2.5)), float(np.percentile(arr, 97.5))] if len(arr) else [np.nan, np.nan]

    out = {"methods": {}, "paired": {}}
    for m in per_face:
        out["methods"][m] = {k: {"value": point[m][k], "ci": interval([d[k] for d in draws[m]])} for k in point[m]}
    labels = list(per_face)
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            out["paired"][f"{a} - {b}"] = {
                k: {"value": point[a][k] - point[b][k], "ci": interval([da[k] - db[k] for da, db in
                                                                        zip(draws[a], draws[b], strict=True)])}
                for k in point[a] if k in point[b]}
    return out


def collect(data: Path, detector: Path, anonymizers: dict, limit: int, split: str, threads: int | None = None,
            progress: bool = True, seeds: bool = False, offset: int = 0) -> tuple[incontext.InContext, Crowd]:
    """Run `incontext.evaluate` and measure tone, seams and both recognizers' embeddings on every laid-in face;
    with `seeds`, also each gan method's output for the laid-in face alone under another seed."""
    crowd = Crowd(methods={m: Faces() for m in anonymizers})
    sface = SFace(threads)
    finder = FaceDetector.from_path(detector, threads=threads)
    dlib_embed = incontext.Embedder() if seeds else None

    def observe(face: incontext.LaidFace) -> None:
        crowd.names.append(face.name)
        crowd.found.append(face.found)
        crowd.turn.append(head_turn(face.landmarks))
        for faces, image, served in [(crowd.original, face.image, "original")] + [
                (crowd.methods[m], face.outputs[m], face.methods[m]) for m in anonymizers]:
            lightness, ita = skin_tone(image, face.landmarks)
            faces.lightness.append(lightness)
            faces.ita.append(ita)
            faces.seam.append(seam_energy(face.image, image, face.box))
            faces.served.append(served)
            faces.embeddings["sface"].append(sface(image, face.landmarks))
            if faces is not crowd.original:  # the gallery is the originals as they are (embeddings["sface"])
                faces.attacker.append(sface(image, attacker_landmarks(finder, image, face.box, face.landmarks)))
        for m, anonymizer in anonymizers.items():
            if seeds and anonymizer.method in MADE_UP:
                # The laid-in face alone, twice, with two seeds: only the latent differs between the two.
                pair = []
                for k in (1, 2):
                    work = face.image.copy()
                    track = Track(zlib.crc32(f"{face.name}:seed{k}".encode()) & 0x7FFFFFFF, face.box,
                                  face.landmarks, 1.0, True)
                    served = anonymizer.redact(Frame(0, 0.0, work), [track]).faces[0].method
                    pair.append((work, served))
                if all(served == anonymizer.method for _, served in pair):
                    for rec, embed in (("dlib", lambda im: dlib_embed(im, face.box)),
                                       ("sface", lambda im: sface(im, face.landmarks))):
                        a, b = (embed(work) for work, _ in pair)
                        crowd.methods[m].reseeded[rec].append(float(distances(a[None], b[None], rec)[0, 0]))
                else:  # not served by the generator at these landmarks: no latent to compare
                    for rec in RECOGNIZERS:
                        crowd.methods[m].reseeded[rec].append(float("nan"))

    ctx = incontext.evaluate(data, detector, anonymizers, limit, split, threads, progress, observe=observe,
                             offset=offset)
    # dlib's embeddings: incontext made them already, one per observed face, in the same order.
    crowd.original.embeddings["dlib"] = list(ctx.refs)
    for m in anonymizers:
        crowd.methods[m].embeddings["dlib"] = list(ctx.anonymized[m])
    return ctx, crowd


def served_by_turn(crowd: Crowd, label: str) -> dict[str, dict[str, int]]:
    """How many faces each method served, per head-turn bin (|head_turn|)."""
    turn = np.abs(np.array(crowd.turn))
    table = {}
    for lo, hi in zip(TURN_BINS[:-1], TURN_BINS[1:], strict=True):
        sel = [i for i, t in enumerate(turn) if lo <= t < hi]
        counts: dict[str, int] = {}
        for i in sel:
            counts[crowd.methods[label].served[i]] = counts.get(crowd.methods[label].served[i], 0) + 1
        table[f"{lo:.1f}-{min(hi, 1.0):.1f}"] = counts
    return table


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "crowd",
        help="tone fidelity, diversity, identity with controls (dlib and SFace), seams: UTKFace faces in scenes",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        epilog="Example: python -m export.eval crowd --data ../shared/data --limit 300 --methods gan,blur",
    )
    p.add_argument("--data", type=Path, default=shared_data_dir())
    p.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR, help="our detector (finds the faces)")
    add_method_options(p)
    p.add_argument("--limit", type=int, default=300, help="number of faces (default 300, 0 = all)")
    add_generator_split_option(p, TUNE)
    incontext.add_offset_option(p)
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: all cores)")
    p.add_argument("--seeds", action="store_true",
                   help="also anonymize each face with a second seed (gan): diversity across seeds")
    p.add_argument("--json", type=Path, help="also write the results (and per-face values) as JSON here")
    p.set_defaults(func=run)


ROWS = [("tone_r", "tone: L* correlation", "{:.3f}"), ("tone_abs_dl", "tone: median |L* out - in|", "{:.1f}"),
        ("tone_dark_dl", "tone: darkest 10%, median L* out - in", "{:+.1f}"),
        ("dita_worst", "tone: worst group median |dITA|", "{:.1f}")] + [
    (f"dita_{g}", f"  |dITA| median, {g}", "{:.1f}") for g in RACES] + [
    row for rec in RECOGNIZERS for row in (
        (f"{rec}_diversity", f"{rec}: diversity", "{:.3f}"),
        (f"{rec}_seed_diversity", f"{rec}: diversity across seeds", "{:.3f}"),
        (f"{rec}_gap", f"{rec}: own - stranger share", "{:+.4f}"),
        (f"{rec}_own", f"{rec}:   own person share", "{:.4f}"),
        (f"{rec}_stranger", f"{rec}:   look-alike stranger share", "{:.4f}"),
        (f"{rec}_real", f"{rec}:   real look-alike pairs share", "{:.4f}"),
        (f"{rec}_reid_x_chance", f"{rec}: rank-1 re-id / chance", "{:.2f}"),
        (f"{rec}_gap_found", f"{rec}: own - stranger, found faces", "{:+.4f}"),
        (f"{rec}_reid_found_x_chance", f"{rec}: re-id / chance, found faces", "{:.2f}"),
        (f"{rec}_own_rank_found", f"{rec}: own original's rank, found", "{:.4f}"),
        (f"{rec}_band_reid_found_x_chance", f"{rec}: re-id / chance in age band, found", "{:.2f}"),
        (f"{rec}_band_rank_found", f"{rec}: own rank in age band, found", "{:.4f}"),
        (f"{rec}_attacker_reid_found_x_chance", f"{rec}: re-id / chance, found, own lm", "{:.2f}"),
        (f"{rec}_attacker_own_rank_found", f"{rec}: own original's rank, own lm", "{:.4f}"),
        (f"{rec}_group_kept", f"{rec}: group look kept (probe lift)", "{:.2f}"),
        (f"{rec}_age_kept", f"{rec}: age look kept (probe lift)", "{:.2f}"))] + [
    row for rec in RECOGNIZERS for g in RACES for row in (
        (f"{rec}_group_{g}", f"{rec}:   probe lift, {g}", "{:+.2f}"),
        (f"{rec}_group_orig_{g}", f"{rec}:     originals' lift, {g}", "{:+.2f}"))] + [
    row for rec in RECOGNIZERS for g in AGE_CLASSES for row in (
        (f"{rec}_age_{g}", f"{rec}:   age probe lift, {g}", "{:+.2f}"),
        (f"{rec}_age_orig_{g}", f"{rec}:     originals' lift, {g}", "{:+.2f}"))] + [
    ("seam", "seam: gradient energy out/orig", "{:.3f}")]


def pool(runs: list[dict]) -> tuple[list[str], dict[str, dict[str, np.ndarray]]]:
    """Several runs' results (`--json` of this command or of scripts.gan_variants: names and per-face values)
    as one set of faces, for the methods every run has: each face keeps the values of its own run (its output
    ranked among its own run's originals), so `bootstrap` over the pooled faces gives one interval for all."""
    methods = [m for m in runs[0]["per_face"] if all(m in r["per_face"] for r in runs)]
    names = [n for r in runs for n in r["names"]]
    pooled = {}
    for m in methods:
        parts = []
        for r in runs:
            v = {k: np.asarray(x, np.float64) for k, x in r["per_face"][m].items()}
            v.setdefault("gallery", np.full(len(r["names"]), float(len(r["names"]))))
            parts.append(v)
        keys = set.intersection(*(set(v) for v in parts))
        pooled[m] = {k: np.concatenate([v[k] for v in parts]) for k in sorted(keys)}
    return names, pooled


def format_report(stats: dict) -> str:
    methods = list(stats["methods"])
    lines = [f"{'measure':<36}" + "".join(f"{m + ' (95% CI)':>30}" for m in methods)
             + "".join(f"{p + ' (95% CI)':>34}" for p in stats["paired"])]
    for key, name, fmt in ROWS:
        if not any(key in stats["methods"][m] for m in methods):
            continue
        cells = []
        for block, width in [(stats["methods"][m], 30) for m in methods] + [
                (stats["paired"][p], 34) for p in stats["paired"]]:
            v = block.get(key)
            if v is None:
                cells.append("-".rjust(width))
                continue
            cells.append(f"{fmt.format(v['value'])} ({fmt.format(v['ci'][0])}, {fmt.format(v['ci'][1])})".rjust(width))
        lines.append(f"{name:<36}" + "".join(cells))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    methods = chosen_methods(args)
    if methods is None:
        return 2
    missing = incontext.missing_input(args.data)
    if missing is not None:
        log.error("%s: not found (set --data)", missing)
        return 2
    _, crowd = collect(args.data, args.detector, build_anonymizers(methods, args), args.limit, args.split,
                       args.threads, seeds=args.seeds, offset=args.offset)
    race = crowd.groups()
    stats = bootstrap({m: crowd.per_face(m) for m in methods}, race)
    part = "held-back" if args.split == HOLDOUT else "tuning"
    counts = ", ".join(f"{g} {int((race == i).sum())}" for i, g in enumerate(RACES))
    print(f"faces: {len(crowd.names)} {part} UTKFace photos laid into {part} wider-train scenes ({counts}), "
          f"{sum(crowd.found)} found by our detector; bootstrap {BOOTSTRAP}x over faces; paired = same resamples")
    print(format_report(stats))
    for m in methods:
        print(f"{m}: served by head turn: {served_by_turn(crowd, m)}")
    if args.json:
        args.json.write_text(json.dumps({
            "split": args.split, "faces": len(crowd.names), "names": crowd.names, "turn": crowd.turn,
            "stats": stats, "served": {m: crowd.methods[m].served for m in methods},
            "per_face": {m: {k: v.tolist() for k, v in crowd.per_face(m).items()} for m in methods}}, indent=1))
    return 0
