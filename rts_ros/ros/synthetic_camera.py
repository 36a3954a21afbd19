"""Synthetic camera for tests, the benchmark and demos: a textured square moving over a textured
background, published as sensor_msgs/Image stamped with the current time."""
from __future__ import annotations

import math

import numpy as np


def synthetic_frame(index: int, width: int, height: int, side: int | None = None
                    ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """(HxWx3 uint8 RGB, target box x, y, w, h) of frame `index`: the target moves on an ellipse."""
    side = side or max(8, min(width, height) // 5)
    yy, xx = np.mgrid[0:height, 0:width]
    bg = np.stack([(xx * 3 + yy) % 64 + 40, (yy * 5) % 48 + 60, (xx + yy * 2) % 32 + 80], axis=2)
    img = bg.astype(np.uint8)
    cx = width / 2 + (width / 2 - side) * 0.6 * math.cos(index * 0.15)
    cy = height / 2 + (height / 2 - side) * 0.6 * math.sin(index * 0.15)
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    ty, tx = np.mgrid[0:side, 0:side]
    target = np.stack([200 + (tx // 4 % 2) * 55, 40 + (ty // 4 % 2) * 60, 30 + 0 * tx], axis=2)
    img[y0:y0 + side, x0:x0 + side] = target.astype(np.uint8)
    return img, (x0, y0, side, side)
