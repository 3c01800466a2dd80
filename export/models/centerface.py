"""CenterFace in PyTorch: MobileNetV2 backbone, FPN-style upsampling neck, four CenterNet heads."""

from __future__ import annotations

import torch
from torch import nn

# MobileNetV2 inverted-residual settings: (expansion t, out channels c, repeats n, first stride s).
MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
NECK_CHANNELS = 24


def conv_relu(cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> nn.Sequential:
    # The published weights have batch norm folded into the convolutions, so convs carry a bias.
    conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=True)
    return nn.Sequential(conv, nn.ReLU(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_relu(cin, hidden))
        layers += [conv_relu(hidden, hidden, 3, stride, groups=hidden), nn.Conv2d(hidden, cout, 1, bias=True)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2Features(nn.Module):
    """Backbone returning the stride-4, 8, 16 and 32 feature maps."""

    taps = (4, 7, 14, 18)  # layer counts after which strides 4, 8, 16 (96 ch) and 32 (320 ch) are reached

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = [conv_relu(3, 32, 3, 2)]
        cin = 32
        for t, c, n, s in MOBILENET_V2:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i + 1 in self.taps:
                outs.append(x)
        return outs


class UpBlock(nn.Module):
    """2x transposed-conv upsampling with batch norm, then add a 1x1 lateral from the backbone."""

    def __init__(self, lateral_in: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(NECK_CHANNELS, NECK_CHANNELS, 2, 2, bias=False)
        self.bn = nn.BatchNorm2d(NECK_CHANNELS, eps=1e-3)
        self.lateral = conv_relu(lateral_in, NECK_CHANNELS)

    def forward(self, top: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.up(top))) + self.lateral(lateral)


class CenterFace(nn.Module):
    """Input: RGB in [0, 255], NCHW, H and W multiples of 32. Outputs at stride 4:
    heatmap (sigmoid, 1 ch), scale (log size / 4, 2 ch: h, w), offset (2 ch: y, x), landmarks (10 ch: y, x pairs)."""

    output_names = ("heatmap", "scale", "offset", "landmarks")

    def __init__(self):
        super().__init__()
        self.backbone = MobileNetV2Features()
        # Registration order follows the published graph, which the weight importer relies on.
        self.top = conv_relu(320, NECK_CHANNELS)
        self.up16 = UpBlock(96)
        self.up8 = UpBlock(32)
        self.up4 = UpBlock(24)
        self.head = conv_relu(NECK_CHANNELS, NECK_CHANNELS, 3)
        self.heatmap = nn.Conv2d(NECK_CHANNELS, 1, 1)
        self.scale = nn.Conv2d(NECK_CHANNELS, 2, 1)
        self.offset = nn.Conv2d(NECK_CHANNELS, 2, 1)
        self.landmarks = nn.Conv2d(NECK_CHANNELS, 10, 1)

    def trunk(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Backbone features (strides 4, 8, 16, 32) and the shared input of the four heads."""
        features = self.backbone(x)
        c4, c8, c16, c32 = features
        return features, self.head(self.up4(self.up8(self.up16(self.top(c32), c16), c8), c4))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        _, y = self.trunk(x)
        return torch.sigmoid(self.heatmap(y)), self.scale(y), self.offset(y), self.landmarks(y)

    @torch.no_grad()
    def fold_batchnorm(self) -> CenterFace:
        """Fold each neck batch norm into its transposed conv (for export); returns self."""
        for block in (self.up16, self.up8, self.up4):
            if isinstance(block.bn, nn.Identity):
                continue
            bn = block.bn
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            folded = nn.ConvTranspose2d(NECK_CHANNELS, NECK_CHANNELS, 2, 2, bias=True)
            folded.weight.copy_(block.up.weight * scale.view(1, -1, 1, 1))
            folded.bias.copy_(bn.bias - bn.running_mean * scale)
            block.up, block.bn = folded, nn.Identity()
        return self
