"""The face generator at runtime: crop and condition every servable face, one batched call, blend into the frame."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgeanon.anonymize import blend, classic, crops, tone
from edgeanon.inference import Backend, ModelError, open_backend
from edgeanon.models import DEFAULT_GENERATOR

log = logging.getLogger(__name__)

# Below this longest box side (pixels) the classic fallback serves the face: measured on wider-train,
# our detector gives usable landmarks for 75% of 16-24 px faces but only 41% of 12-16 px ones, and a
# face that small costs a full generator slot (~model time per face) for a 3-pixel eye.
MIN_FACE = 16
# Above this the classic fallback serves the face. A close-up that fills a 4K frame is still generated (the
# 128 px output is then blown up about 20x: a soft face, but a face where a blur would show a smudge).
MAX_FACE = 4096
# At least this share of the face box must lie inside the frame. The crop window may reach out of it by any
# amount (a close-up): BORDER fills what lies outside.
MIN_INSIDE = 0.5
# Beyond this head turn (|crops.head_turn|: 0 frontal, 1 a profile) the classic fallback serves the face: the
# generator draws frontal faces, and on turned heads it paints a smeared oval with a dark band over the eyes.
# Looked at on wider-train tuning faces >= 40 px in bands of 0.15: up to 0.5 the faces hold, from 0.5 on
# every one of the 15 looked at was a ghost (scripts.crowd_grid shows the same bands on laid-in faces).
MAX_TURN = 0.5
BORDER = "reflect"
# Blur strength (samples across the face) of the cover under a generated face: it shows only where the
# generated ellipse does not reach (hair, ears, the box's corners, the rest of the mask). The fallback's 4
# made a smeared egg around every face (pictures at 48, 96, 200 px); 12 leaves hair looking like soft hair.
COVER_CELLS = 12
MAX_BATCH = 32
# Landmarks may be moved by a per-seed random offset (fraction of the box size) before conditioning, so the
# synthetic face does not copy the person's exact eye/nose/mouth geometry (an identity cue). On the detected
# landmarks it is needed (dlib HOG AP retention on 250 wider-train images / dlib same-person share on 400
# held-back UTKFace faces, one seed for all faces: 0 -> 111.7% / 12.0%, 0.03 -> 98.6% / 4.8%, 0.05 -> 76.4% /
# 3.0%). The generic face fitted to them (the default) already drops the person's proportions, and there
# jitter only hurts (a seed per person, 861 faces / 250 images): 0.03 -> identity 5.3%, re-identification
# 0.7%, AP 150.3%, detail 0.266; 0 -> 3.3%, 0.1% (chance), 163.0%, 0.279.
DETECTED_LANDMARK_JITTER = 0.03
GENERIC_LANDMARK_JITTER = 0.0
# Gaussian sigma (pixels of the 128 px crop) of a blur of the context the generator sees around the masked
# face, to soften identity cues it could copy (hair, ears, the face's edge); 0 = off. The blur is normalised
# over the context alone, so no face pixel is smeared into it.
CONTEXT_BLUR = 0.0
# The generated face is pasted opaque out to the first radius (of the box's ellipse) and gone at the second.
# The generator draws an outline along the rim of its ellipse (crops.MASK_SCALE, 1.3): a halo at the jaw and
# a dotted band along the top, where its output meets the context it was given. Pasting it only to 1.2 (opaque
# to 1.0) leaves that rim out of the frame; the cover's blur shows in its place. On 300 tuning faces in scenes
# (scripts.gan_variants, paired): the seam's gradient energy 0.410 -> 0.332 (paired -0.078, 95% CI -0.097 to
# -0.052; blur 0.264), identity gap and tone unchanged within their intervals (docs/generator.md).
PASTE_RIM = (1.0, 1.2)
# Where a generated face takes its skin tone from (edgeanon.anonymize.tone.SOURCES), or None: as generated.
# "face": the median colour of the person's own skin, the one thing of the face a blur publishes too. On 300
# tuning faces in scenes (scripts.gan_variants, paired against None): L* correlation 0.03 -> 0.91, the worst
# UTKFace group's median |delta ITA| 33.6 -> 8.2 degrees; identity: dlib's own-minus-look-alike gap 2.0 -> 0.7
# points, SFace's 0.8 -> 1.0 (paired +0.2, CI -0.8 to +1.3); rank-1 re-identification 2 faces of 300 more
# under each recognizer (CI 0 to 5). Read at skin patches placed by the landmarks instead of the box's ellipse
# ("box"), on the same 300 (paired against "box"): L* correlation 0.875 -> 0.973, the darkest tenth's median L*
# error +5.4 -> -0.9, worst group |delta ITA| 8.4 -> 3.4; dlib's gap -1.0 points (CI -2.5 to +0.4), SFace's
# +0.2 (CI -1.0 to +1.4); held-back numbers in docs/generator.md. "surround" (the skin that stays visible
# around the mask) found too little skin on these faces and took scene colours for it (tone r -0.14): not the
# default.
TONE = "face"


def latent_for_seed(seed: int, size: int) -> np.ndarray:
    """The latent vector of a seed (a track id): the same seed always gives the same synthetic face."""
    return np.random.default_rng(abs(int(seed))).standard_normal(size).astype(np.float32)


class FaceGenerator:
    """Replaces faces with generated ones; `.replace` says which faces it served (the rest need a fallback)."""

    def __init__(self, backend_or_path: Backend | str | Path, min_face: float = MIN_FACE,
                 max_face: float = MAX_FACE, min_inside: float = MIN_INSIDE, max_batch: int = MAX_BATCH,
                 landmark_jitter: float | None = None, generic: bool = True, border: str = BORDER,
                 context_blur: float = CONTEXT_BLUR, tone_source: str | None = TONE, max_turn: float = MAX_TURN,
                 paste_rim: tuple[float, float] = PASTE_RIM):
        backend = open_backend(backend_or_path) if isinstance(backend_or_path, (str, Path)) else backend_or_path
        if backend.input_names[:2] != ["condition", "latent"] or not backend.output_names:
            raise ModelError(f"{backend.path}: not a face generator model (inputs {backend.input_names})")
        self.backend = backend
        self.latent_size = self._latent_size(backend)
        self.min_face = float(min_face)
        self.max_face = float(max_face)
        self.min_inside = float(min_inside)
        self.max_turn = float(max_turn)
        if not 0 < paste_rim[0] < paste_rim[1] <= crops.MASK_SCALE:
            raise ValueError(f"paste rim {paste_rim}: need 0 < inner < outer <= {crops.MASK_SCALE}")
        self.paste_rim = (float(paste_rim[0]), float(paste_rim[1]))
        self.max_batch = int(max_batch)
        if landmark_jitter is None:
            landmark_jitter = GENERIC_LANDMARK_JITTER if generic else DETECTED_LANDMARK_JITTER
        self.landmark_jitter = float(landmark_jitter)
        self.generic = bool(generic)
        if border not in crops.BORDERS:
            raise ValueError(f"unknown crop border {border!r}: choose {', '.join(crops.BORDERS)}")
        self.border = border
        if not (np.isfinite(context_blur) and context_blur >= 0):
            raise ValueError(f"context blur must be a sigma >= 0, got {context_blur}")
        self.context_blur = float(context_blur)
        if tone_source is not None and tone_source not in tone.SOURCES:
            raise ValueError(f"unknown tone source {tone_source!r}: choose {', '.join(tone.SOURCES)}")
        self.tone_source = tone_source

    @classmethod
    def from_path(cls, path: str | Path = DEFAULT_GENERATOR, backend: str = "auto", threads: int | None = None,
                  **kwargs: Any) -> FaceGenerator:
        return cls(open_backend(path, backend, threads=threads), **kwargs)

    @staticmethod
    def _latent_size(backend: Backend) -> int:
        session = getattr(backend, "session", None)
        if session is not None:
            dim = session.get_inputs()[1].shape[-1]
            if isinstance(dim, int):
                return dim
        return int(backend.metadata().get("latent", 32))

    def servable(self, image_shape: tuple[int, ...], face: Any) -> bool:
        """Whether the generator can serve this face (can_serve's rules with this generator's limits)."""
        return can_serve(image_shape, face, self.min_face, self.max_face, self.max_turn, self.min_inside)

    def replace(self, image: np.ndarray, faces: Sequence[Any], seeds: Sequence[int],
                mask_scale: float = classic.DEFAULT_MASK_SCALE, mask_shape: str = "ellipse",
                feather: float = classic.DEFAULT_FEATHER, cells: int = COVER_CELLS) -> list[bool]:
        """Generate a face for every servable face in place; returns which were served.

        All crops are cut before anything is pasted (overlapping faces see the original scene), and
        all go through the model in one call (chunks of `max_batch` only for crowds). Each served face
        covers at least the anonymizer's mask (box grown by `mask_scale`, `mask_shape`, `feather`): the
        generated face over a blur (`cells` samples across the face) of what its ellipse does not reach.
        """
        if len(seeds) != len(faces):
            raise ValueError(f"{len(faces)} faces but {len(seeds)} seeds")
        served = [False] * len(faces)
        jobs = [i for i, face in enumerate(faces) if self.servable(image.shape, face)]
        if not jobs:
            return served
        regions, conds, cut, skins, drawn = [], [], [], [], []
        for i in jobs:
            box = np.asarray(faces[i].box, dtype=np.float64)[:4]
            landmarks = np.asarray(faces[i].landmarks, dtype=np.float64)
            # The tone is read from the person's own landmarks, before generic ones replace them.
            skins.append(tone.target(image, box, self.tone_source, mask_scale, landmarks=landmarks)
                         if self.tone_source else None)
            if self.generic:
                landmarks = crops.generic_landmarks(landmarks)
            if self.landmark_jitter > 0:
                size = max(box[2] - box[0], box[3] - box[1])
                offsets = np.random.default_rng([abs(int(seeds[i])), 1]).standard_normal((5, 2))
                landmarks = landmarks + offsets * self.landmark_jitter * size
            region, crop, mask, heat = crops.crop_inputs(image, box, landmarks, border=self.border)
            regions.append(region)
            cut.append(crop)
            # Where the generated face's eyes, nose and mouth go: its colour is measured where the person's was read.
            drawn.append(region.to_crop(landmarks) if self.tone_source == "face" else None)
            conds.append(crops.network_input(soften_context(crop, mask, self.context_blur), mask, heat))
        latents = np.stack([latent_for_seed(seeds[i], self.latent_size) for i in jobs])
        condition = np.stack(conds)
        try:
            outs = [self._run(condition[s : s + self.max_batch], latents[s : s + self.max_batch])
                    for s in range(0, len(jobs), self.max_batch)]
        except Exception as exc:  # an inference failure must leave the faces to the fallback, never raw
            log.warning("generator inference failed (%s); %d face(s) need the fallback", exc, len(jobs))
            return served
        out = np.concatenate(outs)
        for k, i in enumerate(jobs):
            box = np.asarray(faces[i].box, dtype=np.float64)[:4]
            face = blend.match_crop(crops.network_output_to_bgr(out[k]), cut[k], regions[k].box_to_crop(box),
                                    skins[k], drawn[k])
            blend.composite(image, face, regions[k], box, mask_scale, mask_shape, feather, cells, self.paste_rim)
            served[i] = True
        return served

    def _run(self, condition: np.ndarray, latent: np.ndarray) -> np.ndarray:
        name_c, name_z = self.backend.input_names[:2]
        out = self.backend.run({name_c: condition, name_z: latent})[self.backend.output_names[0]]
        if out.shape != (condition.shape[0], 3) + condition.shape[2:] or not np.all(np.isfinite(out)):
            raise ModelError(f"{self.backend.path}: generator returned {out.shape} / non-finite values")
        return out


def can_serve(image_shape: tuple[int, ...], face: Any, min_face: float = MIN_FACE, max_face: float = MAX_FACE,
              max_turn: float = MAX_TURN, min_inside: float = MIN_INSIDE) -> bool:
    """Whether a made-up face (generated, or a k-Same reference) can serve this face: its size, plausible
    landmarks, a head turn within `max_turn`, and at least `min_inside` of its box inside the frame."""

    box = np.asarray(face.box, dtype=np.float64)[:4]
    if not np.all(np.isfinite(box)):
        return False
    side = max(box[2] - box[0], box[3] - box[1])
    if not min_face <= side <= max_face:
        return False
    if not crops.landmarks_plausible(box, getattr(face, "landmarks", None)):
        return False
    if abs(crops.head_turn(face.landmarks)) > max_turn:
        return False
    h, w = image_shape[:2]
    ix = max(0.0, min(box[2], w) - max(box[0], 0.0))
    iy = max(0.0, min(box[3], h) - max(box[1], 0.0))
    return ix * iy >= min_inside * (box[2] - box[0]) * (box[3] - box[1])


def soften_context(crop: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """The crop with its context (outside `mask`) blurred by a Gaussian of `sigma` px, normalised over the
    context alone so the masked face does not bleed into it; the crop itself when sigma is 0."""
    if sigma <= 0:
        return crop
    keep = (1.0 - mask).astype(np.float32)
    num = cv2.GaussianBlur(crop.astype(np.float32) * keep[:, :, None], (0, 0), sigma)
    den = cv2.GaussianBlur(keep, (0, 0), sigma)[:, :, None]
    out = np.where(den > 1e-3, num / np.maximum(den, 1e-3), crop.astype(np.float32))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
