"""Segmentation-learner update (spec §2.3 Gauss-Newton steepest descent) with one feature pass fewer per
iteration than the textbook loop.

The scores of the memory samples are linear in the filter: after tau <- tau - alpha g the new scores are
s - alpha (X g), and X g is already computed for the step length. So each iteration costs one correlation
(gradient) and one filter application instead of two applications and one correlation; the first
iteration computes s = X tau once. Same iterates as rts_ros.model's optimiser up to float rounding.
"""
from __future__ import annotations

import torch

from rts_ros.model.blocks import apply_filter, filter_gradient, seq_sum


def seg_gn_update(filt: torch.Tensor, feat: torch.Tensor, label: torch.Tensor, weight: torch.Tensor,
                  reg: torch.Tensor, num_iter: int) -> torch.Tensor:
    """filt (1, K, C, k, k); feat (N, 1, C, H, W); label/weight (N, 1, K, H, W); reg = lambda (shape [1])."""
    if num_iter <= 0:
        return filt
    ksz = (filt.shape[-2], filt.shape[-1])
    lam2 = reg * reg
    w2 = weight * weight
    s = apply_filter(feat, filt)
    for _ in range(num_iter):
        grad = filter_gradient(feat, w2 * (s - label), ksz) + lam2 * filt
        u = apply_filter(feat, grad)
        jg = weight * u
        gg = seq_sum(grad * grad, 0)
        alpha = (gg / (seq_sum(jg * jg, 1) + lam2 * gg).clamp(min=1e-8))
        filt = filt - alpha.view(-1, 1, 1, 1, 1) * grad
        s = s - alpha.view(-1, 1, 1, 1, 1) * u
    return filt
