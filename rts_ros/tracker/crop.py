"""Search-region crops (spec §3.3), the first-frame expanded crop (§3.4-B) and the paste-back (§3.5-10).

All functions work on NCHW float tensors on any device. Geometry (centre, size, coordinates) is float32
numpy, as in the reference, so that the integer roundings of the crop placement match it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

INSIDE_MODES = ("inside", "inside_major")
BORDER_MODES = ("replicate", "inside", "inside_major")


@dataclass(frozen=True)
class CropGeometry:
    """Where a crop came from: coords = (tl_y, tl_x, br_y, br_x) in image pixels (floats, may be .5)."""

    coords: np.ndarray  # float32 (4,)
    output_size: tuple[int, int]

    @property
    def sample_pos(self) -> np.ndarray:
        """Crop centre (y, x) in image pixels: (tl + br - 1) / 2."""
        c = self.coords
        return ((c[:2] + c[2:] - 1) / 2).astype(np.float32)

    @property
    def sample_scale(self) -> float:
        """Image pixels per output pixel (geometric mean of both axes)."""
        c = self.coords
        h, w = self.output_size
        return float(np.sqrt(np.float32((c[2] - c[0]) / h) * np.float32((c[3] - c[1]) / w)))


def _trunc(v: np.ndarray) -> np.ndarray:
    return np.trunc(v).astype(np.int64)


def crop_plan(
    image_hw: tuple[int, int],
    pos: np.ndarray,
    sample_sz: np.ndarray,
    output_sz: tuple[int, int],
    mode: str = "replicate",
    max_scale_change: float | None = None,
) -> tuple[int, tuple[int, int], tuple[int, int, int, int], np.ndarray]:
    """The integer arithmetic of §3.3 without touching pixels.

    Returns (decimation factor df, subsampling offset (oy, ox), pads (left, right, top, bottom) on the
    decimated image, coords (tl_y, tl_x, br_y, br_x) in full-image pixels).
    """
    if mode not in BORDER_MODES:
        raise ValueError(f"unknown border mode {mode!r}; use one of {BORDER_MODES}")
    im_sz = np.array(image_hw, dtype=np.float32)
    osz = np.array(output_sz, dtype=np.float32)
    posl = _trunc(np.asarray(pos, dtype=np.float32))
    ssz = np.asarray(sample_sz, dtype=np.float32)
    if mode in INSIDE_MODES:
        ratio = ssz / im_sz
        shrink = ratio.max() if mode == "inside" else ratio.min()
        shrink = max(float(shrink), 1.0)
        if max_scale_change is not None:
            shrink = min(shrink, float(max_scale_change))
        ssz = np.trunc(ssz / np.float32(shrink)).astype(np.float32)
    resize_factor = float((ssz / osz).min())
    df = int(max(int(resize_factor - 0.1), 1))
    sz = ssz / np.float32(df)
    off = np.zeros(2, dtype=np.int64)
    h2, w2 = image_hw
    if df > 1:
        off = np.mod(posl, df)
        posl = (posl - off) // df
        h2 = len(range(int(off[0]), image_hw[0], df))
        w2 = len(range(int(off[1]), image_hw[1], df))
    szl = np.maximum(np.round(sz), 2).astype(np.int64)  # np.round is half-to-even, as torch.round
    tl = (posl - (szl - 1) / 2).astype(np.float32)
    br = (posl + szl / 2 + 1).astype(np.float32)
    if mode in INSIDE_MODES:
        im2 = np.array([h2, w2], dtype=np.float32)
        shift = np.maximum(-tl, 0) - np.maximum(br - im2, 0)
        tl, br = tl + shift, br + shift
        outside = np.floor((np.maximum(-tl, 0) + np.maximum(br - im2, 0)) / 2)
        shift = np.where(outside > 0, -tl - outside, 0).astype(np.float32)
        tl, br = tl + shift, br + shift
    pads = (int(-_trunc(tl[1])), int(_trunc(br[1]) - w2), int(-_trunc(tl[0])), int(_trunc(br[0]) - h2))
    coords = (np.float32(df) * np.concatenate([tl, br])).astype(np.float32)
    return df, (int(off[0]), int(off[1])), pads, coords


def _cut_negative_pads(im: torch.Tensor, pads: tuple[int, int, int, int]):
    """Negative pads crop. F.pad would copy the whole image first; slicing them away is a view, and padding
    only the positive rest gives the same patch (replicate copies the same edge rows/columns)."""
    left, right, top, bottom = pads
    h, w = im.shape[-2:]
    y0, y1, x0, x1 = max(-top, 0), h - max(-bottom, 0), max(-left, 0), w - max(-right, 0)
    if y1 <= y0 or x1 <= x0:  # the crop misses the image: leave it to F.pad
        return im, pads
    return im[..., y0:y1, x0:x1], (max(left, 0), max(right, 0), max(top, 0), max(bottom, 0))


def sample_patch(
    im: torch.Tensor,
    pos: np.ndarray,
    sample_sz: np.ndarray,
    output_sz: tuple[int, int],
    mode: str = "replicate",
    max_scale_change: float | None = None,
    is_mask: bool = False,
) -> tuple[torch.Tensor, CropGeometry]:
    """Crop `im` (N,C,H,W; float, or uint8 converted after the cut) around pos (y, x) with requested size
    sample_sz (h, w), resized to output_sz.

    Images use replicate padding and bilinear resizing; masks (is_mask) zero padding and nearest resizing.
    """
    df, (oy, ox), pads, coords = crop_plan(
        (im.shape[-2], im.shape[-1]), pos, sample_sz, output_sz, mode, max_scale_change
    )
    im2 = im[..., oy::df, ox::df] if df > 1 else im
    im2, pads = _cut_negative_pads(im2, pads)
    if not im2.is_floating_point():  # uint8 camera images: convert only the cut region (exact)
        im2 = im2.to(torch.float32)
    if is_mask:
        patch = F.pad(im2, pads, mode="constant", value=0.0)
    else:
        patch = F.pad(im2, pads, mode="replicate")
    if tuple(patch.shape[-2:]) != tuple(output_sz):
        if is_mask:
            patch = F.interpolate(patch, size=tuple(output_sz), mode="nearest")
        else:
            patch = F.interpolate(patch, size=tuple(output_sz), mode="bilinear", align_corners=False)
    return patch, CropGeometry(coords, (int(output_sz[0]), int(output_sz[1])))


def centered_sample_pos(
    pos: np.ndarray, target_scale: float, img_sample_sz: tuple[int, int], feature_sz: tuple[int, int],
    kernel_sz: tuple[int, int] = (3, 3),
) -> np.ndarray:
    """Search centre of §3.2: pos + ((feature_sz + kernel_sz) mod 2) * scale * img_sample_sz / (2 feature_sz)."""
    fs = np.array(feature_sz, dtype=np.float32)
    odd = np.mod(fs + np.array(kernel_sz, dtype=np.float32), 2)
    isz = np.array(img_sample_sz, dtype=np.float32)
    return (np.asarray(pos, np.float32) + odd * np.float32(target_scale) * isz / (2 * fs)).astype(np.float32)


@dataclass(frozen=True)
class InitWindow:
    """Seg-branch first-frame sampling (§3.4-B): centre, scale and integer window shift (y, x)."""

    sample_pos: np.ndarray
    sample_scale: float
    shift: tuple[int, int]


def init_window(
    image_hw: tuple[int, int], pos: np.ndarray, target_scale: float, img_sample_sz: tuple[int, int],
    mode: str = "inside_major", max_scale_change: float | None = None,
) -> InitWindow:
    """Emulation of the border mode for the first frame: shrunk scale + integer global shift."""
    isz = np.array(img_sample_sz, dtype=np.float32)
    pos = np.asarray(pos, dtype=np.float32)
    ssz = np.float32(target_scale) * isz
    shift = np.zeros(2, dtype=np.float32)
    scale = np.float32(target_scale)
    if mode in INSIDE_MODES:
        im_sz = np.array(image_hw, dtype=np.float32)
        ratio = ssz / im_sz
        k = float(ratio.max() if mode == "inside" else ratio.min())
        k = max(k, 1.0)
        if max_scale_change is not None:
            k = min(k, float(max_scale_change))
        ssz = ssz / np.float32(k)
        scale = np.float32(np.sqrt(np.prod(ssz / isz)))
        tl = pos - (ssz - 1) / 2
        br = pos + ssz / 2 + 1
        shift = -(np.maximum(-tl, 0) - np.maximum(br - im_sz, 0)) / scale
    shift_i = np.trunc(shift).astype(np.int64)
    return InitWindow(np.round(pos).astype(np.float32), float(scale), (int(shift_i[0]), int(shift_i[1])))


def expanded_init_patch(
    im: torch.Tensor, win: InitWindow, img_sample_sz: tuple[int, int], expansion: float = 2.0,
    is_mask: bool = False,
) -> tuple[torch.Tensor, CropGeometry]:
    """§3.4-B steps 4-5: crop expansion x img_sample_sz (replicate), then cut the shifted output window."""
    h, w = img_sample_sz
    ex = np.array([h, w], dtype=np.float32) * np.float32(expansion)
    ex = ex + np.mod(ex - np.array([h, w], dtype=np.float32), 2)  # keep the parity of the output size
    big = (int(ex[0]), int(ex[1]))
    patch, geom = sample_patch(
        im, win.sample_pos, np.float32(win.sample_scale) * ex, big, mode="replicate", is_mask=is_mask
    )
    sy, sx = win.shift
    top, left = -(big[0] - h) // 2, -(big[1] - w) // 2
    pads = (left + sx, -(big[1] - w) - left - sx, top + sy, -(big[0] - h) - top - sy)
    patch = F.pad(patch, pads, mode="replicate")
    return patch, geom


def paste_region(
    crop_hw: tuple[int, int], sample_pos: np.ndarray, sample_scale: float, image_hw: tuple[int, int],
) -> tuple[int, int, int, int, int, int] | None:
    """Where paste_back puts a crop of crop_hw: (y0, y1, x0, x1) on the canvas and the crop's resized top-left
    (r1, c1), or None when nothing lands on it. Sizes follow F.interpolate's floor(size * scale_factor)."""
    rows = math.floor(float(crop_hw[0]) * float(sample_scale))
    cols = math.floor(float(crop_hw[1]) * float(sample_scale))
    H, W = image_hw
    r1 = int(float(sample_pos[0]) - rows / 2)
    c1 = int(float(sample_pos[1]) - cols / 2)
    y0, x0 = max(r1, 0), max(c1, 0)
    y1, x1 = min(r1 + rows, H), min(c1 + cols, W)
    return (y0, y1, x0, x1, r1, c1) if y1 > y0 and x1 > x0 else None


def paste_back(
    scores: torch.Tensor, sample_pos: np.ndarray, sample_scale: float, image_hw: tuple[int, int],
    fill: float = -100.0,
) -> torch.Tensor:
    """§3.5-10: resize crop logits (N,C,h,w) by `sample_scale` and place them on a canvas of image_hw."""
    resized = F.interpolate(
        scores, scale_factor=float(sample_scale), mode="bilinear", align_corners=False,
        recompute_scale_factor=False,
    )
    canvas = scores.new_full((*scores.shape[:-2], *image_hw), fill)
    region = paste_region(scores.shape[-2:], sample_pos, sample_scale, image_hw)
    if region is not None:
        y0, y1, x0, x1, r1, c1 = region
        canvas[..., y0:y1, x0:x1] = resized[..., y0 - r1:y1 - r1, x0 - c1:x1 - c1]
    return canvas
