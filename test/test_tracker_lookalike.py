"""Two tracker options against look-alikes (neither in the reference): the mask growth guard
(rts_ros.tracker.growth_guard) and mask_component 'peak'; the rules themselves, and the tracker with them on the
shipped weights and a real photo where an exact copy of the target slides in and comes to touch it."""
from __future__ import annotations


import cv2
import numpy as np
import pytest
import torch

from rts_ros.errors import ConfigError
from rts_ros.eval.metrics import box_iou
from rts_ros.testing import PhotoScene
from rts_ros.tracker.config import TrackerConfig
from rts_ros.tracker.growth_guard import GrowthGuard, cut_to_window


def test_guard_cuts_only_growth_past_the_limit_around_the_given_centre():
    g = GrowthGuard(limit=4.0, window=3, patience=5, init_box=(0, 0, 10, 20))
    assert g.clip_window((5, 5, 20, 40), (50, 50)) is None           # exactly 4x the area: passes
    win = g.clip_window((5, 5, 21, 40), (50.0, 60.0))                # just over: cut
    # sqrt(4) = 2x the median size (w 10, h 20), centred at (y 50, x 60)
    assert win == (30, 71, 50, 71)


def test_cut_frames_enter_the_history_at_the_median_and_patience_lets_lasting_growth_pass():
    g = GrowthGuard(limit=2.0, window=4, patience=3, init_box=(0, 0, 10, 10))
    big = (0, 0, 30, 30)
    for _ in range(3):                                               # a blob 9x the area sticks for 3 frames
        assert g.clip_window(big, (0, 0)) is not None
        g.record(big, clipped=True)
    assert g.median_size() == (10.0, 10.0)                           # the reference did not ratchet up
    assert g.clip_window(big, (0, 0)) is None                        # 4th frame: taken as real growth
    g.record(big, clipped=False)
    assert g.median_size() == (30.0, 30.0)                           # and it is the new reference
    g.record((0, 0, 0, 0), clipped=False)                            # empty boxes are not remembered
    assert g.median_size() == (30.0, 30.0)


def test_cut_to_window_clears_outside_and_tolerates_windows_past_the_image():
    m = torch.ones(8, 10, dtype=torch.bool)
    out = cut_to_window(m, (-3, 4, 6, 40))
    assert int(out.sum()) == 4 * 4 and bool(out[:4, 6:].all())
    assert int(cut_to_window(m, (20, 30, 0, 5)).sum()) == 0


@pytest.mark.parametrize("field,value", [("mask_growth_limit", 1.0), ("mask_growth_limit", -2.0),
                                         ("mask_growth_limit", float("inf")), ("mask_growth_window", 0),
                                         ("mask_growth_patience", 0)])
def test_bad_guard_settings_are_named(field, value):
    with pytest.raises(ConfigError, match=field):
        TrackerConfig.from_dict({field: value})


def _lookalike_clip():
    """A photo background; the target (a round patch of another photo) stands still while an exact copy slides
    in from the right and stays touching it. Yields (RGB frame, target box)."""
    try:
        scene = PhotoScene(36)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    target = (140, 100, 36, 36)
    for i in range(-1, 40):
        copy = None if i < 0 else (max(176, 280 - 8 * i), 100)
        yield cv2.cvtColor(scene.frame((140, 100), copy), cv2.COLOR_BGR2RGB), target


def _run(overrides: dict, trace: list | None = None):
    """Mask-box IoU with the target per tracked frame, and the number of frames the growth guard cut. ``trace``
    receives (mask box, crop centre, confidence) per frame."""
    from rts_ros.tracker.tracker import Tracker

    t = Tracker.from_weights(None, device="cpu", overrides=overrides)
    frames = _lookalike_clip()
    first, box = next(frames)
    t.initialize(first, box=box)
    ious, clipped = [], 0
    for image, target in frames:
        r = t.track(image)
        ious.append(float(box_iou(np.array(t.last_info.mask_box), np.array(target))[0]))
        clipped += t.last_info.mask_growth_clipped
        if trace is not None:
            trace.append((t.last_info.mask_box, tuple(t.last_info.search_center.tolist()), r.confidence))
    return np.array(ious), clipped


def test_guard_that_never_cuts_changes_nothing():
    """The guard only acts through its cuts: with a limit no mask reaches, every frame (mask box, the crop
    centre the next memory sample is taken at, confidence) equals the unguarded run's."""
    off, idle = [], []
    _run({}, off)
    _, cuts = _run({"mask_growth_limit": 1e6}, idle)
    assert cuts == 0 and idle == off


def test_guard_keeps_the_mask_off_a_touching_lookalike_with_the_shipped_model():
    # two equal disks side by side: a box around both has IoU at most 0.5 with either (first principles)
    ious, cuts = _run({})
    assert cuts == 0
    assert ious[-20:].mean() <= 0.5, "the copy no longer joins the mask: the scenario tests nothing"
    ious, cuts = _run({"mask_growth_limit": 1.5})
    assert cuts >= 10
    assert ious[-20:].mean() >= 0.6, f"guarded mask box IoU {ious[-20:].mean():.2f} over the last 20 frames"


def test_peak_component_stays_on_the_target_while_the_lookalike_is_a_separate_blob():
    # frames 0-12: the copy approaches but does not touch (it touches from frame 13 on)
    ious, _ = _run({"mask_component": "largest"})
    assert ious[:13].min() < 0.1, "the largest blob no longer jumps to the copy: the scenario tests nothing"
    ious, _ = _run({"mask_component": "peak"})
    assert ious[:13].min() >= 0.6, f"with 'peak' the mask box left the target: IoU {np.round(ious[:13], 2)}"
