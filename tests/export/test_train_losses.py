"""The generator's training losses on a real face crop: detail energy, pooled reconstruction, face prior."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from edgeanon.anonymize import crops
from edgeanon.detector import FaceDetector
from export.training.face_prior import FacePrior
from export.training.train import blank_borders, detail_loss, diversity_loss, laplacian_energy, reconstruction_loss


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


def test_diversity_loss_asks_two_latents_for_two_faces_inside_the_mask_only(crop):
    real, mask, bgr = crop
    z_a, z_b = torch.zeros(1, 32), torch.ones(1, 32)
    other = _as_tensor(cv2.flip(bgr, 1))  # a different face-like image in the same place
    assert diversity_loss(real, real, z_a, z_b, mask).item() == pytest.approx(1.0)  # the latent ignored
    assert diversity_loss(real, other, z_a, z_b, mask).item() == pytest.approx(0.0)  # enough apart: no push
    changed_outside = real + (1.0 - mask) * 0.5
    assert diversity_loss(real, changed_outside, z_a, z_b, mask).item() == pytest.approx(1.0)
    # The same pixel change for latents four times further apart is too little.
    assert diversity_loss(real, other, z_a, z_b * 4.0, mask).item() > diversity_loss(real, other, z_a, z_b, mask).item()


@pytest.fixture(scope="module")
def prior(centerface_weights) -> FacePrior:
    return FacePrior(centerface_weights)


def test_face_prior_is_zero_for_the_real_face_and_punishes_a_faceless_fill(crop, prior):
    real, mask, bgr = crop
    faceness, features = prior(real, real, mask)
    assert faceness.item() == pytest.approx(0.0, abs=1e-6) and features.item() == pytest.approx(0.0, abs=1e-6)
    mean = (real * mask).sum((2, 3), keepdim=True) / mask.sum()
    filled = real * (1.0 - mask) + mean * mask  # the face replaced by its average skin colour
    faceness, features = prior(filled, real, mask)
    assert faceness.item() > 1.0  # the detector's peak drops by more than e-fold
    assert features.item() > 0.3
    blurred = _as_tensor(cv2.GaussianBlur(bgr, (0, 0), 3.0))
    assert 0.0 < prior(blurred, real, mask)[1].item() < features.item()  # blur keeps more than a fill


def test_face_prior_trains_only_the_generator(crop, prior):
    real, mask, _ = crop
    fake = (real * 0.5).requires_grad_(True)
    faceness, features = prior(fake, real, mask)
    (faceness + features).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in prior.parameters())


def test_blank_borders_cuts_context_like_a_frame_edge_but_keeps_the_face(crop):
    real, mask, _ = crop
    x = torch.cat([(real + 1.0) / 2.0, mask, torch.zeros(1, 5, 128, 128)], 1).repeat(64, 1, 1, 1)
    out = blank_borders(x, torch.Generator().manual_seed(0), prob=0.5)
    inside = (mask > 0.5).expand(64, 3, 128, 128)
    assert torch.equal(out[:, :3][inside], x[:, :3][inside])  # the face to generate is untouched
    assert torch.equal(out[:, 3:], x[:, 3:])  # mask and landmarks too
    changed = (out != x).flatten(1).any(1)
    assert 16 <= int(changed.sum()) <= 48  # about half the samples lose some context
    outside = (mask[0] < 0.5).expand(3, 128, 128)
    assert any(bool((s[outside] == 0).all()) for s in out[:, :3])  # some lose all of it
    assert torch.equal(blank_borders(x, torch.Generator().manual_seed(0), prob=0.0), x)
