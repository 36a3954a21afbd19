"""Crop extraction (§3.3) against the spec's verified test vectors, paste-back (§3.5-10) and init window."""
import numpy as np
import pytest
import torch

from rts_ros.tracker.crop import (
    centered_sample_pos,
    crop_plan,
    expanded_init_patch,
    init_window,
    paste_back,
    paste_region,
    sample_patch,
)

OSZ = (480, 832)
# image, pos, scale, mode, coords, raw crop size (spec §3.3 table, verified against the reference)
VECTORS = [
    ((360, 640), (159.5, 279.5), 0.6578, "inside_major", (2.0, 6.0, 317.5, 553.5), (315, 547)),
    ((360, 640), (200.3, 300.7), 0.5, "replicate", (80.5, 92.5, 321.0, 509.0), (241, 417)),
    ((360, 640), (100.0, 100.0), 1.5, "inside_major", (-4.0, 0.0, 365.5, 640.5), (369, 640)),
    ((1080, 1920), (540.0, 960.0), 2.848, "inside_major", (-14.0, -1.0, 1095.0, 1920.0), (554, 960)),
    ((1080, 1920), (301.0, 1501.0), 2.6, "inside_major", (-14.0, -1.0, 1095.0, 1920.0), (554, 960)),
    ((720, 1280), (50.2, 1250.9), 1.1, "inside_major", (0.0, 364.5, 528.5, 1280.0), (528, 916)),
    ((360, 640), (150.0, 320.0), 0.999, "replicate", (-89.5, -95.0, 391.0, 736.5), (480, 831)),
]


@pytest.mark.parametrize("image_hw,pos,scale,mode,coords,raw", VECTORS)
def test_crop_plan_matches_spec_vectors(image_hw, pos, scale, mode, coords, raw):
    ssz = np.float32(scale) * np.array(OSZ, np.float32)
    df, (oy, ox), (pl, pr, pt, pb), c = crop_plan(image_hw, np.array(pos, np.float32), ssz, OSZ, mode)
    np.testing.assert_allclose(c, coords, atol=1e-4)
    h2 = len(range(oy, image_hw[0], df))
    w2 = len(range(ox, image_hw[1], df))
    assert (h2 + pt + pb, w2 + pl + pr) == raw


def test_sample_patch_pixels_replicate_and_mask_zero():
    im = torch.arange(12 * 16, dtype=torch.float32).view(1, 1, 12, 16)
    # scale 1/40 of 480x832 -> 12x20.8 requested: a crop larger than the image in x, no resize at output 12x21
    patch, geom = sample_patch(im, np.array([5.5, 7.5], np.float32), np.array([12.0, 21.0], np.float32),
                               (12, 21), mode="replicate")
    tl_x = int(geom.coords[1])
    assert tl_x < 0
    # left columns outside the image replicate column 0
    assert torch.equal(patch[0, 0, :, 0], im[0, 0, : patch.shape[-2], 0]) or patch.shape[-2] != 12
    mpatch, _ = sample_patch(torch.ones_like(im), np.array([5.5, 7.5], np.float32),
                             np.array([12.0, 21.0], np.float32), (12, 21), mode="replicate", is_mask=True)
    assert float(mpatch[0, 0, :, 0].sum()) == 0.0  # zero padding for masks
    assert float(mpatch[0, 0, :, -tl_x].min()) == 1.0


def test_sample_geometry_from_coords():
    im = torch.zeros(1, 3, 360, 640)
    _, geom = sample_patch(im, np.array([200.3, 300.7], np.float32), np.float32(0.5) * np.array(OSZ, np.float32),
                           OSZ, mode="replicate")
    np.testing.assert_allclose(geom.sample_pos, [(80.5 + 321.0 - 1) / 2, (92.5 + 509.0 - 1) / 2])
    assert geom.sample_scale == pytest.approx(np.sqrt((240.5 / 480) * (416.5 / 832)), rel=1e-6)


def test_centered_sample_pos_offsets_by_8_scale():
    p = centered_sample_pos(np.array([100.0, 50.0], np.float32), 0.5, OSZ, (30, 52))
    np.testing.assert_allclose(p, [104.0, 54.0])


def test_paste_back_uses_scale_factor_and_truncated_offsets():
    scores = torch.arange(4 * 6, dtype=torch.float32).view(1, 1, 4, 6)
    out = paste_back(scores, np.array([3.0, 4.0], np.float32), 1.0, (8, 10))
    # scale 1: identity resize; r1 = int(3 - 2) = 1, c1 = int(4 - 3) = 1
    assert torch.equal(out[0, 0, 1:5, 1:7], scores[0, 0])
    assert float(out[0, 0, 0].max()) == -100.0 and float(out[0, 0, :, 7:].max()) == -100.0
    big = paste_back(scores, np.array([3.0, 4.0], np.float32), 1.5, (20, 20))
    # floor(4*1.5) x floor(6*1.5) = 6x9 pasted at int(3-3)=0, int(4-4.5)=0 (truncation toward zero)
    assert int((big[0, 0] > -100).sum()) == 6 * 9
    # grid from the factor: dst x=2 samples src (2 + 0.5) / 1.5 - 0.5 = 7/6 on row 0 (values 0..5)
    assert float(big[0, 0, 0, 2]) == pytest.approx(7 / 6, rel=1e-6)
    assert float(big[0, 0, 6:, :].max()) == -100.0


def test_paste_region_is_exactly_where_paste_back_writes():
    """The output stage searches the mask only inside paste_region: it must cover every pasted pixel and no
    other, for odd scales, positions half off the canvas, and crops that miss it."""
    rng = np.random.default_rng(0)
    scores = torch.rand(1, 1, 12, 20) + 1.0          # > fill everywhere, so pasted pixels are recognisable
    for _ in range(200):
        scale = float(rng.uniform(0.3, 3.0))
        pos = rng.uniform(-40, 80, size=2).astype(np.float32)
        out = paste_back(scores, pos, scale, (50, 70))[0, 0] > -100
        region = paste_region((12, 20), pos, scale, (50, 70))
        if region is None:
            assert not out.any()
            continue
        y0, y1, x0, x1 = region[:4]
        inside = torch.zeros_like(out)
        inside[y0:y1, x0:x1] = True
        assert torch.equal(out, inside), (scale, pos, region)


def test_init_window_and_expanded_patch_shift():
    # 240x320 image, target near the top-left: the inside_major emulation shifts the window
    win = init_window((240, 320), np.array([30.0, 40.0], np.float32), 0.4, OSZ)
    # no shrink (min ratio 0.4*480/240 = 0.8 < 1); tl = pos - (S-1)/2 is negative -> positive shift
    S = np.float32(0.4) * np.array(OSZ, np.float32)
    tl = np.array([30.0, 40.0]) - (S - 1) / 2
    expect = np.trunc(-(-np.minimum(tl, 0)) / np.float32(0.4)).astype(int)  # -(max(-tl,0) - 0)/scale
    assert win.shift == (int(expect[0]), int(expect[1]))
    assert win.shift[0] < 0 and win.shift[1] < 0
    im = torch.rand(1, 3, 240, 320)
    patch, geom = expanded_init_patch(im, win, OSZ)
    assert tuple(patch.shape[-2:]) == OSZ
    big, _ = sample_patch(im, win.sample_pos, np.float32(win.sample_scale) * np.array([960, 1664], np.float32),
                          (960, 1664), mode="replicate")
    sy, sx = win.shift
    assert torch.equal(patch, big[..., 240 - sy:720 - sy, 416 - sx:1248 - sx])
