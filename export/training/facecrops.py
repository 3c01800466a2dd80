"""Generator training data: cached detector landmarks and the compact crop file (held-back files: export.splits)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edgeanon.anonymize import crops
from export.datasets import UTK_PAD, WIDER, Face, decode, utk_detections, wider_detections
from export.splits import generator_holdout

log = logging.getLogger(__name__)

MIN_WIDER_FACE = 48  # smaller faces upscaled to 128 px teach the generator blur

def _background_patch(rng: np.random.Generator, backgrounds: list[np.ndarray], side: int) -> np.ndarray:
    bg = backgrounds[rng.integers(len(backgrounds))]
    h, w = bg.shape[:2]
    s = int(min(h, w, max(side, 64)))
    y, x = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
    return cv2.resize(bg[y : y + s, x : x + s], (side, side), interpolation=cv2.INTER_AREA)


def build_training_set(data_dir: Path, detector_path: Path, out_file: Path, quality: int = 85,
                       limit: int | None = None, utk: bool = True) -> Path:
    """Write every usable face as a 128x128 crop (JPEG bytes) with its box and landmarks in crop pixels.

    UTKFace crops are tight (no scene around the face), so each is laid on a random scene patch from a
    wider-train image; the generator regenerates the face ellipse anyway and learns the seam against a scene.
    """
    rng = np.random.default_rng(0)
    writer = CropWriter(quality)
    wider = wider_detections(data_dir, detector_path)
    backgrounds = []
    for name, faces in tqdm(sorted(wider.items())[:limit], desc="wider crops", unit="img"):
        image = cv2.imread(str(data_dir / WIDER / name))
        if not generator_holdout(name) and len(backgrounds) < 120:
            backgrounds.append(image)
        for f in faces:
            if f.score >= 0.5 and max(f.box[2] - f.box[0], f.box[3] - f.box[1]) >= MIN_WIDER_FACE \
                    and crops.landmarks_plausible(f.box, f.landmarks):
                writer.add(name, image, f)
    zf, found = utk_detections(data_dir, detector_path) if utk else (None, {})
    for name, faces in tqdm(sorted(found.items())[:limit], desc="utk crops", unit="img"):
        if not faces:
            continue
        f = max(faces, key=lambda d: d.score)
        if f.score < 0.5 or not crops.landmarks_plausible(f.box, f.landmarks):
            continue
        face = decode(zf.read(name))
        region = crops.crop_region(f.box)
        side = int(np.ceil(region.side)) + 2 * UTK_PAD + 4
        canvas = _background_patch(rng, backgrounds, side + 2 * UTK_PAD)
        h, w = face.shape[:2]
        # The tight UTK square blends into the scene over a soft rim.
        alpha = np.clip(np.minimum.outer(np.minimum(np.arange(h), np.arange(h)[::-1]),
                                         np.minimum(np.arange(w), np.arange(w)[::-1])) / 8.0, 0, 1)[..., None]
        c = canvas.shape[0] // 2
        y0, x0 = c - h // 2, c - w // 2
        win = canvas[y0 : y0 + h, x0 : x0 + w].astype(np.float32)
        canvas[y0 : y0 + h, x0 : x0 + w] = (face * alpha + win * (1 - alpha)).astype(np.uint8)
        shift = np.array([x0 - UTK_PAD, y0 - UTK_PAD], np.float32)
        writer.add(name, canvas, Face(f.box + np.tile(shift, 2), f.score, f.landmarks + shift))
    return writer.save(out_file)


class CropWriter:
    """Collects faces as 128x128 crops (JPEG bytes) with box and landmarks in crop pixels; saves the crop file."""

    def __init__(self, quality: int = 85):
        self.quality = quality
        self.blobs: list[bytes] = []
        self.boxes: list[np.ndarray] = []
        self.landmarks: list[np.ndarray] = []
        self.held: list[bool] = []
        self.names: list[str] = []

    def add(self, name: str, image: np.ndarray, face: Face) -> None:
        region, crop, _, _ = crops.crop_inputs(image, face.box, face.landmarks)
        ok, jpg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        self.blobs.append(jpg.tobytes())
        self.boxes.append(region.box_to_crop(face.box))
        self.landmarks.append(region.to_crop(face.landmarks))
        self.held.append(generator_holdout(name))
        self.names.append(name)

    def save(self, out_file: Path) -> Path:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        lengths = np.array([len(b) for b in self.blobs], np.int64)
        np.savez(out_file, jpeg=np.frombuffer(b"".join(self.blobs), np.uint8), lengths=lengths,
                 boxes=np.array(self.boxes, np.float32), landmarks=np.array(self.landmarks, np.float32),
                 held_out=np.array(self.held, bool), names=np.array(self.names))
        log.info("wrote %d faces (%d held back) to %s (%.1f MiB)", len(self.blobs), int(np.sum(self.held)),
                 out_file, out_file.stat().st_size / 2**20)
        return out_file


@dataclass
class CropSet:
    """Decoded training crops: images (N, 128, 128, 3) BGR uint8, boxes/landmarks in crop pixels."""

    images: np.ndarray
    boxes: np.ndarray
    landmarks: np.ndarray
    held_out: np.ndarray
    names: np.ndarray

    def conditions(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mask (n, 128, 128), heatmaps (n, 5, 128, 128)) for the given samples, via edgeanon's crop code.

        The heatmaps mark the generic face fitted to the landmarks, as at run time (FaceGenerator).
        """
        size = self.images.shape[1]
        masks = np.stack([crops.ellipse_mask(self.boxes[i], size, crops.MASK_SCALE) for i in idx])
        heats = np.stack([crops.landmark_heatmaps(crops.generic_landmarks(self.landmarks[i]), size) for i in idx])
        return masks, heats


