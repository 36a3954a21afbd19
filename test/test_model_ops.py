"""First-principles checks of the numeric building blocks: PrRoIPool integral, filter gradient, GN step."""
import numpy as np
import pytest
import torch

from rts_ros.model.blocks import apply_filter, filter_gradient
from rts_ros.model.learners import SegOptimizer
from rts_ros.model.prroi_pool import prroi_pool2d


def _bilinear(f, y, x):
    """Bilinear interpolant of a 2-D map with zero outside (pixel centres at integers)."""
    h, w = f.shape
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    out = 0.0
    for dy in (0, 1):
        for dx in (0, 1):
            yy, xx = y0 + dy, x0 + dx
            wgt = (1 - np.abs(y - yy)) * (1 - np.abs(x - xx))
            ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            out = out + np.where(ok, f[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)], 0.0) * wgt
    return out


def _brute_pool(f, box, ph, pw, n=400):
    x1, y1, x2, y2 = box
    out = np.zeros((ph, pw))
    for i in range(ph):
        for j in range(pw):
            ya = y1 + (y2 - y1) * i / ph; yb = y1 + (y2 - y1) * (i + 1) / ph
            xa = x1 + (x2 - x1) * j / pw; xb = x1 + (x2 - x1) * (j + 1) / pw
            ys = ya + (np.arange(n) + 0.5) * (yb - ya) / n   # midpoint rule
            xs = xa + (np.arange(n) + 0.5) * (xb - xa) / n
            out[i, j] = _bilinear(f, ys[:, None], xs[None, :]).mean()
    return out


@pytest.mark.parametrize("box", [(1.3, 0.7, 5.9, 4.2), (-2.5, -1.0, 3.0, 2.5), (4.0, 3.0, 9.5, 8.0),
                                 (2.2, 2.2, 2.2, 5.0)])
def test_prroi_pool_equals_numerical_integral(box):
    rng = np.random.default_rng(0)
    f = rng.standard_normal((6, 7))
    ours = prroi_pool2d(torch.from_numpy(f)[None, None], torch.tensor([[0.0, *box]], dtype=torch.float64),
                        3, 2, 1.0)[0, 0].numpy()
    if box[2] == box[0]:  # zero-width RoI -> zero-area bins -> 0
        assert np.all(ours == 0)
        return
    np.testing.assert_allclose(ours, _brute_pool(f, box, 3, 2), atol=2e-4)


def test_prroi_pool_scale_and_batch_index_and_gradient():
    f = torch.randn(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    coords = torch.tensor([[16.0, 16.0, 64.0, 48.0]], dtype=torch.float64, requires_grad=True)
    pool = lambda x, c: prroi_pool2d(x, torch.cat([torch.ones(1, 1, dtype=c.dtype), c], 1), 2, 2, 1 / 16)
    a = pool(f, coords)
    b = prroi_pool2d(f[1:], torch.tensor([[0.0, 1.0, 1.0, 4.0, 3.0]], dtype=torch.float64), 2, 2, 1.0)
    assert torch.allclose(a, b)
    assert torch.autograd.gradcheck(pool, (f, coords))


@pytest.mark.parametrize("k", [3, 4])
def test_filter_gradient_equals_autograd(k):
    torch.manual_seed(0)
    feat = torch.randn(3, 2, 5, 7, 9, dtype=torch.float64)
    filt = torch.randn(2, 4, 5, k, k, dtype=torch.float64, requires_grad=True)
    q = torch.randn_like(apply_filter(feat, filt))
    (g_ref,) = torch.autograd.grad((q * apply_filter(feat, filt)).sum(), filt)
    assert torch.allclose(filter_gradient(feat, q, (k, k)), g_ref)


def test_gauss_newton_step_is_exact_line_minimum():
    # For a quadratic loss the GN step length minimises the loss along the gradient direction.
    torch.manual_seed(1)
    opt = SegOptimizer(0.1).double()
    feat = torch.randn(2, 1, 6, 5, 5, dtype=torch.float64)
    lab, w = torch.randn(2, 1, 3, 5, 5, dtype=torch.float64), torch.rand(2, 1, 3, 5, 5, dtype=torch.float64)
    f0 = torch.randn(1, 3, 6, 3, 3, dtype=torch.float64)
    lam = opt.residual_module.filter_reg.detach()

    def loss(f):
        return 0.5 * ((w * (apply_filter(feat, f) - lab)) ** 2).sum() + 0.5 * ((lam * f) ** 2).sum()

    f1 = opt(f0, feat, lab, w, 1).detach()
    d = f1 - f0
    for t in (0.9, 1.1):
        assert loss(f1) < loss(f0 + t * d)
    assert loss(f1) < loss(f0)


def test_box_rasterisation_truncates_and_slices_like_python():
    from rts_ros.model.encoders import boxes_to_masks

    m = boxes_to_masks(torch.tensor([[2.9, 1.5, 3.99, 2.2], [-5.0, 2.0, 10.0, 3.0], [4.0, -30.0, 2.0, 20.0]]), (12, 16))
    assert m.shape == (3, 1, 12, 16)
    expect = torch.zeros(3, 12, 16)
    expect[0, 1:3, 2:5] = 1          # int() truncation: x=2, y=1, w=3, h=2
    expect[1, 2:5, 0:5] = 1          # negative x clipped at 0, end x+w = 5
    expect[2, 0:12 - 10, 4:6] = 1    # end y+h = -10 is a negative slice end (reference behaviour)
    assert torch.equal(m[:, 0], expect)
