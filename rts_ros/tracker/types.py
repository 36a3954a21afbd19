"""Public result types of the tracker API (docs/ARCHITECTURE.md "Tracker API")."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np


class TrackState(enum.IntEnum):
    """IDLE before initialize(); TRACKING when both branches find the target; UNCERTAIN when exactly one
    fails (instance branch 'not found', or the mask empty / too small); LOST when both fail."""

    IDLE = 0
    TRACKING = 1
    UNCERTAIN = 2
    LOST = 3


@dataclass(frozen=True)
class TrackResult:
    """One frame's output.

    mask: HxW uint8 (0/255), the full-image segmentation.
    box: (x, y, w, h) float, the reference's output box (§3.8): the mask's tight box, or the instance
        branch's box when the mask is empty or its soft area <= min_mask_area. With the box calibration on
        (the shipped model's settings; rts_ros.tracker.box_calibration) that box is mapped onto the init
        box's convention, measured on frame 1; the raw box is in Tracker.last_info.output_box.
    confidence: maximum of the instance branch's score map. The scores are an unbounded linear filter
        response trained towards Gaussian labels with peak 1: about 1 on a well-localised target,
        below `clf_target_not_found_threshold` (0.3) = not found; can be slightly negative or above 1.
        1.0 on the init frame (given target).
    state: TrackState.
    frame_index: 0 for the init frame, then 1, 2, ...
    mask_area: number of pixels of `mask`.
    timings: per-stage seconds; filled only when the tracker's profiling is on.
    quality: estimated probability that `box` is right (IoU >= 0.5 rather than < 0.1), from the weights'
        quality model (rts_ros.tracker.quality); NaN when the weights have none. 1.0 on the init frame.
    """

    mask: np.ndarray
    box: tuple[float, float, float, float]
    confidence: float
    state: TrackState
    frame_index: int
    mask_area: int
    timings: dict[str, float] = field(default_factory=dict)
    quality: float = float("nan")
