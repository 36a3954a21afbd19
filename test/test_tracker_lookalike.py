"""Tracker options against look-alikes (none in the reference): the mask growth guard
(rts_ros.tracker.growth_guard), mask_component 'peak' and the KCF mask guide (rts_ros.tracker.mask_guide); the
rules themselves, and the tracker with them on the shipped weights and a real photo where an exact copy of the
target slides in and comes to touch it."""
from __future__ import annotations


import cv2
import numpy as np
import pytest
import torch

from rts_ros.errors import ConfigError
from rts_ros.eval.metrics import box_iou
from rts_ros.testing import PhotoScene
from rts_ros.tracker.config import TrackerConfig
from rts_ros.tracker.components import select_component
from rts_ros.tracker.growth_guard import GrowthGuard, cut_to_window
from rts_ros.tracker.mask_guide import KCFGuide


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


def test_guide_window_keeps_the_blobs_it_touches_and_falls_back_to_the_largest():
    m = torch.zeros(20, 30, dtype=torch.bool)
    m[2:6, 2:6] = True        # small blob, top left (16 px)
    m[10:18, 15:28] = True    # large blob (104 px)
    m[2:4, 20:22] = True      # tiny blob, top right
    keep = select_component(m, "largest", (0, 0), None, guide=(0, 8, 0, 8))      # touches the small one only
    assert int(keep.sum()) == 16 and bool(keep[3, 3])
    keep = select_component(m, "largest", (0, 0), None, guide=(0, 5, 0, 25))     # the small and the tiny ones
    assert int(keep.sum()) == 20 and not bool(keep[12, 20])
    keep = select_component(m, "largest", (0, 0), None, guide=(8, 9, 0, 2))      # touches nothing: the largest
    assert int(keep.sum()) == 104
    assert select_component(m, "largest", (0, 0), None, guide=(0, 20, 0, 30)) is None   # all kept: no change


@pytest.mark.parametrize("target_px", [0.0, 16.0])
def test_kcf_guide_follows_a_moving_photo_target_in_camera_pixels(target_px):
    """On a real photo the guide box (grown by the margin) stays on a target that moves 3 px a frame, also when
    KCF works on frames shrunk to a 16 px target (boxes come back in camera pixels)."""
    try:
        scene = PhotoScene(36)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    g = KCFGuide(margin=0.5, reinit_quality=0.6, reinit_every=25, target_px=target_px)
    rgb = lambda pos: cv2.cvtColor(scene.frame(pos), cv2.COLOR_BGR2RGB)   # noqa: E731
    g.start(rgb((100, 100)), (100, 100, 36, 36))
    for i in range(1, 21):
        x = 100 + 3 * i
        win = g.update(rgb((x, 100)))
        assert win is not None, f"KCF lost the target at frame {i}"
        y0, y1, x0, x1 = win
        # the margin grows the box by half its size on each side: 2x the target's side
        assert abs((x1 - x0) - 72) <= 4 and abs((y1 - y0) - 72) <= 4
        core = (x0 + (x1 - x0) / 4, y0 + (y1 - y0) / 4, (x1 - x0) / 2, (y1 - y0) / 2)
        iou = float(box_iou(np.array(core), np.array((x, 100, 36, 36)))[0])
        assert iou >= 0.6, f"frame {i}: guide off the target (IoU {iou:.2f})"


def test_kcf_guide_restarts_only_on_trusted_boxes():
    try:
        scene = PhotoScene(36)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    g = KCFGuide(margin=0.0, reinit_quality=0.6, reinit_every=2)
    img = cv2.cvtColor(scene.frame((100, 100)), cv2.COLOR_BGR2RGB)
    g.start(img, (100, 100, 36, 36))
    g.update(img)
    g.update(img)                                   # aged: due for a restart
    g.after_frame(img, (100, 100, 60, 60), quality=0.5)
    width = lambda win: win[3] - win[2]              # noqa: E731  (margin 0: the window is KCF's box)
    assert abs(width(g.update(img)) - 36) <= 2      # untrusted box: no restart, KCF keeps its size
    g.after_frame(img, (100, 100, 60, 60), quality=0.9)
    assert abs(width(g.update(img)) - 60) <= 2      # trusted and aged: restarted at the output box's size


@pytest.mark.parametrize("guide", ["kcf", "kcf_window"])
def test_kcf_mask_guide_stays_on_the_target_while_the_lookalike_is_outside_its_window(guide):
    # the guide window is the target grown by half its side (18 px) per side: the copy (x = 280 - 8 i) stays
    # outside it while x >= 176 + 18, i.e. for frames i <= 10
    ious, _ = _run({"mask_component": "largest"})
    assert ious[:11].min() < 0.1, "the largest blob no longer jumps to the copy: the scenario tests nothing"
    ious, _ = _run({"mask_component": "largest", "mask_guide": guide})
    assert ious[:11].min() >= 0.6, f"with the {guide} guide the mask box left the target: IoU {np.round(ious[:11], 2)}"


@pytest.mark.parametrize("overrides,field", [
    ({"mask_guide": "kcf_wrong"}, "mask_guide"), ({"mask_guide": "kcf", "mask_component": "all"}, "mask_guide"),
    ({"mask_guide_margin": -1.0}, "mask_guide_margin"), ({"mask_guide_target_px": -5.0}, "mask_guide_target_px"),
    ({"mask_guide_reinit_every": 0}, "mask_guide_reinit_every"),
    ({"mask_guide_reinit_quality": 1.5}, "mask_guide_reinit_quality")])
def test_bad_guide_settings_are_named(overrides, field):
    with pytest.raises(ConfigError, match=f"field '{field}'"):
        TrackerConfig.from_dict(overrides)
