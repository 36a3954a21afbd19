"""The training loop: Adam + MultiStepLR over per-branch parameter groups (spec §5), checkpoint/resume,
loss log and plot, and data-parallel training with torch.distributed (launched by torchrun).

Determinism: sample i of the run is a pure function of (seed, i), and step k uses samples
k*B .. k*B+B-1 (process r of a torchrun group takes those with j % world == r). Resuming from the checkpoint
of step k therefore continues with exactly the data an uninterrupted run would have seen.
"""
from __future__ import annotations

import datetime
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from rts_ros.errors import ConfigError
from rts_ros.model import build_rts, build_sta
from rts_ros.model.config import config_to_kwds
from rts_ros.train import checkpoint as ckpt
from rts_ros.train.config import TrainConfig, output_tracker_settings
from rts_ros.train.init import init_from_scratch
from rts_ros.train.forward import LossWeights, rts_forward, sta_forward
from rts_ros.train.logbook import LossLog, plot_log
from rts_ros.train.samples import TrainingSamples, collate

FINETUNE_FROZEN = ("conv1", "bn1", "layer1")
# Top-level module name -> learning-rate group of spec §5.
GROUP_OF = {"feature_extractor": "backbone", "target_model": "segmentation", "target_model_segm": "segmentation",
            "label_encoder": "segmentation", "decoder": "segmentation", "bbox_encoder": "segmentation",
            "segm_encoder": "segmentation", "clf_encoder": "classifier", "classifier": "classifier"}


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> DistInfo:
    """Join the torchrun process group when WORLD_SIZE > 1 (gloo on CPU, nccl on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=10))
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def git_commit() -> str:
    """HEAD of the source tree ($RTS_GIT_COMMIT wins: runs launched from a copy of the tree)."""
    if os.environ.get("RTS_GIT_COMMIT"):
        return os.environ["RTS_GIT_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def build_datasets(cfg: TrainConfig) -> tuple[list, list[float]]:
    from rts_ros.data.datasets import build_dataset
    datasets, weights = [], []
    for spec in cfg.datasets:
        if spec.kind == "synthetic":
            from rts_ros.data.datasets_synthetic import SyntheticClips
            datasets.append(SyntheticClips(**spec.kwargs))
        else:
            datasets.append(build_dataset(spec.kind, **spec.kwargs))
        weights.append(spec.weight)
    return datasets, weights


def single_threaded_worker(_worker_id: int) -> None:
    """Data workers each use one OpenCV thread: N workers with a thread per core each oversubscribe the CPU."""
    import cv2
    cv2.setNumThreads(1)


def set_batchnorm_eval(net: nn.Module) -> None:
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def freeze_backbone_layers(net: nn.Module, names: tuple[str, ...]) -> None:
    for name in names:
        module = getattr(net.feature_extractor, name, None)
        if module is None:
            raise ConfigError(f"freeze_layers: the backbone has no layer {name!r}")
        for p in module.parameters():
            p.requires_grad_(False)


def param_groups(net: nn.Module, lr: dict[str, float]) -> list[dict[str, Any]]:
    groups: dict[str, list[nn.Parameter]] = {}
    for name, p in net.named_parameters():
        if not p.requires_grad:
            continue
        top = name.split(".")[0]
        if top not in GROUP_OF:
            raise ConfigError(f"parameter {name} belongs to no learning-rate group; update GROUP_OF")
        groups.setdefault(GROUP_OF[top], []).append(p)
    return [{"params": ps, "lr": lr[g], "name": g} for g, ps in groups.items()]


class Trainer:
    def __init__(self, cfg: TrainConfig, output: str | Path, resume: bool = False, command: str = ""):
        self.cfg = cfg
        self.out = Path(output)
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
        self.dist = init_distributed(self.device)
        if self.device.startswith("cuda") and self.dist.world > 1:
            self.device = f"cuda:{self.dist.local_rank}"
        torch.set_num_threads(max(1, cfg.threads))
        torch.manual_seed(cfg.seed)
        builder = build_rts if cfg.network == "rts" else build_sta
        self.net = builder(dict(cfg.model))
        self.kwds = config_to_kwds(self.net.config)
        self.finetune = cfg.init_weights is not None
        init_meta: dict[str, Any] = {}
        if self.finetune:
            state, init_meta = ckpt.read_weights(cfg.init_weights, cfg.network)
            self.net.load_state_dict(state, strict=True)
        else:
            init_from_scratch(self.net)
        self.tracker_settings, self.calibration = output_tracker_settings(cfg, init_meta)
        self.previous_stage = init_meta.get("training")    # the start weights' own record: the chain stays whole
        overridden = sorted(k for k, v in (cfg.tracker or {}).items() if self.tracker_settings.get(k) != v)
        if overridden and self.dist.main:
            print(f"rts-train: tracker settings of {cfg.init_weights} kept over the config's {overridden} "
                  "(set tracker_from_init: false to write the config's)", flush=True)
        frozen = cfg.freeze_layers if cfg.freeze_layers is not None else (FINETUNE_FROZEN if self.finetune else ())
        freeze_backbone_layers(self.net, tuple(frozen))
        self.frozen = tuple(frozen)
        # Fine-tuning the official weights keeps their BatchNorm statistics (reference); continuing our own
        # from-scratch model on more data lets them train (batchnorm_eval: false).
        self.bn_eval = cfg.batchnorm_eval if cfg.batchnorm_eval is not None else self.finetune
        self.net.to(self.device)
        self._broadcast_parameters()
        self.optimizer = torch.optim.Adam(param_groups(self.net, cfg.lr))
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.weights = LossWeights(cfg.seg_loss_weight, *cfg.clf_loss_weights, bce=cfg.bce_loss_weight,
                                   bce_balanced=cfg.bce_balanced, hinge=cfg.seg_loss == "lovasz_hinge",
                                   few_shot=cfg.few_shot_loss_weight)
        self.step = 0
        self.command = command
        self.log_rows = 0
        if self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
        if resume:
            found = ckpt.complete_checkpoints(self.out)
            if not found:
                raise ConfigError(f"--resume: no complete checkpoint under {self.out / 'checkpoints'}")
            state = ckpt.load_checkpoint(found[-1], cfg.network, self.net, self.optimizer)
            self.step = int(state["step"])
            self.log_rows = int(state.get("log_rows", self.step))
        self.log = LossLog(self.out / "loss_log.csv", keep_rows=self.log_rows if resume else 0) \
            if self.dist.main else None
        datasets, weights = build_datasets(cfg)
        self.total_steps = cfg.epochs * cfg.batches_per_epoch
        clf_stride = getattr(self.net.config, "clf_map_stride", 32)      # STA has no classifier
        self.samples = TrainingSamples(datasets, weights, self.total_steps * cfg.batch_size, cfg.seed,
                                       cfg.processing(clf_stride), cfg.num_test_frames, cfg.max_gap)

    # -- distributed helpers ------------------------------------------------------------------------
    def _broadcast_parameters(self) -> None:
        if self.dist.world > 1:
            for t in list(self.net.parameters()) + list(self.net.buffers()):
                dist.broadcast(t.data, src=0)

    def _average_gradients(self) -> None:
        if self.dist.world == 1:
            return
        params = [p for p in self.net.parameters() if p.requires_grad]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        dist.all_reduce(flat)
        flat /= self.dist.world
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p))
            offset += n

    def _average_parts(self, parts: dict[str, float]) -> dict[str, float]:
        if self.dist.world == 1:
            return parts
        keys = sorted(parts)
        t = torch.tensor([parts[k] for k in keys], dtype=torch.float64)
        dist.all_reduce(t)
        return {k: float(v) / self.dist.world for k, v in zip(keys, t)}

    # -- schedule and data ----------------------------------------------------------------------------
    def teacher_factor(self) -> float:
        """Teacher-forcing probability: 0.5 at step 0, linearly down to 0 at teacher_forcing_steps (at least half
        of the sequences always go through the learner, so the decoder cannot ignore its encodings)."""
        n = self.cfg.teacher_forcing_steps
        if n <= 0 or self.step >= n:
            return 0.0
        return 0.5 * (1.0 - self.step / n)

    def lr_factor(self, epoch: int) -> float:
        """MultiStepLR: gamma ** (number of milestones already passed)."""
        return self.cfg.gamma ** sum(1 for m in self.cfg.milestones if epoch >= m)

    def step_indices(self, step: int) -> list[int]:
        b = self.cfg.batch_size
        return [step * b + j for j in range(b) if j % self.dist.world == self.dist.rank]

    def _loader(self, start: int, stop: int):
        batches = [self.step_indices(s) for s in range(start, stop)]
        return torch.utils.data.DataLoader(self.samples, batch_sampler=batches, collate_fn=collate,
                                           num_workers=self.cfg.num_workers,
                                           worker_init_fn=single_threaded_worker if self.cfg.num_workers else None,
                                           pin_memory=self.device.startswith("cuda"), persistent_workers=False)

    # -- loop -----------------------------------------------------------------------------------------------
    def training_metadata(self) -> dict[str, Any]:
        return {"command": self.command, "seed": self.cfg.seed, "git_commit": git_commit(),
                "step": self.step, "epoch": self.step / self.cfg.batches_per_epoch,
                "world_size": self.dist.world, "finetune_from": self.cfg.init_weights,
                "frozen_layers": list(self.frozen), "batchnorm_eval": self.bn_eval, "config": self.cfg.to_dict(),
                **({"previous_stage": self.previous_stage} if self.previous_stage is not None else {})}

    def save(self) -> Path | None:
        path = None
        if self.dist.main:
            path = ckpt.save_checkpoint(self.out, self.step, self.cfg.network, self.net, self.kwds, self.optimizer,
                                        {"training": self.training_metadata(), "log_rows": self.log.rows,
                                         "tracker": self.tracker_settings, "calibration": self.calibration},
                                        self.cfg.keep_checkpoints)
            plot_log(self.out / "loss_log.csv", self.out / "loss_plot.png",
                     f"{self.cfg.network} training, step {self.step}")
        if self.dist.world > 1:
            dist.barrier()
        return path

    def export(self, folder: str | Path) -> Path:
        """Write the current network as a weights folder (the shippable result)."""
        return ckpt.write_weights(folder, self.cfg.network, self.net, self.kwds, self.training_metadata(),
                                  tracker=self.tracker_settings, calibration=self.calibration)

    def train(self, progress: bool = True) -> int:
        """Run until the last step, max_steps or max_minutes; returns the step reached (checkpoint written)."""
        cfg = self.cfg
        stop = self.total_steps if cfg.max_steps is None else min(self.total_steps, cfg.max_steps)
        if self.step >= stop:
            return self.step
        t0 = time.time()
        bar = None
        if progress and self.dist.main:
            from tqdm import tqdm
            bar = tqdm(total=stop, initial=self.step, desc=f"train {cfg.network}", dynamic_ncols=True)
        clf_iter = cfg.clf_optim_iter if cfg.clf_optim_iter is not None else self.net.config.optim_iter
        seg_iter = cfg.seg_optim_iter if cfg.seg_optim_iter is not None else self.net.config.optim_iter
        self.net.train()
        if self.bn_eval:
            set_batchnorm_eval(self.net)
        last_saved = self.step
        for batch in self._loader(self.step, stop):
            epoch = self.step // cfg.batches_per_epoch
            factor = self.lr_factor(epoch)
            for g, base in zip(self.optimizer.param_groups, self.base_lrs):
                g["lr"] = base * factor
            batch = batch.to(self.device)
            if cfg.network == "rts":
                loss, parts = rts_forward(self.net, batch, self.weights, clf_iter, seg_iter,
                                          teacher=self.teacher_factor())
            else:
                loss, parts = sta_forward(self.net, batch, self.weights)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {parts} at step {self.step}; lower the learning rates")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self._average_gradients()
            self.optimizer.step()
            parts = self._average_parts(parts)
            self.step += 1
            if self.dist.main:
                self.log.append({"step": self.step, "epoch": epoch, "lr": self.optimizer.param_groups[0]["lr"],
                                 "seconds": time.time() - t0, **parts})
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{parts['total']:.3f}", iou=f"{parts.get('iou', 0):.2f}")
            out_of_time = cfg.max_minutes is not None and (time.time() - t0) > 60 * cfg.max_minutes
            if self.dist.world > 1:   # every process must stop at the same step
                flag = torch.tensor([1.0 if out_of_time else 0.0])
                dist.all_reduce(flag)
                out_of_time = bool(flag.item() > 0)
            if self.step % cfg.checkpoint_every == 0 or self.step == stop or out_of_time:
                self.save()
                last_saved = self.step
            if out_of_time:
                break
        if last_saved != self.step:
            self.save()
        if bar is not None:
            bar.close()
        return self.step

    def wait_for_all(self) -> None:
        """Barrier on the normal way out: no process tears the group down while rank 0 still exports (one gloo
        rank that destroyed its group early died with SIGABRT in a CI run)."""
        if self.dist.world > 1 and dist.is_initialized():
            dist.barrier()

    def close(self) -> None:
        if self.dist.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
