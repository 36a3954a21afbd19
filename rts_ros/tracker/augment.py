"""First-frame augmentations of the instance branch (§3.4-C.4): horizontal flip and zero-padded
separable Gaussian blur, on NCHW tensors (any device)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gauss_kernel_1d(sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """Taps -r..r with r = ceil(2 sigma), weights exp(-t^2 / 2 sigma^2), normalised to sum 1."""
    r = int(math.ceil(2 * sigma))
    t = torch.arange(-r, r + 1, device=device, dtype=dtype)
    k = torch.exp(-(t ** 2) / (2 * sigma ** 2))
    return k / k.sum()


def gaussian_blur(im: torch.Tensor, sigma_yx: tuple[float, float]) -> torch.Tensor:
    """Vertical then horizontal pass, each with zero padding (the image borders darken, as the reference)."""
    c = im.shape[1]
    ky = gauss_kernel_1d(sigma_yx[0], im.device, im.dtype)
    kx = gauss_kernel_1d(sigma_yx[1], im.device, im.dtype)
    out = F.conv2d(im, ky.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(ky.numel() // 2, 0), groups=c)
    return F.conv2d(out, kx.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, kx.numel() // 2), groups=c)


def hflip(im: torch.Tensor) -> torch.Tensor:
    return im.flip(-1)


def augment_first_frame(
    crop: torch.Tensor, fliplr: bool, blur_sigmas: tuple[tuple[float, float], ...]
) -> torch.Tensor:
    """Identity, [flip], then one blur per sigma (sigma_y, sigma_x): a batch of 1 + fliplr + len(blurs)."""
    out = [crop]
    if fliplr:
        out.append(hflip(crop))
    out.extend(gaussian_blur(crop, s) for s in blur_sigmas)
    return torch.cat(out, dim=0)
