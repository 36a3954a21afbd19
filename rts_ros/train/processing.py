"""Training-sample processing of spec §5: joint transforms, box jitter, inside_major crop, affine, brightness.

Images stay RGB uint8-range float here; the network's `preprocess` does BGR/mean normalisation in the forward.
All randomness comes from the numpy Generator passed in, so a sample is a pure function of its seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from rts_ros.errors import InvalidInputError
from rts_ros.train.labels import gaussian_label


@dataclass(frozen=True)
class ProcessingConfig:
    """Augmentation and crop parameters (defaults: the reference's RTS training values)."""
    output_hw: tuple[int, int] = (480, 832)
    search_area_factor: float = 5.0
    scale_jitter: dict[str, float] = field(default_factory=lambda: {"train": 0.25, "test": 0.5})
    center_jitter: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {"train": (3.0, 3.0), "test": (5.5, 4.5)})   # (x, y)
    grayscale_prob: float = 0.05
    flip_prob: float = 0.5
    max_rotation_deg: float = 15.0
    log_scale_range: float = 0.2
    brightness_jitter: float = 0.2
    label_sigma_factor: float = 0.25 / 5.0
    clf_kernel_size: int = 4
    feature_stride_clf: int = 32
    # Small-target blur: with this probability per sample the crops are rendered as if the target were only
    # low_res_target_px (a log-uniform draw, sqrt of box area) pixels in the camera image, as the tracker sees
    # small targets: a crop upsampled from few pixels. 0 = off (the reference has no such augmentation).
    low_res_prob: float = 0.0
    low_res_target_px: tuple[float, float] = (12.0, 64.0)


@dataclass
class ProcessedFrames:
    """One set (train or test) of processed frames: images N,3,H,W RGB 0..255, masks N,H,W 0/1, boxes N,4 xywh."""
    images: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray   # N, h, w classifier Gaussian labels


def jitter_box(box: np.ndarray, rng: np.random.Generator, scale_sigma: float,
               center_factor_xy: tuple[float, float]) -> np.ndarray:
    """Box with log-normal size noise and a uniform centre shift scaled by the jittered box side."""
    box = np.asarray(box, dtype=np.float64)
    size = box[2:] * np.exp(rng.standard_normal(2) * scale_sigma)
    max_offset = np.sqrt(size.prod()) * np.asarray(center_factor_xy, dtype=np.float64)
    centre = box[:2] + 0.5 * box[2:] + max_offset * (rng.random(2) - 0.5)
    return np.concatenate([centre - 0.5 * size, size])


def inside_major_window(centre_xy: np.ndarray, box_area: float, factor: float, image_hw: tuple[int, int],
                        output_hw: tuple[int, int]) -> tuple[float, float, float, float]:
    """Crop window (x1, y1, w, h) with the output aspect ratio and area factor² · box area.

    'inside_major': the window shrinks (never grows) until it fits the image along at least one axis, then shifts
    to stay inside the image along every axis where it fits; along an axis where it is larger it stays centred.
    """
    out_h, out_w = output_hw
    im_h, im_w = image_hw
    scale = np.sqrt(max(box_area, 1.0) / (out_h * out_w)) * factor
    w, h = np.ceil(out_w * scale), np.ceil(out_h * scale)
    shrink = max(min(w / im_w, h / im_h), 1.0)
    w, h = np.floor(w / shrink), np.floor(h / shrink)
    x1, y1 = np.round(centre_xy[0] - 0.5 * w), np.round(centre_xy[1] - 0.5 * h)
    if w <= im_w:
        x1 = min(max(x1, 0.0), im_w - w)
    else:
        x1 = np.floor((im_w - w) / 2)
    if h <= im_h:
        y1 = min(max(y1, 0.0), im_h - h)
    else:
        y1 = np.floor((im_h - h) / 2)
    return float(x1), float(y1), float(w), float(h)


def _window_matrix(window: tuple[float, float, float, float], output_hw: tuple[int, int]) -> np.ndarray:
    """2x3 affine map from image pixels to output pixels for a window (pixel centres at integers)."""
    x1, y1, w, h = window
    sx, sy = output_hw[1] / w, output_hw[0] / h
    return np.array([[sx, 0.0, (0.5 - x1) * sx - 0.5], [0.0, sy, (0.5 - y1) * sy - 0.5]])


def _transform_box(box: np.ndarray, matrix: np.ndarray, output_hw: tuple[int, int]) -> np.ndarray:
    """Bounding box of the transformed box corners, clamped to the output image."""
    x, y, w, h = box
    corners = np.array([[x, y, 1], [x + w, y, 1], [x, y + h, 1], [x + w, y + h, 1]])
    pts = corners @ matrix.T
    lo = np.clip(pts.min(0), 0, [output_hw[1], output_hw[0]])
    hi = np.clip(pts.max(0), 0, [output_hw[1], output_hw[0]])
    return np.concatenate([lo, hi - lo])


def _warp(image: np.ndarray, mask: np.ndarray, matrix: np.ndarray, output_hw: tuple[int, int],
          image_border: int) -> tuple[np.ndarray, np.ndarray]:
    dsize = (output_hw[1], output_hw[0])
    img = cv2.warpAffine(image, matrix, dsize, flags=cv2.INTER_LINEAR, borderMode=image_border)
    msk = cv2.warpAffine(mask, matrix, dsize, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=0)
    return img, msk


