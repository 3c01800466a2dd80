"""The generator network: size budget, ONNX export parity with PyTorch, determinism per seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeanon.anonymize.gan import latent_for_seed
from edgeanon.inference.ort import OrtBackend
from export.models.generator import (
    IN_CHANNELS,
    LATENT,
    Discriminator,
    Generator,
    count_parameters,
    export_generator_onnx,
)

MAX_PARAMS = 3_200_000


def test_generator_fits_the_parameter_budget():
    assert count_parameters(Generator()) <= MAX_PARAMS


def test_discriminator_scores_patches():
    d = Discriminator()
    logits, feats = d(torch.zeros(2, 3, 128, 128), torch.zeros(2, IN_CHANNELS, 128, 128))
    assert logits.shape == (2, 1, 16, 16) and len(feats) == 4


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A randomly initialised generator (residual branches switched on), exported to ONNX."""
    torch.manual_seed(0)
    g = Generator().eval()
    with torch.no_grad():
        for m in g.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.normal_(0, 0.05)
    folder = tmp_path_factory.mktemp("gen")
    torch.save({k: v.half() for k, v in g.state_dict().items()}, folder / "g.pt")
    onnx_path = export_generator_onnx(folder / "g.pt", folder / "g.onnx")
    g.load_state_dict({k: v.half().float() for k, v in g.state_dict().items()})  # same fp16-rounded weights
    return g, onnx_path


def _inputs(batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    cond = rng.uniform(-1, 1, (batch, IN_CHANNELS, 128, 128)).astype(np.float32)
    cond[:, 3] = 0.0
    cond[:, 3, 32:96, 40:88] = 1.0  # the mask
    return cond, rng.standard_normal((batch, LATENT)).astype(np.float32)


def test_onnx_matches_pytorch_at_several_batch_sizes(exported):
    g, onnx_path = exported
    backend = OrtBackend(onnx_path, providers=["CPUExecutionProvider"])
    assert backend.input_names == ["condition", "latent"]
    assert backend.metadata()["edgeanon_kind"] == "generator"
    for batch in (1, 3):
        cond, z = _inputs(batch)
        ref = g(torch.from_numpy(cond), torch.from_numpy(z)).detach().numpy()
        out = backend.run({"condition": cond, "latent": z})["face"]
        assert out.shape == (batch, 3, 128, 128)
        np.testing.assert_allclose(out, ref, atol=2e-3)


def test_outside_the_mask_the_output_is_the_input(exported):
    g, _ = exported
    cond, z = _inputs(2)
    out = g(torch.from_numpy(cond), torch.from_numpy(z)).detach().numpy()
    outside = cond[:, 3] == 0
    np.testing.assert_allclose(out[:, 0][outside], cond[:, 0][outside], atol=1e-6)


def test_same_seed_same_face_other_seed_other_face(exported):
    _, onnx_path = exported
    backend = OrtBackend(onnx_path, providers=["CPUExecutionProvider"])
    cond, _ = _inputs(1)
    z1 = latent_for_seed(7, LATENT)[None]
    assert np.array_equal(z1, latent_for_seed(7, LATENT)[None])
    a = backend.run({"condition": cond, "latent": z1})["face"]
    b = backend.run({"condition": cond, "latent": latent_for_seed(7, LATENT)[None]})["face"]
    c = backend.run({"condition": cond, "latent": latent_for_seed(8, LATENT)[None]})["face"]
    assert np.array_equal(a, b)
    inside = cond[0, 3] > 0
    assert np.abs(a - c)[0][:, inside].mean() > 1e-3
