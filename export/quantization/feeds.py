"""Calibration inputs, made exactly as the runtime makes them: detector blobs from photos, generator conditions
from the faces our detector finds, fed to a calibrator through a reader with a progress bar."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
from tqdm import tqdm

from edgeanon.anonymize import crops
from edgeanon.anonymize.gan import latent_for_seed
from edgeanon.detector import FaceDetector
from edgeanon.images import ImageError, list_images, load_image
from edgeanon.inference.ort import OrtBackend
from export.onnx_file import ExportError

MIN_CROP_FACE = 32  # smaller faces are served by the classic fallback, not the generator


class FeedReader:
    """ONNX Runtime CalibrationDataReader over a feed iterator, with a progress bar (and Model Optimizer's
    get_first(), a look at the first feed that does not consume it)."""

    def __init__(self, feeds: Iterable[dict[str, np.ndarray]], total: int | None, desc: str):
        self._iter = iter(feeds)
        self._peeked: list[dict[str, np.ndarray]] = []
        self._bar = tqdm(total=total, desc=desc, unit="input", leave=False)
        self.count = 0

    def get_first(self) -> dict[str, np.ndarray] | None:
        if not self._peeked:
            first = next(self._iter, None)
            if first is None:
                return None
            self._peeked.append(first)
        return self._peeked[0]

    def get_next(self) -> dict[str, np.ndarray] | None:
        feed = self._peeked.pop() if self._peeked else next(self._iter, None)
        if feed is None:
            self._bar.close()
            return None
        self.count += 1
        self._bar.update(1)
        return feed

    def rewind(self) -> None:  # part of the reader protocol; calibration reads once
        raise NotImplementedError


def calibration_images(folder: str | Path, limit: int | None) -> list[Path]:
    """Image files of a calibration folder (sorted, first `limit`); ExportError when missing or empty."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"{folder}: calibration folder not found (pass --data DIR holding wider-calib/)")
    images = list_images([folder])
    if not images:
        raise ExportError(f"{folder}: calibration folder holds no images")
    return images[:limit] if limit else images


def detector_feeds(fp32_path: str | Path, images: Sequence[Path]) -> Iterator[dict[str, np.ndarray]]:
    """Detector inputs exactly as the runtime builds them (edgeanon.detector.FaceDetector.prepare)."""
    detector = FaceDetector(OrtBackend(fp32_path, threads=1))
    for path in images:
        prepared = detector.prepare(_read(path))
        yield {detector.input_name: prepared.blob.copy()}  # prepare() reuses its buffer


def _read(path: Path) -> np.ndarray:
    try:
        return load_image(path)
    except ImageError as exc:
        raise ExportError(f"calibration image {exc}") from exc


def face_conditions(detector_path: str | Path, images: Sequence[Path], limit: int | None = None,
                    min_face: int = MIN_CROP_FACE) -> list[np.ndarray]:
    """Generator conditions (9, 128, 128) for the faces our detector finds, cut with the runtime's crop geometry."""
    detector = FaceDetector.from_path(detector_path, backend="ort")
    out: list[np.ndarray] = []
    for path in tqdm(images, desc="cutting face crops", unit="img", leave=False):
        image = _read(path)
        for face in detector.detect(image):
            if max(face.width, face.height) < min_face or not crops.landmarks_plausible(face.box, face.landmarks):
                continue
            _, crop, mask, heat = crops.crop_inputs(image, face.box, face.landmarks)
            out.append(crops.network_input(crop, mask, heat))
            if limit and len(out) >= limit:
                return out
    return out


def generator_feeds(fp32_path: str | Path, conditions: Sequence[np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
    """One feed per face crop, each with its own seeded latent (input names and latent size read from the model)."""
    model = onnx.load(str(fp32_path), load_external_data=False)
    cond_name, latent_name = (i.name for i in model.graph.input[:2])
    latent_size = model.graph.input[1].type.tensor_type.shape.dim[1].dim_value
    for seed, condition in enumerate(conditions):
        yield {cond_name: condition[None], latent_name: latent_for_seed(seed, latent_size)[None]}
