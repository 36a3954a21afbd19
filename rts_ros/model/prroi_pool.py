"""Precise RoI pooling (PrRoIPool, spec §2.4) in plain torch: CPU and CUDA, vectorised, differentiable
w.r.t. the features and the box coordinates.

Each output bin is the exact integral of the bilinear interpolant of the feature map over the bin,
divided by the bin area. Pixel centres sit at integer coordinates and the map is 0 outside. The bilinear
interpolant is separable (sum of F[i,j] * tri(y-i) * tri(x-j), tri(t) = max(0, 1-|t|)), so the integral over
[y0,y1]x[x0,x1] is Wy @ F @ Wx^T with Wy[i] = T(y1-i) - T(y0-i), T the antiderivative of tri.
"""
from __future__ import annotations

import torch


def _tri_cdf(t: torch.Tensor) -> torch.Tensor:
    """Antiderivative of the hat function, 0 below -1 and 1 above +1."""
    t = t.clamp(-1.0, 1.0)
    neg = 0.5 * (t + 1.0) ** 2
    pos = 1.0 - 0.5 * (1.0 - t) ** 2
    return torch.where(t < 0, neg, pos)


def _axis_weights(lo: torch.Tensor, hi: torch.Tensor, bins: int, n: int) -> torch.Tensor:
    """(R, bins, n) integration weights of the bins of [lo, hi] (R,) against the n pixel hats of one axis."""
    step = (hi - lo) / bins
    k = torch.arange(bins, device=lo.device, dtype=lo.dtype)
    b0 = lo[:, None] + step[:, None] * k           # (R, bins)
    b1 = b0 + step[:, None]
    idx = torch.arange(n, device=lo.device, dtype=lo.dtype)
    return _tri_cdf(b1[..., None] - idx) - _tri_cdf(b0[..., None] - idx)


def prroi_pool2d(feat: torch.Tensor, rois: torch.Tensor, out_h: int, out_w: int, spatial_scale: float
                 ) -> torch.Tensor:
    """Pool ``feat`` (N, C, H, W) over ``rois`` (R, 5) = [batch index, x1, y1, x2, y2] in input pixels.

    Coordinates are multiplied by ``spatial_scale``; RoI sizes are clamped at 0; a zero-area bin gives 0.
    Returns (R, C, out_h, out_w).
    """
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f"prroi_pool2d: rois must be (R, 5), got {tuple(rois.shape)}")
    rois = rois.to(feat.dtype)
    bidx = rois[:, 0].long()
    x1, y1, x2, y2 = (rois[:, i] * spatial_scale for i in range(1, 5))
    x2 = torch.maximum(x2, x1)
    y2 = torch.maximum(y2, y1)
    wy = _axis_weights(y1, y2, out_h, feat.shape[-2])   # (R, out_h, H)
    wx = _axis_weights(x1, x2, out_w, feat.shape[-1])   # (R, out_w, W)
    area = ((y2 - y1) / out_h) * ((x2 - x1) / out_w)     # (R,)
    f = feat[bidx]                                       # (R, C, H, W)
    pooled = torch.einsum("rph,rchw,rqw->rcpq", wy, f, wx)
    safe = torch.where(area > 0, area, torch.ones_like(area))
    return torch.where(area.view(-1, 1, 1, 1) > 0, pooled / safe.view(-1, 1, 1, 1), torch.zeros_like(pooled))
