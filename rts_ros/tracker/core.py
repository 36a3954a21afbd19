"""The RTS algorithm of spec §3.4-§3.7 for one target, on device tensors.

Host synchronisations per tracked frame (everything else stays on the device):
  1. one small transfer after the decoder: the instance score map (16x27), the mask's tight box, its soft
     area and the 'var' moments of the probability map (needed for the flags, the classifier decision and
     the next frame's crop position);
  2. the output mask (HxW uint8) for the caller.
With mask_component other than 'all' (an option, not the reference), the binary mask inside the pasted crop also
makes one host round trip before transfer 1: OpenCV labels its connected components, and the kept one goes back
to the device; with 'peak' the score map comes to the host first, since the instance branch picks the blob.
Memory weights and the crop geometry are host numbers by design (they choose slots and integer crops).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from rts_ros.tracker.augment import augment_first_frame
from rts_ros.tracker.components import select_component
from rts_ros.tracker.config import TrackerConfig
from rts_ros.tracker.crop import (centered_sample_pos, expanded_init_patch, init_window, paste_back, paste_region,
                                  sample_patch)
from rts_ros.tracker.geometry import EMPTY_BOX, box_to_state, crop_box, state_box, tight_box, var_moments
from rts_ros.tracker.growth_guard import GrowthGuard, cut_to_window
from rts_ros.tracker.labels import gaussian_label, label_center, label_sigma
from rts_ros.tracker.localize import LocaliseParams, localise
from rts_ros.tracker.memory import SampleMemory
from rts_ros.tracker.netops import RTSOps
from rts_ros.tracker.profiling import StageTimer
from rts_ros.tracker.scale import search_area_rescaling, update_scale


@dataclass
class FrameInfo:
    """Internal values of one frame (for parity tests, debugging and the ROS diagnostics)."""

    output_box: tuple[float, float, float, float]
    output_box_source: str
    mask_box: tuple[float, float, float, float]
    clf_box: tuple[float, float, float, float]
    clf_search_area: tuple[float, float, float, float]
    clf_flag: str
    clf_max_score: float
    is_lost_seg: bool
    seg_too_small: bool
    is_lost_clf: bool
    soft_area: float
    reposition_branch: str
    search_area_rescaling_called: bool
    target_not_found_counter: int
    seg_memory_updated: bool
    seg_model_update_iters: int
    clf_memory_updated: bool
    clf_model_update_iters: int
    sample_coords: np.ndarray
    sample_pos: np.ndarray       # centre of the crop as cropped (from its coordinates)
    search_center: np.ndarray    # requested crop centre pos + 8 * scale (the reference's sample_pos)
    pos: np.ndarray
    target_sz: np.ndarray
    target_scale: float
    clf_pos: np.ndarray
    clf_target_sz: np.ndarray
    seg_num_stored: int
    clf_num_stored: int
    clf_scores: np.ndarray | None = None
    mask_growth_clipped: bool = False  # the growth guard cut the mask this frame
    quality_features: np.ndarray | None = None   # rts_ros.tracker.quality.FEATURES of this frame (Tracker)
    extra: dict = field(default_factory=dict)


class RTSCore:
    def __init__(self, ops: RTSOps, cfg: TrackerConfig, timer: StageTimer) -> None:
        self.ops = ops
        self.cfg = cfg
        self.timer = timer
        self.isz = tuple(cfg.image_sample_size)
        self.fsz = cfg.feature_size
        self.clf_fsz = cfg.clf_feature_size(ops.clf_stride)
        self.base_loc_params = LocaliseParams(
            cfg.clf_target_not_found_threshold, cfg.clf_uncertain_threshold, cfg.clf_hard_sample_threshold,
            cfg.clf_distractor_threshold, cfg.clf_hard_negative_threshold, cfg.clf_target_neighborhood_scale,
            cfg.clf_displacement_scale, cfg.clf_advanced_localization)

    # ------------------------------------------------------------------------------------------ init
    def initialize(self, image: torch.Tensor, box, mask: torch.Tensor) -> dict:
        """image (1, 3, H, W) RGB 0..255 (uint8 or float), box [x, y, w, h], mask bool (H, W) (both on the device)."""
        cfg, ops, isz, T = self.cfg, self.ops, self.isz, self.timer
        self.image_hw = (int(image.shape[-2]), int(image.shape[-1]))
        pos, sz, scale = box_to_state(box, cfg.search_area_scale, isz)
        self.pos, self.target_sz, self.target_scale = pos, sz, scale
        self.base_target_sz = (sz / np.float32(scale)).astype(np.float32)
        self.prev_clf_pos, self.prev_clf_target_sz = pos.copy(), sz.copy()

        mask_f = mask.to(torch.float32).view(1, 1, *mask.shape)
        with T.stage("crop"):
            # segmentation sample: expanded crop + window shift (border-mode emulation), §3.4-B
            win = init_window(self.image_hw, pos, scale, isz, cfg.border_mode, cfg.patch_max_scale_change)
            seg_im, _ = expanded_init_patch(image, win, isz, cfg.seg_init_expansion_factor)
            seg_mask, _ = expanded_init_patch(mask_f, win, isz, cfg.seg_init_expansion_factor, is_mask=True)
            # instance samples: unshrunk replicate crop at the rounded position, §3.4-C
            c_pos, c_sz, c_scale = box_to_state(box, cfg.clf_search_area_scale, isz)
            self.clf_pos, self.clf_target_sz, self.clf_target_scale = c_pos, c_sz, c_scale
            self.clf_base_target_sz = (c_sz / np.float32(c_scale)).astype(np.float32)
            self.clf_min_scale = float(np.max(10.0 / self.clf_base_target_sz))
            self.clf_max_scale = float(np.min(np.array(self.image_hw, np.float32) / self.clf_base_target_sz))
            clf_spos = np.round(c_pos).astype(np.float32)
            clf_crop, _ = sample_patch(image, clf_spos, np.float32(c_scale) * np.array(isz, np.float32), isz,
                                       mode="replicate")
            blur = cfg.clf_augmentation_blur if cfg.clf_use_augmentation else ()
            flip = cfg.clf_augmentation_fliplr and cfg.clf_use_augmentation
            clf_crops = augment_first_frame(clf_crop, flip, tuple(blur))
        with T.stage("backbone"):
            feats = ops.backbone(torch.cat([seg_im, clf_crops], 0))
            l3 = feats["layer3"]
        with T.stage("segmentation_branch"):
            x = ops.seg_features(l3[:1])
            E, W = ops.label_encode(seg_mask)
            self.seg_filter = ops.seg_optimize(ops.seg_init_filter(x), x, E, W, cfg.net_opt_iter)
            self.seg_mem = SampleMemory(cfg.sample_memory_size, cfg.learning_rate, cfg.init_samples_minimum_weight)
            self.seg_mem.init({"x": x, "E": E, "W": W})
        with T.stage("instance_branch"):
            n = clf_crops.shape[0]
            X = ops.clf_features(l3[1:])
            cbox = crop_box(c_pos, c_sz, clf_spos, c_scale, isz)
            boxes = torch.as_tensor(np.tile(cbox, (n, 1)), device=X.device)
            self.clf_sigma = label_sigma(cfg.clf_output_sigma_factor, self.clf_fsz, isz, self.clf_base_target_sz)
            center = label_center(self.clf_fsz, isz, c_pos, clf_spos, c_scale)
            lab = gaussian_label(center, self.clf_sigma, self.clf_fsz, device=X.device).expand(n, -1, -1)
            f0 = ops.clf_init_filter(X, boxes)
            self.clf_filter = ops.clf_optimize(f0, X, lab, None, cfg.clf_net_opt_iter)
            self.clf_mem = SampleMemory(cfg.clf_sample_memory_size, cfg.clf_learning_rate,
                                        cfg.clf_init_samples_minimum_weight, bounded_counter=False)
            self.clf_mem.init({"feat": X, "label": lab.contiguous(), "box": boxes})
            self.loc_params, init_peak = self.base_loc_params, None
            if cfg.clf_not_found_relative > 0:
                # the learned filter on its own (unaugmented) init sample sets the score scale of this sequence
                init_peak = float(ops.clf_scores(X[:1], self.clf_filter).max())
                thr = min(self.base_loc_params.not_found_threshold, cfg.clf_not_found_relative * init_peak)
                self.loc_params = replace(self.base_loc_params, not_found_threshold=thr)

        self.mask_bias = start_mask_bias(cfg.mask_logit_bias, cfg.mask_logit_bias_downsampled, scale,
                                         cfg.mask_logit_bias_scales)

        # §3.4-D
        area = int(mask.sum())
        self.seg_too_small = area <= cfg.min_mask_area
        self.is_lost_seg = self.seg_too_small
        self.is_lost_clf = False
        self.prev_quality = math.nan   # the last frame's quality estimate, set by the Tracker (NaN: none)
        self.target_scales = [scale]
        self.not_found_counter = 0
        self.frame_num = 1
        self.prev_raw = (mask_f - 0.5) * 200.0  # the init output's segmentation_raw (+-100)
        self.prev_moments = var_moments(self.prev_raw[0, 0])
        self.prev_sample_loc = None
        self.prev_x = None
        self.growth_guard = None
        if cfg.mask_growth_limit > 0:
            # the start mask's box, not the given one: later frames compare mask boxes with mask boxes
            mb = tight_box(mask)
            self.growth_guard = GrowthGuard(cfg.mask_growth_limit, cfg.mask_growth_window, cfg.mask_growth_patience,
                                            box if mb == EMPTY_BOX else mb)
        return {
            "sta_mask_area": area, "pos": pos, "target_sz": sz, "target_scale": scale,
            "init_sample_pos": win.sample_pos, "init_sample_scale": win.sample_scale, "shift": win.shift,
            "clf_init_sample_pos": clf_spos, "clf_init_sample_scale": c_scale, "clf_sigma": self.clf_sigma,
            "clf_init_peak": init_peak, "clf_not_found_threshold": self.loc_params.not_found_threshold,
            "mask_logit_bias": self.mask_bias,
        }

    # ------------------------------------------------------------------------------------------ track
    def track(self, image: torch.Tensor, guide_window=None) -> tuple[torch.Tensor, FrameInfo]:
        """One frame: returns (binary mask (H, W) bool on the device, FrameInfo).

        guide_window: (y0, y1, x0, x1) in image pixels from an independent tracker (cfg.mask_guide), or None."""
        cfg, ops, isz, T = self.cfg, self.ops, self.isz, self.timer
        self.frame_num += 1
        fn = self.frame_num

        # 2. segmentation memory update with the previous frame (§3.5-2)
        seg_updated, seg_iters = False, 0
        force = fn < cfg.alr_init_buff
        clf_ok = not self.is_lost_clf
        if cfg.seg_update_min_quality > 0 and math.isfinite(self.prev_quality):
            quality_ok = self.prev_quality >= cfg.seg_update_min_quality
            clf_ok = quality_ok if cfg.seg_update_quality_replaces_clf else clf_ok and quality_ok
        safe = force or (not self.is_lost_seg and clf_ok)
        if cfg.update_target_model and fn > 2 and safe:
            with T.stage("memory_update"):
                soft, _ = sample_patch(self.prev_raw, self.prev_sample_loc,
                                       np.float32(self.prev_target_scale) * np.array(isz, np.float32), isz,
                                       mode=cfg.border_mode, max_scale_change=cfg.patch_max_scale_change,
                                       is_mask=True)
                E, W = ops.label_encode(soft)  # the encoding of a stored mask never changes: cache it
                self.seg_mem.insert({"x": self.prev_x, "E": E, "W": W})
                seg_updated = True
                if (fn - 1) % cfg.train_skipping == 0 or force:
                    w = torch.as_tensor(self.seg_mem.used_weights(), device=W.device).view(-1, 1, 1, 1, 1)
                    V = self.seg_mem.used("W") * w
                    seg_iters = cfg.net_opt_update_iter
                    self.seg_filter = ops.seg_optimize(self.seg_filter, self.seg_mem.used("x"),
                                                       self.seg_mem.used("E"), V, seg_iters)

        # 3. reposition / rescale from the previous output (§3.5-3)
        no_seg = self.seg_too_small or self.is_lost_seg
        rescaled = False
        if self.is_lost_clf and no_seg:
            branch = "clf_lost_and_no_seg:rescale_search_area"
            rescaled = self._rescale_when_lost()
        elif no_seg:
            branch = "no_seg:state_from_classifier"
            self.pos, sz = self.prev_clf_pos.copy(), self.prev_clf_target_sz.copy()
            self._update_scale(sz)
        elif not self.is_lost_clf or cfg.trust_seg_when_no_clf:
            branch = ("seg_and_clf_ok:state_from_segmentation" if not self.is_lost_clf
                      else "clf_lost:state_from_segmentation")
            st = _moments_to_state(self.prev_moments, cfg.seg_to_bb_sz_factor)
            if st is not None:
                self.pos, sz = st
            else:
                sz = self.target_sz
            self._update_scale(sz)
        else:
            branch = "clf_lost:rescale_search_area"
            rescaled = self._rescale_when_lost()

        # 4-5. crop, backbone, features (once per frame, shared by both branches)
        center = centered_sample_pos(self.pos, self.target_scale, isz, self.fsz)
        with T.stage("crop"):
            crop, geom = sample_patch(image, center, np.float32(self.target_scale) * np.array(isz, np.float32), isz,
                                      mode=cfg.border_mode, max_scale_change=cfg.patch_max_scale_change)
        with T.stage("backbone"):
            feats = ops.backbone(crop)
        with T.stage("instance_branch"):
            cfeat = ops.clf_features(feats["layer3"])
            scores = ops.clf_scores(cfeat, self.clf_filter)  # (1, 1, 16, 27)
            enc = ops.encode_scores(scores, self.fsz)
        with T.stage("segmentation_branch"):
            x = ops.seg_features(feats["layer3"])
            fused = ops.seg_apply(x, self.seg_filter) + enc
        with T.stage("decoder"):
            logits = ops.decode(fused, feats, isz).view(1, 1, *isz)
            if self.mask_bias:
                logits = logits + self.mask_bias
        with T.stage("output"):
            sample_pos, sample_scale = geom.sample_pos, geom.sample_scale
            full = paste_back(logits, sample_pos, sample_scale, self.image_hw, cfg.crop_fill_value)
            prob = torch.sigmoid(full)
            binary = full[0, 0] > 0
            # with a non-positive fill nothing outside the pasted crop is set: search the mask only there
            region = paste_region(isz, sample_pos, sample_scale, self.image_hw) if cfg.crop_fill_value <= 0 else None
            roi = region[:4] if region is not None else None
            mode, near, loc = cfg.mask_component, self.pos, None
            if mode == "peak":
                # the instance branch picks the blob: one more (small) host transfer, for its score map
                score_map = scores.reshape(scores.shape[-2:]).float().cpu().numpy()
                loc = localise(score_map, sample_scale, self.clf_target_sz, isz, self.clf_fsz, self.loc_params)
                peak = _peak_position(loc, sample_pos)
                mode, near = ("largest", self.pos) if peak is None else ("nearest", peak)
            window_cut = guide_window is not None and cfg.mask_guide == "kcf_window"
            if window_cut:
                binary = cut_to_window(binary, guide_window)
            keep = select_component(binary, mode, near, roi, None if window_cut else guide_window)
            if keep is not None:
                binary = keep  # one component of binary
            if keep is not None or window_cut or cfg.soft_map_in_mask:
                # soft_map_in_mask: sub-threshold probability spread over the crop inflates the 'var' size
                prob = prob * binary
            # the one small host transfer of the frame
            mask_box, soft_area, moments, packed_scores = _summarise(binary, prob, roi, scores if loc is None else None)
        if loc is None:
            score_map = packed_scores
            with T.stage("instance_branch"):
                loc = localise(score_map, sample_scale, self.clf_target_sz, isz, self.clf_fsz, self.loc_params)
        clipped = False
        if self.growth_guard is not None and mask_box != EMPTY_BOX:
            # the instance branch's peak, or the crop's target position when it has lost the target
            peak = _peak_position(loc, sample_pos)
            window = self.growth_guard.clip_window(mask_box, self.pos if peak is None else peak)
            if window is not None:
                with T.stage("output"):
                    binary = cut_to_window(binary, window)
                    prob = prob * binary
                    mask_box, soft_area, moments, _ = _summarise(binary, prob, roi, None)
                clipped = True
            self.growth_guard.record(mask_box, clipped)

        # 13-15. flags, instance branch (§3.7)
        self.is_lost_seg = mask_box == EMPTY_BOX
        self.seg_too_small = soft_area <= cfg.min_mask_area
        pos_c, sz_c, scale_c = box_to_state(mask_box, cfg.clf_search_area_scale, isz)
        with T.stage("instance_branch"):
            seg_ok = not self.is_lost_seg and not self.seg_too_small
            if seg_ok:
                self.clf_pos, self.clf_target_scale, self.clf_target_sz = pos_c, scale_c, sz_c
            elif loc.flag != "not_found":
                new_pos = (sample_pos + loc.translation).astype(np.float32)
                self.clf_target_scale = float(np.clip(np.float32(sample_scale), self.clf_min_scale, self.clf_max_scale))
                self.clf_target_sz = (self.clf_base_target_sz * np.float32(self.clf_target_scale)).astype(np.float32)
                off = (np.float32(cfg.target_inside_ratio) - np.float32(0.5)) * self.clf_target_sz
                self.clf_pos = np.maximum(np.minimum(new_pos, np.array(self.image_hw, np.float32) - off), off)
        clf_updated, clf_iters = False, 0
        if cfg.update_classifier and loc.flag not in ("not_found", "uncertain"):
            with T.stage("memory_update"):
                clf_updated, clf_iters = True, self._update_classifier(cfeat, sample_pos, sample_scale, loc.flag)
        self.is_lost_clf = loc.flag == "not_found"
        self.prev_clf_pos, self.prev_clf_target_sz = self.clf_pos.copy(), self.clf_target_sz.copy()

        # 16. keep what the next frame's memory update needs
        self.prev_sample_loc = center
        self.prev_target_scale = self.target_scale
        self.prev_x = x
        self.prev_raw = prob
        self.prev_moments = moments

        clf_box = state_box(self.clf_pos, self.clf_target_sz)
        c = geom.coords
        search = (float(c[1]), float(c[0]), float(c[3] - c[1] - 1), float(c[2] - c[0] - 1))
        use_clf = self.is_lost_seg or self.seg_too_small
        info = FrameInfo(
            output_box=clf_box if use_clf else mask_box,
            output_box_source="classifier" if use_clf else "segmentation",
            mask_box=mask_box, clf_box=clf_box, clf_search_area=search, clf_flag=loc.flag,
            clf_max_score=loc.max_score, is_lost_seg=self.is_lost_seg, seg_too_small=self.seg_too_small,
            is_lost_clf=self.is_lost_clf, soft_area=soft_area, reposition_branch=branch,
            search_area_rescaling_called=rescaled, target_not_found_counter=self.not_found_counter,
            seg_memory_updated=seg_updated, seg_model_update_iters=seg_iters, clf_memory_updated=clf_updated,
            clf_model_update_iters=clf_iters, sample_coords=c.copy(), sample_pos=sample_pos, search_center=center, pos=self.pos.copy(),
            target_sz=self.target_sz.copy(), target_scale=self.target_scale, clf_pos=self.clf_pos.copy(),
            clf_target_sz=self.clf_target_sz.copy(), seg_num_stored=self.seg_mem.num_used,
            clf_num_stored=self.clf_mem.num_stored, clf_scores=score_map,
            mask_growth_clipped=clipped,
        )
        return binary, info

    # ------------------------------------------------------------------------------------------ helpers
    def _update_scale(self, sz) -> None:
        self.target_scale, self.target_sz = update_scale(sz, self.base_target_sz, self.target_scale,
                                                         self.cfg.max_scale_change)
        self.target_scales.append(self.target_scale)
        self.not_found_counter = 0

    def _rescale_when_lost(self) -> bool:
        s, self.not_found_counter = search_area_rescaling(self.target_scales, self.not_found_counter,
                                                          tuple(self.cfg.scale_history))
        if s is not None:
            self.target_scale = s
        return True

    def _update_classifier(self, cfeat, sample_pos, sample_scale: float, flag: str) -> int:
        cfg, isz = self.cfg, self.isz
        hard = flag == "hard_negative"
        lr = cfg.clf_hard_negative_learning_rate if hard else cfg.clf_learning_rate
        box = crop_box(self.clf_pos, self.clf_target_sz, sample_pos, sample_scale, isz)
        center = label_center(self.clf_fsz, isz, self.clf_pos, sample_pos, sample_scale)
        lab = gaussian_label(center, self.clf_sigma, self.clf_fsz, device=cfeat.device).unsqueeze(0)
        mem = self.clf_mem
        saved_lr, mem.lr = mem.lr, lr
        mem.insert({"feat": cfeat, "label": lab, "box": torch.as_tensor(box, device=cfeat.device).view(1, 4)})
        mem.lr = saved_lr
        fn = self.frame_num
        if hard:
            iters = cfg.clf_net_opt_hn_iter
        elif (fn - 1) % cfg.clf_train_skipping == 0 or fn < cfg.clf_alr_init_buff:
            iters = cfg.clf_net_opt_update_iter
        else:
            iters = 0
        if iters > 0:
            w = torch.as_tensor(mem.used_weights(), device=cfeat.device)
            self.clf_filter = self.ops.clf_optimize(self.clf_filter, mem.used("feat"), mem.used("label"), w, iters)
        return iters


def start_mask_bias(bias: float, downsampled: float | None, scale: float,
                    scales: tuple[float, float] = (1.0, 2.0)) -> float:
    """The mask logit bias of a sequence (not in the reference). ``scale`` is image pixels per crop pixel at the
    start. A target upsampled into the crop (scale <= scales[0]; by default 1: small in the image, as the 320x240
    training clips) gets ``bias``; one shrunk to scales[1] or more gets ``downsampled``; in between the bias ramps
    on log2(scale). Fixed at the start: per frame, a mask that shrinks would lower the scale and strengthen the
    bias that made it shrink."""
    if downsampled is None:
        return float(bias)
    lo, hi = (float(v) for v in scales)
    t = float(np.clip(np.log2(max(float(scale), 1e-6) / lo) / np.log2(hi / lo), 0.0, 1.0))
    return float((1.0 - t) * bias + t * downsampled)


def _peak_position(loc, sample_pos: np.ndarray) -> np.ndarray | None:
    """Image (y, x) of the instance branch's score peak, or None when it reports the target not found."""
    return None if loc.flag == "not_found" else sample_pos + loc.translation


