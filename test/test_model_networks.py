"""Network construction: reference keys, kwargs validation, the small-backbone extension, shapes."""
import pytest
import torch

from rts_ros.errors import ConfigError
from rts_ros.model import build_rts, build_sta, config_to_kwds, rts_config
from rts_ros.testing import REPO_ROOT

DESIGN = REPO_ROOT.parent / "shared" / "design"
RTS_KW = dict(filter_size=3, num_filters=16, optim_iter=5, backbone_pretrained=False, out_feature_dim=512,
              frozen_backbone_layers=["conv1", "bn1", "layer1"], label_encoder_dims=(16, 32, 64),
              use_bn_in_label_enc=False, clf_feat_blocks=0, final_conv=True, backbone_type="mrcnn",
              clf_filter_size=4, clf_score_act="relu", clf_hinge_threshold=0.05, clf_activation_leak=0.1,
              clf_with_extractor=True, clf_enc_input="sc", fusion_type="add")
STA_KW = dict(filter_size=3, num_filters=16, optim_iter=5, backbone_pretrained=False, out_feature_dim=512,
              frozen_backbone_layers=["conv1", "bn1", "layer1"], label_encoder_dims=(16, 32, 64, 128),
              use_bn_in_label_enc=False, clf_feat_blocks=0, final_conv=True, backbone_type="mrcnn")
SMALL_KW = dict(backbone_type="resnet", backbone_block="basic", backbone_layers=[1, 1, 1, 1], backbone_width=16,
                out_feature_dim=64, decoder_mdim=16, label_encoder_dims=[8, 16, 32], num_filters=8)


def _tsv(name):
    path = DESIGN / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    rows = [l.split("\t") for l in path.read_text().splitlines() if l and not l.startswith("#")][1:]
    return [(r[0], r[1], r[2]) for r in rows]


def _rows(net):
    return [(k, str(list(v.shape)).replace(" ", ""), str(v.dtype).replace("torch.", ""))
            for k, v in net.state_dict().items()]


@pytest.mark.parametrize("build,kw,tsv", [(build_rts, RTS_KW, "rts50-state-dict.tsv"),
                                          (build_sta, STA_KW, "sta-state-dict.tsv")])
def test_state_dict_equals_reference_key_list(build, kw, tsv):
    ref = [(k, s.replace(" ", ""), d) for k, s, d in _tsv(tsv)]
    assert _rows(build(kw)) == ref


def test_parameter_count_of_rts_matches_spec():
    net = build_rts(RTS_KW)
    assert sum(p.numel() for p in net.parameters()) == 43_848_002


@pytest.mark.parametrize("kw,name", [
    ({"backbone_type": "imagenet"}, "backbone_type"),
    ({"clf_score_act": "bentpar"}, "clf_score_act"),
    ({"fusion_type": "concat"}, "fusion_type"),
    ({"label_encoder_dims": (16, 32)}, "label_encoder_dims"),
    ({"filter_size": 0}, "filter_size"),
    ({"optim_iter": "5"}, "optim_iter"),
    ({"clf_feat_blocks": 2}, "clf_feat_blocks"),
    ({"no_such_argument": 1}, "no_such_argument"),
    ({"backbone_width": 32}, "backbone_width"),  # only with backbone_type='resnet'
])
def test_bad_kwargs_raise_config_error_naming_argument(kw, name):
    with pytest.raises(ConfigError, match=name):
        build_rts({**RTS_KW, **kw})


def test_sta_refuses_rts_only_argument():
    with pytest.raises(ConfigError, match="clf_filter_size"):
        build_sta({**STA_KW, "clf_filter_size": 4})


def test_config_round_trip_through_kwds():
    cfg = rts_config(SMALL_KW)
    assert rts_config(config_to_kwds(cfg)) == cfg
    cfg = rts_config(RTS_KW)
    assert rts_config(config_to_kwds(cfg)) == cfg


def test_small_variant_shapes_and_size():
    torch.manual_seed(0)
    net = build_rts(SMALL_KW)
    n = sum(p.numel() for p in net.parameters())
    assert 0.1e6 < n < 3e6
    img = torch.rand(2, 3, 128, 224) * 255
    with torch.no_grad():
        f = net.extract_backbone(net.preprocess(img))
        assert {k: tuple(v.shape) for k, v in f.items()} == {
            "layer1": (2, 16, 32, 56), "layer2": (2, 32, 16, 28), "layer3": (2, 64, 8, 14), "layer4": (2, 128, 4, 7)}
        tm = net.segmentation_features(f["layer3"]).unsqueeze(1)
        cf = net.classification_features(f["layer3"]).unsqueeze(1)
        assert tm.shape == (2, 1, 64, 8, 14) and cf.shape == (2, 1, 64, 4, 7)
        lab, w = net.label_encoder(torch.ones(1, 1, 128, 224), tm[:1])
        tau = net.seg_learner.get_filter(tm[:1], lab, w, 2)
        flt = net.classifier.get_filter(cf[:1], torch.tensor([[[60.0, 40.0, 50.0, 40.0]]]), torch.rand(1, 1, 5, 8), 2)
        scores = net.classifier.scores(cf[1:], flt)
        out = net.segment_target(tau, tm[1:], {k: v[1:] for k, v in f.items()}, scores)
    assert tau.shape == (1, 8, 64, 3, 3) and flt.shape == (1, 64, 4, 4) and scores.shape == (1, 1, 5, 8)
    assert out.shape == (1, 1, 128, 224) and torch.isfinite(out).all()


