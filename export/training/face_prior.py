"""Frozen CenterFace as a training signal: a generated face must look like a face to a face detector."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from export.conversion.import_weights import load_centerface

STRIDE = 4  # CenterFace's heatmap resolution


class FacePrior(nn.Module):
    """Two losses on generator output (RGB in [-1, 1]) against the real crop, both inside the face mask:

    faceness: how much less confident the detector's heatmap peak is on the fake than on the real face
    (a hinge: a fake at least as face-like as the original costs nothing);
    features: L1 between the detector's stride-4 and stride-8 features of fake and real, each channel
    scaled by the real features' spread, so eyes, nose and mouth stay where a detector expects them.
    """

    def __init__(self, weights: str | Path):
        super().__init__()
        self.net = load_centerface(weights).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> FacePrior:
        super().train(mode)
        self.net.eval()  # frozen batch-norm statistics, always
        return self

    def forward(self, fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = fake.shape[0]
        x = torch.cat([fake, real]).float().add(1.0).mul(127.5)  # CenterFace takes RGB in [0, 255]
        (c4, c8, _, _), y = self.net.trunk(x)
        heat = torch.sigmoid(self.net.heatmap(y))
        inside = (F.avg_pool2d(mask.float(), STRIDE) > 0.5).float()
        peak = (heat * inside.repeat(2, 1, 1, 1)).flatten(1).amax(1).clamp_min(1e-4)
        faceness = F.relu(torch.log(peak[n:].detach()) - torch.log(peak[:n])).mean()
        features = fake.new_zeros((), dtype=torch.float32)
        for feat in (c4, c8):
            f, r = feat[:n], feat[n:].detach()
            m = F.interpolate(mask.float(), size=f.shape[-2:], mode="area")
            scale = r.std((0, 2, 3), keepdim=True) + 1e-3
            features = features + (torch.abs(f - r) / scale * m).sum() / (m.sum() * f.shape[1] + 1.0)
        return faceness, features / 2.0
