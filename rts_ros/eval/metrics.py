"""Tracking metrics: OTB success/precision, LaSOT normalized precision, DAVIS J (region) and F (boundary).

Definitions (first principles, matching the benchmarks' published protocols):

* success(t) = fraction of evaluated frames whose box IoU is *strictly greater* than t, for the 21 OTB
  thresholds 0, 0.05, ..., 1; AUC = mean of the curve.  A perfect tracker therefore scores 20/21 ~ 0.952
  (no IoU exceeds 1), exactly as in the OTB toolkit.
* precision(t) = fraction of frames whose centre error (px) is <= t, t = 0..50; reported at 20 px.
* normalized precision: centre error divided per axis by the ground-truth width/height, thresholds
  0, 0.01, ..., 0.5; reported as the mean of that curve (LaSOT).
* J = |A & B| / |A | B| (1 when both are empty); F = boundary F-measure with a match tolerance of
  ceil(0.008 * image diagonal) px (DAVIS).
A frame without a prediction counts as IoU 0 and infinite centre error.
* The interval given with a dataset's success AUC is a percentile bootstrap over sequences: how much the mean
  moves when the set of sequences is drawn again. It does not cover the tracker's own run-to-run sensitivity.
"""
from __future__ import annotations

import math

import numpy as np

SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)
PRECISION_THRESHOLDS = np.arange(0, 51, dtype=np.float64)
NORM_PRECISION_THRESHOLDS = np.linspace(0.0, 0.5, 51)
BOUNDARY_TOLERANCE = 0.008  # fraction of the image diagonal (DAVIS)


def box_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Row-wise IoU of (N, 4) x, y, w, h boxes; NaN predictions give 0."""
    pred, gt = np.atleast_2d(pred).astype(np.float64), np.atleast_2d(gt).astype(np.float64)
    x0 = np.maximum(pred[:, 0], gt[:, 0])
    y0 = np.maximum(pred[:, 1], gt[:, 1])
    x1 = np.minimum(pred[:, 0] + pred[:, 2], gt[:, 0] + gt[:, 2])
    y1 = np.minimum(pred[:, 1] + pred[:, 3], gt[:, 1] + gt[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = pred[:, 2] * pred[:, 3] + gt[:, 2] * gt[:, 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / union
    return np.where(np.isfinite(iou) & (union > 0), iou, 0.0)


def _centres(boxes: np.ndarray) -> np.ndarray:
    return boxes[:, :2] + boxes[:, 2:] / 2.0


def center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean distance (px) between box centres; inf where the prediction is missing."""
    d = np.linalg.norm(_centres(np.atleast_2d(pred)) - _centres(np.atleast_2d(gt)), axis=1)
    return np.where(np.isfinite(d), d, np.inf)


def normalized_center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Centre error with x divided by the ground-truth width and y by its height (LaSOT)."""
    pred, gt = np.atleast_2d(pred), np.atleast_2d(gt)
    d = np.linalg.norm((_centres(pred) - _centres(gt)) / gt[:, 2:], axis=1)
    return np.where(np.isfinite(d), d, np.inf)


def bootstrap_interval(values, level: float = 0.95, samples: int = 4000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (one per sequence), resampled with replacement.
    Deterministic (fixed seed); (nan, nan) for fewer than 2 values."""
    v = np.asarray([x for x in values if not math.isnan(x)], np.float64)
    if len(v) < 2:
        return float("nan"), float("nan")
    means = v[np.random.default_rng(seed).integers(0, len(v), (samples, len(v)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def success_curve(ious: np.ndarray) -> np.ndarray:
    return (np.asarray(ious)[:, None] > SUCCESS_THRESHOLDS[None, :]).mean(axis=0)


def precision_curve(errors: np.ndarray, thresholds: np.ndarray = PRECISION_THRESHOLDS) -> np.ndarray:
    return (np.asarray(errors)[:, None] <= thresholds[None, :]).mean(axis=0)


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Jaccard index of two bool masks; 1.0 when both are empty (DAVIS)."""
    pred, gt = pred.astype(bool), gt.astype(bool)
    union = np.count_nonzero(pred | gt)
    return 1.0 if union == 0 else np.count_nonzero(pred & gt) / union


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundary: pixels that differ from their right, lower or lower-right neighbour."""
    m = mask.astype(bool)
    right = np.zeros_like(m)
    down = np.zeros_like(m)
    diag = np.zeros_like(m)
    right[:, :-1] = m[:, 1:]
    down[:-1, :] = m[1:, :]
    diag[:-1, :-1] = m[1:, 1:]
    b = (m ^ right) | (m ^ down) | (m ^ diag)
    # Outside the image counts as "same as inside" on the last row/column, so the frame edge is not a boundary
    # unless the mask changes along it.
    b[-1, :] = m[-1, :] ^ right[-1, :]
    b[:, -1] = m[:, -1] ^ down[:, -1]
    b[-1, -1] = False
    return b


def _disk(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return ((r[:, None] ** 2 + r[None, :] ** 2) <= radius * radius).astype(np.uint8)


def boundary_f(pred: np.ndarray, gt: np.ndarray, tolerance: float = BOUNDARY_TOLERANCE) -> float:
    """DAVIS boundary F-measure of two bool masks of the same size."""
    import cv2

    if pred.shape != gt.shape:
        raise ValueError(f"mask shapes differ: {pred.shape} vs {gt.shape}")
    radius = int(math.ceil(tolerance * math.hypot(*gt.shape)))
    pb, gb = boundary_map(pred), boundary_map(gt)
    n_p, n_g = int(pb.sum()), int(gb.sum())
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0 or n_g == 0:
        return 0.0
    kernel = _disk(radius)
    gb_dil = cv2.dilate(gb.astype(np.uint8), kernel) > 0
    pb_dil = cv2.dilate(pb.astype(np.uint8), kernel) > 0
    precision = np.count_nonzero(pb & gb_dil) / n_p
    recall = np.count_nonzero(gb & pb_dil) / n_g
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
