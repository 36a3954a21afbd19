"""Output-box calibration (rts_ros.tracker.box_calibration): the arithmetic from first principles, and in the
Tracker: only the published box changes, by the correction measured on frame 1."""
import math

import numpy as np
import pytest

from rts_ros.api import Tracker, TrackerConfig
from rts_ros.errors import ConfigError
from rts_ros.tracker.box_calibration import BoxCalibration

ON = {"box_calibration_size_weight": 0.5, "box_calibration_size_range": [0.5, 2.0],
      "box_calibration_offset_weight": 0.3, "box_calibration_offset_max": 0.25}


def test_measure_damps_and_clips_the_first_frame_disagreement():
    # init box twice as wide as the mask's box, centre 40 px (0.4 box widths) to its right
    c = BoxCalibration.measure((100, 100, 200, 100), (110, 100, 100, 100), 0.5, (0.5, 2.0), 0.3, 0.25)
    assert c.scale == pytest.approx((math.sqrt(2), 1.0))
    assert c.offset == pytest.approx((0.3 * 0.25, 0.0))          # 0.4 clipped to 0.25, then x 0.3
    # a tenfold ratio is clipped to the range before the power
    c = BoxCalibration.measure((0, 0, 1000, 10), (0, 0, 100, 100), 1.0, (0.5, 2.0), 0.0, 0.25)
    assert c.scale == pytest.approx((2.0, 0.5)) and c.offset == (0.0, 0.0)


def test_apply_moves_the_centre_scales_and_clips_to_the_image():
    c = BoxCalibration(scale=(2.0, 0.5), offset=(0.1, -0.2))
    # box 40x20 at centre (120, 60): centre -> (124, 56), size -> 80x10
    assert c.apply((100, 50, 40, 20), (480, 640)) == pytest.approx((84.0, 51.0, 80.0, 10.0))
    # near the left border the widened box is clipped at x = 0
    assert c.apply((0, 50, 40, 20), (480, 640)) == pytest.approx((0.0, 51.0, 64.0, 10.0))


@pytest.mark.parametrize("first", [(0, 0, 0, 0), (5, 5, float("nan"), 10), (5, 5, 10, -1)])
def test_an_empty_or_invalid_first_box_gives_the_identity(first):
    c = BoxCalibration.measure((10, 10, 50, 50), first, 0.5, (0.5, 2.0), 0.3, 0.25)
    assert c.is_identity
    assert c.apply((3, 4, 5, 6), (100, 100)) == (3.0, 4.0, 5.0, 6.0)


def test_empty_boxes_pass_through_unchanged():
    c = BoxCalibration(scale=(1.5, 1.5), offset=(0.1, 0.1))
    assert c.apply((-1.0, -1.0, -1.0, -1.0), (100, 100)) == (-1.0, -1.0, -1.0, -1.0)


@pytest.mark.parametrize("field,value", [("box_calibration_size_weight", 1.5),
                                         ("box_calibration_offset_weight", -0.1),
                                         ("box_calibration_size_range", [1.2, 2.0]),
                                         ("box_calibration_size_range", [0.5, 2.0, 3.0]),
                                         ("box_calibration_offset_max", float("nan"))])
def test_bad_settings_name_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        TrackerConfig.from_dict({field: value})


def test_tracker_publishes_the_calibrated_box_and_tracks_exactly_as_without():
    """The shipped network on a synthetic clip whose init box is deliberately 30 % wider than the mask: with the
    calibration on, every box from frame 1 on is the raw box mapped by the correction measured on frame 1; the
    masks, and so the tracking itself, are those of the tracker without it."""
    from rts_ros.data.synthetic import generate_sequence

    seq = generate_sequence(7, num_frames=6, difficulty=0.0)
    ys, xs = np.nonzero(seq.masks[0])
    x0, y0, w, h = xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    init_box = (x0 - 0.15 * w, y0, 1.3 * w, h)
    runs = {}
    for name, over in (("off", {k: 0.0 for k in ON if k.endswith("weight")}), ("on", ON)):
        tr = Tracker.from_weights(None, device="cpu", overrides=over)
        tr.initialize(seq.frames[0], box=init_box, mask=seq.masks[0])
        out = []
        for img in seq.frames[1:]:
            r = tr.track(img)
            out.append((r.mask, r.box, tr.last_info.output_box, tr.last_info.output_box_source))
        runs[name] = (tr, out)
    (off, res_off), (on, res_on) = runs["off"], runs["on"]
    assert off.box_calibration.is_identity
    assert res_on[0][3] == "segmentation"
    expect = BoxCalibration.measure(init_box, res_on[0][2], 0.5, (0.5, 2.0), 0.3, 0.25)
    assert on.box_calibration == expect and expect.scale[0] > 1.05   # the wider init box widens the output
    hw = seq.frames[0].shape[:2]
    for (m_off, b_off, raw_off, _), (m_on, b_on, raw_on, _) in zip(res_off, res_on):
        assert np.array_equal(m_off, m_on) and raw_off == raw_on
        assert b_off == raw_off
        assert b_on == pytest.approx(expect.apply(raw_on, hw))
    # a new initialize() forgets the correction until its own frame 1
    on.initialize(seq.frames[0], mask=seq.masks[0])
    assert on.box_calibration.is_identity
