"""Segmentation decoder (RTSDecoder, spec §2.6): layer4 -> layer1 refinement with target-score embedding
(TSE), residual refinement blocks (RRB) and channel attention (CAB), then the bicubic upsampler."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rts_ros.model.resize import bicubic_resize

DECODER_LAYERS = ("layer4", "layer3", "layer2", "layer1")


def _conv(cin: int, cout: int, k: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, 1, k // 2, bias=bias)


class TSE(nn.Module):
    def __init__(self, fc: int, ic: int, oc: int):
        super().__init__()
        nc = ic + oc
        self.reduce = nn.Sequential(_conv(fc, oc, 1), nn.ReLU(), _conv(oc, oc, 1))
        self.transform = nn.Sequential(_conv(nc, nc, 3), nn.ReLU(), _conv(nc, nc, 3), nn.ReLU(),
                                       _conv(nc, oc, 3), nn.ReLU())

    def forward(self, ft: torch.Tensor, score: torch.Tensor, prev: torch.Tensor | None):
        h = self.reduce(ft)
        hpool = F.adaptive_avg_pool2d(h, 1) if prev is None else prev
        return self.transform(torch.cat([h, score], dim=1)), hpool


class RRB(nn.Module):
    def __init__(self, oc: int):
        super().__init__()
        self.conv1x1 = _conv(oc, oc, 1)
        self.bblock = nn.Sequential(_conv(oc, oc, 3), nn.BatchNorm2d(oc), nn.ReLU(), _conv(oc, oc, 3, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1x1(x)
        return F.relu(h + self.bblock(h))


class CAB(nn.Module):
    def __init__(self, oc: int, deepest: bool):
        super().__init__()
        self.convreluconv = nn.Sequential(_conv(2 * oc, oc, 1), nn.ReLU(), _conv(oc, oc, 1))
        self.deepest = deepest

    def forward(self, deep: torch.Tensor, shallow: torch.Tensor) -> torch.Tensor:
        shallow_pool = F.adaptive_avg_pool2d(shallow, 1)
        deep_pool = deep if self.deepest else F.adaptive_avg_pool2d(deep, 1)
        att = torch.sigmoid(self.convreluconv(torch.cat([shallow_pool, deep_pool], dim=1)))
        up = F.interpolate(deep, size=shallow.shape[-2:], mode="bilinear", align_corners=False)
        return shallow * att + up


class Upsampler(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.conv1 = _conv(cin, cin // 2, 3)
        self.conv2 = _conv(cin // 2, 1, 3)

    def forward(self, x: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
        x = bicubic_resize(x, (2 * x.shape[-2], 2 * x.shape[-1]))
        x = F.relu(self.conv1(x))
        x = bicubic_resize(x, tuple(out_size))
        return self.conv2(x)


class Decoder(nn.Module):
    """``in_channels``: score channels (16 for RTS, 32 for STA); ``layer_channels``: backbone channels per
    layer; ``mdim``: base width (layer4 4*mdim, layer3/2 2*mdim, layer1 mdim)."""

    def __init__(self, in_channels: int, layer_channels: dict[str, int], mdim: int = 64):
        super().__init__()
        widths = {"layer4": 4 * mdim, "layer3": 2 * mdim, "layer2": 2 * mdim, "layer1": mdim}
        self.TSE = nn.ModuleDict({L: TSE(layer_channels[L], in_channels, widths[L]) for L in DECODER_LAYERS})
        self.RRB1 = nn.ModuleDict({L: RRB(widths[L]) for L in DECODER_LAYERS})
        self.CAB = nn.ModuleDict({L: CAB(widths[L], L == "layer4") for L in DECODER_LAYERS})
        self.RRB2 = nn.ModuleDict({L: RRB(widths[L]) for L in DECODER_LAYERS})
        prev = dict(zip(DECODER_LAYERS[1:], DECODER_LAYERS[:-1]))
        self.proj = nn.ModuleDict({L: nn.Sequential(_conv(widths[prev[L]], widths[L], 1), nn.ReLU())
                                   for L in DECODER_LAYERS[1:]})
        self.project = Upsampler(mdim)

    def forward(self, scores: torch.Tensor, feats: dict[str, torch.Tensor], out_size: tuple[int, int]
                ) -> torch.Tensor:
        """``scores`` (frames, seq, C, h, w); ``feats`` backbone layers with batch frames*seq.
        Returns logits (frames, seq, H, W) at ``out_size``."""
        frames, seq = scores.shape[:2]
        s = scores.reshape(frames * seq, *scores.shape[2:])
        x = None
        for L in DECODER_LAYERS:
            ft = feats[L]
            sc = F.interpolate(s, size=ft.shape[-2:], mode="bilinear", align_corners=False)
            if x is not None:
                x = self.proj[L](x)
            h, hpool = self.TSE[L](ft, sc, x)
            h = self.RRB1[L](h)
            h = self.CAB[L](hpool, h)
            x = self.RRB2[L](h)
        out = self.project(x, out_size)
        return out.view(frames, seq, *out.shape[-2:])
