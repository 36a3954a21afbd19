"""Instance-localisation (DiMP-style) branch, spec §2.4: features, PrRoIPool filter initialiser and the
steepest-descent optimiser with the hinge-like residual.

Layouts: features (frames, seq, C, H, W); boxes (frames, seq, 4) [x, y, w, h] in crop pixels;
labels and scores (frames, seq, H', W'); filter (seq, C, k, k); sample weights (frames, seq) or anything
that reshapes to (frames, seq|1).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from rts_ros.model.blocks import InstanceL2Norm, LocationL2Norm, apply_filter, filter_gradient, seq_sum
from rts_ros.model.prroi_pool import prroi_pool2d


class FilterInitializer(nn.Module):
    """3x3 conv on the features, PrRoIPool of the box (scale 1/feature_stride), mean over frames."""

    def __init__(self, feat_dim: int, filter_size: int, feature_stride: int):
        super().__init__()
        self.filter_conv = nn.Conv2d(feat_dim, feat_dim, 3, 1, 1, bias=True)
        self.filter_size = filter_size
        self.spatial_scale = 1.0 / feature_stride  # 1/16 on stride-32 features: baked into the weights

    def forward(self, feat: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        frames, seq = feat.shape[:2]
        x = self.filter_conv(feat.reshape(frames * seq, *feat.shape[2:]))
        b = boxes.reshape(frames * seq, 4).to(device=x.device, dtype=x.dtype)
        idx = torch.arange(frames * seq, device=x.device, dtype=x.dtype)
        rois = torch.stack([idx, b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], dim=1)
        k = self.filter_size
        pooled = prroi_pool2d(x, rois, k, k, self.spatial_scale)
        return pooled.view(frames, seq, *pooled.shape[1:]).mean(dim=0)


class HingeOptimizer(nn.Module):
    """GN steepest descent on r = sqrt(w) * (phi(s) - m*y) with a fixed regulariser (no parameters)."""

    def __init__(self, reg: float, hinge_threshold: float, leak: float):
        super().__init__()
        self.reg, self.hinge_threshold, self.leak = reg, hinge_threshold, leak

    def forward(self, filt: torch.Tensor, feat: torch.Tensor, label: torch.Tensor,
                sample_weight: torch.Tensor | None, num_iter: int, return_iterates: bool = False):
        if num_iter < 0:
            raise ValueError(f"num_iter must be >= 0, got {num_iter}")
        frames, seq = feat.shape[:2]
        f5 = filt.unsqueeze(1)                          # (seq, 1, C, k, k)
        ksz = (filt.shape[-2], filt.shape[-1])
        y = label.reshape(frames, seq, 1, *label.shape[-2:])
        if sample_weight is None:
            sw = torch.full((), math.sqrt(1.0 / frames), dtype=feat.dtype, device=feat.device)
        else:
            sw = sample_weight.reshape(frames, -1).to(device=feat.device, dtype=feat.dtype).sqrt().view(frames, -1, 1, 1, 1)
        m = ((y > self.hinge_threshold).to(feat.dtype) + self.leak).clamp(max=1.0)
        target = m * y
        lam2 = self.reg * self.reg
        iterates = [filt]
        for _ in range(num_iter):
            s = apply_filter(feat, f5)
            dphi = (1 - m) / 2 * torch.sign(s) + (1 + m) / 2
            res = sw * ((1 - m) / 2 * s.abs() + (1 + m) / 2 * s - target)
            grad = filter_gradient(feat, sw * dphi * res, ksz) + lam2 * f5
            jg = sw * dphi * apply_filter(feat, grad)
            gg = seq_sum(grad * grad, 0)
            den = (seq_sum(jg * jg, 1) + lam2 * gg).clamp(min=1e-8)
            f5 = f5 - (gg / den).view(-1, 1, 1, 1, 1) * grad
            iterates.append(f5.squeeze(1))
        out = f5.squeeze(1)
        return (out, iterates) if return_iterates else out


class Classifier(nn.Module):
    """Module ``classifier`` of RTS: filter_initializer, filter_optimizer, feature_extractor (key order)."""

    def __init__(self, in_dim: int, feat_dim: int, filter_size: int, norm_scale: float, feature_stride: int,
                 reg: float, hinge_threshold: float, leak: float, norm_per_location: bool = False,
                 extractor_stride: int = 2):
        super().__init__()
        self.filter_initializer = FilterInitializer(feat_dim, filter_size, feature_stride)
        self.filter_optimizer = HingeOptimizer(reg, hinge_threshold, leak)
        norm = LocationL2Norm(norm_scale) if norm_per_location else InstanceL2Norm(norm_scale)
        self.feature_extractor = nn.Sequential(nn.Conv2d(in_dim, feat_dim, 3, extractor_stride, 1, bias=False),
                                               norm)

    def extract_features(self, layer3: torch.Tensor) -> torch.Tensor:
        """(N, C_layer3, H, W) -> (N, feat_dim, H/s, W/s), L2-normalised (s = extractor_stride; 2: stride 32)."""
        return self.feature_extractor(layer3)

    def init_filter(self, feat: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Initial filter (seq, C, k, k) from features (frames, seq, C, H, W) and boxes (frames, seq, 4)."""
        return self.filter_initializer(feat, boxes)

    def optimize(self, filt: torch.Tensor, feat: torch.Tensor, labels: torch.Tensor,
                 sample_weight: torch.Tensor | None, num_iter: int, return_iterates: bool = False):
        """``num_iter`` steps; sample weights are square-rooted (None = uniform). Returns filter [, iterates]."""
        return self.filter_optimizer(filt, feat, labels, sample_weight, num_iter, return_iterates)

    def get_filter(self, feat: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, num_iter: int,
                   sample_weight: torch.Tensor | None = None, return_iterates: bool = False):
        """Initialiser then optimiser, as on the first frame."""
        return self.optimize(self.init_filter(feat, boxes), feat, labels, sample_weight, num_iter, return_iterates)

    @staticmethod
    def scores(feat: torch.Tensor, filt: torch.Tensor) -> torch.Tensor:
        """Scores (frames, seq, H+1, W+1) for a 4x4 filter (padding k//2)."""
        return apply_filter(feat, filt.unsqueeze(1)).squeeze(2)
