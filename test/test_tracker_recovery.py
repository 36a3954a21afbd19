"""Bad frames with the recipe weights on the fixture sequence: an all-black frame and a target that leaves
the image give LOST without a crash, and the tracker finds the target again when it returns."""
import json

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from rts_ros.tracker.tracker import Tracker  # noqa: E402
from rts_ros.tracker.types import TrackState  # noqa: E402

pytestmark = pytest.mark.slow


def shifted(img, dx):
    """Content moved right by dx pixels (black on the left): the target leaves the 320-px-wide image."""
    out = np.zeros_like(img)
    out[:, dx:] = img[:, :-dx]
    return out


def centre_in(box, gt):
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    return gt[0] <= cx <= gt[0] + gt[2] and gt[1] <= cy <= gt[1] + gt[3]


def test_black_frame_and_target_leaving_then_recovery(parity):
    from test_parity_tracker import read_rgb, recipe_networks

    rts, sta = recipe_networks(parity)
    tdir = parity / "tracker"
    seq = json.loads((tdir / "sequence.json").read_text())
    gt = seq["gt_boxes_xywh"]
    frames = [read_rgb(tdir / "frames" / f"{i:03d}.png") for i in range(7)]
    tracker = Tracker(rts, sta, device="cpu")
    tracker.initialize(frames[0], box=seq["init_bbox_xywh"])
    assert tracker.track(frames[1]).state == TrackState.TRACKING
    black = tracker.track(np.zeros_like(frames[0]))
    assert black.state == TrackState.LOST and black.mask_area == 0
    back = tracker.track(frames[2])
    assert back.state == TrackState.TRACKING and centre_in(back.box, gt[2])
    gone = [tracker.track(shifted(frames[3], dx)).state for dx in (200, 260)]
    assert TrackState.TRACKING not in gone and gone[-1] == TrackState.LOST
    again = tracker.track(frames[3])
    assert again.state == TrackState.TRACKING and centre_in(again.box, gt[3])
