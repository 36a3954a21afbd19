"""Gaussian classifier labels of the training samples (spec §5)."""
from __future__ import annotations

import numpy as np


def gaussian_label(box_xywh: np.ndarray, image_hw: tuple[int, int], feat_hw: tuple[int, int],
                   sigma_factor: float = 0.25 / 5.0, kernel_size: int = 4) -> np.ndarray:
    """Label map of shape (feat_h + end_pad, feat_w + end_pad) for a box given in crop pixels.

    sigma = sigma_factor * sqrt(feat_h * feat_w) (cells); the centre is the box centre relative to the crop centre,
    in feature cells, shifted by 0.5 for even kernels (whose score maps have one extra row/column at the end).
    """
    feat = np.array([feat_hw[1], feat_hw[0]], dtype=np.float64)          # x, y
    size = np.array([image_hw[1], image_hw[0]], dtype=np.float64)
    box = np.asarray(box_xywh, dtype=np.float64)
    centre = box[:2] + 0.5 * box[2:]
    end_pad = (kernel_size + 1) % 2
    mu = (centre - 0.5 * size) / size * feat + 0.5 * end_pad
    sigma = sigma_factor * float(np.sqrt(feat.prod()))
    axes = [np.arange(-(n - 1) / 2.0, (n + 1) / 2.0 + end_pad) for n in feat]   # x cells, y cells
    gx = np.exp(-0.5 * ((axes[0] - mu[0]) / sigma) ** 2)
    gy = np.exp(-0.5 * ((axes[1] - mu[1]) / sigma) ** 2)
    return (gy[:, None] * gx[None, :]).astype(np.float32)
