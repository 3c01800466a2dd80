"""Fit the k-Same bank's age cue (edgeanon/anonymize/age_cue.py) on the bank's own UTKFace tuning photos.

A ridge regression of log(1 + years) on the cue's features (gradients and a thumbnail of the face lined up by
its 5 landmarks), the features standardised, each photo read at a camera-like size (SMALLEST-LARGEST). The age
comes from UTKFace's file names, at build time only. Before the final fit on every photo, a check fits on four
fifths of them and reads the rest (a fixed hash of the file name picks the fifth), so the build log says how
far to trust the cue: its median error in years, how often it lands in the photo's own age band or the next
one, and how many children (under 13) it reads as children.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from tqdm import tqdm

from edgeanon.anonymize.age_cue import AgeCue, features

log = logging.getLogger(__name__)

# The ridge penalty. On the check fifth of the tuning photos (7,533 usable, the crowd evaluations' faces left
# out) 300 to 3000 give the same error (r of log ages 0.87); 10000 and more lose some.
RIDGE = 1000.0
# Faces in a camera's frame are smaller than UTKFace's (eyes about 80 px apart): each photo is read once, shrunk
# to eyes SMALLEST to LARGEST px apart (log-uniform, drawn from the file name), so the cue learns ages from the
# detail a small face keeps. On the check fifth this brought the median error at eyes 8 px apart from 8.6 to 7.8
# years and found more people over 60 (27% -> 39% read as 45 or more), and changed nothing at 40 px.
SMALLEST, LARGEST = 6.0, 40.0
MIN_SCALE = 0.02  # a feature's standard deviation is floored here (near-constant gradients at the canvas edge)
CHILD = 13.0  # years: under this, a child for the check


@dataclass(frozen=True)
class Check:
    photos: int
    median_error: float  # years
    same_or_next_band: float  # share of the check photos
    children: int
    children_read_as_children: float  # share
    adults_read_as_children: float  # share


def fit(x: np.ndarray, years: np.ndarray, ridge: float = RIDGE) -> AgeCue:
    """The cue for features `x` (n, d) of faces `years` old."""
    mean = x.mean(0)
    scale = np.maximum(x.std(0), MIN_SCALE)
    z = (x - mean) / scale
    target = np.log1p(np.asarray(years, np.float64))
    bias = float(target.mean())
    weights = np.linalg.solve(z.T @ z + ridge * np.eye(z.shape[1]), z.T @ (target - bias))
    return AgeCue(mean.astype(np.float32), scale.astype(np.float32), weights.astype(np.float32), bias)


def in_check(name: str) -> bool:
    return hashlib.sha1(name.encode()).digest()[5] % 5 == 0


def shrunk_features(name: str, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The cue's features of the photo shrunk to the eye distance its name draws (never enlarged)."""
    lm = np.asarray(landmarks, np.float64)
    draw = int.from_bytes(hashlib.sha1(name.encode()).digest()[6:10], "big") / 2**32
    eyes = float(np.exp(np.log(SMALLEST) + draw * (np.log(LARGEST) - np.log(SMALLEST))))
    s = min(1.0, eyes / max(float(np.linalg.norm(lm[1] - lm[0])), 1e-6))
    small = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1.0 else image
    return features(small, lm * s)


def check(x: np.ndarray, years: np.ndarray, names: list[str], bands: tuple[float, ...],
          ridge: float = RIDGE) -> Check:
    """Fit on the photos outside the check fifth, read the check fifth."""
    held = np.array([in_check(n) for n in names])
    if held.all() or not held.any():
        raise ValueError(f"{len(names)} photos: too few to check the age cue on a fifth of them")
    cue = fit(x[~held], years[~held], ridge)
    read = np.array([cue.years_of(f) for f in x[held]])
    truth = np.asarray(years, np.float64)[held]
    band_of = np.searchsorted(np.asarray(bands[1:-1]), np.concatenate([read, truth]), side="right")
    read_band, true_band = band_of[: len(read)], band_of[len(read):]
    child = truth < CHILD
    return Check(int(held.sum()), float(np.median(np.abs(read - truth))),
                 float(np.mean(np.abs(read_band - true_band) <= 1)), int(child.sum()),
                 float(np.mean(read[child] < CHILD)) if child.any() else float("nan"),
                 float(np.mean(read[~child] < CHILD)) if (~child).any() else float("nan"))


def train(faces: Sequence[tuple[str, np.ndarray, float]], read: Callable[[str], np.ndarray],
          bands: tuple[float, ...], ridge: float = RIDGE) -> AgeCue:
    """The cue from (name, landmarks, years) per photo, `read(name)` giving the image the landmarks are in,
    after logging the check on a fifth of them."""
    names = [f[0] for f in faces]
    x = np.stack([shrunk_features(name, read(name), lm) for name, lm, _ in tqdm(faces, desc="age cue", unit="photo")])
    years = np.array([f[2] for f in faces], np.float64)
    c = check(x, years, names, bands, ridge)
    log.info("age cue, checked on %d photos it was not fitted on: median error %.1f years, own or next age band "
             "%.0f%%, %d children read as children %.0f%%, adults read as children %.0f%%", c.photos,
             c.median_error, 100 * c.same_or_next_band, c.children, 100 * c.children_read_as_children,
             100 * c.adults_read_as_children)
    return fit(x, years, ridge)
