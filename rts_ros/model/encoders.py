"""Label encoder E/W (ResidualDS16SW), score encoder H (its stride-1 twin) and the STA box encoder
(ResidualDS16FeatSWBox) of spec §2.3, §2.5 and §2.9."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rts_ros.model.blocks import ResBlock, conv_block


class MaskEncoder(nn.Module):
    """Mask (or score map) -> (few-shot label, spatial sample weights), both (frames, seq, K, h, w).

    stride=2: the label encoder (input at image resolution, output at stride 16).
    stride=1: the score encoder H (input = classifier scores, output at the same resolution).
    """

    def __init__(self, dims: tuple[int, int, int], num_filters: int, stride: int = 2, use_bn: bool = False):
        super().__init__()
        d0, d1, d2 = dims
        self.stride = stride
        self.conv_block = conv_block(1, d0, 3, stride, bn=use_bn, relu=True)
        self.pool = nn.MaxPool2d(3, stride, 1)
        self.res1 = ResBlock(d0, d1, stride, use_bn)
        self.res2 = ResBlock(d1, d2, stride, use_bn)
        self.label_pred = conv_block(d2, num_filters, 3, 1, bn=use_bn, relu=True)
        self.samp_w_pred = nn.Conv2d(d2, num_filters, 3, 1, 1, bias=True)

    def forward(self, mask: torch.Tensor, feat: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``mask`` (frames, seq, H, W) in [0, 1] (or raw scores for H); ``feat`` is unused (API symmetry)."""
        frames, seq = mask.shape[:2]
        x = mask.reshape(frames * seq, 1, *mask.shape[-2:])
        x = self.res2(self.res1(self.pool(self.conv_block(x))))
        label, weight = self.label_pred(x), self.samp_w_pred(x)
        return (label.view(frames, seq, *label.shape[1:]), weight.view(frames, seq, *weight.shape[1:]))


def boxes_to_masks(boxes: torch.Tensor, size: tuple[int, int], device: torch.device | None = None) -> torch.Tensor:
    """Rasterise boxes (B, 4) [x, y, w, h] into (B, 1, H, W) binary masks like the reference STA:
    values truncated toward zero, rows/cols [max(0, y), y + h) with Python slice semantics (a negative
    end wraps around, as in the reference)."""
    out = torch.zeros(boxes.shape[0], 1, *size, dtype=torch.float32, device=device or boxes.device)
    for i, (x, y, w, h) in enumerate(boxes.detach().cpu().tolist()):
        x, y, w, h = int(x), int(y), int(w), int(h)
        out[i, :, max(0, y):y + h, max(0, x):x + w] = 1.0
    return out


class BoxEncoder(nn.Module):
    """STA box encoder: box mask features concatenated with the target-model features (mask first)."""

    def __init__(self, dims: tuple[int, int, int, int], num_filters: int, feat_dim: int):
        super().__init__()
        d0, d1, d2, d3 = dims
        self.conv_block = conv_block(1, d0, 3, 2, bn=False, relu=True)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.res1 = ResBlock(d0, d1, 2)
        self.res2 = ResBlock(d1, d2, 2)
        self.res3 = ResBlock(d2 + feat_dim, d3, 1)
        self.label_pred = conv_block(d3, num_filters, 3, 1, bn=True, relu=True)
        self.samp_w_pred = nn.Conv2d(d3, num_filters, 3, 1, 1, bias=True)

    def forward(self, boxes: torch.Tensor, feat: torch.Tensor, im_size: tuple[int, int]
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``boxes`` (frames, seq, 4) crop pixels, ``feat`` (frames, seq, C, h, w) target-model features,
        ``im_size`` (H, W) of the crop. Returns (label, weights), each (frames, seq, K, h, w)."""
        frames, seq = feat.shape[:2]
        m = boxes_to_masks(boxes.reshape(-1, 4), im_size, feat.device).to(feat.dtype)
        x = self.res2(self.res1(self.pool(self.conv_block(m))))
        f = feat.reshape(frames * seq, *feat.shape[2:])
        if x.shape[-2:] != f.shape[-2:]:
            raise ValueError(f"box encoder: mask features {tuple(x.shape[-2:])} vs target features "
                             f"{tuple(f.shape[-2:])}; the crop size must be a multiple of 16")
        x = self.res3(torch.cat([x, f], dim=1))
        label, weight = self.label_pred(x), self.samp_w_pred(x)
        return (label.view(frames, seq, *label.shape[1:]), weight.view(frames, seq, *weight.shape[1:]))


def resize_scores(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (align_corners=False, no antialias) of (frames, seq, C, h, w) maps."""
    frames, seq = x.shape[:2]
    y = F.interpolate(x.reshape(frames * seq, *x.shape[2:]), size=size, mode="bilinear", align_corners=False)
    return y.view(frames, seq, *y.shape[1:])
