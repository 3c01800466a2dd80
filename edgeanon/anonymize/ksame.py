"""k-Same faces: each face replaced by a reference face averaged from k strangers of a similar tone and head turn.

No network: a bank of references (`models/ksame-bank.npz`, made by `python -m export ksame-bank`; research-only,
non-commercial, because it is derived from UTKFace: models/README.md) holds pixel
averages of k aligned UTKFace photos each (same age band and gender, neighbouring skin tones, one head-turn
band), so a reference belongs to no one a recognizer could name (the k-Same idea, Newton et al. 2005). Per face:

1. the reference is chosen by the visible skin tone (`tone.target`, its individual typology angle), the head
   turn from the 5 landmarks (`crops.head_turn`; a head turned the other way gets the reference mirrored) and,
   with a bank that holds one, a coarse age cue read from the face (`age_cue`: years, for the choice only; never
   gender or race); among the references near all three, the track's seed picks one, those least like the person
   favoured (UNLIKE: k-Same-Select; the same track keeps its face while its readings wobble, another track draws
   another);
2. the reference is warped onto the face by the least-squares affine map of its 5 landmarks onto the face's,
   stretched first by a factor the track's seed draws (SHAPE_JITTER: the reference takes the face's position,
   size, roll and turn, but a width and length that are not the person's), moved to the person's skin tone by
   one CIELAB offset (`tone.shift`), grey where the frame is grey (`blend.match_crop`);
3. it goes over a coarse blur cover of the whole mask (COVER_CELLS) with the generator's multi-band blend
   (`blend.composite`);
4. optionally (GRAIN, off by default) seeded grain brings the pasted face's fine residual up to the frame's own
   level under the face (`grain`: a noise level, no pixels of the person).

Faces the bank cannot serve (too small, implausible landmarks, turned beyond `gan.MAX_TURN`, mostly outside the
frame) are left to the fallback, as for the generator: `replace` says which were served.
"""

from __future__ import annotations

import logging
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgeanon.anonymize import age_cue, blend, classic, crops, gan, tone
from edgeanon.anonymize.age_cue import AgeCue
from edgeanon.anonymize.grain import SIGMA as GRAIN_SIGMA
from edgeanon.anonymize.grain import Field as GrainField
from edgeanon.anonymize.grain import add as add_grain
from edgeanon.anonymize.grain import level as grain_level

log = logging.getLogger(__name__)

