"""Metrics of rts-eval on cases whose values follow from the definitions (OTB, LaSOT, DAVIS)."""
import numpy as np
import pytest

from rts_ros.eval import metrics
from rts_ros.eval.runner import SequenceResult


def _result(pred, gt):
    pred, gt = np.asarray(pred, float), np.asarray(gt, float)
    return SequenceResult("t", "s", pred, metrics.box_iou(pred, gt), metrics.center_error(pred, gt),
                          metrics.normalized_center_error(pred, gt))


def test_perfect_tracker_scores_the_otb_maximum():
    gt = np.array([[10, 20, 30, 40], [12, 22, 30, 41], [15, 25, 28, 39]], float)
    r = _result(gt, gt)
    # IoU 1 exceeds every threshold but the last (1.0): 20 of the 21 OTB thresholds.
    assert r.auc == pytest.approx(20 / 21)
    assert r.precision20 == 1.0
    assert r.norm_precision == 1.0


def test_known_offset_gives_known_iou_and_errors():
    gt = np.array([[0, 0, 10, 10]], float)
    pred = np.array([[5, 0, 10, 10]], float)     # half a box to the right
    assert metrics.box_iou(pred, gt)[0] == pytest.approx(50 / 150)
    assert metrics.center_error(pred, gt)[0] == pytest.approx(5.0)
    assert metrics.normalized_center_error(pred, gt)[0] == pytest.approx(0.5)
    r = _result(pred, gt)
    # IoU 1/3 > t for t = 0, 0.05, ..., 0.30: 7 of 21 thresholds.
    assert r.auc == pytest.approx(7 / 21)
    assert r.precision20 == 1.0
    # Error 5 px is <= t for t = 5..50: 46 of the 51 thresholds.
    assert metrics.precision_curve(r.center_errors).mean() == pytest.approx(46 / 51)
    # Normalized error 0.5 only meets the last threshold (0.5) of 0, 0.01, ..., 0.5.
    assert r.norm_precision == pytest.approx(1 / 51)


def test_precision_at_20_counts_frames_within_20_px():
    gt = np.tile([[100, 100, 20, 20]], (4, 1)).astype(float)
    pred = gt + np.array([[0, 0, 0, 0], [19, 0, 0, 0], [20, 0, 0, 0], [21, 0, 0, 0]])
    assert _result(pred, gt).precision20 == pytest.approx(3 / 4)


def test_missing_prediction_counts_as_failure():
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)
    pred = np.array([[0, 0, 10, 10], [np.nan] * 4])
    np.testing.assert_allclose(metrics.box_iou(pred, gt), [1.0, 0.0])
    assert np.isinf(metrics.center_error(pred, gt)[1])
    assert _result(pred, gt).auc == pytest.approx(0.5 * 20 / 21)


def test_disjoint_boxes_have_zero_iou():
    assert metrics.box_iou(np.array([[0, 0, 5, 5]]), np.array([[10, 10, 5, 5]]))[0] == 0.0


def test_mask_iou():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[0:4, 0:5] = True   # 20 px
    b[2:6, 0:5] = True   # 20 px, 10 shared
    assert metrics.mask_iou(a, b) == pytest.approx(10 / 30)
    assert metrics.mask_iou(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) == 1.0
    assert metrics.mask_iou(a, np.zeros_like(a)) == 0.0


def test_boundary_of_a_square_is_its_one_pixel_ring():
    m = np.zeros((100, 100), bool)
    m[20:60, 20:60] = True
    assert metrics.boundary_map(m).sum() == 160  # ring around a 41 x 41 box


def test_boundary_f_tolerance_follows_the_image_diagonal():
    gt = np.zeros((100, 100), bool)
    gt[20:60, 20:60] = True
    # Tolerance: ceil(0.008 * hypot(100, 100)) = 2 px, so a 2 px shift still matches every boundary pixel.
    for shift in (0, 1, 2):
        pred = np.zeros_like(gt)
        pred[20:60, 20 + shift:60 + shift] = True
        assert metrics.boundary_f(pred, gt) == 1.0
    # A 10 px shift: 70 of the 160 boundary pixels of each mask stay within 2 px of the other's boundary
    # (33 on the top row, 32 on the bottom row, 5 where the left edge meets them).
    pred = np.zeros_like(gt)
    pred[20:60, 30:70] = True
    assert metrics.boundary_f(pred, gt) == pytest.approx(70 / 160)


def test_boundary_f_empty_cases():
    empty = np.zeros((20, 20), bool)
    full = empty.copy()
    full[5:10, 5:10] = True
    assert metrics.boundary_f(empty, empty) == 1.0
    assert metrics.boundary_f(empty, full) == 0.0
    assert metrics.boundary_f(full, empty) == 0.0


def test_bootstrap_interval_of_the_mean_over_sequences():
    """Equal values: no spread. Half zeros, half ones: the interval holds the mean 0.5 and, as the standard error
    sqrt(0.25 / n) says, narrows about twofold from 10 to 40 sequences. Same input, same interval."""
    assert metrics.bootstrap_interval([0.4] * 6) == pytest.approx((0.4, 0.4))
    assert all(np.isnan(metrics.bootstrap_interval([0.4])))
    lo10, hi10 = metrics.bootstrap_interval([0.0, 1.0] * 5)
    lo40, hi40 = metrics.bootstrap_interval([0.0, 1.0] * 20)
    assert lo10 < 0.5 < hi10 and 0.0 <= lo10 and hi10 <= 1.0
    # 95% of a normal: +-1.96 standard errors (0.31 wide for n = 10, 0.155 for n = 40)
    assert hi10 - lo10 == pytest.approx(2 * 1.96 * np.sqrt(0.25 / 10), rel=0.15)
    assert (hi10 - lo10) / (hi40 - lo40) == pytest.approx(2.0, rel=0.2)
    assert metrics.bootstrap_interval([0.0, 1.0] * 5) == (lo10, hi10)
