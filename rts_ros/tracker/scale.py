"""Scale/state update of the segmentation branch (§3.5-3): update_scale and search_area_rescaling."""
from __future__ import annotations

import numpy as np


def update_scale(target_sz, base_target_sz, target_scale: float, max_scale_change: tuple[float, float] | None):
    """New (target_scale, target_sz) from an estimated size: only its area counts, ratio clipped per frame.

    target_sz becomes base_target_sz * scale, so the aspect ratio stays the initial one.
    """
    s_new = np.float32(np.sqrt(np.prod(np.asarray(target_sz, np.float32)) / np.prod(base_target_sz)))
    if max_scale_change is not None:
        ratio = np.clip(s_new / np.float32(target_scale), max_scale_change[0], max_scale_change[1])
        s_new = np.float32(target_scale) * np.float32(ratio)
    return float(s_new), (np.asarray(base_target_sz, np.float32) * s_new).astype(np.float32)


def search_area_rescaling(target_scales: list[float], counter: int, min_max_hist: tuple[int, int, int] = (2, 30, 60)):
    """Lost target: scale = mean of the recent scales >= the latest (last n of them, n from the counter).

    Returns (new target_scale or None when the history is empty, new counter).
    """
    counter += 1
    lo, hi, hist = min_max_hist
    n = max(lo, min(hi, counter))
    if not target_scales:
        return None, counter
    recent = np.asarray(target_scales[-hist:], dtype=np.float32)
    kept = recent[recent >= recent[-1]][-n:]
    return float(np.mean(kept, dtype=np.float32)), counter
