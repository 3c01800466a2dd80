"""Train the k-Same bank's age cue (edgeanon/anonymize/age_cue.py) on the bank's own UTKFace tuning photos.

A four-layer convolutional network (batch norm, ReLU, max pooling, global average pooling; about 80k weights)
learns log(1 + years) from the cue's grey canvas of each photo, normalised in brightness and contrast. Each photo
is drawn VIEWS times as a camera would show it: shrunk to eyes SMALLEST-LARGEST px apart (log-uniform), its
landmarks off by JITTER of the eye distance, brighter or darker and of more or less contrast; a batch takes one
view of each photo at random. The age comes from UTKFace's file names, at build time only.

The network is fitted on four fifths of the photos and checked on the rest (a fixed hash of the file name picks
the fifth), and the checked network is the one the bank keeps: the build log says how far to trust it (its median
error in years, how often it lands in the photo's own age band or the next one, how many children under 13 it
reads as children). CPU, a few minutes; seeded.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from edgeanon.anonymize.age_cue import INPUT, OUTPUT, SIDE, AgeCue, canvas, normalised

log = logging.getLogger(__name__)

VIEWS = 4
SMALLEST, LARGEST = 6.0, 40.0  # eye distance, px, of the views (UTKFace's own faces have about 80)
JITTER = 0.03  # landmark noise, in eye distances
GAIN, OFFSET = (0.8, 1.2), 20.0  # contrast factor range, brightness shift (grey levels)
EPOCHS, BATCH, PEAK_RATE = 12, 128, 3e-3
HUBER = 0.3  # log years: the loss is quadratic within this of the truth, linear beyond
SEED = 0
CHILD = 13.0  # years: under this, a child for the check


@dataclass(frozen=True)
class Check:
    photos: int
    median_error: float  # years
    same_or_next_band: float  # share of the check photos
    children: int
    children_read_as_children: float  # share
    adults_read_as_children: float  # share


def in_check(name: str) -> bool:
    return hashlib.sha1(name.encode()).digest()[5] % 5 == 0


def views(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, count: int = VIEWS) -> np.ndarray:
    """(count, SIDE, SIDE) uint8 canvases of one photo as cameras would show it (see the module docstring)."""
    lm = np.asarray(landmarks, np.float64)
    own = max(float(np.linalg.norm(lm[1] - lm[0])), 1e-6)
    out = np.empty((count, SIDE, SIDE), np.uint8)
    for k in range(count):
        eyes = float(np.exp(rng.uniform(np.log(SMALLEST), np.log(LARGEST))))
        s = min(1.0, eyes / own)
        small = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1.0 else image
        moved = lm * s + rng.normal(0.0, JITTER * eyes, lm.shape)
        grey = canvas(small, moved).astype(np.float32) * rng.uniform(*GAIN) + rng.uniform(-OFFSET, OFFSET)
        out[k] = np.clip(grey + 0.5, 0, 255).astype(np.uint8)
    return out


def network() -> nn.Sequential:
    def block(i: int, o: int) -> list[nn.Module]:
        return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

    return nn.Sequential(*block(1, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2), *block(32, 64),
                         nn.MaxPool2d(2), *block(64, 96), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(96, 1))


def fit(x: np.ndarray, years: np.ndarray, epochs: int = EPOCHS, seed: int = SEED) -> nn.Sequential:
    """The network for (n, views, SIDE, SIDE) uint8 canvases of faces `years` old."""
    torch.manual_seed(seed)
    inputs = torch.from_numpy(normalised(x))
    target = torch.from_numpy(np.log1p(np.asarray(years, np.float32)))
    net = network()
    nn.init.constant_(net[-1].bias, float(target.mean()))
    opt = torch.optim.Adam(net.parameters(), PEAK_RATE)
    steps = (len(target) + BATCH - 1) // BATCH
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, PEAK_RATE, total_steps=max(1, epochs * steps))
    for _ in tqdm(range(epochs), desc="age cue", unit="epoch"):
        net.train()
        order = torch.randperm(len(target))
        for b in range(0, len(target), BATCH):
            idx = order[b : b + BATCH]
            view = torch.randint(0, inputs.shape[1], (len(idx),))
            loss = nn.functional.smooth_l1_loss(net(inputs[idx, view][:, None])[:, 0], target[idx], beta=HUBER)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


def to_onnx(net: nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.onnx.export(net, torch.zeros(1, 1, SIDE, SIDE), buffer, input_names=[INPUT], output_names=[OUTPUT],
                      dynamic_axes={INPUT: {0: "n"}, OUTPUT: {0: "n"}}, dynamo=False)
    return buffer.getvalue()


def check(cue: AgeCue, x: np.ndarray, years: np.ndarray, bands: tuple[float, ...]) -> Check:
    """How the cue reads the check photos (their first view each)."""
    read = cue.read(x[:, 0])
    truth = np.asarray(years, np.float64)
    band_of = np.searchsorted(np.asarray(bands[1:-1]), np.concatenate([read, truth]), side="right")
    read_band, true_band = band_of[: len(read)], band_of[len(read):]
    child = truth < CHILD
    return Check(len(truth), float(np.median(np.abs(read - truth))), float(np.mean(np.abs(read_band - true_band) <= 1)),
                 int(child.sum()), float(np.mean(read[child] < CHILD)) if child.any() else float("nan"),
                 float(np.mean(read[~child] < CHILD)) if (~child).any() else float("nan"))


def train(faces: Sequence[tuple[str, np.ndarray, float]], read: Callable[[str], np.ndarray],
          bands: tuple[float, ...], epochs: int = EPOCHS) -> AgeCue:
    """The cue from (name, landmarks, years) per photo, `read(name)` giving the image the landmarks are in:
    fitted on four fifths, checked on the rest (logged)."""
    rng = np.random.default_rng(SEED)
    x = np.stack([views(read(name), lm, rng) for name, lm, _ in tqdm(faces, desc="age cue views", unit="photo")])
    years = np.array([f[2] for f in faces], np.float64)
    held = np.array([in_check(f[0]) for f in faces])
    if held.all() or not held.any():
        raise ValueError(f"{len(faces)} photos: too few to fit the age cue on four fifths and check it on the rest")
    cue = AgeCue(to_onnx(fit(x[~held], years[~held], epochs)))
    c = check(cue, x[held], years[held], bands)
    log.info("age cue, checked on %d photos it was not fitted on: median error %.1f years, own or next age band "
             "%.0f%%, %d children read as children %.0f%%, adults read as children %.0f%%", c.photos,
             c.median_error, 100 * c.same_or_next_band, c.children, 100 * c.children_read_as_children,
             100 * c.adults_read_as_children)
    return cue
