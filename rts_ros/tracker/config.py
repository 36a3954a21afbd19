"""TrackerConfig: every parameter of spec §4 (rts50 defaults) plus the `params.get` defaults that shape
behaviour, in one typed, validated dataclass. The ROS node declares one parameter per field.

Fields whose non-default values select reference code paths this implementation does not have are kept
(so that a YAML written for the reference is understood) but only accept the supported value; the
validation error says so.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from rts_ros.errors import ConfigError

MASK_COMPONENT_MODES = ("all", "largest", "nearest", "peak")   # 'all' = the reference (no clean-up)
MASK_GUIDE_MODES = ("none", "kcf", "kcf_window")   # 'none' = the reference

BORDER_MODES = ("inside_major", "inside", "replicate")
BOX_INIT = ("auto", "sta", "grabcut")
GRABCUT_FALLBACKS = ("box", "ellipse")                 # start mask where GrabCut finds nothing
# Bounds far above any useful setting; they turn a typo (2**62) into a ConfigError instead of a failed allocation.
MAX_COUNT = 1_000_000
MAX_MEMORY_SAMPLES = 1000
MAX_OPT_ITER = 1000


@dataclass
class TrackerConfig:
    # --- segmentation branch / search region -------------------------------------------------------
    image_sample_size: tuple[int, int] = (480, 832)   # crop (H, W); multiples of 32 (strides 16 and 32)
    search_area_scale: float = 6.0                    # crop side = scale x target side
    border_mode: str = "inside_major"                 # crop shrink/shift policy (§3.3)
    patch_max_scale_change: float | None = None       # bound of the inside-mode shrink
    max_scale_change: tuple[float, float] | None = (0.8, 1.2)  # per-frame clip of the scale ratio
    seg_to_bb_mode: str = "var"                       # mask -> state rule (§3.5)
    seg_to_bb_sz_factor: float = 4.0                  # size = factor x std of the mask
    min_mask_area: float = 100.0                      # soft mask area at or below this: "too small"
    sample_memory_size: int = 32
    learning_rate: float = 0.1
    init_samples_minimum_weight: float | None = 0.25
    train_skipping: int = 20                          # re-train every N frames after alr_init_buff
    alr_init_buff: int = 100                          # re-train every frame before this frame number
    update_target_model: bool = True
    net_opt_iter: int = 20                            # GN iterations of the first seg filter
    net_opt_update_iter: int = 3                      # GN iterations per seg update
    seg_init_expansion_factor: float = 2.0            # first-frame expanded crop (hard-coded in the reference)
    crop_fill_value: float = -100.0                   # logits outside the pasted crop
    mask_logit_bias: float = 0.0                      # added to mask logits; < 0 undoes a class-balanced prior
    mask_logit_bias_downsampled: float | None = None  # bias for targets shrunk into the crop at the start
    mask_logit_bias_scales: tuple[float, float] = (1.0, 2.0)  # start scales where the bias ramp starts and ends
    mask_component: str = "all"                       # not in the reference: keep one blob: largest/nearest/peak
    soft_map_in_mask: bool = False                    # not in the reference: soft map only inside the mask
    # not in the reference (rts_ros.tracker.growth_guard): bound on how fast the output mask may grow
    mask_growth_limit: float = 0.0                    # mask box area over this x the recent median: cut; 0 = off
    mask_growth_window: int = 10                      # number of recent output boxes whose median is that reference
    mask_growth_patience: int = 30                    # after this many consecutive cuts the growth passes as real
    seg_update_min_quality: float = 0.0               # learn last frame's mask only if its quality >= this; 0 = off
    seg_update_quality_replaces_clf: bool = False     # with seg_update_min_quality: quality replaces the instance flag
    # not in the reference (rts_ros.tracker.mask_guide): an OpenCV KCF box says which blobs of the mask to keep
    mask_guide: str = "none"                          # kcf: blobs touching its grown box; kcf_window: cut to that box
    mask_guide_margin: float = 0.5                    # the KCF box grows by this x its size on each side
    mask_guide_reinit_quality: float = 0.6            # restart KCF on output boxes with at least this quality
    mask_guide_reinit_every: int = 25                 # ... when KCF failed, or ran this many frames since its start
    mask_guide_target_px: float = 0.0                 # KCF sees frames shrunk to a target of this side; 0 = full size
    # not in the reference (rts_ros.tracker.box_calibration): map the output box onto the init box's convention
    box_calibration_size_weight: float = 0.0          # power of frame 1's init/mask size ratio; 0 = off
    box_calibration_size_range: tuple[float, float] = (0.5, 2.0)  # clip of that ratio
    box_calibration_offset_weight: float = 0.0        # share of frame 1's centre offset applied; 0 = off
    box_calibration_offset_max: float = 0.25          # clip of that offset, in box sizes
    scale_history: tuple[int, int, int] = (2, 30, 60)  # search_area_rescaling: min n, max n, history length
    strict_force_seg: bool = True                     # force memory updates while frame_num < alr_init_buff
    seg_mem_safe: bool = True
    train_sample_interval: int = 1
    rescale_when_lost: bool = True
    trust_clf_when_no_seg: bool = True
    trust_seg_when_no_clf: bool = False               # classifier lost, mask fine: follow the mask anyway
    trust_clf_always: bool = False
    use_clf_box_when_no_seg: bool = True
    lower_init_weight: bool = False
    use_seg_pos_sz_for_clf_update: bool = True
    # --- box initialisation (STA) ---------------------------------------------------------------
    box_init: str = "auto"                            # auto: STA if the weights folder has it, else GrabCut
    grabcut_margin: float = 1.0                       # GrabCut window: the box + this many box sizes per side
    grabcut_fallback: str = "box"                     # start mask when GrabCut finds nothing: 'box' or 'ellipse'
    sta_image_sample_size: tuple[int, int] = (480, 832)
    sta_search_area_scale: float = 4.0
    sta_border_mode: str = "replicate"
    sta_patch_max_scale_change: float | None = None
    sta_normalize_input: bool = False                 # reference feeds raw RGB 0..255 to STA (§3.1)
    # --- instance (classifier) branch ----------------------------------------------------------------
    clf_search_area_scale: float = 6.0
    clf_sample_memory_size: int = 50
    clf_learning_rate: float = 0.01
    clf_init_samples_minimum_weight: float | None = None
    clf_train_skipping: int = 20
    clf_alr_init_buff: int = 100
    clf_train_sample_interval: int = 1
    update_classifier: bool = True
    clf_net_opt_iter: int = 10
    clf_net_opt_update_iter: int = 2
    clf_net_opt_hn_iter: int = 1
    clf_output_sigma_factor: float = 0.25
    clf_advanced_localization: bool = True
    clf_target_not_found_threshold: float = 0.30
    clf_target_not_found_threshold_too_small: float = 0.50  # defined by rts50, never read
    # not in the reference: > 0 lowers the not-found threshold to this fraction of the init frame's own score
    # peak (when that is lower), for score maps whose scale shifts with the image domain; 0 = reference
    clf_not_found_relative: float = 0.0
    clf_uncertain_threshold: float = -math.inf
    clf_hard_sample_threshold: float = -math.inf
    clf_distractor_threshold: float = 10000.0
    clf_hard_negative_threshold: float = 10000.0
    clf_target_neighborhood_scale: float = 2.2
    clf_displacement_scale: float = 0.8
    clf_hard_negative_learning_rate: float = 0.02
    clf_use_augmentation: bool = True
    clf_augmentation_fliplr: bool = True
    clf_augmentation_blur: tuple[tuple[float, float], ...] = ((3.0, 1.0), (1.0, 3.0), (2.0, 2.0))
    clf_augmentation_expansion_factor: float | None = None
    clf_random_shift_factor: float = 0.0
    clf_use_clf_when_lwl_lost: bool = True
    clf_output_not_found_box: bool = False
    clf_low_score_opt_threshold: float | None = None
    clf_score_filter_ksz: int = 1
    score_preprocess: str = "none"
    target_inside_ratio: float = 0.2
    clf_regularization: float = 0.01                  # DiMP regulariser (a constant in the reference)

    # ---------------------------------------------------------------------------------------------
    @property
    def feature_size(self) -> tuple[int, int]:
        """Segmentation feature map size (stride 16)."""
        return (self.image_sample_size[0] // 16, self.image_sample_size[1] // 16)

    def clf_feature_size(self, stride: int = 32) -> tuple[int, int]:
        """Classification feature map size at the network's classifier stride (32 in the reference)."""
        return (self.image_sample_size[0] // stride, self.image_sample_size[1] // stride)

    def validate(self) -> "TrackerConfig":
        """Raise ConfigError naming the first bad field; returns self."""
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"tracker config field '{name}' = {getattr(self, name)!r}: {why}")

        for f in fields(self):  # NaN passes every comparison below, so it is refused for all numbers first
            v = getattr(self, f.name)
            flat = [x for t in v for x in (t if isinstance(t, tuple) else (t,))] if isinstance(v, tuple) else [v]
            if any(isinstance(x, float) and math.isnan(x) for x in flat):
                raise bad(f.name, "must be a number, not NaN")
            if any(isinstance(x, int) and not isinstance(x, bool) and abs(x) > MAX_COUNT for x in flat):
                raise bad(f.name, f"is out of range (at most {MAX_COUNT})")
        for name, n in (("max_scale_change", 2), ("scale_history", 3)):
            v = getattr(self, name)
            if v is not None and len(v) != n:
                raise bad(name, f"needs {n} numbers")
        for name in ("image_sample_size", "sta_image_sample_size"):
            v = getattr(self, name)
            if len(v) != 2 or any(int(x) <= 0 or int(x) % 32 for x in v):
                raise bad(name, "needs two positive multiples of 32 (H, W), e.g. [480, 832]")
        for name in ("search_area_scale", "sta_search_area_scale", "clf_search_area_scale", "seg_to_bb_sz_factor",
                     "seg_init_expansion_factor", "clf_output_sigma_factor", "clf_target_neighborhood_scale"):
            v = getattr(self, name)
            if not math.isfinite(v) or v <= 0:
                raise bad(name, "must be a positive finite number")
        if self.mask_component not in MASK_COMPONENT_MODES:
            raise bad("mask_component", f"must be one of {', '.join(MASK_COMPONENT_MODES)}")
        if self.mask_guide not in MASK_GUIDE_MODES:
            raise bad("mask_guide", f"must be one of {', '.join(MASK_GUIDE_MODES)}")
        if self.mask_guide != "none" and self.mask_component == "all":
            raise bad("mask_guide", "needs mask_component 'largest' (its fallback); 'all' keeps every blob anyway")
        if not 0.0 <= self.mask_guide_margin < math.inf:
            raise bad("mask_guide_margin", "must be a finite share of the KCF box's size >= 0, e.g. 0.5")
        if not 0.0 <= self.mask_guide_reinit_quality <= 1.0:
            raise bad("mask_guide_reinit_quality", "must be a probability in [0, 1]")
        if self.mask_guide_reinit_every < 1:
            raise bad("mask_guide_reinit_every", "must be at least 1 frame")
        if not 0.0 <= self.mask_guide_target_px < math.inf:
            raise bad("mask_guide_target_px", "must be 0 (full size) or a finite target side in pixels")
        if not 0.0 <= self.seg_update_min_quality <= 1.0:
            raise bad("seg_update_min_quality", "must be a probability in [0, 1] (0 = off)")
        if not (self.mask_growth_limit == 0 or 1 < self.mask_growth_limit < math.inf):
            raise bad("mask_growth_limit", "must be 0 (off) or a finite area ratio > 1, e.g. 3")
        if self.mask_growth_patience < 1:
            raise bad("mask_growth_patience", "must be >= 1 (consecutive cut frames before growth counts as real)")
        if self.mask_growth_window < 1:
            raise bad("mask_growth_window", "must be >= 1 (output boxes whose median size is the reference)")
        for name in ("box_calibration_size_weight", "box_calibration_offset_weight"):
            if not 0 <= getattr(self, name) <= 1:
                raise bad(name, "must be in [0, 1] (0 = off, the reference's box)")
        rng = self.box_calibration_size_range
        if len(rng) != 2 or not (0 < rng[0] <= 1 <= rng[1] and math.isfinite(rng[1])):
            raise bad("box_calibration_size_range", "needs [low, high] with 0 < low <= 1 <= high")
        if not 0 <= self.box_calibration_offset_max < math.inf:
            raise bad("box_calibration_offset_max", "must be a finite number >= 0 (in units of the box size)")
        if not 0 <= self.clf_not_found_relative <= 1:
            raise bad("clf_not_found_relative", "must be in [0, 1] (0 = the absolute threshold of the reference)")
        for name in ("mask_logit_bias", "mask_logit_bias_downsampled"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(v):
                raise bad(name, "must be a finite number (0 = the network's own threshold)")
        lo_hi = self.mask_logit_bias_scales
        if len(lo_hi) != 2 or not (0 < lo_hi[0] < lo_hi[1] < math.inf):
            raise bad("mask_logit_bias_scales", "needs [low, high] image pixels per crop pixel with 0 < low < high")
        for name in ("border_mode", "sta_border_mode"):
            if getattr(self, name) not in BORDER_MODES:
                raise bad(name, f"must be one of {BORDER_MODES}")
        if self.grabcut_fallback not in GRABCUT_FALLBACKS:
            raise bad("grabcut_fallback", f"must be one of {GRABCUT_FALLBACKS} (the start mask where GrabCut fails)")
        if not 0 < self.grabcut_margin <= 10:
            raise bad("grabcut_margin", "must be in (0, 10] box sizes (the background GrabCut learns from)")
        if self.box_init not in BOX_INIT:
            raise bad("box_init", f"must be one of {BOX_INIT}")
        if self.seg_to_bb_mode != "var":
            raise bad("seg_to_bb_mode", "only 'var' is implemented")
        if self.max_scale_change is not None:
            lo, hi = self.max_scale_change
            if not (0 < lo <= 1 <= hi):
                raise bad("max_scale_change", "needs [low, high] with 0 < low <= 1 <= high, or null")
        for name in ("patch_max_scale_change", "sta_patch_max_scale_change"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise bad(name, "must be >= 1 or null")
        for name in ("sample_memory_size", "clf_sample_memory_size", "train_skipping", "clf_train_skipping"):
            if getattr(self, name) < 1:
                raise bad(name, "must be >= 1")
        for name in ("sample_memory_size", "clf_sample_memory_size"):
            if getattr(self, name) > MAX_MEMORY_SAMPLES:  # the memories are allocated at this size
                raise bad(name, f"must be at most {MAX_MEMORY_SAMPLES} (rts50: 32 and 50)")
        for name in ("net_opt_iter", "net_opt_update_iter", "clf_net_opt_iter", "clf_net_opt_update_iter",
                     "clf_net_opt_hn_iter", "alr_init_buff", "clf_alr_init_buff"):
            if getattr(self, name) < 0:
                raise bad(name, "must be >= 0")
        for name in ("net_opt_iter", "net_opt_update_iter", "clf_net_opt_iter", "clf_net_opt_update_iter",
                     "clf_net_opt_hn_iter"):
            if getattr(self, name) > MAX_OPT_ITER:  # every one runs on every update
                raise bad(name, f"must be at most {MAX_OPT_ITER} (rts50: 20 at most)")
        if self.clf_use_augmentation and 1 + self.clf_augmentation_fliplr + len(self.clf_augmentation_blur) > self.clf_sample_memory_size:
            raise bad("clf_sample_memory_size", "must hold the first-frame augmented samples")
        for name in ("learning_rate", "clf_learning_rate", "clf_hard_negative_learning_rate"):
            v = getattr(self, name)
            if not 0 < v < 1:
                raise bad(name, "must be in (0, 1)")
        for name in ("init_samples_minimum_weight", "clf_init_samples_minimum_weight"):
            v = getattr(self, name)
            if v is not None and not 0 < v < 1:
                raise bad(name, "must be in (0, 1) or null")
        if not 0 <= self.min_mask_area < math.inf:
            raise bad("min_mask_area", "must be a finite number >= 0 (pixels of soft mask area)")
        if not math.isfinite(self.crop_fill_value):
            raise bad("crop_fill_value", "must be a finite number (the value outside the image in crops)")
        if not 0 < self.clf_displacement_scale < math.inf:
            raise bad("clf_displacement_scale", "must be a positive finite number")
        for s in self.clf_augmentation_blur:
            if len(s) != 2 or min(s) <= 0:
                raise bad("clf_augmentation_blur", "needs a list of [sigma_y, sigma_x] pairs, both > 0")
        lo, hi, hist = self.scale_history
        if not 1 <= lo <= hi <= hist:
            raise bad("scale_history", "needs [min_n, max_n, history] with 1 <= min_n <= max_n <= history")
        if not 0 <= self.target_inside_ratio <= 1:
            raise bad("target_inside_ratio", "must be in [0, 1]")
        if not 0 <= self.clf_regularization < math.inf:
            raise bad("clf_regularization", "must be a finite number >= 0")
        # reference code paths that are not implemented: only their rts50 value is accepted
        only = {
            "strict_force_seg": True, "seg_mem_safe": True, "train_sample_interval": 1, "rescale_when_lost": True,
            "trust_clf_when_no_seg": True, "trust_clf_always": False,
            "use_clf_box_when_no_seg": True, "lower_init_weight": False, "use_seg_pos_sz_for_clf_update": True,
            "clf_use_clf_when_lwl_lost": True, "clf_output_not_found_box": False,
            "clf_low_score_opt_threshold": None, "clf_train_sample_interval": 1, "clf_score_filter_ksz": 1,
            "score_preprocess": "none", "clf_augmentation_expansion_factor": None, "clf_random_shift_factor": 0.0,
        }
        for name, value in only.items():
            if getattr(self, name) != value:
                raise bad(name, f"only the rts50 value {value!r} is implemented")
        return self

    # --- (de)serialisation -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples as lists, infinities as floats) suitable for YAML/JSON/ROS parameters."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple):
                v = [list(x) if isinstance(x, tuple) else x for x in v]
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "TrackerConfig":
        """Build from a (partial) dict; unknown keys or bad values raise ConfigError naming the field."""
        data = dict(data or {})
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"unknown tracker config field(s) {unknown}; valid fields: {sorted(known)}")
        defaults = cls()
        kwargs = {}
        for name, value in data.items():
            kwargs[name] = _coerce(name, value, getattr(defaults, name), known[name].type)
        return cls(**kwargs).validate()

    @classmethod
    def from_yaml(cls, path: str | Path) -> "TrackerConfig":
        """Read a YAML mapping of field: value (a top-level `tracker:` key is also accepted)."""
        from rts_ros.yaml_file import read_yaml

        p = Path(path)
        data = read_yaml(p, "tracker config") or {}
        if isinstance(data, dict) and set(data) == {"tracker"}:
            data = data["tracker"]
        if not isinstance(data, dict):
            raise ConfigError(f"tracker config {p} must be a mapping of field: value")
        return cls.from_dict(data)

    def replace(self, **changes) -> "TrackerConfig":
        return dataclasses.replace(self, **changes).validate()


def _coerce(name: str, value: Any, default: Any, type_str: Any) -> Any:
    """Convert YAML/ROS values to the field's type; tuples from lists; None where the field allows it."""
    optional = "None" in str(type_str)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"tracker config field '{name}' may not be null")
    if isinstance(value, str) and value.strip().lower() in ("inf", "-inf", "+inf", "infinity", "-infinity"):
        value = float(value)
    try:
        if "tuple[tuple" in str(type_str):
            return tuple(tuple(float(x) for x in pair) for pair in value)
        if "tuple[int" in str(type_str):
            return tuple(int(_int(x)) for x in value)
        if "tuple[float" in str(type_str):
            return tuple(float(x) for x in value)
        if isinstance(default, bool) or str(type_str) == "bool":
            if not isinstance(value, bool):
                raise TypeError("expected true or false")
            return value
        if str(type_str).startswith("int"):
            return _int(value)
        if str(type_str).startswith("float"):
            if isinstance(value, bool):
                raise TypeError("expected a number")
            return float(value)
        if str(type_str).startswith("str"):
            if not isinstance(value, str):
                raise TypeError("expected a string")
            return value
    except (TypeError, ValueError) as e:
        raise ConfigError(f"tracker config field '{name}' = {value!r}: {e} (default {default!r})") from e
    return value


def _int(v: Any) -> int:
    if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
        raise TypeError("expected an integer")
    try:
        return int(v)
    except (TypeError, ValueError):
        raise TypeError("expected an integer") from None
