"""Box conversions between the tracker (float x, y, w, h) and sensor_msgs/RegionOfInterest (integers)."""
from __future__ import annotations

import math

import numpy as np


def clip_box(box_xywh, width: int, height: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) integers: the float box clipped to the image, x0/y0 floored, x1/y1 ceiled.

    An empty or non-finite box gives (0, 0, 0, 0).
    """
    x, y, w, h = (float(v) for v in box_xywh)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return (0, 0, 0, 0)
    x0 = min(max(math.floor(x), 0), width)
    y0 = min(max(math.floor(y), 0), height)
    x1 = min(max(math.ceil(x + w), 0), width)
    y1 = min(max(math.ceil(y + h), 0), height)
    if x1 <= x0 or y1 <= y0:
        return (0, 0, 0, 0)
    return (x0, y0, x1, y1)


def roi_is_zero(roi) -> bool:
    return roi.x_offset == 0 and roi.y_offset == 0 and roi.width == 0 and roi.height == 0


def roi_to_box(roi) -> tuple[float, float, float, float]:
    return (float(roi.x_offset), float(roi.y_offset), float(roi.width), float(roi.height))


def mask_tight_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, w, h) of the nonzero pixels of a non-empty HxW mask."""
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    return (float(x0), float(y0), float(xs.max() - x0 + 1), float(ys.max() - y0 + 1))