FORMAT = 1
# The reference canvas: REF_SIDE px square, the 112 px alignment template (crops.TEMPLATE_LANDMARKS) scaled so
# the eyes are REF_EYES px apart, centred across and placed so the canvas shows the forehead and hair above.
REF_SIDE = 160
# The reference sides a bank file may have (its `side`; the builder makes REF_SIDE).
MIN_SIDE, MAX_SIDE = 64, 640
REF_EYES = 40.0
_SCALE = REF_EYES / REF_SIDE / float(crops.TEMPLATE_LANDMARKS[1, 0] - crops.TEMPLATE_LANDMARKS[0, 0])
REF_LANDMARKS = (crops.TEMPLATE_LANDMARKS * _SCALE + [(1.0 - _SCALE) / 2.0, (1.0 - _SCALE) / 2.0 - 0.04]) * REF_SIDE
# Mirror map of the 5 points (left eye <-> right eye, nose, left mouth corner <-> right one).
MIRROR = [1, 0, 2, 4, 3]
# Candidate references: cost = |dITA| / ITA_WINDOW + |d turn| / TURN_WINDOW (+ the age and likeness terms below)
# + a uniform draw of the seed in [0, 1); the lowest cost wins. References within one window of the best compete,
# farther ones never win.
# Not tuned: 10 degrees is the width of about one skin-tone class of the ITA scale, 0.15 one head-turn band.
ITA_WINDOW = 10.0
TURN_WINDOW = 0.15
# With a bank that holds an age cue (age_cue.py) and each reference's mean age, the cost adds
# |log(1 + years) - log(1 + the reference's years)| / AGE_WINDOW (0: off). On 300 tuning faces in scenes 0.3 and 0.5
# gave the same crowd measures; 0.3 keeps a dark-skinned child from an old man's face where the bank's darkest
# references are old people's (docs/ksame.md, "Ages"). One band of the bank (20-29 against 30-44) is about 0.4.
AGE_WINDOW = 0.3
# A tracked face (one with a track id) keeps its reference from frame to frame while that reference costs at most
# KEEP_MARGIN more than the frame's best: the tone, turn and age readings wobble between frames, and without it a
# still face flips between references (docs/ksame.md, "Ages"); 0: every frame chooses afresh. At most KEPT_TRACKS
# tracks are remembered (the oldest forgotten first). Untracked faces (still images) are always chosen afresh.
# With UNLIKE 1 a margin of 1.0 let 11% of 120 tracked faces change reference within 8 frames (5% without UNLIKE);
# 1.5 brings it back to 5% (docs/ksame.md, "Unlike the person").
KEEP_MARGIN = 1.5
KEPT_TRACKS = 4096
# A tracked face's readings are smoothed over its frames: each frame's log(1 + years), and with UNLIKE its likeness
# to every reference, counts READING_SMOOTHING toward the track's running value (an exponential moving average;
# 1: no smoothing).
READING_SMOOTHING = 0.2
# Unlike the person (k-Same-Select): the cost adds UNLIKE x the reference's likeness to the face, in standard
# deviations over the bank (0: off). Likeness is the correlation of the two faces' interiors as the age cue lines
# them up (`age_cue.canvas`: grey, 64 px, by the similarity map; brows to chin, LIKENESS_BLUR px smoothed), so among
# the references that fit the person's tone, turn and age the ones least like the person win more often. No
# recognizer. Chosen on four tuning parts of 300 faces in scenes (docs/ksame.md, "Unlike the person"): 1 against
# 0 moved the own original's rank toward chance under SFace by +0.033 to +0.054 on every part (rank-1 SFace 4
# people of 1,192 found against 13), for a tenth of the age look; tone, diversity and seam held. On 596 held-back
# faces rank-1 fell likewise (SFace 7 -> 3, dlib 3 -> 2; inside noise), the own rank moved less (SFace +0.003,
# dlib +0.025) and nothing else moved: the tuning parts' people were partly among the bank's.
UNLIKE = 1.0
LIKENESS_BLUR = 1.0
# How much of the person's face shape the reference takes: its 5 landmarks are mapped onto the face's by the
# least-squares similarity map (0: rotation, one scale, translation; it keeps its own proportions), the affine
# map (1: 6 degrees of freedom, it takes the person's width to height and eye-to-mouth ratio), or a blend.
PERSON_SHAPE = 1.0
# Each track's own face shape: before the fit, the face's landmarks are stretched about their centre along the
# eye line and across it by factors exp(u * SHAPE_JITTER), u uniform in [-1, 1) drawn from the track's seed, so
# the reference takes a proportion that is neither the person's nor the same for every track (0: off).
# Chosen with COVER_CELLS on the tuning split (docs/ksame.md#identity-less-of-the-persons-shape-and-surroundings-
# chosen-on-the-tuning-split): on 600 tuning faces in scenes, jitter 0.2 with an 8-cell cover against no jitter
# and 12 cells moved SFace's own-person minus look-alike gap from +1.6 to -0.9 points (paired -2.5, 95% -4.0 to
# -1.2), dlib's from -1.45 to -1.0 (inside noise), SFace diversity 0.895 -> 0.897 (+0.002, -0.000 to +0.004),
# dlib's 0.929 -> 0.919, the seam 0.314 -> 0.304 (blur 0.279). The similarity map (PERSON_SHAPE 0) cost SFace
# diversity 0.05 on 300 faces and 0.5 cost 0.025, for no identity gain beyond noise: the affine map stays. With
# the exaggerated bank it costs 0.02-0.03 (to the 0.9 bar) and moves the own original's rank toward chance, not the
# rank-1 counts (docs/ksame.md, "The similarity map again"): still affine.
SHAPE_JITTER = 0.2
# How much of the reference's own length the face keeps (0: none, the affine map copies the person's): before the
# stretch above, the face's landmarks are stretched across the eye line by (r_ref / r_face) ** PERSON_LENGTH,
# r = eye-to-mouth length over eye distance (the proportion that tells children apart), while the width, roll
# and turn stay the person's.
PERSON_LENGTH = 0.0
# The reference is pasted opaque to the first radius of the box's ellipse and gone at the second, over a blur of
# COVER_CELLS samples across the face, with gan's multi-band blend (MULTIBAND) or a plain alpha.
# On 120 tuning faces in scenes (docs/ksame.md; after blend.composite stopped applying the cover's feather twice)
# the seam measure was 0.300 for these settings, blur 0.293; paste 0.9-1.1 with a plain alpha 0.295 (cover 12
# cells) and 0.290 (6 cells), for less diversity (SFace 0.880 -> 0.866, 0.855): the rim stays gan's. The cover
# is coarser than gan's 12 cells: what it keeps around the face (hair, ears, jaw line) re-identifies. On 300
# tuning faces a cover of 4 / 6 / 8 cells moved the SFace identity gap by -1.7 / -0.8 / -1.1 points and SFace
# diversity by -0.010 / -0.007 / -0.005; 8 with SHAPE_JITTER (above) keeps diversity. Paste rim 1.1-1.3: seam 1.21x
# blur's (goal 1.2x).
PASTE_RIM = gan.PASTE_RIM
COVER_CELLS = 8
# The cover above the brows (blend.crown_cover): None = COVER_CELLS everywhere, fewer = a coarser blur of the
# hair that frames the face, the jaw keeping COVER_CELLS.
CROWN_CELLS: int | None = None
MULTIBAND = True
# Grain (edgeanon/anonymize/grain.py): after the paste, seeded noise brings the pasted face's fine residual to
# GRAIN x the frame's own level under the face (read before the paste), correlated over GRAIN_SIGMA px; 0: off.
GRAIN = 0.0
# The reference crop's side in pixels: the face's own crop window size, within these bounds (a 48 px face is
# warped at 128 px and then shrunk; a 400 px one at 320 px and then enlarged).
MIN_CROP, MAX_CROP = crops.CROP_SIZE, 320
# How the reference is resampled onto the face's crop (OpenCV's names). A face larger than the bank's 160 px canvas
# is an enlargement of it, which a linear filter softens: cubic keeps more of the reference's own detail (docs/ksame.md,
# "Resampling": detail 0.220 -> 0.267 on the tuning faces, identity and diversity unchanged).
INTERPOLATIONS = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}
INTERPOLATION = "cubic"


