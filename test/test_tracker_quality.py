"""The per-frame quality estimate (rts_ros.tracker.quality): its signals from first principles, the logistic fit
and ROC-AUC against known answers, the rts.json format, and the shipped model's quality on a real photo where
the target is present and then gone."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from rts_ros.errors import CheckpointError
from rts_ros.testing import PhotoScene
from rts_ros.tracker.quality import FEATURES, QualityFeatures, QualityModel, fit_quality_model, roc_auc

REPO = Path(__file__).resolve().parents[1]


def test_signals_follow_their_definitions():
    q = QualityFeatures(init_box=(0, 0, 10, 10))
    x = q.update(confidence=0.7, soft_area=150.0, mask_area=100, box=(5, 5, 20, 10), mask_box=(5, 5, 20, 10),
                 clf_box=(8, 9, 20, 10), not_found=False)
    feats = dict(zip(FEATURES, x))
    assert feats["confidence"] == pytest.approx(0.7)
    assert feats["mask_certainty"] == pytest.approx(1.5)
    assert feats["log_area_vs_init"] == pytest.approx(math.log(2.0))
    assert feats["log_area_vs_recent"] == pytest.approx(0.0)              # no history yet: its own area
    assert feats["center_disagreement"] == pytest.approx(5.0 / math.sqrt(200.0))   # a 3-4-5 offset
    assert feats["not_found"] == 0.0
    x = dict(zip(FEATURES, q.update(0.1, 900.0, 100, (0, 0, 40, 20), (0, 0, 40, 20), (0, 0, 40, 20), True)))
    assert x["mask_certainty"] == 2.0                                      # capped
    assert x["log_area_vs_recent"] == pytest.approx(math.log(800.0 / 200.0))
    assert x["center_disagreement"] == 0.0 and x["not_found"] == 1.0
    assert np.isfinite(q.update(float("nan"), 1.0, 0, (0, 0, 0, 0), (0, 0, 1, 1), (0, 0, 1, 1), True)).all()


def test_roc_auc_matches_counting_pairs():
    rng = np.random.default_rng(3)
    score = rng.integers(0, 6, 300).astype(float)      # many ties
    pos = rng.random(300) < 0.4
    pairs = [(1.0 if a > b else 0.5 if a == b else 0.0) for a in score[pos] for b in score[~pos]]
    assert roc_auc(score, pos) == pytest.approx(np.mean(pairs))
    assert roc_auc(np.array([3.0, 2.0, 1.0]), np.array([True, False, False])) == 1.0
    assert math.isnan(roc_auc(np.array([1.0, 2.0]), np.array([True, True])))


def test_logistic_fit_recovers_a_known_model():
    rng = np.random.default_rng(0)
    n = 20000
    x = rng.normal(size=(n, len(FEATURES))) * np.array([1, 2, 1, 1, 1, 0.5]) + 3.0
    true_w = np.array([1.5, 0.0, -1.0, 0.0, 0.5, 0.0])  # per raw unit
    z = (x - 3.0) @ true_w + 0.3
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)
    m = fit_quality_model(x, y)
    raw = np.array(m.coef) / np.array(m.std)            # back to raw units
    assert np.allclose(raw, true_w, atol=0.08), raw
    p = np.array([m.predict(r) for r in x[:2000]])
    assert np.abs(p - 1 / (1 + np.exp(-z[:2000]))).mean() < 0.03


def test_model_round_trips_through_json_and_bad_entries_are_named():
    m = QualityModel(tuple(range(6)), (1.0,) * 6, (0.5,) * 6, -0.2, {"note": "x"})
    again = QualityModel.from_dict(json.loads(json.dumps(m.to_dict())))
    assert again == m
    good = m.to_dict()
    for change, phrase in [({"features": ["confidence"]}, "features"), ({"coef": [1.0] * 5}, "'coef'"),
                           ({"mean": [float("nan")] * 6}, "'mean'"), ({"std": [0.0] * 6}, "'std' > 0"),
                           ({"bias": "high"}, "'bias'"), ({"coef": [True] * 6}, "'coef'")]:
        with pytest.raises(CheckpointError, match=phrase):
            QualityModel.from_dict({**good, **change})
    with pytest.raises(CheckpointError, match="mapping"):
        QualityModel.from_dict([1, 2])


def test_tracker_without_a_quality_model_reports_nan():
    import torch

    from rts_ros.api import Tracker, TrackerConfig
    from rts_ros.model import build_rts

    torch.manual_seed(0)
    net = build_rts({"backbone_type": "resnet", "backbone_block": "basic", "backbone_layers": [1, 1, 1, 1],
                     "backbone_width": 8, "out_feature_dim": 32, "decoder_mdim": 16})
    t = Tracker(net, device="cpu", config=TrackerConfig.from_dict({"image_sample_size": [96, 96]}))
    img = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    mask = np.zeros((96, 128), np.uint8)
    mask[30:60, 40:80] = 1
    t.initialize(img, mask=mask)
    r = t.track(img)
    assert math.isnan(r.quality) and t.last_info.quality_features.shape == (len(FEATURES),)


def test_shipped_quality_is_high_while_the_target_is_there_and_low_once_it_is_gone():
    """A round patch of one real photo moves over another; after frame 19 it is gone, so every box is wrong."""
    cv2 = pytest.importorskip("cv2")
    try:
        scene = PhotoScene(40)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    from rts_ros.api import Tracker

    t = Tracker.from_weights(REPO / "weights" / "default", device="cpu")
    assert t.quality_model is not None, "the shipped weights carry a quality model (rts.json 'quality')"
    present, gone = [], []
    for i in range(40):
        x = 120 + 2 * i
        rgb = cv2.cvtColor(scene.frame((x, 100) if i < 20 else None), cv2.COLOR_BGR2RGB)
        if i == 0:
            assert t.initialize(rgb, box=(x, 100, 40, 40)).quality == 1.0
            continue
        r = t.track(rgb)
        assert 0.0 <= r.quality <= 1.0
        (present if i < 20 else gone).append(r.quality)
    assert min(present) > 0.5 > max(gone[1:]), (present, gone)   # frame 20 may still hold a trace of it
    assert np.mean(present) - np.mean(gone) > 0.4


@pytest.mark.parametrize("bias,replaces,expect_updates", [
    (-50.0, True, False),    # quality ~0: never learn after the forced first frames
    (50.0, True, True),      # quality ~1 replaces the (always lost) instance flag: learn every frame
    (50.0, False, False),    # quality only adds a gate: the lost instance branch still blocks learning
])
def test_seg_update_min_quality_gates_the_memory_update(bias, replaces, expect_updates):
    import torch

    from rts_ros.api import Tracker, TrackerConfig
    from rts_ros.model import build_rts

    torch.manual_seed(0)
    net = build_rts({"backbone_type": "resnet", "backbone_block": "basic", "backbone_layers": [1, 1, 1, 1],
                     "backbone_width": 8, "out_feature_dim": 32, "decoder_mdim": 16})
    cfg = TrackerConfig.from_dict({"image_sample_size": [96, 96], "alr_init_buff": 3, "clf_alr_init_buff": 3,
                                   "clf_target_not_found_threshold": 1e6,   # the instance branch never finds it
                                   "min_mask_area": 0, "mask_logit_bias": 50.0,  # a mask is always found
                                   "seg_update_min_quality": 0.5, "seg_update_quality_replaces_clf": replaces})
    model = QualityModel((0.0,) * 6, (1.0,) * 6, (0.0,) * 6, bias)
    t = Tracker(net, device="cpu", config=cfg, quality_model=model)
    img = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    mask = np.zeros((96, 128), np.uint8)
    mask[30:60, 40:80] = 1
    t.initialize(img, mask=mask)
    updates = []
    for _ in range(6):
        t.track(img)
        assert t.last_info.clf_flag == "not_found" and not t.last_info.is_lost_seg
        updates.append(t.last_info.seg_memory_updated)
    assert updates[0] is False       # the first tracked frame has no previous output to learn from
    assert all(u == expect_updates for u in updates[1:]), updates    # no forced frames: alr_init_buff is 3


def test_weights_with_a_damaged_quality_model_are_refused_with_the_fix(tmp_path):
    import shutil

    from rts_ros.api import Tracker

    folder = tmp_path / "w"
    shutil.copytree(REPO / "weights" / "default", folder)
    meta = json.loads((folder / "rts.json").read_text())
    assert "quality" in meta
    meta["quality"]["coef"] = meta["quality"]["coef"][:-1]
    (folder / "rts.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="'quality' needs 'coef'.*rts-fit-quality"):
        Tracker.from_weights(folder, device="cpu")
