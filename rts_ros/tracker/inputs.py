"""Validation and normalisation of the images, boxes and masks given to the tracker."""
from __future__ import annotations

import logging
import math

import numpy as np

from rts_ros.errors import InvalidInputError

log = logging.getLogger("rts_ros.tracker")
MIN_BOX_SIDE = 4.0   # pixels; below this a start box holds too little of the target to learn (a warning)


def as_rgb_uint8(image, what: str = "image") -> np.ndarray:
    """HxWx3 uint8 RGB. Grayscale (HxW or HxWx1) is replicated, RGBA drops alpha; other dtypes refused."""
    if not isinstance(image, np.ndarray):
        raise InvalidInputError(f"{what} must be a numpy array (HxWx3 uint8 RGB), got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise InvalidInputError(
            f"{what} has dtype {image.dtype}; convert it to uint8 RGB 0..255 (e.g. (img * 255).astype(np.uint8))")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise InvalidInputError(f"{what} has shape {image.shape}; expected HxW (gray), HxWx3 (RGB) or HxWx4 (RGBA)")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise InvalidInputError(f"{what} of size {image.shape[:2]} is too small to track in")
    return np.ascontiguousarray(image)


def check_box(box, image_hw: tuple[int, int]) -> tuple[float, float, float, float]:
    """Validate [x, y, w, h]; a box partly outside the image is clipped to it (with a warning)."""
    try:
        x, y, w, h = (float(v) for v in box)
    except (TypeError, ValueError) as e:
        raise InvalidInputError(f"box must be 4 numbers (x, y, w, h), got {box!r}") from e
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise InvalidInputError(f"box {box!r} contains NaN or infinity; give finite x, y, w, h in pixels")
    if w <= 0 or h <= 0:
        raise InvalidInputError(f"box {box!r} has zero or negative size; w and h must be > 0 pixels")
    H, W = image_hw
    x0, y0, x1, y1 = max(x, 0.0), max(y, 0.0), min(x + w, float(W)), min(y + h, float(H))
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise InvalidInputError(f"box {box!r} lies outside the {W}x{H} image; give a box on the target")
    out = (x, y, w, h)
    if (x0, y0, x1, y1) != (x, y, x + w, y + h):
        out = (x0, y0, x1 - x0, y1 - y0)
        log.warning("init box %s is partly outside the %dx%d image; clipped to %s", tuple(box), W, H, out)
    if min(out[2], out[3]) < MIN_BOX_SIDE:
        log.warning("init box %s is only %.0fx%.0f pixels: too little of the target to learn it from; expect "
                    "UNCERTAIN/LOST (give the target's whole extent)", tuple(box), out[2], out[3])
    return out


def check_mask(mask, image_hw: tuple[int, int]) -> np.ndarray:
    """HxW mask (bool, or numbers: non-zero = target) -> bool array; must match the image and be non-empty."""
    if not isinstance(mask, np.ndarray):
        raise InvalidInputError(f"mask must be a numpy array, got {type(mask).__name__}")
    if mask.ndim == 3 and mask.shape[2] in (1, 3, 4):
        mask = mask[:, :, 0]
    if mask.shape != tuple(image_hw):
        raise InvalidInputError(f"mask has shape {mask.shape} but the image is {tuple(image_hw)}; give an HxW mask")
    m = mask > 0
    if not m.any():
        raise InvalidInputError("mask is empty (no non-zero pixel); give a mask covering the target")
    return m
