"""The face generator (a small conditional U-Net) and its patch discriminator, plus the ONNX export."""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
import torch.nn.functional as F
from torch import nn

IN_CHANNELS = 9  # masked RGB, mask, 5 landmark heatmaps (edgeanon.anonymize.crops.network_input)
LATENT = 32
INPUT_NAMES = ["condition", "latent"]
OUTPUT_NAMES = ["face"]


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


class ConvAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__(nn.Conv2d(cin, cout, 3, stride, 1), _act())


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(ch, ch, 3, 1, 1)
        self.act = _act()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class Up(nn.Module):
    """Cheap decoder step: conv at the low resolution, nearest upsample, add the skip, conv."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.reduce = ConvAct(cin, cout)
        self.fuse = ConvAct(cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(self.reduce(x), scale_factor=2.0, mode="nearest")
        return self.fuse(x + skip)


class Generator(nn.Module):
    """(condition (B, 9, 128, 128), latent (B, 32)) -> RGB face (B, 3, 128, 128), about [-1, 1] (clip it).

    Downsamples at once (the expensive part is resolution, not parameters), keeps the wide
    layers at 8x8, and composites: outside the mask the output is the input crop.
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 160), blocks: int = 3, latent: int = LATENT):
        super().__init__()
        w0, w1, w2, w3 = widths
        self.latent = latent
        self.stem = nn.Sequential(ConvAct(IN_CHANNELS, w0, 2), ConvAct(w0, w0))  # 64
        self.down1 = nn.Sequential(ConvAct(w0, w1, 2), ConvAct(w1, w1))  # 32
        self.down2 = nn.Sequential(ConvAct(w1, w2, 2), ConvAct(w2, w2))  # 16
        self.down3 = ConvAct(w2, w3, 2)  # 8
        self.zmap = nn.Linear(latent, 16 * 8 * 8)
        self.merge = ConvAct(w3 + 16, w3)
        self.body = nn.Sequential(*[ResBlock(w3) for _ in range(blocks)])
        self.up2 = Up(w3, w2)  # 16
        self.up1 = Up(w2, w1)  # 32
        self.up0 = Up(w1, w0)  # 64
        # 64 -> 128 by pixel shuffle: full-resolution detail without full-resolution convolutions.
        self.head = nn.Sequential(nn.Conv2d(w0, 12, 3, 1, 1), nn.PixelShuffle(2))

    def forward(self, condition: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        s64 = self.stem(condition)
        s32 = self.down1(s64)
        s16 = self.down2(s32)
        x = self.down3(s16)
        z = self.zmap(latent).view(-1, 16, 8, 8)
        x = self.body(self.merge(torch.cat([x, z], 1)))
        x = self.up0(self.up1(self.up2(x, s16), s32), s64)
        x = self.head(x)  # linear: a saturated tanh cannot recover once a GAN step overshoots
        mask = condition[:, 3:4]
        return condition[:, :3] * (1.0 - mask) + x * mask


class Discriminator(nn.Module):
    """Patch discriminator on (image, mask, heatmaps); returns logits and its features (feature matching)."""

    def __init__(self, width: int = 64):
        super().__init__()
        sn = nn.utils.spectral_norm
        w = width
        self.layers = nn.ModuleList([
            nn.Sequential(sn(nn.Conv2d(IN_CHANNELS, w, 4, 2, 1)), _act()),  # 64
            nn.Sequential(sn(nn.Conv2d(w, w * 2, 4, 2, 1)), _act()),  # 32
            nn.Sequential(sn(nn.Conv2d(w * 2, w * 4, 4, 2, 1)), _act()),  # 16
            nn.Sequential(sn(nn.Conv2d(w * 4, w * 4, 3, 1, 1)), _act()),  # 16
        ])
        self.out = sn(nn.Conv2d(w * 4, 1, 3, 1, 1))

    def forward(self, image: torch.Tensor, condition: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = torch.cat([image, condition[:, 3:]], 1)
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return self.out(x), feats


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def load_generator(state_dict_path: str | Path) -> Generator:
    """A Generator in eval mode from a state dict file (fp16 or fp32; a training checkpoint works too)."""
    state = torch.load(str(state_dict_path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "generator_ema" in state:
        state = state["generator_ema"]
    model = Generator()
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.eval()


def export_generator_onnx(state_dict_path: str | Path, out_path: str | Path) -> Path:
    """Write the generator as ONNX (opset 17, dynamic batch): inputs condition, latent; output face."""
    model = load_generator(state_dict_path)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    cond = torch.zeros(2, IN_CHANNELS, 128, 128)
    z = torch.zeros(2, model.latent)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # dynamo=False is the agreed exporter
        torch.onnx.export(
            model, (cond, z), str(out_path), opset_version=17, dynamo=False,
            input_names=INPUT_NAMES, output_names=OUTPUT_NAMES,
            dynamic_axes={"condition": {0: "batch"}, "latent": {0: "batch"}, "face": {0: "batch"}},
        )
    proto = onnx.load(str(out_path))
    for key, value in {"edgeanon_kind": "generator", "crop_size": "128", "latent": str(model.latent),
                       "license_note": "research-only: trained on WIDER FACE and UTKFace"}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(out_path))
    return out_path
