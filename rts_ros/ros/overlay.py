"""The debug image: mask tint, box, state, confidence and quality drawn on the input (bgr8)."""
from __future__ import annotations

import cv2
import numpy as np

# BGR colours per state name: green tracking, amber uncertain, red lost, grey idle.
_COLOURS = {"TRACKING": (80, 200, 60), "UNCERTAIN": (0, 190, 255), "LOST": (60, 60, 230), "IDLE": (160, 160, 160)}


def render_overlay(rgb: np.ndarray, mask: np.ndarray | None, box_xyxy: tuple[int, int, int, int] | None,
                   state: str, confidence: float, quality: float = float("nan")) -> np.ndarray:
    """HxWx3 bgr8 copy of `rgb` with the mask tinted, the box drawn and a `STATE 0.87 q 0.92` label
    (confidence, then quality where the model has one)."""
    out = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    colour = _COLOURS.get(state, (255, 255, 255))
    if mask is not None and mask.any():
        sel = mask.astype(bool)
        out[sel] = (0.5 * out[sel] + 0.5 * np.array(colour)).astype(np.uint8)
    if box_xyxy is not None and box_xyxy[2] > box_xyxy[0] and box_xyxy[3] > box_xyxy[1]:
        x0, y0, x1, y1 = box_xyxy
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), colour, 2)
    label = state if state == "IDLE" else f"{state} {confidence:.2f}" + (
        f" q {quality:.2f}" if np.isfinite(quality) else "")
    scale = max(0.4, min(out.shape[:2]) / 600)
    cv2.putText(out, label, (5, int(20 * scale) + 5), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, max(1, int(2 * scale)))
    return out
