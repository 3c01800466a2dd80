"""The generator's training losses on a real face crop: detail energy and pooled reconstruction."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from edgeanon.anonymize import crops
from edgeanon.detector import FaceDetector
from export.train import detail_loss, laplacian_energy, reconstruction_loss


@pytest.fixture(scope="module")
def crop(face_image, detector_model) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """(real face crop in [-1, 1] (1, 3, 128, 128), its generator mask (1, 1, 128, 128), the crop as BGR)."""
    face = max(FaceDetector.from_path(detector_model).detect(face_image), key=lambda d: d.box[2] - d.box[0])
    _, bgr, mask, _ = crops.crop_inputs(face_image, face.box, face.landmarks)
    return _as_tensor(bgr), torch.from_numpy(mask)[None, None], bgr


def _as_tensor(bgr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(bgr[:, :, ::-1].astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]


def test_blur_has_less_laplacian_energy_and_a_detail_loss(crop):
    real, mask, bgr = crop
    blurred = _as_tensor(cv2.GaussianBlur(bgr, (0, 0), 2.0))
    assert laplacian_energy(blurred, mask) < 0.3 * laplacian_energy(real, mask)
    assert detail_loss(real, real, mask).item() == pytest.approx(0.0, abs=1e-6)
    assert detail_loss(blurred, real, mask).item() > 0.5


def test_detail_loss_ignores_what_lies_outside_the_mask(crop):
    real, mask, _ = crop
    noisy_outside = real + torch.randn_like(real) * 0.3 * (1.0 - mask)
    assert detail_loss(noisy_outside, real, mask).item() < 0.02


def test_pooled_reconstruction_leaves_fine_detail_free_but_keeps_colour(crop):
    real, mask, _ = crop
    checker = torch.from_numpy(np.indices((128, 128)).sum(0) % 2 * 2.0 - 1.0).float() * 0.2
    textured = real + checker  # pixel-level change, the same 4x4 means
    tinted = real + torch.tensor([0.2, 0.0, 0.0]).view(1, 3, 1, 1)  # a colour shift
    assert reconstruction_loss(textured, real, mask, pool=1).item() > 0.15
    assert reconstruction_loss(textured, real, mask, pool=4).item() < 0.01
    assert reconstruction_loss(tinted, real, mask, pool=4).item() > 0.05
