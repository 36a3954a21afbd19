"""Trainer: exact resume, torchrun with 2 CPU processes, overfitting a fixed batch, fine-tune policy, STA."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from rts_ros.errors import ConfigError
from rts_ros.testing import REPO_ROOT
from rts_ros.train.checkpoint import complete_checkpoints, read_weights
from rts_ros.train.config import TrainConfig
from rts_ros.train.forward import LossWeights, rts_forward, sta_forward
from rts_ros.train.logbook import read_log
from rts_ros.train.samples import collate
from rts_ros.train.trainer import Trainer

TINY_MODEL = dict(backbone_type="resnet", backbone_block="basic", backbone_layers=[1, 1, 1, 1], backbone_width=8,
                  out_feature_dim=16, decoder_mdim=8, label_encoder_dims=[4, 8, 8], num_filters=8,
                  clf_feat_stride=32, optim_iter=3)


def tiny_config(**over) -> dict:
    cfg = dict(model=dict(TINY_MODEL),
               datasets=[dict(kind="synthetic", kwargs=dict(height=96, width=128, num_frames=12))],
               crop_hw=[64, 96], batch_size=2, batches_per_epoch=3, epochs=2, checkpoint_every=2,
               milestones=[1], lr=dict(backbone=1e-3, segmentation=1e-3, classifier=1e-3), num_workers=0)
    cfg.update(over)
    return cfg


def _run(out: Path, resume: bool, **over) -> Trainer:
    t = Trainer(TrainConfig.from_dict(tiny_config(**over)), out, resume=resume, command="test")
    t.train(progress=False)
    return t


@pytest.mark.slow
def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    straight = _run(tmp_path / "a", False, max_steps=4)
    _run(tmp_path / "b", False, max_steps=2)
    resumed = _run(tmp_path / "b", True, max_steps=4)
    assert straight.step == resumed.step == 4
    sa, sb = straight.net.state_dict(), resumed.net.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    # The Adam moments were restored too (else step 3 would differ); the logs match row for row.
    la, lb = read_log(tmp_path / "a" / "loss_log.csv"), read_log(tmp_path / "b" / "loss_log.csv")
    assert list(lb["step"]) == [1, 2, 3, 4]
    assert list(la["total"]) == list(lb["total"])
    # Epoch 1 passed milestone 1: lr decayed by gamma.
    assert lb["lr"][-1] == pytest.approx(1e-3 * 0.2)
    assert (tmp_path / "b" / "loss_plot.png").stat().st_size > 1000
    state = torch.load(complete_checkpoints(tmp_path / "b")[-1] / "train_state.pt", weights_only=True)
    assert state["step"] == 4


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no complete checkpoint"):
        Trainer(TrainConfig.from_dict(tiny_config()), tmp_path / "none", resume=True)


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path):
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config(threads=1)))
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "rts_ros.cli.train", "--config", str(cfg_path), "--output", str(out), "--max-steps", "2",
           "--no-progress"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpts = complete_checkpoints(out)
    assert [p.name for p in ckpts] == ["step_0000002"]
    _, meta = read_weights(out / "final", "rts")
    assert meta["training"]["world_size"] == 2 and meta["training"]["step"] == 2
    log = read_log(out / "loss_log.csv")
    assert list(log["step"]) == [1, 2] and all(v == v for v in log["total"])


@pytest.mark.slow
def test_losses_decrease_when_overfitting_one_batch(tmp_path):
    lr = dict(backbone=5e-3, segmentation=5e-3, classifier=5e-3)
    t = Trainer(TrainConfig.from_dict(tiny_config(lr=lr)), tmp_path / "o")
    batch = collate([t.samples[i] for i in range(2)])
    t.net.train()
    history = []
    for _ in range(30):
        loss, parts = rts_forward(t.net, batch, LossWeights(bce=1.0), 3, 3)
        t.optimizer.zero_grad()
        loss.backward()
        t.optimizer.step()
        history.append(parts)
    first, last = history[0], history[-1]
    assert last["total"] < 0.9 * first["total"]
    assert last["lovasz"] < first["lovasz"]
    assert last["clf_final"] < first["clf_final"]
    # The test-frame masks start empty (IoU 0) and the network learns to find the target.
    assert first["iou"] < 0.05 and sum(h["iou"] for h in history[-5:]) / 5 > 0.2


def test_finetune_freezes_early_layers_and_keeps_batchnorm_statistics(tmp_path):
    base = _run(tmp_path / "base", False, max_steps=1)
    base.export(tmp_path / "w")
    t = Trainer(TrainConfig.from_dict(tiny_config(init_weights=str(tmp_path / "w"), max_steps=1)), tmp_path / "ft")
    fe = t.net.feature_extractor
    frozen = [p for m in (fe.conv1, fe.bn1, fe.layer1) for p in m.parameters()]
    assert frozen and not any(p.requires_grad for p in frozen)
    in_opt = {id(p) for g in t.optimizer.param_groups for p in g["params"]}
    assert not any(id(p) in in_opt for p in frozen)
    before = {k: v.clone() for k, v in t.net.state_dict().items()}
    t.train(progress=False)
    after = t.net.state_dict()
    assert torch.equal(before["feature_extractor.layer1.0.conv1.weight"], after["feature_extractor.layer1.0.conv1.weight"])
    assert torch.equal(before["feature_extractor.layer3.0.bn1.running_mean"], after["feature_extractor.layer3.0.bn1.running_mean"])
    assert not torch.equal(before["feature_extractor.layer3.0.conv1.weight"], after["feature_extractor.layer3.0.conv1.weight"])
    # From scratch: nothing frozen and BatchNorm statistics move.
    scratch = Trainer(TrainConfig.from_dict(tiny_config(max_steps=1)), tmp_path / "s")
    assert all(p.requires_grad for p in scratch.net.parameters())
    rm = scratch.net.state_dict()["feature_extractor.layer3.0.bn1.running_mean"].clone()
    scratch.train(progress=False)
    assert not torch.equal(rm, scratch.net.state_dict()["feature_extractor.layer3.0.bn1.running_mean"])
    groups = {g["name"]: g["lr"] for g in scratch.optimizer.param_groups}
    assert set(groups) == {"backbone", "segmentation", "classifier"}


def test_continuing_own_weights_can_train_everything_and_batchnorm(tmp_path):
    """init_weights + freeze_layers [] + batchnorm_eval false: continue a from-scratch model on more data with
    every layer trainable and BatchNorm statistics moving (how weights/default was trained on a GPU)."""
    base = _run(tmp_path / "base", False, max_steps=1)
    base.export(tmp_path / "w")
    t = Trainer(TrainConfig.from_dict(tiny_config(init_weights=str(tmp_path / "w"), freeze_layers=[],
                                                  batchnorm_eval=False, max_steps=1)), tmp_path / "cont")
    assert all(p.requires_grad for p in t.net.parameters())
    before = {k: v.clone() for k, v in t.net.state_dict().items()}
    for k, v in base.net.state_dict().items():   # starts from the given weights
        assert torch.equal(before[k], v.cpu()), k
    t.train(progress=False)
    after = t.net.state_dict()
    for k in ("feature_extractor.conv1.weight", "feature_extractor.layer1.0.conv1.weight",
              "feature_extractor.bn1.running_mean", "feature_extractor.layer3.0.bn1.running_mean"):
        assert not torch.equal(before[k], after[k]), k
    meta = json.loads((complete_checkpoints(tmp_path / "cont")[-1] / "rts.json").read_text())
    assert meta["training"]["batchnorm_eval"] is False and meta["training"]["frozen_layers"] == []


def test_stride_16_classifier_continues_stride_32_weights(tmp_path):
    """model: {clf_map_stride: 16} continues weights trained at stride 32 (same tensors): the training labels
    follow the network's stride (crop/16 + 1 cells), the classifier learns, and the exported network says 16."""
    base = _run(tmp_path / "base", False, max_steps=1)
    base.export(tmp_path / "w")
    model = dict(TINY_MODEL, clf_map_stride=16, clf_feat_stride=16)
    cfg = TrainConfig.from_dict(tiny_config(model=model, init_weights=str(tmp_path / "w"), freeze_layers=[],
                                            batchnorm_eval=False, max_steps=1))
    t = Trainer(cfg, tmp_path / "s16")
    assert cfg.processing(16).feature_stride_clf == 16
    labels = t.samples[0]["train_labels"]
    assert labels.shape[-2:] == (64 // 16 + 1, 96 // 16 + 1)
    before = t.net.classifier.feature_extractor[0].weight.detach().clone()
    t.train(progress=False)
    assert not torch.equal(before, t.net.classifier.feature_extractor[0].weight.detach().cpu())
    meta = json.loads((complete_checkpoints(tmp_path / "s16")[-1] / "rts.json").read_text())
    assert meta["constructor"]["kwds"]["clf_map_stride"] == 16


def test_sta_training_step_runs_and_learns(tmp_path):
    cfg = tiny_config(network="sta", model={k: v for k, v in TINY_MODEL.items() if k != "clf_feat_stride"}
                      | {"label_encoder_dims": [4, 8, 8, 8]})
    t = Trainer(TrainConfig.from_dict(cfg), tmp_path / "sta")
    batch = collate([t.samples[i] for i in range(2)])
    t.net.train()
    losses = []
    for _ in range(15):
        loss, parts = sta_forward(t.net, batch, LossWeights())
        t.optimizer.zero_grad()
        loss.backward()
        t.optimizer.step()
        losses.append(parts["lovasz"])
    assert losses[-1] < losses[0]
    t.export(tmp_path / "w")
    meta = json.loads((tmp_path / "w" / "sta.json").read_text())
    assert meta["network"] == "sta" and meta["constructor"]["fun_name"] == "build_sta"


def test_teacher_forcing_schedule_and_gt_encoding_reach_the_decoder(tmp_path):
    """Curriculum: teacher-forcing probability 0.5 at step 0, linear to 0 at teacher_forcing_steps, then off; with
    teacher=1 the decoder input no longer depends on the learned segmentation filter."""
    t = Trainer(TrainConfig.from_dict(tiny_config(teacher_forcing_steps=10)), tmp_path, resume=False, command="t")
    factors = []
    for step in (0, 4, 5, 7, 10, 50):
        t.step = step
        factors.append(t.teacher_factor())
    assert factors == pytest.approx([0.5, 0.3, 0.25, 0.15, 0.0, 0.0])
    batch = collate([t.samples[i] for i in range(2)])
    w = LossWeights()
    _, p_tf = rts_forward(t.net, batch, w, 2, 0, teacher=1.0)     # seg_iter 0: zero filter, zero encodings
    _, p_plain = rts_forward(t.net, batch, w, 2, 0, teacher=0.0)
    assert p_tf["lovasz"] != p_plain["lovasz"]


def _few_shot_inputs(separable: bool, seed: int = 0):
    """Features (frames, seq, C, h, w) and masks at 4x the feature resolution; channel 0 of the features is the
    mask indicator when ``separable``."""
    g = torch.Generator().manual_seed(seed)
    frames, seq, c, h, w = 2, 2, 8, 8, 12
    masks = torch.zeros(frames, seq, 4 * h, 4 * w)
    for f in range(frames):
        for s in range(seq):
            y, x = 4 * (1 + f + s), 4 * (2 + 2 * f + s)
            masks[f, s, y:y + 12, x:x + 16] = 1
    feat = 0.1 * torch.randn(frames, seq, c, h, w, generator=g)
    if separable:
        feat[:, :, 0] = torch.nn.functional.avg_pool2d(masks.flatten(0, 1).unsqueeze(1), 4).view(frames, seq, h, w)
        feat[:, :, 1] = 1.0   # a constant channel gives the filter a bias
    return feat, masks


def test_few_shot_mask_loss_from_first_principles():
    """Zero iterations (zero filter) give exactly 1 (every weighted residual is +-1); a feature channel equal to the
    mask lets the learner fit the train frame and predict the test frame far better than noise features."""
    from rts_ros.model import build_rts
    from rts_ros.train.forward import few_shot_mask_loss

    torch.manual_seed(0)
    net = build_rts(dict(TINY_MODEL, out_feature_dim=8))
    with torch.no_grad():
        net.seg_learner.filter_optimizer.residual_module.filter_reg.fill_(1e-3)
    feat, masks = _few_shot_inputs(separable=True)
    noise, _ = _few_shot_inputs(separable=False)
    with torch.no_grad():
        zero = float(few_shot_mask_loss(net, feat[:1], masks[:1], feat[1:], masks[1:], 0))
        good = float(few_shot_mask_loss(net, feat[:1], masks[:1], feat[1:], masks[1:], 20))
        bad = float(few_shot_mask_loss(net, noise[:1], masks[:1], noise[1:], masks[1:], 20))
    assert zero == pytest.approx(1.0, abs=1e-6)
    assert good < 0.3 < bad, (good, bad)
    feat.requires_grad_(True)
    few_shot_mask_loss(net, feat[:1], masks[:1], feat[1:], masks[1:], 3).backward()
    assert torch.isfinite(feat.grad).all() and feat.grad.abs().sum() > 0   # the features receive the gradient


def test_few_shot_loss_is_logged_and_validated(tmp_path):
    _run(tmp_path / "fs", False, few_shot_loss_weight=5.0, epochs=1, batches_per_epoch=2)
    log = read_log(tmp_path / "fs" / "loss_log.csv")
    assert len(log["few_shot"]) == 2 and (log["few_shot"] > 0).all()
    with pytest.raises(Exception, match="few_shot_loss_weight"):
        TrainConfig.from_dict(tiny_config(few_shot_loss_weight=-1.0))


def test_center_jitter_reaches_the_processing_and_is_validated():
    cfg = TrainConfig.from_dict(tiny_config(center_jitter={"train": [1.0, 2.0], "test": [3.0, 4.0]}))
    assert cfg.processing().center_jitter == {"train": (1.0, 2.0), "test": (3.0, 4.0)}
    assert TrainConfig.from_dict(tiny_config()).processing().center_jitter == {"train": (3.0, 3.0),
                                                                                "test": (5.5, 4.5)}   # reference
    for bad in ({"train": [1.0, 2.0]}, {"train": [1.0], "test": [1.0, 1.0]}, {"train": [-1, 1], "test": [1, 1]}):
        with pytest.raises(Exception, match="center_jitter"):
            TrainConfig.from_dict(tiny_config(center_jitter=bad))


def test_config_base_is_read_first_and_overridden_key_by_key(tmp_path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(tiny_config(batch_size=2, seed=1)))
    (tmp_path / "b.yaml").write_text("base: a.yaml\nbatch_size: 8\n")
    cfg = TrainConfig.from_yaml(tmp_path / "b.yaml")
    assert cfg.batch_size == 8 and cfg.seed == 1 and cfg.crop_hw == (64, 96)
    # mappings merge key by key, lists are replaced
    (tmp_path / "d.yaml").write_text("base: a.yaml\nmodel: {optim_iter: 2}\nlr: {backbone: 0.5}\ncrop_hw: [32, 64]\n")
    d, a = TrainConfig.from_yaml(tmp_path / "d.yaml"), TrainConfig.from_yaml(tmp_path / "a.yaml")
    assert d.model == {**a.model, "optim_iter": 2} and d.lr == {**a.lr, "backbone": 0.5} and d.crop_hw == (32, 64)
    (tmp_path / "c.yaml").write_text("base: c.yaml\n")
    with pytest.raises(ConfigError, match="loops back"):
        TrainConfig.from_yaml(tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match="not found"):
        TrainConfig.from_yaml(tmp_path / "missing.yaml")
    # the shipped second stage continues exactly the network of the first
    small, gpu = (TrainConfig.from_yaml(REPO_ROOT / "config" / n) for n in ("train_small.yaml", "train_small_gpu.yaml"))
    assert gpu.model == small.model and gpu.crop_hw == small.crop_hw and gpu.batch_size == 32


def test_invalid_yaml_is_one_line_with_file_line_and_column(tmp_path, capsys):
    from rts_ros.cli.train import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("batch_size: 2\nlr: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml is not valid YAML: .* at line 3, column 1$"):
        TrainConfig.from_yaml(bad)
    assert main(["--config", str(bad), "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"rts-train: error: training config {bad} is not valid YAML"), err
    assert not (tmp_path / "run").exists()


def test_finetuned_weights_keep_the_init_weights_tracker_settings(tmp_path, capsys):
    """Fine-tuning writes the start weights' tracker settings, calibration record (chosen for that network) and
    training record, not the config chain's settings; the config's `tracker` fills only fields they lack;
    tracker_from_init: false opts out of the settings."""
    base = _run(tmp_path / "base", False, max_steps=1)
    base.export(tmp_path / "w")
    js = tmp_path / "w" / "rts.json"
    meta = json.loads(js.read_text())
    meta["tracker"] = {"mask_logit_bias": -1.5, "box_init": "grabcut"}
    meta["calibration"] = {"mask_logit_bias": -1.5, "mask_logit_bias_chosen_on": "a tuning set"}
    js.write_text(json.dumps(meta))
    config_tracker = {"mask_logit_bias": -3.5, "clf_net_opt_iter": 30}
    kept = _run(tmp_path / "ft", False, init_weights=str(tmp_path / "w"), tracker=config_tracker, max_steps=1)
    assert "kept over the config's ['mask_logit_bias']" in capsys.readouterr().out   # the user is told
    kept.export(tmp_path / "out")
    for folder in (tmp_path / "out", complete_checkpoints(tmp_path / "ft")[-1]):
        out = json.loads((folder / "rts.json").read_text())
        assert out["tracker"] == {"mask_logit_bias": -1.5, "box_init": "grabcut", "clf_net_opt_iter": 30}, folder
        assert out["calibration"] == meta["calibration"]
        # The record continues the start weights' own: the chain of runs back to the first stays whole.
        assert out["training"]["previous_stage"] == meta["training"]
        assert out["training"]["finetune_from"] == str(tmp_path / "w")
    plain = _run(tmp_path / "ft2", False, init_weights=str(tmp_path / "w"), tracker=config_tracker,
                 tracker_from_init=False, max_steps=1)
    plain.export(tmp_path / "out2")
    out = json.loads((tmp_path / "out2" / "rts.json").read_text())
    assert out["tracker"] == config_tracker and "calibration" not in out
    # From scratch there is nothing to inherit: the config's settings as written.
    assert base.tracker_settings is None and base.calibration is None
