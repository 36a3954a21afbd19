"""Instance-branch localisation (§3.7 'advanced localisation') on a score map.

Takes the map on the host (16x27 floats: one small transfer per frame, needed because the flag decides
the state update and the memory update).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Localisation:
    translation: np.ndarray  # (dy, dx) in image pixels, relative to the crop centre
    flag: str                # 'normal' | 'not_found' | 'uncertain' | 'hard_negative'
    max_score: float
    peak: tuple[int, int]


@dataclass(frozen=True)
class LocaliseParams:
    not_found_threshold: float = 0.30
    uncertain_threshold: float = float("-inf")
    hard_sample_threshold: float = float("-inf")
    distractor_threshold: float = 10000.0
    hard_negative_threshold: float = 10000.0
    target_neighborhood_scale: float = 2.2
    displacement_scale: float = 0.8
    advanced: bool = True


def _argmax2d(s: np.ndarray) -> tuple[float, tuple[int, int]]:
    # max over rows per column, then over columns (first index on ties, like torch.max on CPU)
    col_max = s.max(axis=0)
    c = int(np.argmax(col_max))
    r = int(np.argmax(s[:, c]))
    return float(s[r, c]), (r, c)


def localise(
    scores: np.ndarray, sample_scale: float, clf_target_sz, img_sample_sz, clf_feature_sz,
    p: LocaliseParams,
) -> Localisation:
    """scores: (h, w) map of the even 4x4 kernel, i.e. (feature_sz + 1) cells per axis."""
    sz = np.array(scores.shape, np.float32)
    output_sz = np.array(clf_feature_sz, np.float32)
    isz = np.array(img_sample_sz, np.float32)
    stride = isz / output_sz
    center = (sz - 1) / 2
    m1, d1 = _argmax2d(scores)
    t1 = (np.array(d1, np.float32) - center) * stride * np.float32(sample_scale)
    if not np.isfinite(m1):
        # a broken network: NaN compares false with every threshold and would pass as found (and be learnt)
        return Localisation(np.zeros(2, np.float32), "not_found", m1, d1)
    if not p.advanced:
        return Localisation(t1.astype(np.float32), "normal", m1, d1)
    if m1 < p.not_found_threshold:
        return Localisation(t1, "not_found", m1, d1)
    if m1 < p.uncertain_threshold:
        return Localisation(t1, "uncertain", m1, d1)
    if m1 < p.hard_sample_threshold:
        return Localisation(t1, "hard_negative", m1, d1)
    n = np.float32(p.target_neighborhood_scale) * (np.asarray(clf_target_sz, np.float32) / np.float32(sample_scale)) * (output_sz / isz)
    s2 = scores.copy()
    r0 = max(round(float(d1[0] - n[0] / 2)), 0)
    r1 = min(round(float(d1[0] + n[0] / 2 + 1)), scores.shape[0])
    c0 = max(round(float(d1[1] - n[1] / 2)), 0)
    c1 = min(round(float(d1[1] + n[1] / 2 + 1)), scores.shape[1])
    s2[r0:r1, c0:c1] = 0
    m2, d2 = _argmax2d(s2)
    t2 = (np.array(d2, np.float32) - center) * stride * np.float32(sample_scale)
    if m2 > p.distractor_threshold * m1:
        # two peaks: trust the one near the previous position (the crop centre) if only one is near it
        disp1 = float(np.sqrt(np.sum((np.array(d1, np.float32) - center) ** 2)))
        disp2 = float(np.sqrt(np.sum((np.array(d2, np.float32) - center) ** 2)))
        thr = p.displacement_scale * float(np.sqrt(np.prod(sz))) / 2
        if disp2 > thr and disp1 < thr:
            return Localisation(t1, "hard_negative", m1, d1)
        if disp2 < thr and disp1 > thr:
            return Localisation(t2, "hard_negative", m2, d2)
        return Localisation(t1, "uncertain", m1, d1)
    if m2 > p.hard_negative_threshold * m1 and m2 > p.not_found_threshold:
        return Localisation(t1, "hard_negative", m1, d1)
    return Localisation(t1, "normal", m1, d1)
