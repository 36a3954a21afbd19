"""Public, ROS-free tracker: Tracker.from_weights(...).initialize(image, box) then track(image) per frame."""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
import torch

from rts_ros.errors import ConfigError, InvalidInputError, NotInitializedError
from rts_ros.tracker.box_calibration import BoxCalibration
from rts_ros.tracker.box_init import grabcut_mask, sta_mask
from rts_ros.tracker.config import TrackerConfig
from rts_ros.tracker.core import FrameInfo, RTSCore
from rts_ros.tracker.geometry import tight_box_np
from rts_ros.tracker.inputs import as_rgb_uint8, check_box, check_mask
from rts_ros.tracker.mask_guide import KCFGuide
from rts_ros.tracker.netops import RTSOps
from rts_ros.tracker.profiling import StageTimer
from rts_ros.tracker.quality import QualityFeatures, QualityModel
from rts_ros.tracker.types import TrackResult, TrackState
from rts_ros.weights.folder import resolve_device

log = logging.getLogger("rts_ros.tracker")


class Tracker:
    """Tracks one target. Not thread-safe: use one Tracker per thread/target."""

    def __init__(self, net: torch.nn.Module, sta: torch.nn.Module | None = None, device="auto",
                 config: TrackerConfig | None = None, profile: bool = False, channels_last: bool = True,
                 fold_bn: bool = True, fp16: bool = False, quality_model: QualityModel | None = None) -> None:
        self.config = (config or TrackerConfig()).validate()
        self.quality_model = quality_model
        if self.config.seg_update_min_quality > 0 and quality_model is None:
            log.warning("seg_update_min_quality = %s has no effect: these weights have no quality model "
                        "(fit one with rts-fit-quality)", self.config.seg_update_min_quality)
        self._device = resolve_device(device)
        amp = None
        if fp16 and self._device.type == "cuda":
            amp = torch.float16  # backbone + decoder in half precision; learners, scores, masks in float32
        elif fp16:
            log.warning("fp16 requested on %s: ignored (half precision is only used on CUDA)", self._device)
        self.net = net.to(self._device).eval()
        self.sta = sta.to(self._device).eval() if sta is not None else None
        if self.config.box_init == "sta" and self.sta is None:
            raise ConfigError("tracker config field 'box_init' = 'sta' but the weights have no STA network "
                              "(sta.safetensors); use box_init 'auto' or 'grabcut', or give an init mask")
        self.timer = StageTimer(self._device, profile)
        self._thread = threading.get_ident()   # the thread that built it (see _check_thread)
        self._ops = RTSOps(self.net, self._device, channels_last, fold_bn, amp)
        if self.sta is not None and channels_last:
            self.sta.to(memory_format=torch.channels_last)
        self.reset()

    @classmethod
    def from_weights(cls, weights_dir: str | Path | None = None, device="auto",
                     config: TrackerConfig | None = None, profile: bool = False, fp16: bool = False,
                     overrides: dict | None = None) -> "Tracker":
        """Load a weights folder (None: the shipped default model, see rts_ros.weights).

        Settings: `config` (complete) if given; otherwise the model's recommended settings (the `tracker`
        mapping of rts.json, e.g. a small model's crop size; rts50 defaults where absent) with `overrides`
        (a partial dict of TrackerConfig fields) applied on top.
        fp16: half-precision backbone and decoder on CUDA (not parity-checked; ignored on CPU)."""
        from rts_ros.weights import load_weights_folder

        wf = load_weights_folder(weights_dir, device=resolve_device(device))
        net, sta = wf.rts, wf.sta
        if config is None:
            config = model_config(wf.rts_meta, overrides, source=str(wf.path / "rts.json"))
        elif overrides:
            config = TrackerConfig.from_dict({**config.to_dict(), **overrides})
        return cls(net, sta, device=device, config=config, profile=profile, fp16=fp16,
                   quality_model=load_quality_model(wf.rts_meta))

    # --------------------------------------------------------------------------------- properties
    @property
    def device(self) -> str:
        return str(self._device)

    @property
    def state(self) -> TrackState:
        return self._state

    @property
    def profiling(self) -> bool:
        return self.timer.enabled

    @profiling.setter
    def profiling(self, on: bool) -> None:
        self.timer.enabled = bool(on)

    @property
    def box_calibration(self) -> BoxCalibration:
        """The output-box correction measured on the first tracked frame (identity when the config turns it off,
        before that frame, or when that frame's box did not come from the mask)."""
        return self._box_calibration

    @property
    def last_info(self) -> FrameInfo | None:
        """Internal values of the last tracked frame (flags, branch, scores...), for diagnostics."""
        return self._last_info

    def reset(self) -> None:
        """Forget the target; the next call must be initialize()."""
        self._core: RTSCore | None = None
        self._state = TrackState.IDLE
        self._frame_index = -1
        self._image_hw: tuple[int, int] | None = None
        self._last_info: FrameInfo | None = None
        self._init_box: tuple[float, float, float, float] | None = None
        self._box_calibration = BoxCalibration()
        self._quality: QualityFeatures | None = None
        self._guide: KCFGuide | None = None
        self.init_info: dict = {}

    def _check_thread(self) -> None:
        """Warn once when used on another thread than the one that built it, on a CPU: each thread running torch
        gets its own OpenMP team, and with two alive each frame took 1.6x longer on a 2-core machine."""
        here = threading.get_ident()
        if here == self._thread or self._device.type != "cpu":
            return
        log.warning("this Tracker was built on another thread than the one now using it: on a CPU, torch work "
                    "on two threads can make every frame up to 1.6x slower (two OpenMP teams). Build and use a "
                    "tracker on one thread (the thread that built it may also simply have finished)")
        self._thread = here

    # --------------------------------------------------------------------------------- API
    def initialize(self, image, box=None, mask=None) -> TrackResult:
        """Start tracking on `image` (HxWx3 uint8 RGB; gray/RGBA converted) from a box [x, y, w, h] and/or a
        mask (HxW, non-zero = target). Without a mask, the box is turned into a mask by STA (or GrabCut).
        Returns the frame-0 result (mask = the initial mask, box = the given or the mask's tight box)."""
        self._check_thread()
        img = as_rgb_uint8(image, "init image")
        hw = img.shape[:2]
        if box is None and mask is None:
            raise InvalidInputError("initialize() needs a box (x, y, w, h), a mask, or both")
        m_np = check_mask(mask, hw) if mask is not None else None
        if box is None:
            box = tight_box_np(m_np)
        box = check_box(box, hw)
        self.reset()
        self.timer.reset()
        t0 = time.perf_counter()
        with torch.inference_mode():
            im_t = self._upload(img)
            if m_np is not None:
                m_t = torch.from_numpy(m_np).to(self._device)
            else:
                with self.timer.stage("box_init"):
                    m_t = self._box_to_mask(img, im_t, box)
            core = RTSCore(self._ops, self.config, self.timer)
            self.init_info = core.initialize(im_t, box, m_t)
            mask_out = (m_t.to(torch.uint8) * 255).cpu().numpy()
        self.init_info["time_s"] = time.perf_counter() - t0
        self._core = core
        self._image_hw = hw
        self._init_box = tuple(float(v) for v in box)
        self._quality = QualityFeatures(self._init_box)
        cfg = self.config
        if cfg.mask_guide != "none":
            self._guide = KCFGuide(cfg.mask_guide_margin, cfg.mask_guide_reinit_quality, cfg.mask_guide_reinit_every,
                                   cfg.mask_guide_target_px)
            self._guide.start(img, self._init_box)
        self._frame_index = 0
        self._state = TrackState.TRACKING
        return TrackResult(mask_out, tuple(float(v) for v in box), 1.0, self._state, 0,
                           int(np.count_nonzero(mask_out)), dict(self.timer.times), quality=1.0)

    def track(self, image) -> TrackResult:
        """Track the target in the next frame."""
        self._check_thread()
        if self._core is None:
            raise NotInitializedError("track() called before initialize(); call initialize(image, box=...) first")
        img = as_rgb_uint8(image, f"frame {self._frame_index + 1}")
        if img.shape[:2] != self._image_hw:
            raise InvalidInputError(
                f"frame {self._frame_index + 1} has size {img.shape[1]}x{img.shape[0]} but the sequence started "
                f"at {self._image_hw[1]}x{self._image_hw[0]}; call initialize() again for a new image size")
        self.timer.reset()
        guide_window = None
        if self._guide is not None:
            with self.timer.stage("mask_guide"):
                guide_window = self._guide.update(img)
        with torch.inference_mode():
            binary, info = self._core.track(self._upload(img), guide_window)
            with self.timer.stage("output"):
                mask_out = (binary.to(torch.uint8) * 255).cpu().numpy()
        self._frame_index += 1
        seg_fail = info.is_lost_seg or info.seg_too_small
        clf_fail = info.clf_flag == "not_found"
        self._state = (TrackState.LOST if seg_fail and clf_fail else
                       TrackState.UNCERTAIN if seg_fail or clf_fail else TrackState.TRACKING)
        confidence = float(info.clf_max_score)
        if not np.isfinite(confidence):   # localise() already called it not found; keep NaN off the topics
            log.error("frame %d: the network produced a non-finite classifier score (%s); the weights are likely "
                      "damaged or from a diverged run", self._frame_index, confidence)
            confidence = 0.0
        self._last_info = info
        box = self._calibrated(info)
        mask_area = int(np.count_nonzero(mask_out))
        info.quality_features = self._quality.update(confidence, info.soft_area, mask_area, box, info.mask_box,
                                                     info.clf_box, clf_fail)
        quality = self.quality_model.predict(info.quality_features) if self.quality_model else float("nan")
        self._core.prev_quality = quality   # seg_update_min_quality gates the next frame's memory update on it
        if self._guide is not None:
            with self.timer.stage("mask_guide"):
                self._guide.after_frame(img, box, quality)
        return TrackResult(mask_out, box, confidence, self._state, self._frame_index, mask_area,
                           dict(self.timer.times), quality=quality)

    # --------------------------------------------------------------------------------- helpers
    def _calibrated(self, info: FrameInfo) -> tuple[float, float, float, float]:
        cfg = self.config
        if self._frame_index == 1 and info.output_box_source == "segmentation" and (
                cfg.box_calibration_size_weight > 0 or cfg.box_calibration_offset_weight > 0):
            self._box_calibration = BoxCalibration.measure(
                self._init_box, info.output_box, cfg.box_calibration_size_weight, cfg.box_calibration_size_range,
                cfg.box_calibration_offset_weight, cfg.box_calibration_offset_max)
        return self._box_calibration.apply(info.output_box, self._image_hw)

    def _upload(self, img: np.ndarray) -> torch.Tensor:
        # stays uint8 (a quarter of the bytes to a GPU); the crops convert only the region they cut
        t = torch.from_numpy(img).to(self._device, non_blocking=True)
        return t.permute(2, 0, 1).unsqueeze(0)

    def _box_to_mask(self, img: np.ndarray, im_t: torch.Tensor, box) -> torch.Tensor:
        mode = self.config.box_init
        if mode == "sta" or (mode == "auto" and self.sta is not None):
            m = sta_mask(self.sta, im_t, box, self.config)
            if bool(m.any()):
                return m
            log.warning("STA produced an empty mask for box %s; falling back to GrabCut", box)
        cfg = self.config
        mask = grabcut_mask(img, box, margin=cfg.grabcut_margin, fallback=cfg.grabcut_fallback)
        return torch.from_numpy(mask).to(self._device)


def load_quality_model(rts_meta: dict) -> QualityModel | None:
    """The weights' quality model (rts.json `quality`), None when they have none."""
    data = rts_meta.get("quality")
    return None if data is None else QualityModel.from_dict(data)


def model_config(rts_meta: dict, overrides: dict | None = None, source: str = "rts.json") -> TrackerConfig:
    """The model's recommended settings (rts.json `tracker`) with a partial dict of overrides on top. An error
    in the recommended settings names ``source``: the user never wrote them and would look in their own config."""
    recommended = rts_meta.get("tracker") or {}
    if not isinstance(recommended, dict):
        raise ConfigError(f"{source}: 'tracker' must be a mapping of TrackerConfig fields")
    overrides = overrides or {}
    try:
        return TrackerConfig.from_dict({**recommended, **overrides})
    except ConfigError as err:
        try:   # the recommended values that no override replaces: are they at fault?
            TrackerConfig.from_dict({k: v for k, v in recommended.items() if k not in overrides})
        except ConfigError as own:
            raise ConfigError(f"{source}: the weights' recommended tracker settings ('tracker') are invalid: {own}; "
                              f"fix or remove that entry") from None
        raise err from None
