"""Bicubic resizing as two small matrix products on the CPU.

PyTorch's CPU bicubic kernel took about 6 ms of a 50 ms frame on the 2-core machine (the decoder's two
upsamplings at the 192x320 crop); the same linear map written as ``A_h @ x @ A_w^T`` takes about 2 ms. The
matrices reproduce ``F.interpolate(mode="bicubic", align_corners=False)`` (cubic convolution with a = -0.75, source
index ``(dst + 0.5) * in / out - 0.5``, taps clamped at the borders), so outputs agree to float rounding. Other
devices keep ``F.interpolate``.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

_A = -0.75  # PyTorch's cubic convolution coefficient


def _cubic_weights(t: torch.Tensor) -> torch.Tensor:
    """(n,) fractional offsets -> (n, 4) weights of the taps at floor-1 .. floor+2."""
    def near(x):  # |x| <= 1
        return ((_A + 2) * x - (_A + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((_A * x - 5 * _A) * x + 8 * _A) * x - 4 * _A

    return torch.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], dim=1)


@functools.lru_cache(maxsize=32)
def bicubic_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) float32 matrix of 1-D bicubic resizing from n_in to n_out samples. Built as a normal tensor
    even when first asked for under torch.inference_mode (tracking): the cached matrix serves training too."""
    with torch.inference_mode(False):
        return _build_matrix(n_in, n_out)


def _build_matrix(n_in: int, n_out: int) -> torch.Tensor:
    out = torch.arange(n_out, dtype=torch.float64)
    real = (out + 0.5) * (n_in / n_out) - 0.5
    first = torch.clamp(torch.floor(real), max=n_in - 1)
    t = torch.clamp(real - first, 0.0, 1.0)
    taps = (first.long().unsqueeze(1) + torch.arange(-1, 3).unsqueeze(0)).clamp(0, n_in - 1)
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    m.scatter_add_(1, taps, _cubic_weights(t))
    return m.to(torch.float32)


def bicubic_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.interpolate(x, size, mode="bicubic", align_corners=False)`` for (N, C, H, W) tensors."""
    if x.device.type != "cpu" or x.dtype != torch.float32:
        return F.interpolate(x, size=tuple(size), mode="bicubic", align_corners=False)
    h, w = x.shape[-2:]
    a_h, a_w = bicubic_matrix(int(h), int(size[0])), bicubic_matrix(int(w), int(size[1]))
    return torch.matmul(torch.matmul(a_h, x.contiguous()), a_w.T)