def interior_mask() -> np.ndarray:
    """(SIDE, SIDE) bool: the ellipse from the brows to the chin on the age cue's canvas."""
    lm = age_cue.TEMPLATE
    eyes = float(lm[1, 0] - lm[0, 0])
    centre = (lm[:2].mean(0) + lm[3:].mean(0)) / 2.0
    yy, xx = np.mgrid[: age_cue.SIDE, : age_cue.SIDE].astype(np.float64) + 0.5
    return ((xx - centre[0]) / (1.2 * eyes)) ** 2 + ((yy - centre[1]) / (1.5 * eyes)) ** 2 <= 1.0


INTERIOR = interior_mask()


def interiors(canvases: np.ndarray) -> np.ndarray:
    """(n, SIDE, SIDE) grey canvases (age_cue.canvas) -> (n, d) float32: each face's interior (INTERIOR),
    smoothed, less its mean, over its norm."""
    x = np.stack([cv2.GaussianBlur(np.asarray(c, np.float32), (0, 0), LIKENESS_BLUR) for c in canvases])[:, INTERIOR]
    return unit(x - x.mean(1, keepdims=True))


def unit(x: np.ndarray) -> np.ndarray:
    """Rows over their norms (the dot product of two is then their correlation, for rows of zero mean)."""
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-6)


def smoothed(before: Any, now: Any) -> Any:
    """A track's running reading moved READING_SMOOTHING of the way to this frame's."""
    return before + READING_SMOOTHING * (now - before)


