"""The speed-ups change nothing but rounding: BN folding / in-place ReLU copies and the seg GN update."""
import torch

from rts_ros.model import build_rts
from rts_ros.model.learners import SegOptimizer
from rts_ros.tracker.inference_opt import inference_modules
from rts_ros.tracker.seg_update import seg_gn_update

TINY_KWDS = {"backbone_type": "resnet", "backbone_block": "bottleneck", "backbone_layers": [1, 1, 1, 1],
             "backbone_width": 8, "out_feature_dim": 32, "decoder_mdim": 16}


def test_folded_copies_match_and_leave_the_network_untouched():
    torch.manual_seed(0)
    net = build_rts(TINY_KWDS).eval()
    for m in net.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    backbone, decoder = inference_modules(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in backbone.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in decoder.modules())
    x = torch.randn(1, 3, 64, 96) * 50
    with torch.inference_mode():
        ref = net.feature_extractor(x)
        got = backbone(x)
        for k in ref:
            assert (ref[k] - got[k]).abs().max() <= 1e-4 * ref[k].abs().max()
        s = torch.randn(1, 1, 16, 4, 6)
        d_ref, d_got = net.decoder(s, ref, (64, 96)), decoder(s, ref, (64, 96))
        assert (d_ref - d_got).abs().max() <= 1e-4 * d_ref.abs().max()
        assert torch.equal(net.feature_extractor(x)["layer4"], ref["layer4"])  # original still intact
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_seg_gn_update_equals_the_model_optimiser():
    torch.manual_seed(1)
    x = torch.randn(5, 1, 64, 12, 20) * 0.05
    e, w = torch.rand(5, 1, 16, 12, 20), torch.rand(5, 1, 16, 12, 20)
    f = torch.randn(1, 16, 64, 3, 3) * 0.01
    opt = SegOptimizer(0.05)
    with torch.inference_mode():
        ref = opt(f, x, e, w, 4)
        got = seg_gn_update(f, x, e, w, opt.residual_module.filter_reg, 4)
    assert (ref - got).abs().max() <= 1e-5 * ref.abs().max()
    assert torch.equal(seg_gn_update(f, x, e, w, opt.residual_module.filter_reg, 0), f)
