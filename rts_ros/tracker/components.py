"""Optional mask clean-up (not in the reference): keep one connected component of the binary mask.

The reference's output box is the tight box of the whole mask, so one stray blob on a look-alike object
inflates the box, and the next frame's search area and memory sample follow it.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch


def select_component(binary: torch.Tensor, mode: str, pos_yx, roi: tuple[int, int, int, int] | None = None,
                     guide: tuple[int, int, int, int] | None = None) -> torch.Tensor | None:
    """bool (H, W) -> bool (H, W) of one 8-connected component, or None when nothing is dropped.

    mode 'largest': the component with most pixels; 'nearest': the one whose centroid is closest to ``pos_yx``
    (the caller's target position: where the frame was cropped around, or the instance branch's score peak for
    the tracker's 'peak' mode); 'all': None. ``roi`` (y0, y1, x0, x1), when given,
    must hold every set pixel: only it makes the host round trip (the pasted crop, not the whole camera image).
    ``guide`` (y0, y1, x0, x1), when given (rts_ros.tracker.mask_guide), keeps every blob with a pixel inside it
    instead, and falls back to ``mode`` where no blob has one.
    """
    if mode == "all":
        return None
    y0, y1, x0, x1 = roi if roi is not None else (0, binary.shape[0], 0, binary.shape[1])
    host = binary[y0:y1, x0:x1].to("cpu", torch.uint8).numpy()
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(host, connectivity=8)
    if n <= 2:
        return None
    if guide is not None:
        # every blob with a pixel inside the guide window (y0, y1, x0, x1); `mode` decides when none has one
        gy0, gy1 = max(guide[0] - y0, 0), min(guide[1] - y0, host.shape[0])
        gx0, gx1 = max(guide[2] - x0, 0), min(guide[3] - x0, host.shape[1])
        inside = np.unique(labels[gy0:gy1, gx0:gx1]) if gy1 > gy0 and gx1 > gx0 else np.zeros(0, np.int32)
        inside = inside[inside > 0]
        if inside.size:
            if inside.size == n - 1:
                return None
            out = torch.zeros_like(binary)
            out[y0:y1, x0:x1] = torch.from_numpy(np.isin(labels, inside)).to(binary.device)
            return out
    if mode == "largest":
        key = -stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    else:
        key = (centroids[1:, 0] + x0 - float(pos_yx[1])) ** 2 + (centroids[1:, 1] + y0 - float(pos_yx[0])) ** 2
    # ties go to the topmost, then leftmost blob: OpenCV's label order depends on where the scan starts
    keep = 1 + int(np.lexsort((stats[1:, cv2.CC_STAT_LEFT], stats[1:, cv2.CC_STAT_TOP], key))[0])
    out = torch.zeros_like(binary)
    out[y0:y1, x0:x1] = torch.from_numpy(labels == keep).to(binary.device)
    return out
