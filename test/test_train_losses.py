"""Training losses against first principles (Lovász extension, hinge definition) and label geometry."""
import itertools
import math

import numpy as np
import pytest
import torch

from rts_ros.errors import InvalidInputError
from rts_ros.train.labels import gaussian_label
from rts_ros.train.losses import hinge_mse_loss, lovasz_loss


def _jaccard_loss_of_set(wrong: np.ndarray, gt: np.ndarray) -> float:
    """Δ(M) = |M| / |G ∪ M| for the foreground class, M = mispredicted pixels (set function, §5)."""
    union = np.logical_or(gt > 0, wrong).sum()
    return float(wrong.sum() / union) if union else 0.0


def _lovasz_by_integral(errors: np.ndarray, gt: np.ndarray) -> float:
    """Lovász extension as ∫_0^1 Δ({p : e_p >= t}) dt, evaluated exactly on the piecewise-constant integrand."""
    levels = np.unique(np.concatenate([[0.0], errors]))
    total = 0.0
    for lo, hi in zip(levels[:-1], levels[1:]):
        total += (hi - lo) * _jaccard_loss_of_set(errors >= hi, gt)
    return total


def test_lovasz_perfect_prediction_is_zero():
    gt = torch.tensor([[0, 1, 1], [0, 0, 1]], dtype=torch.float32)
    assert lovasz_loss(gt.clone(), gt).item() == 0.0


def test_lovasz_binary_prediction_equals_one_minus_iou():
    gt = torch.tensor([1, 1, 1, 0, 0, 0, 0, 1], dtype=torch.float32)
    pred = torch.tensor([1, 0, 1, 1, 0, 0, 1, 1], dtype=torch.float32)
    inter, union = 3.0, 6.0
    assert lovasz_loss(pred, gt).item() == pytest.approx(1 - inter / union, abs=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_lovasz_matches_integral_definition(seed):
    rng = np.random.default_rng(seed)
    gt = (rng.random(7) < 0.4).astype(np.float64)
    probs = rng.random(7)
    errors = np.abs(gt - probs)
    expected = _lovasz_by_integral(errors, gt)
    got = lovasz_loss(torch.tensor(probs), torch.tensor(gt)).item()
    assert got == pytest.approx(expected, abs=1e-9)


def test_lovasz_is_the_tight_convex_closure_over_all_vertices():
    # On {0,1}^n the extension equals the set function: check every vertex of a 5-pixel example.
    gt = np.array([1, 0, 1, 1, 0], dtype=np.float64)
    for bits in itertools.product([0.0, 1.0], repeat=5):
        pred = np.array(bits)
        wrong = pred != gt
        got = lovasz_loss(torch.tensor(pred), torch.tensor(gt)).item()
        assert got == pytest.approx(_jaccard_loss_of_set(wrong, gt), abs=1e-12)


def test_lovasz_shape_mismatch_is_clear():
    with pytest.raises(InvalidInputError, match="differ in shape"):
        lovasz_loss(torch.zeros(3), torch.zeros(4))


def test_hinge_loss_definition():
    labels = torch.tensor([0.0, 0.0, 0.5, 1.0])
    scores = torch.tensor([-0.3, 0.2, 0.1, 1.5])
    # negatives: relu(-0.3)=0 -> 0, relu(0.2)=0.2 -> 0.04; positives: (0.1-0.5)^2=0.16, (1.5-1)^2=0.25
    assert hinge_mse_loss(scores, labels).item() == pytest.approx((0 + 0.04 + 0.16 + 0.25) / 4)


def test_gaussian_label_peak_follows_the_box():
    # box centre at +64 px right of the crop centre on a 480x832 crop: 64 / 832 * 26 = 2 cells right.
    centre = gaussian_label(np.array([400, 224, 32, 32]), (480, 832), (15, 26))
    right = gaussian_label(np.array([464, 224, 32, 32]), (480, 832), (15, 26))
    assert centre.shape == (16, 27)
    assert np.argmax(right.max(0)) - np.argmax(centre.max(0)) == 2
    sigma = 0.25 / 5 * np.sqrt(26 * 15)
    # Peak value 1 at grid point when the centre is on the grid (x): value at 1 cell off = exp(-1/(2σ²)).
    row = right.max(0)
    k = int(np.argmax(row))
    assert row[k + 1] / row[k] == pytest.approx(np.exp(-0.5 / sigma ** 2), rel=1e-5)


def _hinge_by_integral(logits: np.ndarray, gt: np.ndarray) -> float:
    errors = np.maximum(0.0, 1.0 - logits * (2 * gt - 1))
    levels = np.unique(np.concatenate([[0.0], errors]))
    return sum((hi - lo) * _jaccard_loss_of_set(errors >= hi, gt) for lo, hi in zip(levels[:-1], levels[1:]))


@pytest.mark.parametrize("seed", range(3))
def test_lovasz_hinge_matches_integral_definition(seed):
    from rts_ros.train.losses import lovasz_hinge_loss
    rng = np.random.default_rng(seed)
    gt = (rng.random(9) < 0.4).astype(np.float64)
    logits = rng.normal(0, 2, 9)
    got = lovasz_hinge_loss(torch.tensor(logits), torch.tensor(gt)).item()
    assert got == pytest.approx(_hinge_by_integral(logits, gt), abs=1e-9)


def test_lovasz_hinge_zero_beyond_the_margin_and_one_at_zero_logits():
    from rts_ros.train.losses import lovasz_hinge_loss
    gt = torch.tensor([1.0, 0.0, 1.0, 0.0])
    assert lovasz_hinge_loss(torch.tensor([1.5, -2.0, 1.0, -1.0]), gt).item() == 0.0
    assert lovasz_hinge_loss(torch.zeros(4), gt).item() == pytest.approx(1.0)


def test_balanced_bce_weighs_target_and_background_half_each():
    from rts_ros.train.forward import bce_loss

    masks = torch.zeros(1, 2, 10, 10)
    masks[0, 0, :2, :5] = 1          # 10 % target
    masks[0, 1, :5, :] = 1           # 50 % target
    zero = torch.zeros_like(masks)
    # at logits 0 every pixel costs log 2 and the weights average to 1 per frame
    assert float(bce_loss(zero, masks, True)) == pytest.approx(math.log(2), rel=1e-6)
    # target pixels right, background wrong: the balanced loss is the mean of the two halves' costs
    logits = torch.where(masks > 0, torch.full_like(masks, 4.0), torch.full_like(masks, 4.0))
    right, wrong = math.log1p(math.exp(-4.0)), math.log1p(math.exp(4.0))
    assert float(bce_loss(logits, masks, True)) == pytest.approx((right + wrong) / 2, rel=1e-5)
    # unbalanced: dominated by the majority background of the first frame
    expected_plain = (0.1 * right + 0.9 * wrong + 0.5 * right + 0.5 * wrong) / 2
    assert float(bce_loss(logits, masks, False)) == pytest.approx(expected_plain, rel=1e-5)
