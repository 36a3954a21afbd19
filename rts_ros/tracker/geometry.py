"""Box/state conversions of the spec: box -> (pos, size, scale) §3.2, mask tight box §3.5-11,
the 'var' mask-to-state rule §3.5-3 and the crop-coordinate box (get_iounet_box) §3.4-C.6.

Positions are (y, x), sizes (h, w), float32; boxes exchanged outside are [x, y, w, h].
"""
from __future__ import annotations

import numpy as np
import torch

EMPTY_BOX = (0.0, 0.0, 1.0, 1.0)


def box_to_state(box_xywh, search_area_scale: float, img_sample_sz: tuple[int, int]):
    """[x, y, w, h] -> pos (y, x), target_sz (h, w), target_scale = sqrt(h w s^2) / sqrt(prod(sample size))."""
    x, y, w, h = (np.float32(v) for v in box_xywh)
    pos = np.array([y + (h - 1) / 2, x + (w - 1) / 2], dtype=np.float32)
    sz = np.array([h, w], dtype=np.float32)
    area = np.float32(np.prod(sz) * np.float32(search_area_scale) ** 2)
    scale = np.float32(np.sqrt(area) / np.sqrt(np.float32(img_sample_sz[0] * img_sample_sz[1])))
    return pos, sz, float(scale)


def tight_box(mask: torch.Tensor) -> tuple[float, float, float, float]:
    """Tight [x, y, w, h] of a boolean HxW mask (one host sync); empty mask -> [0, 0, 1, 1]."""
    rows = mask.any(dim=1)
    cols = mask.any(dim=0)
    h, w = mask.shape
    ar_r = torch.arange(h, device=mask.device)
    ar_c = torch.arange(w, device=mask.device)
    big = h + w
    vals = torch.stack([
        torch.where(cols, ar_c, big).min(), torch.where(rows, ar_r, big).min(),
        torch.where(cols, ar_c, -1).max(), torch.where(rows, ar_r, -1).max(),
    ]).tolist()
    x0, y0, x1, y1 = vals
    if x1 < 0:
        return EMPTY_BOX
    return (float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1))


def tight_box_np(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Same as tight_box for a numpy HxW array (non-zero = inside)."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return EMPTY_BOX
    return (float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1))


def var_moments(prob: torch.Tensor) -> torch.Tensor:
    """(e_y, e_x, v_y, v_x) of max(prob, 0) over an HxW map, as a device tensor (NaN when the map is empty)."""
    p = prob.clamp(min=0)
    ry, cx, z = p.sum(dim=1), p.sum(dim=0), p.sum()
    yy = torch.arange(p.shape[0], device=p.device, dtype=p.dtype)
    xx = torch.arange(p.shape[1], device=p.device, dtype=p.dtype)
    ey = (yy * ry).sum() / z
    ex = (xx * cx).sum() / z
    vy = (((yy - ey) ** 2) * ry).sum() / z
    vx = (((xx - ex) ** 2) * cx).sum() / z
    return torch.stack([ey, ex, vy, vx])


def seg_to_state_var(prob: torch.Tensor, sz_factor: float = 4.0):
    """'var' rule: centre of mass and sz_factor x std of the positive part of the HxW map.

    Returns (pos, target_sz) float32, or None when a variance is not positive (empty or one-line map).
    One host sync (the 4 moments).
    """
    ey, ex, vy, vx = var_moments(prob).tolist()
    if not (vy > 0 and vx > 0):  # also False for NaN (empty map)
        return None
    pos = np.array([ey, ex], dtype=np.float32)
    sz = np.float32(sz_factor) * np.sqrt(np.array([vy, vx], dtype=np.float32))
    return pos, sz.astype(np.float32)


def crop_box(pos, target_sz, sample_pos, sample_scale: float, img_sample_sz) -> np.ndarray:
    """Target box [x, y, w, h] in crop (network) pixels, for a crop centred at sample_pos."""
    isz = np.array(img_sample_sz, dtype=np.float32)
    c = (np.asarray(pos, np.float32) - np.asarray(sample_pos, np.float32)) / np.float32(sample_scale) + (isz - 1) / 2
    s = np.asarray(target_sz, np.float32) / np.float32(sample_scale)
    tl = c - (s - 1) / 2
    return np.array([tl[1], tl[0], s[1], s[0]], dtype=np.float32)


def state_box(pos, target_sz) -> tuple[float, float, float, float]:
    """pos/size -> [x, y, w, h] with the (size - 1) / 2 convention."""
    h, w = float(target_sz[0]), float(target_sz[1])
    return (float(pos[1]) - (w - 1) / 2, float(pos[0]) - (h - 1) / 2, w, h)
