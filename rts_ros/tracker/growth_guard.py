"""Optional bound on how fast the output mask may grow (not in the reference).

The reference's output box is the tight box of the mask. When a look-alike or an adjacent object joins the
mask, the box (and the next crop, memory sample and classifier label derived from it) grows over a few frames to
many times the target; the per-frame ``max_scale_change`` clip acts on the internal scale only and compounds.
This guard compares the mask's box with the median size of the recent output boxes; a box more than ``limit``
times that area is cut to a window of ``sqrt(limit)`` times the median size, centred where the instance branch
puts the target (or, when it has lost it, at the crop's target position). Cut frames enter the history at the
median size, so a passing object stays cut for as long as it sticks to the target, up to ``patience`` frames;
growth that lasts longer is taken as real. A steady zoom stays under the limit and is never cut.
"""
from __future__ import annotations

from collections import deque

import numpy as np
import torch


class GrowthGuard:
    def __init__(self, limit: float, window: int, patience: int, init_box) -> None:
        self.limit = float(limit)
        self.patience = int(patience)
        self.sizes: deque[tuple[float, float]] = deque(maxlen=int(window))
        self.sizes.append((float(init_box[2]), float(init_box[3])))
        self.clipped_run = 0  # consecutive frames cut so far

    def median_size(self) -> tuple[float, float]:
        return tuple(float(np.median([s[i] for s in self.sizes])) for i in (0, 1))

    def clip_window(self, box, center_yx) -> tuple[int, int, int, int] | None:
        """(y0, y1, x0, x1) to cut the mask to when ``box`` [x, y, w, h] grew past the limit, else None.

        After ``patience`` consecutive cuts the growth is taken as real (an approaching target, a mask that
        recovers its full extent): the box passes and becomes the new reference."""
        med_w, med_h = self.median_size()
        if box[2] * box[3] <= self.limit * med_w * med_h:
            return None
        if self.clipped_run >= self.patience:
            self.sizes.clear()
            return None
        half = 0.5 * np.sqrt(self.limit) * np.array([med_h, med_w])
        cy, cx = (float(v) for v in center_yx)
        return (int(np.floor(cy - half[0])), int(np.ceil(cy + half[0])) + 1,
                int(np.floor(cx - half[1])), int(np.ceil(cx + half[1])) + 1)

    def record(self, box, clipped: bool) -> None:
        """Remember this frame's output box [x, y, w, h] (empty boxes are skipped). A cut frame enters the history
        at the median size: entering at its cut size would let the reference ratchet up by ``limit`` every
        half window, as fast as a joining distractor grows."""
        self.clipped_run = self.clipped_run + 1 if clipped else 0
        if clipped:
            self.sizes.append(self.median_size())
        elif box[2] > 0 and box[3] > 0:
            self.sizes.append((float(box[2]), float(box[3])))


def cut_to_window(binary: torch.Tensor, window: tuple[int, int, int, int]) -> torch.Tensor:
    """bool (H, W) with everything outside (y0, y1, x0, x1) cleared (the window may reach past the image)."""
    h, w = binary.shape
    y0, y1, x0, x1 = max(window[0], 0), min(window[1], h), max(window[2], 0), min(window[3], w)
    out = torch.zeros_like(binary)
    if y0 < y1 and x0 < x1:
        out[y0:y1, x0:x1] = binary[y0:y1, x0:x1]
    return out
