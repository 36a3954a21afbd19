"""ResNet backbones (spec §2.2): the Detectron-style 'mrcnn' ResNet-50 of the official checkpoints and a
configurable plain ResNet ('resnet', ours) for small models. Output strides are 4/8/16/32 for both."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LAYER_NAMES = ("layer1", "layer2", "layer3", "layer4")
COLOUR_CHANNELS = 22


class ColourFeatures(nn.Module):
    """Fixed (parameter-free) colour statistics of the input at the resolution of layer3 (small models only).

    A network trained from scratch on a CPU learns features that let the few-shot learners tell the target from
    the background across frames more slowly than plain colour does, so small models may append these channels
    to layer3: RGB, its squares and cross products, 4 soft bins per channel, and a constant (a bias for the
    bias-free learners). The input is the preprocessed image (BGR minus ``bgr_mean``)."""

    def __init__(self, bgr_mean: tuple[float, float, float]):
        super().__init__()
        self.register_buffer("_bgr_mean", torch.tensor(bgr_mean).view(1, 3, 1, 1), persistent=False)
        # bin centres 0.125..0.875 for R, then G, then B (4-d so that channels_last conversion applies)
        self.register_buffer("_centres", ((torch.arange(4) + 0.5) / 4).repeat(3).view(1, 12, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        rgb = ((x + self._bgr_mean.to(x.dtype)).flip(1) / 255.0).clamp(0, 1)
        r, g, b = rgb[:, :1], rgb[:, 1:2], rgb[:, 2:]
        bins = torch.exp(-(rgb.repeat_interleave(4, dim=1) - self._centres.to(x.dtype)) ** 2 / 0.02)
        feats = torch.cat([rgb, rgb * rgb, r * g, g * b, r * b, bins, torch.ones_like(r)], dim=1)
        return F.adaptive_avg_pool2d(feats, size)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, stride_in_1x1: bool, downsample: bool):
        super().__init__()
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(cin, planes, 1, s1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, s3, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))
                           if downsample else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        short = x if self.downsample is None else self.downsample(x)
        return F.relu(out + short)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, stride_in_1x1: bool, downsample: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
                           if downsample else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = x if self.downsample is None else self.downsample(x)
        return F.relu(out + short)


class ResNet(nn.Module):
    """Stem (7x7/2 conv, BN, ReLU, 3x3/2 max-pool) and four stages; ``forward`` returns layer1..layer4.

    mrcnn=True: bottleneck stride in the 1x1 conv and a projection shortcut on every stage's first block
    (the official checkpoints). Otherwise torchvision rules (stride in the 3x3 conv, projection only when needed).
    """

    def __init__(self, block: str = "bottleneck", layers: tuple[int, ...] = (3, 4, 6, 3), width: int = 64,
                 mrcnn: bool = True, colour_mean: tuple[float, float, float] | None = None):
        super().__init__()
        # colour_mean given: layer3 carries COLOUR_CHANNELS more channels (ColourFeatures); layer4 is unchanged
        self.colour = ColourFeatures(colour_mean) if colour_mean is not None else None
        cls = Bottleneck if block == "bottleneck" else BasicBlock
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        cin = width
        self.channels: dict[str, int] = {}
        for i, (name, n) in enumerate(zip(LAYER_NAMES, layers)):
            planes = width * 2 ** i
            stride = 1 if i == 0 else 2
            blocks = []
            for b in range(n):
                s = stride if b == 0 else 1
                need = b == 0 and (mrcnn or s != 1 or cin != planes * cls.expansion)
                blocks.append(cls(cin, planes, s, mrcnn, need))
                cin = planes * cls.expansion
            setattr(self, name, nn.Sequential(*blocks))
            self.channels[name] = cin
        if self.colour is not None:
            self.channels["layer3"] += COLOUR_CHANNELS

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        image = x
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        out = {}
        for name in LAYER_NAMES:
            x = getattr(self, name)(x)
            out[name] = x
        if self.colour is not None:
            l3 = out["layer3"]
            out["layer3"] = torch.cat([l3, self.colour(image, tuple(l3.shape[-2:])).to(l3.dtype)], dim=1)
        return out
