"""Optional mask clean-up (not in the reference): keep one connected component of the binary mask.

The reference's output box is the tight box of the whole mask, so one stray blob on a look-alike object
inflates the box, and the next frame's search area and memory sample follow it.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch


def select_component(binary: torch.Tensor, mode: str, pos_yx) -> torch.Tensor | None:
    """bool (H, W) -> bool (H, W) of one 8-connected component, or None when nothing is dropped.

    mode 'largest': the component with most pixels; 'nearest': the one whose centroid is closest to ``pos_yx``
    (the target position the frame was cropped around); 'all': None. One host transfer of the mask (it is
    transferred for the caller anyway)."""
    if mode == "all":
        return None
    host = binary.to("cpu", torch.uint8).numpy()
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(host, connectivity=8)
    if n <= 2:
        return None
    if mode == "largest":
        keep = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    else:
        d2 = (centroids[1:, 0] - float(pos_yx[1])) ** 2 + (centroids[1:, 1] - float(pos_yx[0])) ** 2
        keep = 1 + int(np.argmin(d2))
    return torch.from_numpy(labels == keep).to(binary.device)
