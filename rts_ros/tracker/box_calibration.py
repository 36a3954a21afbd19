"""Output-box calibration (not in the reference): map the mask's box onto the convention of the user's init box.

The mask's tight box and the box a person draws disagree in a way that stays with the target: a kite's lines or
a dog's tail are in one and not the other, and a small network's mask keeps less of thin parts than the
annotation does. The first tracked frame shows that disagreement (the target has barely moved since the init
box), so its size ratio and centre offset, damped and bounded, are applied to every later output box. Only the
published box changes; the mask and the tracker's own state (crops, memories) stay the reference's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BoxCalibration:
    """Per-sequence correction: box size x `scale` (w, h), centre + `offset` x box size (x, y)."""

    scale: tuple[float, float] = (1.0, 1.0)
    offset: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def measure(cls, init_box, first_box, size_weight: float, size_range: tuple[float, float],
                offset_weight: float, offset_max: float) -> "BoxCalibration":
        """From the init box and the first tracked frame's output box (both x, y, w, h).

        size: (init / first) per axis, clipped to `size_range`, raised to `size_weight` (0 = off, 1 = all of it).
        offset: centre difference in units of the first box's size, clipped to +-`offset_max`, x `offset_weight`.
        An empty or non-finite first box gives the identity."""
        a = np.asarray(init_box, np.float64)
        b = np.asarray(first_box, np.float64)
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and min(a[2:]) > 0 and min(b[2:]) > 0):
            return cls()
        lo, hi = size_range
        scale = np.clip(a[2:] / b[2:], lo, hi) ** size_weight
        shift = ((a[:2] + a[2:] / 2) - (b[:2] + b[2:] / 2)) / b[2:]
        offset = np.clip(shift, -offset_max, offset_max) * offset_weight
        return cls(tuple(float(v) for v in scale), tuple(float(v) for v in offset))

    @property
    def is_identity(self) -> bool:
        return self.scale == (1.0, 1.0) and self.offset == (0.0, 0.0)

    def apply(self, box, image_hw: tuple[int, int]) -> tuple[float, float, float, float]:
        """Calibrated (x, y, w, h), clipped to the image; an empty (w or h <= 0) or non-finite box is returned
        as it is."""
        x, y, w, h = (float(v) for v in box)
        if self.is_identity or not (np.isfinite([x, y, w, h]).all() and w > 0 and h > 0):
            return (x, y, w, h)
        cx = x + w / 2 + self.offset[0] * w
        cy = y + h / 2 + self.offset[1] * h
        w2, h2 = w * self.scale[0], h * self.scale[1]
        x0, y0 = max(0.0, cx - w2 / 2), max(0.0, cy - h2 / 2)
        x1, y1 = min(float(image_hw[1]), cx + w2 / 2), min(float(image_hw[0]), cy + h2 / 2)
        if x1 <= x0 or y1 <= y0:   # pushed off the image: keep the uncalibrated box
            return (x, y, w, h)
        return (x0, y0, x1 - x0, y1 - y0)
