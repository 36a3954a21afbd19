"""Gaussian label maps of the instance branch (§3.4-C.7, §3.7-7)."""
from __future__ import annotations

import numpy as np
import torch


def label_sigma(sigma_factor: float, clf_feature_sz, img_sample_sz, base_target_sz) -> float:
    """sigma = factor * sqrt(prod(feature_sz / img_sample_sz * base_target_sz)) (feature cells)."""
    fs = np.array(clf_feature_sz, np.float32)
    isz = np.array(img_sample_sz, np.float32)
    return float(np.float32(sigma_factor) * np.sqrt(np.prod(fs / isz * np.asarray(base_target_sz, np.float32))))


def label_center(clf_feature_sz, img_sample_sz, pos, sample_pos, sample_scale: float) -> np.ndarray:
    """Label centre in label units (origin at the map centre) + 0.5 for the even 4x4 kernel."""
    fs = np.array(clf_feature_sz, np.float32)
    isz = np.array(img_sample_sz, np.float32)
    d = (np.asarray(pos, np.float32) - np.asarray(sample_pos, np.float32)) / (np.float32(sample_scale) * isz)
    return (fs * d + np.float32(0.5)).astype(np.float32)


def gaussian_label(center_yx, sigma: float, clf_feature_sz, kernel_sz: int = 4, device=None) -> torch.Tensor:
    """Label map of (feature_sz + 1) cells for an even kernel (16x27 for 15x26 features).

    Cell k has coordinate k - (feature_sz - 1) / 2: rows -7..8 and columns -12.5..13.5 by default."""
    out = []
    for ax in range(2):
        n = int(clf_feature_sz[ax])
        ln = n + (kernel_sz + 1) % 2
        k = torch.arange(ln, dtype=torch.float32) - (n - 1) / 2
        g = torch.exp(-((k - float(center_yx[ax])) ** 2) / (2 * sigma ** 2))
        out.append(g)
    lab = out[0].view(-1, 1) * out[1].view(1, -1)
    return lab.to(device) if device is not None else lab
