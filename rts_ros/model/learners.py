"""Segmentation few-shot learner (spec §2.3): target-model features, the zero filter initialiser and the
Gauss-Newton steepest-descent optimiser with a learned regulariser. Also used twice by STA (§2.9).

Layouts: features (frames, seq, C, H, W); labels and weights (frames, seq, K, H, W); filter (seq, K, C, k, k).
All operations are differentiable, so a trainer can back-propagate through the iterations.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from rts_ros.model.blocks import InstanceL2Norm, apply_filter, filter_gradient, seq_sum


class SegResidual(nn.Module):
    """Holds the learned regulariser lambda (``filter_reg``, shape [1]) of the data + lambda*filter residual."""

    def __init__(self, init_reg: float):
        super().__init__()
        self.filter_reg = nn.Parameter(torch.full((1,), float(init_reg)))


class SegOptimizer(nn.Module):
    """Steepest descent with the Gauss-Newton step length (one alpha per sequence)."""

    def __init__(self, init_reg: float):
        super().__init__()
        self.residual_module = SegResidual(init_reg)

    def forward(self, filt: torch.Tensor, feat: torch.Tensor, label: torch.Tensor,
                weight: torch.Tensor | None, num_iter: int, return_iterates: bool = False):
        """Run ``num_iter`` steps from ``filt``. Returns the final filter, or (final, [initial, step1, ...])."""
        if num_iter < 0:
            raise ValueError(f"num_iter must be >= 0, got {num_iter}")
        ksz = (filt.shape[-2], filt.shape[-1])
        if weight is None:  # reference default: uniform weight sqrt(1/frames)
            weight = torch.full((), math.sqrt(1.0 / feat.shape[0]), dtype=feat.dtype, device=feat.device)
        lam2 = self.residual_module.filter_reg * self.residual_module.filter_reg
        iterates = [filt]
        for _ in range(num_iter):
            res = weight * (apply_filter(feat, filt) - label)
            grad = filter_gradient(feat, weight * res, ksz) + lam2 * filt
            jg = weight * apply_filter(feat, grad)
            gg = seq_sum(grad * grad, 0)
            den = (seq_sum(jg * jg, 1) + lam2 * gg).clamp(min=1e-8)
            filt = filt - (gg / den).view(-1, 1, 1, 1, 1) * grad
            iterates.append(filt)
        return (filt, iterates) if return_iterates else filt


class SegTargetModel(nn.Module):
    """Target model of the segmentation branch: ``optimize`` learns tau, ``apply`` gives the mask encoding."""

    def __init__(self, in_dim: int | None, feat_dim: int, num_filters: int, filter_size: int, init_reg: float,
                 norm_scale: float):
        super().__init__()
        if in_dim is not None:  # STA's second learner shares the first one's features and has no extractor
            self.feature_extractor = nn.Sequential(nn.Conv2d(in_dim, feat_dim, 3, 1, 1, bias=False),
                                                   InstanceL2Norm(norm_scale))
        self.filter_optimizer = SegOptimizer(init_reg)
        self.feat_dim, self.num_filters, self.filter_size = feat_dim, num_filters, filter_size

    def extract_features(self, layer3: torch.Tensor) -> torch.Tensor:
        """(N, C_layer3, H, W) -> L2-normalised (N, feat_dim, H, W)."""
        return self.feature_extractor(layer3)

    def init_filter(self, feat: torch.Tensor) -> torch.Tensor:
        """Zero filter (seq, K, C, k, k) for features (frames, seq, C, H, W)."""
        k = self.filter_size
        return feat.new_zeros(feat.shape[1], self.num_filters, feat.shape[2], k, k)

    def optimize(self, filt: torch.Tensor, feat: torch.Tensor, label: torch.Tensor, weight: torch.Tensor | None,
                 num_iter: int, return_iterates: bool = False):
        """GN steepest descent on 0.5*||V*(apply(x, tau) - E)||^2 + 0.5*||lambda*tau||^2 (V not square-rooted)."""
        return self.filter_optimizer(filt, feat, label, weight, num_iter, return_iterates)

    def get_filter(self, feat: torch.Tensor, label: torch.Tensor, weight: torch.Tensor | None, num_iter: int,
                   return_iterates: bool = False):
        """Learn a filter from scratch (zero initialiser, then ``num_iter`` steps)."""
        return self.optimize(self.init_filter(feat), feat, label, weight, num_iter, return_iterates)

    @staticmethod
    def apply(feat: torch.Tensor, filt: torch.Tensor) -> torch.Tensor:
        """Mask encoding (frames, seq, K, H, W)."""
        return apply_filter(feat, filt)
