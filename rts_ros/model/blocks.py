"""Small building blocks shared by the RTS and STA networks (spec §2.1).

Filters and features of the few-shot learners use the reference layout:
features ``(frames, seq, C, H, W)``, filters ``(seq, K, C, kh, kw)``; one sequence is one tracked object.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.grad import conv2d_weight


def conv_block(cin: int, cout: int, k: int = 3, stride: int = 1, bn: bool = False, relu: bool = True) -> nn.Sequential:
    """Conv (with bias) [-> BatchNorm] [-> ReLU]; the conv is index 0 and the BN index 1 (checkpoint keys)."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=True)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    if relu:
        layers.append(nn.ReLU(inplace=False))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    """Basic residual block of the label/box/score encoders, with a 3x3 conv (with bias) as shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1, use_bn: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout) if use_bn else nn.Identity()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout) if use_bn else nn.Identity()
        self.downsample = nn.Conv2d(cin, cout, 3, stride, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + self.downsample(x))


class InstanceL2Norm(nn.Module):
    """Per-sample L2 normalisation so that sum(y^2) ~= C*H*W*scale^2 (no parameters)."""

    def __init__(self, scale: float, eps: float = 1e-5):
        super().__init__()
        self.scale = scale
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x[0].numel()
        sq = (x * x).flatten(1).sum(dim=1).view(-1, *([1] * (x.dim() - 1)))
        return x * (self.scale * torch.sqrt(n / (sq + self.eps)))


class LocationL2Norm(nn.Module):
    """Per-position L2 normalisation over channels: every position gets norm scale*sqrt(C) (no parameters).

    Same mean square as InstanceL2Norm on a uniform map, but one strong position (a border response of a small
    backbone trained from scratch) cannot shrink all the others: with the instance norm such a map leaves the
    classifier's steepest descent ill-conditioned (a few positions dominate its curvature), and it stops fitting.
    """

    def __init__(self, scale: float, eps: float = 1e-5):
        super().__init__()
        self.scale = scale
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sq = (x * x).sum(dim=1, keepdim=True)
        return x * (self.scale * torch.sqrt(x.shape[1] / (sq + self.eps)))


def l2norm_scale(feature_dim: int, filter_size: int) -> float:
    """Scale of the target-model/classifier feature normalisation: sqrt(1/(C*k*k)) of the seg filter."""
    return math.sqrt(1.0 / (feature_dim * filter_size * filter_size))


def apply_filter(feat: torch.Tensor, filt: torch.Tensor) -> torch.Tensor:
    """Cross-correlate ``feat`` (frames, seq, C, H, W) with ``filt`` (seq, K, C, kh, kw).

    Zero padding (kh//2, kw//2): a 3x3 filter keeps HxW, a 4x4 one gives (H+1)x(W+1).
    Returns (frames, seq, K, H', W'). Sequences are handled as conv groups.
    """
    frames, seq, c, h, w = feat.shape
    s2, k, c2, kh, kw = filt.shape
    if s2 != seq or c2 != c:
        raise ValueError(f"apply_filter: features {tuple(feat.shape)} do not fit filter {tuple(filt.shape)}")
    out = F.conv2d(feat.reshape(frames, seq * c, h, w), filt.reshape(seq * k, c, kh, kw),
                   padding=(kh // 2, kw // 2), groups=seq)
    return out.view(frames, seq, k, out.shape[-2], out.shape[-1])


def filter_gradient(feat: torch.Tensor, q: torch.Tensor, kernel: tuple[int, int]) -> torch.Tensor:
    """Gradient of sum(q * apply_filter(feat, f)) w.r.t. f: shape (seq, K, C, kh, kw).

    ``feat`` (frames, seq, C, H, W), ``q`` (frames, seq, K, H', W') with H', W' the apply_filter output size.
    Uses the convolution weight-gradient kernel (faster than an explicit correlation; twice differentiable).
    """
    frames, seq, c, h, w = feat.shape
    k = q.shape[2]
    kh, kw = kernel
    g = conv2d_weight(feat.reshape(frames, seq * c, h, w), (seq * k, c, kh, kw),
                      q.reshape(frames, seq * k, q.shape[-2], q.shape[-1]), padding=(kh // 2, kw // 2), groups=seq)
    return g.view(seq, k, c, kh, kw)


def seq_sum(x: torch.Tensor, seq_dim: int) -> torch.Tensor:
    """Sum of all elements per sequence (the GN step length uses one alpha per sequence)."""
    return x.transpose(0, seq_dim).reshape(x.shape[seq_dim], -1).sum(dim=1)
