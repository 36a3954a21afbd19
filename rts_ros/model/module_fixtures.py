"""Runs RTS and STA the way the reference module fixtures (shared/parity/modules) were produced, so that
tests (and a user checking converted weights) can compare every listed array. Inputs come from the fixture
file itself; each computation starts from the *reference* inputs of that step, so errors do not compound."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from rts_ros.model.encoders import resize_scores
from rts_ros.model.rts_net import RTSNet
from rts_ros.model.sta_net import STANet

# Relative tolerance max|a-b| / max|ref| of each array (shared/parity/README.md "Required checks").
DEFAULT_TOL = 1e-4
CLASSIFIER_TOL = 1e-3


def tolerance(name: str) -> float:
    """Required tolerance of a fixture array: 1e-3 downstream of the classifier optimiser, else 1e-4."""
    if name.startswith("clf.") or name.startswith("test.clf_encoding"):
        return CLASSIFIER_TOL
    return DEFAULT_TOL


def rel_error(ours: np.ndarray, ref: np.ndarray) -> float:
    """max|a - b| / max|ref| (shapes must be equal)."""
    if ours.shape != ref.shape:
        raise ValueError(f"shape {ours.shape} != reference {ref.shape}")
    scale = float(np.abs(ref).max()) or 1.0
    return float(np.abs(ours.astype(np.float64) - ref).max() / scale)


@torch.no_grad()
def run_rts(net: RTSNet, fx: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every non-input, non-loss array of the 'rts' fixtures, computed by ``net`` on its device (float32)."""
    dev = next(net.parameters()).device
    T: Callable[[str], torch.Tensor] = lambda n: torch.from_numpy(np.asarray(fx[n])).to(dev)
    out: dict[str, torch.Tensor] = {}
    out["preprocessed"] = net.preprocess(T("in.image_rgb255"))
    feats = net.extract_backbone(T("preprocessed"))
    for name, v in feats.items():
        out["backbone." + name] = v
    out["target_model_features"] = net.segmentation_features(T("backbone.layer3"))
    out["classification_features"] = net.classification_features(T("backbone.layer3"))
    # classifier: 2 train samples (crop and its flip), one sequence
    tf = T("clf.in.train_features").unsqueeze(1)
    boxes = T("clf.in.train_boxes").view(-1, 1, 4)
    out["clf.init_filter"] = net.classifier.init_filter(tf, boxes)
    flt, its = net.classifier.optimize(T("clf.init_filter"), tf, T("clf.in.train_labels"), None, 10,
                                       return_iterates=True)
    out["clf.filter"], out["clf.filter_iterates"] = flt, torch.stack(its)
    out["clf.scores_train"] = net.classifier.scores(tf, T("clf.filter"))
    test_cf = T("classification_features")[1:2].unsqueeze(1)
    out["clf.scores_test"] = net.classifier.scores(test_cf, T("clf.filter"))
    out["clf.update.filter"] = net.classifier.optimize(T("clf.filter"), torch.cat([tf, test_cf]),
                                                       T("clf.update.in.labels"), T("clf.update.in.sample_weight"), 2)
    # segmentation learner
    tm = T("target_model_features").unsqueeze(1)
    out["seg.label_encoding"], out["seg.sample_weight"] = net.label_encoder(T("in.mask")[:1].unsqueeze(1), tm[:1])
    sf, its = net.seg_learner.get_filter(tm[:1], T("seg.label_encoding"), T("seg.sample_weight"), 20,
                                         return_iterates=True)
    out["seg.filter"], out["seg.filter_iterates"] = sf, torch.stack(its)
    lab, sw = net.label_encoder(T("in.mask").unsqueeze(1), tm)
    out["seg.update.label_encoding"], out["seg.update.sample_weight_spatial"] = lab, sw
    weights = T("seg.update.sample_weight_spatial") * T("seg.update.in.temporal_weights").view(-1, 1, 1, 1, 1)
    out["seg.update.filter"] = net.seg_learner.optimize(T("seg.filter"), tm, T("seg.update.label_encoding"),
                                                        weights, 3)
    # test crop: fusion and decoder
    out["test.mask_encoding"] = net.apply_seg_filter(tm[1:2], T("seg.filter"))
    out["test.clf_encoding"], out["test.clf_encoding_sw"] = net.clf_encoder(T("clf.scores_test"))
    out["test.clf_encoding_resized"] = resize_scores(T("test.clf_encoding"), tuple(fx["test.mask_encoding"].shape[-2:]))
    out["test.fused"] = net.fuse(T("test.mask_encoding"), T("test.clf_encoding"))
    test_feats = {f"layer{i}": T(f"backbone.layer{i}")[1:2] for i in range(1, 5)}
    size = tuple(fx["test.decoder_out"].shape[-2:])
    out["test.decoder_out"] = net.decoder(T("test.fused"), test_feats, size)
    out["test.segment_target"] = net.segment_target(T("seg.filter"), tm[1:2], test_feats, T("clf.scores_test"), size)
    return {k: v.cpu().numpy().reshape(np.shape(fx[k])) for k, v in out.items()}


@torch.no_grad()
def run_sta(sta: STANet, fx: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every non-input, non-loss array of the 'sta' fixtures. The fixtures ran STANet.forward on the
    bgr255-normalised crop, hence ``sta.preprocess`` here."""
    dev = next(sta.parameters()).device
    img = sta.preprocess(torch.from_numpy(np.asarray(fx["in.image_rgb255"])).to(dev))
    res = sta.run(img, torch.from_numpy(np.asarray(fx["in.box_xywh"])), return_iterates=True)
    return {k: v.cpu().numpy().reshape(np.shape(fx[k])) for k, v in res.items() if k in fx}


def compared_names(fx_keys) -> list[str]:
    """Fixture arrays that must be compared: all but inputs (in.*, *.in.*) and optional loss traces."""
    return [k for k in fx_keys if not (k.startswith("in.") or ".in." in k or k.endswith("losses"))]