def test_small_sta_runs():
    torch.manual_seed(0)
    sta = build_sta({**SMALL_KW, "label_encoder_dims": [8, 16, 32, 32]})
    with torch.no_grad():
        out = sta(torch.rand(1, 3, 64, 96) * 255, torch.tensor([10.0, 12.0, 30.0, 20.0]))
    assert out.shape == (1, 1, 64, 96) and torch.isfinite(out).all()


def test_learners_are_differentiable_through_iterations():
    torch.manual_seed(0)
    net = build_rts(SMALL_KW)
    feat = torch.randn(2, 1, 64, 8, 14, requires_grad=True)
    lab, w = torch.rand(2, 1, 8, 8, 14), torch.rand(2, 1, 8, 8, 14)
    tau, its = net.seg_learner.get_filter(feat, lab, w, 3, return_iterates=True)
    assert len(its) == 4
    tau.square().sum().backward()
    assert feat.grad is not None and net.seg_learner.filter_optimizer.residual_module.filter_reg.grad is not None
    cf = torch.randn(2, 1, 64, 4, 7, requires_grad=True)
    flt = net.classifier.get_filter(cf, torch.tensor([[[60.0, 40.0, 50.0, 40.0]]] * 2), torch.rand(2, 1, 5, 8), 2)
    flt.square().sum().backward()
    assert cf.grad is not None and net.classifier.filter_initializer.filter_conv.weight.grad is not None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    # TF32 convolutions (the cuDNN default) differ from float32 by ~1e-3 relative; compare float32 with float32.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    net = build_rts(SMALL_KW)
    img = torch.rand(1, 3, 128, 224) * 255
    with torch.no_grad():
        a = net.extract_backbone(net.preprocess(img))["layer4"]
        b = net.cuda().extract_backbone(net.preprocess(img.cuda()))["layer4"].cpu()
    assert torch.allclose(a, b, rtol=1e-3, atol=1e-4)


COLOUR_SMALL = dict(backbone_type="resnet", backbone_block="basic", backbone_layers=[1, 1, 1, 1], backbone_width=8,
                    out_feature_dim=16, num_filters=4, label_encoder_dims=[4, 8, 8], decoder_mdim=8,
                    clf_feat_stride=32, backbone_colour=True)


def test_colour_channels_are_block_statistics_of_the_input():
    """backbone_colour appends 22 fixed channels to layer3: per 16x16 block the mean R, G, B (first three), the
    mean squares, ..., and a constant 1 (last); layer4 is unchanged."""
    from rts_ros.model.backbone import COLOUR_CHANNELS

    torch.manual_seed(0)
    net = build_rts(dict(COLOUR_SMALL)).eval()
    plain = build_rts({k: v for k, v in COLOUR_SMALL.items() if k != "backbone_colour"}).eval()
    img = torch.rand(2, 3, 64, 96) * 255
    with torch.no_grad():
        f = net.extract_backbone(net.preprocess(img))
        g = plain.extract_backbone(plain.preprocess(img))
    assert f["layer3"].shape[1] == g["layer3"].shape[1] + COLOUR_CHANNELS and f["layer4"].shape == g["layer4"].shape
    colour = f["layer3"][:, -COLOUR_CHANNELS:]
    blocks = torch.nn.functional.avg_pool2d(img / 255, 16)
    torch.testing.assert_close(colour[:, :3], blocks, atol=1e-5, rtol=0)
    torch.testing.assert_close(colour[:, 3:6], torch.nn.functional.avg_pool2d((img / 255) ** 2, 16), atol=1e-5, rtol=0)
    assert torch.allclose(colour[:, -1], torch.ones_like(colour[:, -1]))
    assert config_to_kwds(net.config)["backbone_colour"] is True
    with pytest.raises(ConfigError, match="backbone_colour"):
        build_sta(dict(backbone_type="resnet", backbone_colour=True))


