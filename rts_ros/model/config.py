"""Typed, validated network configuration built from a checkpoint's constructor keyword arguments
(spec §1.5). Unknown arguments and unsupported values raise ConfigError naming the argument.

Official kwargs (backbone_type='mrcnn') give exactly the reference state-dict keys. Our extension for small
models: backbone_type='resnet' with backbone_block ('basic'|'bottleneck'), backbone_layers (4 ints) and
backbone_width (stem width); all downstream channel counts derive from the backbone.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from rts_ros.errors import ConfigError
from rts_ros.model.backbone import COLOUR_CHANNELS

DECODER_LAYERS = ("layer4", "layer3", "layer2", "layer1")


def _fail(name: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"constructor argument {name}={value!r} is not supported ({allowed}); "
                       f"fix the value in the checkpoint/weights JSON or convert an official checkpoint")


# Far above any sensible network (rts50: 2048 channels, 6 blocks per stage); the bound only stops a few bytes
# of JSON from asking for millions of modules. The parameter count is checked against the tensors at load.
MAX_INT_ARG = 4096


def _int(name: str, v: Any, lo: int = 1, hi: int = MAX_INT_ARG) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _fail(name, v, f"an integer from {lo} to {hi}")
    return v


def _float(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
        raise _fail(name, v, "a number")
    return float(v)


def _bool(name: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise _fail(name, v, "true or false")
    return v


def _choice(name: str, v: Any, allowed: tuple) -> Any:
    if isinstance(v, list):
        v = tuple(v)
    if v not in allowed:
        raise _fail(name, v, "allowed: " + ", ".join(repr(a) for a in allowed))
    return v


def _ints(name: str, v: Any, n: int, hi: int = MAX_INT_ARG) -> tuple[int, ...]:
    if not isinstance(v, (list, tuple)) or len(v) != n:
        raise _fail(name, v, f"a list of {n} integers")
    return tuple(_int(name, x, hi=hi) for x in v)


@dataclass(frozen=True)
class BackboneConfig:
    backbone_type: str = "mrcnn"
    backbone_block: str = "bottleneck"
    backbone_layers: tuple[int, int, int, int] = (3, 4, 6, 3)
    backbone_width: int = 64
    backbone_colour: bool = False     # ColourFeatures appended to layer3 (small models trained from scratch)

    @property
    def mrcnn(self) -> bool:
        return self.backbone_type == "mrcnn"

    def layer_channels(self) -> dict[str, int]:
        exp = 4 if self.backbone_block == "bottleneck" else 1
        ch = {f"layer{i + 1}": self.backbone_width * 2 ** i * exp for i in range(4)}
        if self.backbone_colour:
            ch["layer3"] += COLOUR_CHANNELS
        return ch


# Arguments of the reference constructors that only matter for training or are fixed by the architecture:
# value accepted and stored, no effect on the network.
_TRAINING_ONLY = {"backbone_pretrained": _bool}


def _frozen_layers(v: Any) -> tuple[str, ...]:
    ok = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "all")
    if not isinstance(v, (list, tuple)) or any(x not in ok for x in v):
        raise _fail("frozen_backbone_layers", v, "a list of " + ", ".join(ok))
    return tuple(v)


@dataclass(frozen=True)
class _Common:
    filter_size: int = 3
    num_filters: int = 16
    optim_iter: int = 5
    optim_init_reg: float = 0.01
    out_feature_dim: int = 512
    use_bn_in_label_enc: bool = False
    decoder_mdim: int = 64
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    frozen_backbone_layers: tuple[str, ...] = ()
    backbone_pretrained: bool = False

    @property
    def norm_scale(self) -> float:
        """Feature L2-norm scale sqrt(1/(C*k*k)) from the segmentation filter size (also for the classifier)."""
        return math.sqrt(1.0 / (self.out_feature_dim * self.filter_size ** 2))


@dataclass(frozen=True)
class RTSConfig(_Common):
    label_encoder_dims: tuple[int, int, int] = (16, 32, 64)
    clf_filter_size: int = 4
    clf_score_act: str = "relu"
    clf_hinge_threshold: float = 0.05
    clf_activation_leak: float = 0.1
    clf_feat_stride: int = 16
    fusion_type: str = "add"
    # Not in the reference (False there): L2-normalise the classifier features per position instead of per map
    # (blocks.LocationL2Norm). Small from-scratch backbones answer the zero-padded left border far more strongly
    # than the image (x30 in the first shipped model), and the per-map norm then leaves the image near zero.
    clf_norm_per_location: bool = False
    # Not in the reference (32 there): the stride of the classifier's features and score map. 32 = a stride-2 conv
    # on layer3; 16 = the same conv at stride 1 (same weights). The small model's half-size crop leaves a target
    # one or two cells wide at 32; 16 gives it the reference's cells per target. Use clf_feat_stride 16 with it.
    clf_map_stride: int = 32


@dataclass(frozen=True)
class STAConfig(_Common):
    label_encoder_dims: tuple[int, int, int, int] = (16, 32, 64, 128)


def _parse_backbone(kw: dict[str, Any]) -> BackboneConfig:
    btype = _choice("backbone_type", kw.pop("backbone_type", "mrcnn"), ("mrcnn", "resnet"))
    ours = {k: kw.pop(k) for k in ("backbone_block", "backbone_layers", "backbone_width", "backbone_colour")
            if k in kw}
    if btype == "mrcnn":
        if ours:
            raise _fail(next(iter(ours)), ours[next(iter(ours))], "only with backbone_type='resnet'")
        return BackboneConfig()
    block = _choice("backbone_block", ours.get("backbone_block", "basic"), ("basic", "bottleneck"))
    layers = _ints("backbone_layers", ours.get("backbone_layers", (2, 2, 2, 2)), 4, hi=64)
    width = _int("backbone_width", ours.get("backbone_width", 64), 4)
    colour = _bool("backbone_colour", ours.get("backbone_colour", False))
    return BackboneConfig("resnet", block, layers, width, colour)  # type: ignore[arg-type]


def _parse_common(kw: dict[str, Any], n_dims: int) -> dict[str, Any]:
    out: dict[str, Any] = {"backbone": _parse_backbone(kw)}
    for name in ("filter_size", "num_filters", "out_feature_dim", "decoder_mdim"):
        if name in kw:
            out[name] = _int(name, kw.pop(name))
    if "decoder_mdim" in out and out["decoder_mdim"] % 2:
        raise _fail("decoder_mdim", out["decoder_mdim"], "an even integer")
    if "optim_iter" in kw:
        out["optim_iter"] = _int("optim_iter", kw.pop("optim_iter"), 0)
    if "optim_init_reg" in kw:
        out["optim_init_reg"] = _float("optim_init_reg", kw.pop("optim_init_reg"))
    if "use_bn_in_label_enc" in kw:
        out["use_bn_in_label_enc"] = _bool("use_bn_in_label_enc", kw.pop("use_bn_in_label_enc"))
    if "label_encoder_dims" in kw:
        out["label_encoder_dims"] = _ints("label_encoder_dims", kw.pop("label_encoder_dims"), n_dims)
    if "frozen_backbone_layers" in kw:
        out["frozen_backbone_layers"] = _frozen_layers(kw.pop("frozen_backbone_layers"))
    if "backbone_pretrained" in kw:
        out["backbone_pretrained"] = _bool("backbone_pretrained", kw.pop("backbone_pretrained"))
    # Reference arguments whose only supported value is the default (other values change the architecture).
    fixed = {"clf_feat_blocks": (0,), "final_conv": (True,), "target_model_input_layer": ("layer3",),
             "decoder_input_layers": (DECODER_LAYERS,), "filter_groups": (1,), "dilation_factors": (None,),
             "detach_length": (float("inf"),)}
    for name, allowed in fixed.items():
        if name in kw:
            _choice(name, kw.pop(name), allowed)
    return out


def _reject_unknown(kw: dict[str, Any], network: str) -> None:
    if kw:
        name = sorted(kw)[0]
        raise ConfigError(f"unknown constructor argument {name}={kw[name]!r} for the {network} network; "
                          f"remove it (the weights file was made for another network or version)")


def rts_config(kwds: dict[str, Any]) -> RTSConfig:
    """Validate RTS kwargs (steepest_descent_resnet50_with_clf_encoder) into an RTSConfig."""
    if not isinstance(kwds, dict):
        raise ConfigError(f"constructor kwargs must be a dict, got {type(kwds).__name__}")
    kw = dict(kwds)
    out = _parse_common(kw, 3)
    if "clf_filter_size" in kw:
        out["clf_filter_size"] = _int("clf_filter_size", kw.pop("clf_filter_size"))
    if "clf_score_act" in kw:
        out["clf_score_act"] = _choice("clf_score_act", kw.pop("clf_score_act"), ("relu",))
    for name in ("clf_hinge_threshold", "clf_activation_leak"):
        if name in kw:
            out[name] = _float(name, kw.pop(name))
    if "clf_feat_stride" in kw:
        out["clf_feat_stride"] = _int("clf_feat_stride", kw.pop("clf_feat_stride"))
    if "clf_norm_per_location" in kw:
        out["clf_norm_per_location"] = _bool("clf_norm_per_location", kw.pop("clf_norm_per_location"))
    if "clf_map_stride" in kw:
        out["clf_map_stride"] = _choice("clf_map_stride", _int("clf_map_stride", kw.pop("clf_map_stride")), (16, 32))
    if "fusion_type" in kw:
        out["fusion_type"] = _choice("fusion_type", kw.pop("fusion_type"), ("add",))
    fixed = {"clf_with_extractor": (True,), "clf_enc_input": ("sc",), "classification_layer": ("layer3",),
             "clf_act_param": (None,), "clf_feat_norm": (True,)}
    for name, allowed in fixed.items():
        if name in kw:
            _choice(name, kw.pop(name), allowed)
    _reject_unknown(kw, "RTS")
    return RTSConfig(**out)


def sta_config(kwds: dict[str, Any]) -> STAConfig:
    """Validate STA kwargs (ltr.models.lwl.sta_net.steepest_descent_resnet50) into an STAConfig."""
    if not isinstance(kwds, dict):
        raise ConfigError(f"constructor kwargs must be a dict, got {type(kwds).__name__}")
    kw = dict(kwds)
    out = _parse_common(kw, 4)
    if out["backbone"].backbone_colour:
        raise _fail("backbone_colour", True, "False for STA (its input is not normalised)")
    _reject_unknown(kw, "STA")
    return STAConfig(**out)


def config_to_kwds(cfg: RTSConfig | STAConfig) -> dict[str, Any]:
    """Flat JSON-friendly kwargs that rebuild ``cfg`` (backbone fields inlined, tuples as lists)."""
    d = {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name != "backbone"}
    b = asdict(cfg.backbone)
    if cfg.backbone.mrcnn:
        d["backbone_type"] = "mrcnn"
    else:
        d.update(b)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