def draw_low_res(rng: np.random.Generator, cfg: ProcessingConfig) -> float | None:
    """Source target size (px) for one sample's small-target blur, or None. Draws nothing when it is off, so
    configs without it keep their random streams."""
    if cfg.low_res_prob <= 0.0 or rng.random() >= cfg.low_res_prob:   # short-circuit: no draw when off
        return None
    lo, hi = cfg.low_res_target_px
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def blur_to_source_size(image: np.ndarray, target_px_in_crop: float, source_px: float) -> np.ndarray:
    """Render a crop whose target spans target_px_in_crop pixels as if it came from a target of source_px
    pixels: area-average down to that resolution, then bilinear back up (what the tracker's crop does to a
    small target). Crops whose target is already no larger than source_px are returned unchanged."""
    if not np.isfinite(target_px_in_crop) or target_px_in_crop <= source_px:
        return image
    factor = source_px / target_px_in_crop
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def mask_box(mask: np.ndarray) -> np.ndarray:
    """Tight [x, y, w, h] of the non-zero pixels of a mask (zeros when empty)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return np.zeros(4)
    return np.array([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], dtype=np.float64)


def process_set(frames: list[np.ndarray], masks: list[np.ndarray], boxes: list[np.ndarray], mode: str,
                cfg: ProcessingConfig, rng: np.random.Generator, low_res_px: float | None = None) -> ProcessedFrames:
    """Process the train set (mode 'train') or the test set (mode 'test') of one training sample.

    frames: HxWx3 uint8 RGB; masks: HxW (non-zero = target); boxes: [x, y, w, h] in image pixels.
    low_res_px: the sample's small-target blur (draw_low_res), applied to every frame's crop; None = sharp.
    """
    if mode not in ("train", "test"):
        raise InvalidInputError(f"process_set: mode must be 'train' or 'test', got {mode!r}")
    if not (len(frames) == len(masks) == len(boxes)) or not frames:
        raise InvalidInputError("process_set: give the same non-zero number of frames, masks and boxes")
    # Joint transform: one roll for the whole set.
    gray = rng.random() < cfg.grayscale_prob
    flip = rng.random() < cfg.flip_prob
    out_hw = cfg.output_hw
    images, out_masks, out_boxes, labels = [], [], [], []
    for image, mask, box in zip(frames, masks, boxes):
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[:2] != mask.shape[:2]:
            raise InvalidInputError(
                f"process_set: image {image.shape} and mask {mask.shape} must be HxWx3 and HxW of the same size")
        img = image
        msk = (mask > 0).astype(np.uint8)
        box = np.asarray(box, dtype=np.float64)
        if gray:
            # The reference converts the BGR image with RGB weights; with RGB input that is B*0.299+G*0.587+R*0.114.
            g = img[..., 2] * 0.299 + img[..., 1] * 0.587 + img[..., 0] * 0.114
            img = np.repeat(np.clip(g, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
        if flip:
            img = img[:, ::-1]
            msk = msk[:, ::-1]
            box = np.array([img.shape[1] - box[0] - box[2], box[1], box[2], box[3]])
        img = np.ascontiguousarray(img)
        msk = np.ascontiguousarray(msk)
        jittered = jitter_box(box, rng, cfg.scale_jitter[mode], cfg.center_jitter[mode])
        window = inside_major_window(jittered[:2] + 0.5 * jittered[2:], float(jittered[2] * jittered[3]),
                                     cfg.search_area_factor, img.shape[:2], out_hw)
        m_crop = _window_matrix(window, out_hw)
        img, msk = _warp(img, msk, m_crop, out_hw, cv2.BORDER_REPLICATE)
        if low_res_px is not None:
            crop_scale = float(np.sqrt(m_crop[0, 0] * m_crop[1, 1]))
            img = blur_to_source_size(img, float(np.sqrt(box[2] * box[3])) * crop_scale, low_res_px)
        box = _transform_box(box, m_crop, out_hw)
        # RandomAffine about the crop centre: rotation and isotropic scale, constant-0 border.
        angle = rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg)
        scale = float(np.exp(rng.uniform(-cfg.log_scale_range, cfg.log_scale_range)))
        centre = ((out_hw[1] - 1) * 0.5, (out_hw[0] - 1) * 0.5)
        m_aff = cv2.getRotationMatrix2D(centre, angle, scale)
        img, msk = _warp(img, msk, m_aff, out_hw, cv2.BORDER_CONSTANT)
        box = _transform_box(box, m_aff, out_hw)
        bright = rng.uniform(1.0 - cfg.brightness_jitter, 1.0 + cfg.brightness_jitter)
        img_f = np.clip(img.astype(np.float32) * bright, 0.0, 255.0)
        images.append(img_f.transpose(2, 0, 1))
        out_masks.append(msk.astype(np.float32))
        out_boxes.append(box)
        feat_hw = (out_hw[0] // cfg.feature_stride_clf, out_hw[1] // cfg.feature_stride_clf)
        labels.append(gaussian_label(box, out_hw, feat_hw, cfg.label_sigma_factor, cfg.clf_kernel_size))
    return ProcessedFrames(np.stack(images), np.stack(out_masks), np.stack(out_boxes).astype(np.float32),
                           np.stack(labels))