class BankError(ValueError):
    """A reference bank file that is missing, unreadable or not a bank."""


def shape_fit(src: np.ndarray, dst: np.ndarray, person_shape: float) -> np.ndarray:
    """2x3 map of `src` onto `dst` between the similarity map (person_shape 0: the warped points keep their own
    proportions) and the affine one (1: they take the target's). Both send the centroid onto the centroid, so
    every blend of the two does too."""
    sim = crops.similarity_fit(src, dst)
    return sim + float(person_shape) * (crops.affine_fit(src, dst) - sim)


def face_map(ref: np.ndarray, face: np.ndarray, person_shape: float, log_stretch: np.ndarray) -> np.ndarray:
    """2x3 map of the reference's landmarks onto the face's: the proportions `shape_fit` gives for `person_shape`
    (the person's at 1, the reference's at 0) on the face's place, size and roll, then stretched by
    exp(log_stretch) along and across the eye line (a track's own proportions: SHAPE_JITTER)."""
    target = np.asarray(face, np.float64).reshape(5, 2)
    if person_shape < 1.0:
        src = np.asarray(ref, np.float64).reshape(5, 2)
        target = cv2.transform(src[None], shape_fit(src, target, person_shape))[0]
    if np.any(np.asarray(log_stretch) != 0):
        target = stretch(target, log_stretch)
    return crops.affine_fit(ref, target)


def stretch(points: np.ndarray, log_factors: np.ndarray) -> np.ndarray:
    """5 landmarks stretched about their centre by exp(log_factors): [0] along the eye line, [1] across it."""
    lm = np.asarray(points, np.float64).reshape(5, 2)
    along = lm[1] - lm[0]
    along = along / max(float(np.hypot(*along)), 1e-9)
    across = np.array([-along[1], along[0]])
    centre = lm.mean(0)
    rel = lm - centre
    a, b = np.exp(np.asarray(log_factors, np.float64))
    return centre + np.outer(rel @ along * a, along) + np.outer(rel @ across * b, across)


def length_ratio(points: np.ndarray) -> float:
    """Eye-to-mouth length (across the eye line, eye midpoint to mouth midpoint) over the eye distance."""
    lm = np.asarray(points, np.float64).reshape(5, 2)
    along = lm[1] - lm[0]
    eyes = max(float(np.hypot(*along)), 1e-9)
    across = np.array([-along[1], along[0]]) / eyes
    return abs(float(((lm[3] + lm[4]) / 2 - (lm[0] + lm[1]) / 2) @ across)) / eyes


