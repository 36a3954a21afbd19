"""The demo's ground-truth drawing: frames where the generated target is hidden carry a NaN box, and the demo must
draw nothing there rather than stop (it did, on a machine without opencv-doc's photos, where the demo clip
hides its target in one frame)."""
import math

import numpy as np

from rts_ros.cli.demo import draw_ground_truth


def test_a_hidden_target_draws_nothing():
    frame = np.zeros((20, 20, 3), np.uint8)
    draw_ground_truth(frame, (math.nan, math.nan, math.nan, math.nan))
    draw_ground_truth(frame, None)
    assert not frame.any()


def test_a_visible_target_draws_its_outline_only():
    frame = np.zeros((20, 20, 3), np.uint8)
    draw_ground_truth(frame, (2.0, 3.0, 5.0, 4.0))     # columns 2..6, rows 3..6
    assert (frame[3, 2:7] == 255).all() and (frame[6, 2:7] == 255).all()
    assert (frame[3:7, 2] == 255).all() and (frame[3:7, 6] == 255).all()
    assert not frame[4:6, 3:6].any() and not frame[7:].any() and not frame[:, 7:].any()