def test_tracker_runs_a_colour_model(tmp_path):
    """The tracker's inference path (BN folding, channels_last, tracing) accepts the colour channels."""
    import numpy as np

    from rts_ros.api import Tracker
    from rts_ros.weights import save_network

    torch.manual_seed(0)
    net = build_rts(dict(COLOUR_SMALL))
    save_network(tmp_path, "rts", net.state_dict(), config_to_kwds(net.config), fun_module="rts_ros.model",
                 fun_name="build_rts", tracker={"image_sample_size": [96, 128], "box_init": "grabcut"})
    tr = Tracker.from_weights(tmp_path, device="cpu")
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    img[40:80, 60:100] = (250, 30, 30)
    tr.initialize(img, (60, 40, 40, 40))
    r = tr.track(img)
    assert r.mask.shape == (120, 160) and np.isfinite(r.box).all()


def test_clf_norm_per_location_gives_every_position_the_same_norm():
    """clf_norm_per_location: each classifier-feature position has norm scale*sqrt(C), however strong one
    position is; the reference's per-map norm (the default) lets one strong position shrink all others.
    The option adds no parameters, so both variants load the same state dict."""
    torch.manual_seed(0)
    kw = dict(COLOUR_SMALL, clf_norm_per_location=True)
    net = build_rts(kw).eval()
    ref = build_rts(dict(COLOUR_SMALL)).eval()
    ref.load_state_dict(net.state_dict(), strict=True)
    layer3 = torch.rand(1, net.classifier.feature_extractor[0].in_channels, 8, 12)
    layer3[..., 0] *= 1000.0                     # a border column 1000x stronger than the rest
    with torch.no_grad():
        per_pos = net.classification_features(layer3)[0].norm(dim=0)
        per_map = ref.classification_features(layer3)[0].norm(dim=0)
    c = per_pos.new_tensor(float(net.config.out_feature_dim))
    expected = net.config.norm_scale * c.sqrt()
    torch.testing.assert_close(per_pos, torch.full_like(per_pos, float(expected)), rtol=1e-4, atol=0)
    assert per_map[:, 2:].max() < 0.05 * per_map[:, 0].min()   # what the option exists for
    assert config_to_kwds(net.config)["clf_norm_per_location"] is True
    assert config_to_kwds(ref.config)["clf_norm_per_location"] is False
    with pytest.raises(ConfigError, match="clf_norm_per_location"):
        build_rts(dict(COLOUR_SMALL, clf_norm_per_location="yes"))


def test_clf_map_stride_16_samples_the_same_features_twice_as_densely():
    """clf_map_stride 16 runs the classifier's stride-2 conv at stride 1: the same weights (a stride-32 state dict
    loads strictly), and its stride-32 features are exactly every second row and column of the denser map."""
    torch.manual_seed(0)
    dense = build_rts(dict(SMALL_KW, clf_map_stride=16, clf_feat_stride=16)).eval()
    coarse = build_rts(dict(SMALL_KW)).eval()
    coarse.load_state_dict(dense.state_dict(), strict=True)
    x = torch.rand(1, 3, 128, 192) * 255
    with torch.no_grad():
        layer3 = dense.extract_backbone(dense.preprocess(x))["layer3"]
        conv = dense.classifier.feature_extractor[0]
        fd, fc = conv(layer3), coarse.classifier.feature_extractor[0](layer3)
        assert dense.classification_features(layer3).shape[-2:] == (8, 12)
        assert coarse.classification_features(layer3).shape[-2:] == (4, 6)
    torch.testing.assert_close(fd[..., ::2, ::2], fc, rtol=1e-5, atol=1e-5)
    assert config_to_kwds(dense.config)["clf_map_stride"] == 16
    assert config_to_kwds(coarse.config)["clf_map_stride"] == 32       # the reference's
    for bad in (24, "16", 8):
        with pytest.raises(ConfigError, match="clf_map_stride"):
            build_rts(dict(SMALL_KW, clf_map_stride=bad))


@pytest.mark.parametrize("in_hw,out_hw", [((48, 80), (96, 160)), ((96, 160), (192, 320)), ((7, 11), (30, 13)),
                                          ((30, 40), (12, 17)), ((1, 5), (4, 5))])
def test_matrix_bicubic_resize_equals_torch_bicubic(in_hw, out_hw):
    """The decoder's CPU resize (two matrix products) is PyTorch's bicubic map: up, down, odd sizes, one row;
    gradients flow through it as through F.interpolate."""
    import torch.nn.functional as F

    from rts_ros.model.resize import bicubic_resize

    with torch.inference_mode():  # the cached matrices, first made while tracking, must still serve autograd
        bicubic_resize(torch.zeros(1, 1, *in_hw), out_hw)
    x = torch.randn(2, 3, *in_hw, generator=torch.Generator().manual_seed(0), requires_grad=True)
    ref = F.interpolate(x, size=out_hw, mode="bicubic", align_corners=False)
    got = bicubic_resize(x, out_hw)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    g_ref, = torch.autograd.grad(ref.square().sum(), x)
    g_got, = torch.autograd.grad(got.square().sum(), x)
    torch.testing.assert_close(g_got, g_ref, atol=1e-4, rtol=1e-4)