def mirror(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The canvas flipped left-right, with its landmarks flipped and relabelled."""
    lm = np.asarray(landmarks, np.float64).reshape(5, 2)[MIRROR].copy()
    lm[:, 0] = image.shape[1] - lm[:, 0]
    return np.ascontiguousarray(image[:, ::-1]), lm


@dataclass(frozen=True)
class Bank:
    """The references: images (square BGR, of the side the file records; the builder makes REF_SIDE), their 5
    landmarks, skin tone (CIELAB), head turn (>= 0), k."""

    images: np.ndarray  # (n, side, side, 3) uint8
    landmarks: np.ndarray  # (n, 5, 2) float32, canvas pixels
    lab: np.ndarray  # (n, 3) float32: the median skin colour tone.target reads inside `box`
    turn: np.ndarray  # (n,) float32, crops.head_turn of the landmarks, >= 0 (mirrored for the other side)
    k: np.ndarray  # (n,) int: how many people each reference averages
    box: np.ndarray  # (4,) float32: the face box of the canvas (where tone is read)
    alpha: np.ndarray  # (side, side) uint8: where the references hold faces' pixels (255) or none (0)
    age: np.ndarray | None = None  # (n,) float32: the mean age of each reference's people (None: not recorded)
    age_cue: AgeCue | None = None  # reads a face's age for the choice (None: the bank holds none)

    @property
    def ita(self) -> np.ndarray:
        return tone.ita(self.lab)

    @cached_property
    def interiors(self) -> np.ndarray:
        """Each reference's interior (`interiors`), read once, on first use."""
        return interiors(np.stack([age_cue.canvas(img, lm) for img, lm in zip(self.images, self.landmarks)]))

    def likeness(self, canvas: np.ndarray) -> np.ndarray:
        """Each reference's likeness to a face (its age_cue.canvas), in standard deviations over the bank."""
        r = self.interiors @ interiors(canvas[None])[0]
        return (r - r.mean()) / (r.std() + 1e-6)

    def save(self, path: Path, quality: int = 92) -> None:
        """Write the bank: the images as JPEG (a few kB each), the rest as arrays; one compressed .npz."""
        blobs = []
        for img in self.images:
            ok, data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                raise BankError("cannot encode a reference as JPEG")
            blobs.append(data.reshape(-1))
        offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
        ages = {} if self.age is None else {"age": self.age.astype(np.float32)}
        cue = {} if self.age_cue is None else self.age_cue.arrays()
        with open(path, "wb") as fh:
            np.savez_compressed(fh, format=np.array([FORMAT]), side=np.array([self.images.shape[1]]),
                                jpeg=np.concatenate(blobs).astype(np.uint8), offsets=offsets,
                                landmarks=self.landmarks.astype(np.float32), lab=self.lab.astype(np.float32),
                                turn=self.turn.astype(np.float32), k=self.k.astype(np.int32),
                                box=self.box.astype(np.float32), alpha=self.alpha.astype(np.uint8), **ages, **cue)

    @classmethod
    def load(cls, path: str | Path) -> Bank:
        """Read and check a bank file; BankError says what is wrong. The shipped bank (models/ksame-bank.npz) is
        research-only, non-commercial: its pictures are averages of UTKFace photos (models/README.md)."""
        path = Path(path)
        if not path.is_file():
            raise BankError(f"{path}: k-Same reference bank not found (make it with `python -m export ksame-bank`)")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {name: z[name] for name in z.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise BankError(f"{path}: not a k-Same reference bank ({exc})") from exc
        need = ("format", "side", "jpeg", "offsets", "landmarks", "lab", "turn", "k", "box", "alpha")
        missing = [name for name in need if name not in arrays]
        if missing:
            raise BankError(f"{path}: not a k-Same reference bank (no {', '.join(missing)})")
        side = int(arrays["side"][0])
        if int(arrays["format"][0]) != FORMAT or not MIN_SIDE <= side <= MAX_SIDE:
            raise BankError(f"{path}: bank format {int(arrays['format'][0])} / side {side}, "
                            f"this runtime reads format {FORMAT} / sides {MIN_SIDE}-{MAX_SIDE} px")
        n, offsets, jpeg = len(arrays["landmarks"]), arrays["offsets"], arrays["jpeg"]
        if n == 0 or offsets.shape != (n + 1,) or arrays["lab"].shape != (n, 3) or arrays["turn"].shape != (n,) \
                or arrays["k"].shape != (n,) or arrays["landmarks"].shape != (n, 5, 2) or arrays["box"].shape != (4,) \
                or arrays["alpha"].shape != (side, side):
            raise BankError(f"{path}: inconsistent k-Same reference bank (array shapes)")
        age = arrays.get("age")
        if age is not None and (age.shape != (n,) or not np.all(np.isfinite(age)) or np.any(age < 0)):
            raise BankError(f"{path}: inconsistent k-Same reference bank (ages)")
        try:
            cue = AgeCue.from_arrays(arrays)
        except ValueError as exc:
            raise BankError(f"{path}: {exc}") from exc
        images = []
        for i in range(n):
            img = cv2.imdecode(jpeg[offsets[i] : offsets[i + 1]], cv2.IMREAD_COLOR)
            if img is None or img.shape != (side, side, 3):
                raise BankError(f"{path}: reference {i} is not a {side} px colour image")
            images.append(img)
        return cls(np.stack(images), arrays["landmarks"].astype(np.float32), arrays["lab"].astype(np.float32),
                   arrays["turn"].astype(np.float32), arrays["k"].astype(np.int32), arrays["box"].astype(np.float32),
                   arrays["alpha"].astype(np.uint8), None if age is None else age.astype(np.float32), cue)

    def choose(self, skin: np.ndarray | None, turn: float, seed: int, ita_window: float = ITA_WINDOW,
               turn_window: float = TURN_WINDOW, years: float | None = None, age_window: float = AGE_WINDOW,
               likeness: np.ndarray | None = None, unlike: float = UNLIKE) -> int:
        """The reference for a face of skin tone `skin` (CIELAB, None: unknown), head turn |turn| and about
        `years` old (None: unknown; ignored by a bank without ages, or with age_window 0), drawn by `seed` among
        those near all three (see ITA_WINDOW), the ones of least `likeness` (Bank.likeness) favoured by `unlike`."""
        return int(np.argmin(self.costs(skin, turn, seed, ita_window, turn_window, years, age_window, likeness,
                                        unlike)))

    def costs(self, skin: np.ndarray | None, turn: float, seed: int, ita_window: float = ITA_WINDOW,
              turn_window: float = TURN_WINDOW, years: float | None = None, age_window: float = AGE_WINDOW,
              likeness: np.ndarray | None = None, unlike: float = UNLIKE) -> np.ndarray:
        """Every reference's cost for this face (`choose` takes the lowest)."""
        cost = np.abs(self.turn - abs(float(turn))) / turn_window
        if skin is not None:  # a tone beyond the bank's is served by its darkest (lightest) band, not one reference
            refs = self.ita
            cost = cost + np.abs(refs - np.clip(tone.ita(skin), refs.min(), refs.max())) / ita_window
        if years is not None and self.age is not None and age_window > 0:
            cost = cost + np.abs(np.log1p(self.age) - np.log1p(max(float(years), 0.0))) / age_window
        if likeness is not None and unlike > 0:
            cost = cost + unlike * np.asarray(likeness, np.float64)
        return cost + np.random.default_rng([abs(int(seed)), 7]).random(len(cost))


class KSameFaces:
    """Replaces faces with k-Same references; `.replace` says which faces it served (the rest need a fallback).

    The same interface as gan.FaceGenerator, so the Anonymizer serves both alike.
    """

    def __init__(self, bank: Bank, min_face: float = gan.MIN_FACE, max_face: float = gan.MAX_FACE,
                 min_inside: float = gan.MIN_INSIDE, max_turn: float = gan.MAX_TURN,
                 paste_rim: tuple[float, float] = PASTE_RIM, cover_cells: int = COVER_CELLS,
                 multiband: bool = MULTIBAND, person_shape: float = PERSON_SHAPE,
                 shape_jitter: float | tuple[float, float] = SHAPE_JITTER, ita_window: float = ITA_WINDOW,
                 turn_window: float = TURN_WINDOW, person_length: float = PERSON_LENGTH,
                 crown_cells: int | None = CROWN_CELLS, grain: float = GRAIN, grain_sigma: float = GRAIN_SIGMA,
                 interpolation: str = INTERPOLATION, max_crop: int = MAX_CROP, age_window: float = AGE_WINDOW,
                 keep_margin: float = KEEP_MARGIN, unlike: float = UNLIKE):
        self.bank = bank
        if age_window < 0 or keep_margin < 0 or unlike < 0:
            raise ValueError(f"age window {age_window}, keep margin {keep_margin}, unlike {unlike}: "
                             "need 0 (off) or more")
        self.age_window, self.keep_margin, self.unlike = float(age_window), float(keep_margin), float(unlike)
        # track id -> (its reference, its smoothed log(1 + years) or None, its smoothed likeness or None):
        # KEEP_MARGIN, READING_SMOOTHING
        self.kept: OrderedDict[int, tuple[int, float | None, np.ndarray | None]] = OrderedDict()
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation {interpolation!r}: choose from {', '.join(INTERPOLATIONS)}")
        self.interpolation = INTERPOLATIONS[interpolation]
        if max_crop < MIN_CROP:
            raise ValueError(f"max crop {max_crop}: need {MIN_CROP} px or more")
        self.max_crop = int(max_crop)
        if grain < 0 or grain_sigma < 0:
            raise ValueError(f"grain {grain}, grain sigma {grain_sigma}: need 0 (off) or more")
        self.grain, self.grain_sigma = float(grain), float(grain_sigma)
        self.grain_field = GrainField.make(self.grain_sigma) if self.grain > 0 else None
        if not 0.0 <= person_shape <= 1.0:
            raise ValueError(f"person shape {person_shape}: need 0 (similarity map) to 1 (affine map)")
        self.person_shape = float(person_shape)
        jitter = np.broadcast_to(np.asarray(shape_jitter, np.float64), (2,)).copy()
        if not np.all((jitter >= 0.0) & (jitter < 1.0)):
            raise ValueError(f"shape jitter {shape_jitter}: need 0 (off) to below 1 (one value, or along:across)")
        self.shape_jitter = jitter  # along the eye line, across it
        if not 0.0 <= person_length <= 1.0:
            raise ValueError(f"person length {person_length}: need 0 (the person's) to 1 (the reference's)")
        self.person_length = float(person_length)
        if ita_window <= 0 or turn_window <= 0:
            raise ValueError(f"choice windows must be positive, got ITA {ita_window}, turn {turn_window}")
        self.ita_window, self.turn_window = float(ita_window), float(turn_window)
        self.min_face, self.max_face = float(min_face), float(max_face)
        self.min_inside, self.max_turn = float(min_inside), float(max_turn)
        if not 0 < paste_rim[0] < paste_rim[1] <= crops.MASK_SCALE:
            raise ValueError(f"paste rim {paste_rim}: need 0 < inner < outer <= {crops.MASK_SCALE}")
        self.paste_rim = (float(paste_rim[0]), float(paste_rim[1]))
        if cover_cells < 1:
            raise ValueError(f"cover cells must be at least 1, got {cover_cells}")
        self.cover_cells = int(cover_cells)
        if crown_cells is not None and crown_cells < 1:
            raise ValueError(f"crown cells must be at least 1 (or None), got {crown_cells}")
        self.crown_cells = None if crown_cells is None else int(crown_cells)
        self.multiband = bool(multiband)

    @classmethod
    def from_path(cls, path: str | Path, **kwargs: Any) -> KSameFaces:
        return cls(Bank.load(path), **kwargs)

    def servable(self, image_shape: tuple[int, ...], face: Any) -> bool:
        """Whether a reference can serve this face (gan.can_serve's rules)."""
        return gan.can_serve(image_shape, face, self.min_face, self.max_face, self.max_turn, self.min_inside)

    def years(self, image: np.ndarray, landmarks: np.ndarray, canvas: np.ndarray | None = None) -> float | None:
        """The age cue's reading of the face (None: the bank has no cue or ages, or the age window is off), from
        its canvas when the caller has read it."""
        if self.bank.age_cue is None or self.bank.age is None or self.age_window <= 0:
            return None
        return self.bank.age_cue.years(image, landmarks, canvas)

    def choose(self, image: np.ndarray, box: np.ndarray, landmarks: np.ndarray, seed: int, mask_scale: float,
               track: int | None = None) -> tuple[int, np.ndarray | None]:
        """The reference for this face, and the person's skin tone (CIELAB; None: not readable). A tracked face
        reads its age and likeness smoothed over its frames (READING_SMOOTHING) and keeps the reference it had while
        that one costs at most the keep margin more than the best."""
        skin = tone.target(image, box, "face", mask_scale, landmarks=landmarks)
        canvas = age_cue.canvas(image, landmarks) if self.unlike > 0 else None  # read once for both
        years = self.years(image, landmarks, canvas)
        before = self.kept.get(track) if track is not None else None
        if years is not None and before is not None and before[1] is not None:
            years = float(np.expm1(smoothed(before[1], np.log1p(years))))
        turn = crops.head_turn(landmarks)
        likeness = None if canvas is None else self.bank.likeness(canvas)
        if likeness is not None and before is not None and before[2] is not None:
            likeness = smoothed(before[2], likeness)
        costs = self.bank.costs(skin, turn, seed, self.ita_window, self.turn_window, years, self.age_window,
                                likeness, self.unlike)
        i = int(np.argmin(costs))
        if track is None:
            return i, skin
        if before is not None and costs[before[0]] <= costs[i] + self.keep_margin:
            i = before[0]
        self.kept[track] = (i, None if years is None else float(np.log1p(years)), likeness)
        self.kept.move_to_end(track)
        while len(self.kept) > KEPT_TRACKS:
            self.kept.popitem(last=False)
        return i, skin

    def reference(self, image: np.ndarray, box: np.ndarray, landmarks: np.ndarray, seed: int,
                  mask_scale: float, cells: int = COVER_CELLS, track: int | None = None
                  ) -> tuple[crops.CropRegion, np.ndarray]:
        """The face's crop window and the chosen reference warped into it, in the person's tone (BGR uint8)."""
        turn = crops.head_turn(landmarks)
        i, skin = self.choose(image, box, landmarks, seed, mask_scale, track)
        ref, ref_lm = np.dstack([self.bank.images[i], self.bank.alpha]), self.bank.landmarks[i]
        if turn < 0:
            ref, ref_lm = mirror(ref, ref_lm)
        side = max(box[2] - box[0], box[3] - box[1]) * crops.CONTEXT
        region = crops.crop_region(box, int(np.clip(round(side), MIN_CROP, self.max_crop)))
        target = region.to_crop(landmarks)
        if self.person_length > 0:
            keep = self.person_length * np.log(length_ratio(ref_lm) / max(length_ratio(target), 1e-3))
            target = stretch(target, np.array([0.0, keep]))
        m = face_map(ref_lm, target, self.person_shape,
                     np.random.default_rng([abs(int(seed)), 11]).uniform(-1.0, 1.0, 2) * self.shape_jitter)
        size = (region.size, region.size)
        warped = cv2.warpAffine(ref, m, size, flags=self.interpolation, borderMode=cv2.BORDER_CONSTANT)
        cut = crops.cut_crop(image, region, gan.BORDER)
        box_in_crop = region.box_to_crop(box)
        face = blend.match_crop(warped[:, :, :3], cut, box_in_crop, skin, landmarks_in_crop=region.to_crop(landmarks))
        # Where the references hold no face pixels (above the forehead, beyond the photos), the cover's blur.
        alpha = warped[:, :, 3:].astype(np.float32) / 255.0
        cover = blend.crown_cover(cut, box_in_crop, cells, self.crown_cells)
        face = face.astype(np.float32) * alpha + cover.astype(np.float32) * (1.0 - alpha)
        return region, np.clip(face + 0.5, 0, 255).astype(np.uint8)

    def replace(self, image: np.ndarray, faces: Sequence[Any], seeds: Sequence[int],
                mask_scale: float = classic.DEFAULT_MASK_SCALE, mask_shape: str = "ellipse",
                feather: float = classic.DEFAULT_FEATHER, cells: int | None = None) -> list[bool]:
        """Put a reference on every servable face in place; returns which were served.

        Every reference is made before anything is pasted (overlapping faces read the original scene). The cover
        under it is a blur of `cells` samples across the face (None: this maker's cover_cells).
        """
        cells = self.cover_cells if cells is None else int(cells)
        if len(seeds) != len(faces):
            raise ValueError(f"{len(faces)} faces but {len(seeds)} seeds")
        served = [False] * len(faces)
        made = []
        for i, face in enumerate(faces):
            if not self.servable(image.shape, face):
                continue
            box = np.asarray(face.box, np.float64)[:4]
            level = grain_level(image, box) if self.grain_field is not None else 0.0
            made.append((i, box, level) + self.reference(image, box, np.asarray(face.landmarks, np.float64),
                                                         seeds[i], mask_scale, cells,
                                                         getattr(face, "track_id", None)))
        for i, box, level, region, ref in made:
            blend.composite(image, ref, region, box, mask_scale, mask_shape, feather, cells, self.paste_rim,
                            self.multiband, self.crown_cells)
            if self.grain_field is not None:
                add_grain(image, box, level, self.paste_rim, seeds[i], self.grain_field, self.grain)
            served[i] = True
        return served