def shrink_training_set(src: Path, dst: Path, max_bytes: int, preview: int = 8) -> tuple[int, int]:
    """Copy a crop file, keeping `preview` held-back crops and as many training crops as fit in `max_bytes`
    (a stable subset: ordered by a hash of name and index); the JPEG bytes are copied, never re-encoded.
    Returns (training crops, held-back crops) kept."""
    with np.load(src) as z:
        parts = {k: z[k] for k in z.files}
    lengths = parts["lengths"]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    names = parts["names"]
    order = sorted(range(len(lengths)), key=lambda i: hashlib.sha1(f"{names[i]}:{i}".encode()).digest())
    # Bytes one crop costs in the file: its JPEG, box, landmarks, length, flag and name.
    per_crop = lengths + 4 * 4 + 10 * 4 + 8 + 1 + names.dtype.itemsize
    budget = max_bytes - 4096  # the zip's headers
    held = [i for i in order if parts["held_out"][i]][:preview]
    budget -= int(per_crop[held].sum())
    train = []
    for i in order:
        if not parts["held_out"][i] and budget >= per_crop[i]:
            train.append(i)
            budget -= int(per_crop[i])
    keep = np.array(sorted(train + held), np.int64)
    dst.parent.mkdir(parents=True, exist_ok=True)
    np.savez(dst, jpeg=np.concatenate([parts["jpeg"][offsets[i] : offsets[i + 1]] for i in keep]),
             lengths=lengths[keep], boxes=parts["boxes"][keep], landmarks=parts["landmarks"][keep],
             held_out=parts["held_out"][keep], names=names[keep])
    log.info("wrote %d training and %d held-back crops of %d to %s (%.1f MiB)", len(train), len(held),
             len(lengths), dst, dst.stat().st_size / 2**20)
    return len(train), len(held)


def load_training_set(path: Path) -> CropSet:
    with np.load(path) as z:
        jpeg, lengths = z["jpeg"], z["lengths"]
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        images = np.stack([decode(jpeg[offsets[i] : offsets[i + 1]].tobytes()) for i in range(len(lengths))])
        return CropSet(images, z["boxes"], z["landmarks"], z["held_out"], z["names"])
