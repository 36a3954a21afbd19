"""Box -> first-frame mask: the STA network (§3.4-A) or, without STA weights, OpenCV GrabCut in the box."""
from __future__ import annotations

import logging

import numpy as np
import torch

from rts_ros.tracker.crop import paste_back, sample_patch
from rts_ros.tracker.geometry import box_to_state, crop_box

log = logging.getLogger("rts_ros.tracker")


def _clip_outside_box(logits: torch.Tensor, box) -> torch.Tensor:
    """Logits = -100 outside the (int-truncated) box. Negative x0/y0 clamp to 0 (the reference would wrap)."""
    x0, y0, w0, h0 = (int(v) for v in box)
    out = torch.full_like(logits, -100.0)
    ys, xs = max(y0, 0), max(x0, 0)
    out[..., ys:max(y0 + h0, 0), xs:max(x0 + w0, 0)] = logits[..., ys:max(y0 + h0, 0), xs:max(x0 + w0, 0)]
    return out


def sta_mask(sta, image: torch.Tensor, box, cfg) -> torch.Tensor:
    """image (1, 3, H, W) RGB 0..255 (uint8 or float) on the device -> bool mask (H, W) on the device."""
    isz = tuple(cfg.sta_image_sample_size)
    pos, sz, scale = box_to_state(box, cfg.sta_search_area_scale, isz)
    crop, geom = sample_patch(image, pos, np.float32(scale) * np.array(isz, np.float32), isz,
                              mode=cfg.sta_border_mode, max_scale_change=cfg.sta_patch_max_scale_change)
    cbox = crop_box(pos, sz, geom.sample_pos, geom.sample_scale, isz)
    inp = crop
    if cfg.sta_normalize_input:
        mean = torch.tensor((102.9801, 115.9465, 122.7717), device=crop.device).view(1, 3, 1, 1)
        inp = crop.flip(1) - mean
    if next(sta.parameters()).is_contiguous(memory_format=torch.channels_last) and inp.dim() == 4:
        inp = inp.contiguous(memory_format=torch.channels_last)
    logits = sta(inp, torch.as_tensor(cbox, device=crop.device).view(1, 4))
    logits = logits.reshape(1, 1, *logits.shape[-2:])
    full = paste_back(logits, geom.sample_pos, geom.sample_scale, image.shape[-2:], fill=-100.0)
    full = _clip_outside_box(full, box)
    return (full > 0)[0, 0]


def _fallback_mask(rect_mask: np.ndarray, box, mode: str) -> np.ndarray:
    """The start mask where GrabCut gives none: the filled box (``mode`` 'box') or the ellipse inscribed in
    ``box`` (x, y, w, h), which drops the box corners, on most targets background."""
    import cv2

    if mode != "ellipse":
        return rect_mask
    x, y, w, h = (float(v) for v in box)
    m = np.zeros(rect_mask.shape, np.uint8)
    centre = (int(round(x + w / 2)), int(round(y + h / 2)))
    cv2.ellipse(m, centre, (max(1, int(round(w / 2))), max(1, int(round(h / 2)))), 0, 0, 360, 1, -1)
    out = (m > 0) & rect_mask
    return out if out.any() else rect_mask


def grabcut_mask(image_rgb: np.ndarray, box, iterations: int = 5, margin: float = 1.0,
                 max_pixels: int = 40_000, fallback: str = "box") -> np.ndarray:
    """GrabCut initialised with the box, on the box plus ``margin`` box sizes (+4 px) of surroundings per side;
    falls back to the filled box (``fallback='box'``) or the inscribed ellipse ('ellipse') if GrabCut finds
    nothing (about one start in five on real sequences: a thin person among similar colours, a low-contrast car).

    The local window learns its background model from what surrounds the target rather than from the whole
    frame: on synthetic validation clips the start masks were as good or better (mean IoU 0.897 and 0.926 against
    0.888 and 0.910 on the whole image), and on 1280x720 frames it takes milliseconds instead of about 2 s.
    A window larger than ``max_pixels`` is cut at a lower resolution: GrabCut's time grows with the pixels, and
    a large target's window (most of a 854x480 frame) took 1.7 s on average on the 20 DAVIS 2016 validation
    starts, up to 5.9 s, against 0.1 s at 40,000 pixels."""
    import cv2

    H, W = image_rgb.shape[:2]
    x, y, w, h = box
    x0, y0 = int(max(np.floor(x), 0)), int(max(np.floor(y), 0))
    x1, y1 = int(min(np.ceil(x + w), W)), int(min(np.ceil(y + h), H))
    rect_mask = np.zeros((H, W), bool)
    rect_mask[y0:y1, x0:x1] = True
    mx, my = margin * (x1 - x0) + 4, margin * (y1 - y0) + 4
    X0, Y0 = int(max(np.floor(x0 - mx), 0)), int(max(np.floor(y0 - my), 0))
    X1, Y1 = int(min(np.ceil(x1 + mx), W)), int(min(np.ceil(y1 + my), H))
    if (x1 - x0) < 3 or (y1 - y0) < 3 or (x0 == X0 and y0 == Y0 and x1 == X1 and y1 == Y1):
        return rect_mask  # too small, or no background around the box to learn from
    window = np.ascontiguousarray(image_rgb[Y0:Y1, X0:X1])
    shrink = min(1.0, float(np.sqrt(max_pixels / window[..., 0].size)))
    rect = (x0 - X0, y0 - Y0, x1 - x0, y1 - y0)
    if shrink < 1.0:
        small_wh = (max(1, round((X1 - X0) * shrink)), max(1, round((Y1 - Y0) * shrink)))
        window = cv2.resize(window, small_wh, interpolation=cv2.INTER_AREA)
        rect = tuple(int(round(v * shrink)) for v in rect)
    gc = np.zeros(window.shape[:2], np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    # GrabCut's k-means draws from OpenCV's global RNG, whose state depends on every earlier call in the thread:
    # seed it so that the same image and box always give the same initial mask (and the same track).
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(cv2.cvtColor(window, cv2.COLOR_RGB2BGR), gc, rect, bgd, fgd, iterations, cv2.GC_INIT_WITH_RECT)
    except cv2.error as e:  # degenerate colour models (e.g. a flat image)
        log.warning("GrabCut failed (%s); using the %s as the initial mask", e, fallback)
        return _fallback_mask(rect_mask, box, fallback)
    fg = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.float32)
    if shrink < 1.0:  # back to full resolution, kept inside the box
        fg = cv2.resize(fg, (X1 - X0, Y1 - Y0), interpolation=cv2.INTER_LINEAR)
    m = np.zeros((H, W), bool)
    m[Y0:Y1, X0:X1] = fg > 0.5
    m &= rect_mask
    if m.sum() < 0.05 * rect_mask.sum():
        log.warning("GrabCut found almost nothing in the box; using the %s as the initial mask", fallback)
        return _fallback_mask(rect_mask, box, fallback)
    return m