def _summarise(binary: torch.Tensor, prob: torch.Tensor, roi, scores: torch.Tensor | None):
    """One host transfer: (mask box [x, y, w, h] or EMPTY_BOX, soft area, 'var' moments, score map or None)."""
    parts = [_box_terms(binary, roi), prob.sum().view(1), var_moments(prob[0, 0])]
    if scores is not None:
        parts.append(scores.reshape(-1))
    packed = torch.cat(parts).cpu().numpy()
    x0, y0, x1, y1 = (int(v) for v in packed[:4])
    mask_box = EMPTY_BOX if x1 < 0 else (float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1))
    score_map = packed[9:].reshape(scores.shape[-2:]) if scores is not None else None
    return mask_box, float(packed[4]), packed[5:9], score_map


def _box_terms(binary: torch.Tensor, roi: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    """(x_min, y_min, x_max, y_max) of a bool map as floats; x_max = -1 when empty (no sync). ``roi``
    (y0, y1, x0, x1), when given, must hold every set pixel: only it is scanned."""
    y0, y1, x0, x1 = roi if roi is not None else (0, binary.shape[0], 0, binary.shape[1])
    sub = binary[y0:y1, x0:x1]
    h, w = sub.shape
    rows, cols = sub.any(dim=1), sub.any(dim=0)
    ar_r = torch.arange(y0, y0 + h, device=binary.device)
    ar_c = torch.arange(x0, x0 + w, device=binary.device)
    big = binary.shape[0] + binary.shape[1]
    return torch.stack([
        torch.where(cols, ar_c, big).min(), torch.where(rows, ar_r, big).min(),
        torch.where(cols, ar_c, -1).max(), torch.where(rows, ar_r, -1).max(),
    ]).to(torch.float32)


def _moments_to_state(m, sz_factor: float):
    m = np.asarray(m.cpu() if isinstance(m, torch.Tensor) else m, dtype=np.float32)
    ey, ex, vy, vx = (float(v) for v in m)
    if not (vy > 0 and vx > 0):
        return None
    pos = np.array([ey, ex], np.float32)
    return pos, (np.float32(sz_factor) * np.sqrt(np.array([vy, vx], np.float32))).astype(np.float32)
