"""Typed training configuration (YAML), e.g. config/train_small.yaml."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rts_ros.errors import ConfigError
from rts_ros.train.processing import ProcessingConfig
from rts_ros.yaml_file import read_yaml

DATASET_KINDS = ("synthetic", "lasot", "got10k", "youtubevos", "davis")


@dataclass
class DatasetSpec:
    """One training source: kind, sampling weight and reader keyword arguments."""
    kind: str
    weight: float = 1.0
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    network: str = "rts"                     # 'rts' or 'sta'
    model: dict[str, Any] = field(default_factory=dict)     # build_rts / build_sta keyword arguments
    init_weights: str | None = None          # weights folder to fine-tune from (freezes early layers, BN eval)
    freeze_layers: tuple[str, ...] | None = None   # None: ('conv1','bn1','layer1') when fine-tuning, else none
    batchnorm_eval: bool | None = None       # None: eval-mode BatchNorm when fine-tuning, training mode from scratch
    datasets: list[DatasetSpec] = field(default_factory=lambda: [DatasetSpec("synthetic")])
    crop_hw: tuple[int, int] = (480, 832)
    search_area_factor: float = 5.0
    center_jitter: dict[str, tuple[float, float]] | None = None   # {'train': (x, y), 'test': (x, y)}; None: reference
    low_res_prob: float = 0.0                # small-target blur per sample (ProcessingConfig); 0 = reference
    low_res_target_px: tuple[float, float] = (12.0, 64.0)   # its source target size range, px (log-uniform)
    num_test_frames: int = 3
    max_gap: int = 100
    batch_size: int = 15                     # global batch (split over torchrun processes)
    batches_per_epoch: int = 1000
    epochs: int = 200
    lr: dict[str, float] = field(default_factory=lambda: {"backbone": 4e-5, "segmentation": 8e-5,
                                                         "classifier": 2e-4})
    milestones: tuple[int, ...] = (25, 115, 160)
    gamma: float = 0.2
    seg_loss_weight: float = 10.0
    bce_loss_weight: float = 0.0             # extra BCE on the mask logits (0 = reference)
    bce_balanced: bool = False               # class-balanced BCE (target and background weigh half each)
    few_shot_loss_weight: float = 0.0        # few-shot mask loss from scratch (0 = reference)
    seg_loss: str = "lovasz"                 # 'lovasz' (probabilities, reference) or 'lovasz_hinge' (logits)
    clf_loss_weights: tuple[float, float, float] = (100.0, 400.0, 100.0)  # initial, intermediates (shared), final
    teacher_forcing_steps: int = 0           # curriculum: GT mask encodings fed to the decoder, annealed to 0
    clf_optim_iter: int | None = None        # None: the model's optim_iter
    seg_optim_iter: int | None = None
    seed: int = 1
    threads: int = 2
    num_workers: int = 0
    checkpoint_every: int = 100              # steps
    keep_checkpoints: int = 3
    max_steps: int | None = None             # stop early (after this many global steps in total)
    max_minutes: float | None = None         # stop early after this wall time (checkpoint written)
    device: str = "auto"
    tracker: dict[str, Any] | None = None   # recommended TrackerConfig fields written into rts.json
    # Fine-tuning: the output keeps the init weights' tracker settings and their calibration record (they were
    # chosen for that network); `tracker` above only fills fields they lack. False: write `tracker` as given.
    tracker_from_init: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown training config keys {sorted(unknown)}; known keys: {sorted(known)}")
        data = dict(data)
        if "datasets" in data:
            data["datasets"] = [DatasetSpec(**d) if isinstance(d, dict) else d for d in data["datasets"]]
        for key in ("crop_hw", "milestones", "clf_loss_weights", "freeze_layers", "low_res_target_px"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        cfg = cls(**data)
        cfg.validate()
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path) -> "TrainConfig":
        return cls.from_dict(_read_yaml(Path(path)))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    def validate(self) -> None:
        if self.network not in ("rts", "sta"):
            raise ConfigError(f"network must be 'rts' or 'sta', got {self.network!r}")
        for d in self.datasets:
            if d.kind not in DATASET_KINDS:
                raise ConfigError(f"dataset kind {d.kind!r} unknown; choose from {DATASET_KINDS}")
        h, w = self.crop_hw
        if h % 32 or w % 32 or h <= 0 or w <= 0:
            raise ConfigError(f"crop_hw {self.crop_hw} must be positive multiples of 32 (the stride of layer4)")
        if self.batch_size < 1 or self.batches_per_epoch < 1 or self.epochs < 1:
            raise ConfigError("batch_size, batches_per_epoch and epochs must be >= 1")
        missing = {"backbone", "segmentation", "classifier"} - set(self.lr)
        if missing:
            raise ConfigError(f"lr needs the groups backbone, segmentation, classifier (missing {sorted(missing)})")
        if self.seg_loss not in ("lovasz", "lovasz_hinge"):
            raise ConfigError(f"seg_loss must be 'lovasz' or 'lovasz_hinge', got {self.seg_loss!r}")
        if self.bce_loss_weight < 0 or self.few_shot_loss_weight < 0:
            raise ConfigError("bce_loss_weight and few_shot_loss_weight must be >= 0")
        if self.teacher_forcing_steps < 0:
            raise ConfigError(f"teacher_forcing_steps must be >= 0, got {self.teacher_forcing_steps}")
        if self.center_jitter is not None and (set(self.center_jitter) != {"train", "test"} or any(
                len(v) != 2 or min(v) < 0 for v in self.center_jitter.values())):
            raise ConfigError(f"center_jitter must be {{train: [x, y], test: [x, y]}} (>= 0), got {self.center_jitter}")
        px = tuple(self.low_res_target_px)
        if not 0.0 <= self.low_res_prob <= 1.0 or len(px) != 2 or not 0.0 < px[0] <= px[1]:
            raise ConfigError(f"low_res_prob must lie in [0, 1] and low_res_target_px be [low, high] with "
                              f"0 < low <= high; got {self.low_res_prob}, {list(self.low_res_target_px)}")
        if self.checkpoint_every < 1:
            raise ConfigError("checkpoint_every must be >= 1")

    def processing(self, clf_stride: int = 32) -> ProcessingConfig:
        """Crop processing; ``clf_stride`` is the network's classifier stride (the label map size follows it)."""
        extra = {}
        if self.center_jitter is not None:
            extra["center_jitter"] = {k: tuple(float(x) for x in v) for k, v in self.center_jitter.items()}
        return ProcessingConfig(output_hw=tuple(self.crop_hw), search_area_factor=self.search_area_factor,
                                label_sigma_factor=0.25 / self.search_area_factor,
                                feature_stride_clf=clf_stride, low_res_prob=float(self.low_res_prob),
                                low_res_target_px=tuple(float(x) for x in self.low_res_target_px), **extra)


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The YAML mapping of ``path``; a ``base: other.yaml`` key (relative to this file) is read first and
    overridden key by key (mappings such as ``model`` merged recursively, lists replaced), so that a later training
    stage states only what it changes and cannot drift from the network it continues."""
    if not path.is_file():
        raise ConfigError(f"training config {path} not found")
    if path.resolve() in seen:
        raise ConfigError(f"training config {path}: 'base' chain loops back to itself")
    data = read_yaml(path, "training config") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"training config {path} must be a YAML mapping")
    base = data.pop("base", None)
    if base is None:
        return data
    return _merge(_read_yaml(path.parent / str(base), seen + (path.resolve(),)), data)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def output_tracker_settings(cfg: TrainConfig, init_meta: dict[str, Any]) -> tuple[dict[str, Any] | None,
                                                                                 dict[str, Any] | None]:
    """(tracker settings, calibration record) for the weights a run writes.

    From scratch, or with ``tracker_from_init: false``: the config's ``tracker`` and no record. Fine-tuning:
    the init weights' settings win over the config's (they were tuned for that network, and a config chain's
    ``tracker`` usually describes its first stage), and their calibration record comes along."""
    inherited = init_meta.get("tracker") if cfg.tracker_from_init else None
    if inherited is None:
        return (dict(cfg.tracker) if cfg.tracker is not None else None), None
    merged = {**(cfg.tracker or {}), **inherited}
    return merged, init_meta.get("calibration")
