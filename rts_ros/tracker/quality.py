"""A per-frame estimate of whether the output box is right, for downstream nodes that must decide whether to act.

The instance branch's `confidence` alone separates right from wrong boxes poorly with a weak classifier (the
shipped small model reports "not found" on half of the frames where its mask is on the target). The quality
score combines it with what the segmentation branch knows: a logistic model over a few signals the tracker
computes anyway. Its coefficients depend on the network, so they live in the weights folder (rts.json
`quality`, written by `rts-fit-quality` from annotated sequences); weights without them report NaN.

Quality is P(box IoU >= 0.5) against (box IoU < 0.1) as fitted: a ranking and a rough probability, not a
calibrated one on other footage.
"""
from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rts_ros.errors import CheckpointError, InvalidInputError

# The signals, in the order of the model's coefficients.
FEATURES = (
    "confidence",            # instance branch's max score
    "mask_certainty",        # soft mask area / binary mask area (capped at 2): how sure the decoder is
    "log_area_vs_init",      # log(output box area / init box area)
    "log_area_vs_recent",    # log(output box area / median of the previous RECENT output box areas)
    "center_disagreement",   # distance between instance and mask box centres / sqrt(output box area)
    "not_found",             # 1 when the instance branch says "not found"
)
RECENT = 10


class QualityFeatures:
    """Computes FEATURES frame by frame; keeps the init box area and the recent output box areas."""

    def __init__(self, init_box: tuple[float, float, float, float]) -> None:
        self._init_area = max(float(init_box[2]) * float(init_box[3]), 1.0)
        self._recent: collections.deque[float] = collections.deque(maxlen=RECENT)

    def update(self, confidence: float, soft_area: float, mask_area: int, box, mask_box, clf_box,
               not_found: bool) -> np.ndarray:
        area = max(float(box[2]) * float(box[3]), 1.0)
        recent = float(np.median(self._recent)) if self._recent else area
        self._recent.append(area)
        mask_cx, mask_cy = mask_box[0] + mask_box[2] / 2, mask_box[1] + mask_box[3] / 2
        clf_cx, clf_cy = clf_box[0] + clf_box[2] / 2, clf_box[1] + clf_box[3] / 2
        values = np.array([
            confidence,
            min(float(soft_area) / max(float(mask_area), 1.0), 2.0),
            math.log(area / self._init_area),
            math.log(area / recent),
            math.hypot(clf_cx - mask_cx, clf_cy - mask_cy) / math.sqrt(area),
            float(not_found),
        ], dtype=np.float64)
        # a non-finite signal (damaged weights) must not become a NaN quality that looks like "no model"
        return np.nan_to_num(values, nan=0.0, posinf=10.0, neginf=-10.0)


@dataclass(frozen=True)
class QualityModel:
    """Logistic model: quality = sigmoid(sum(coef * (x - mean) / std) + bias) over FEATURES."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    coef: tuple[float, ...]
    bias: float
    record: dict[str, Any] = field(default_factory=dict)   # how it was fitted (sets, frames, ROC-AUC)

    def predict(self, x: np.ndarray) -> float:
        z = float(np.dot(self.coef, (np.asarray(x, np.float64) - self.mean) / self.std)) + self.bias
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(FEATURES), "mean": list(self.mean), "std": list(self.std),
                "coef": list(self.coef), "bias": self.bias, "record": self.record}

    @classmethod
    def from_dict(cls, data: Any, source: str = "rts.json") -> "QualityModel":
        """Validate an rts.json `quality` mapping; CheckpointError naming what is wrong."""
        def bad(why: str) -> CheckpointError:
            return CheckpointError(f"{source}: 'quality' {why}; refit it with rts-fit-quality or delete the key")

        if not isinstance(data, dict):
            raise bad("must be a mapping")
        if tuple(data.get("features", ())) != FEATURES:
            raise bad(f"lists features {data.get('features')!r}, this version computes {list(FEATURES)}")
        vectors = {}
        for key in ("mean", "std", "coef"):
            v = data.get(key)
            if not isinstance(v, list) or len(v) != len(FEATURES) or not all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v):
                raise bad(f"needs '{key}' as {len(FEATURES)} finite numbers")
            vectors[key] = tuple(float(x) for x in v)
        if any(s <= 0 for s in vectors["std"]):
            raise bad("needs every 'std' > 0")
        bias = data.get("bias")
        if not isinstance(bias, (int, float)) or isinstance(bias, bool) or not math.isfinite(bias):
            raise bad("needs a finite 'bias'")
        record = data.get("record", {})
        return cls(vectors["mean"], vectors["std"], vectors["coef"], float(bias),
                   record if isinstance(record, dict) else {})


def fit_quality_model(x: np.ndarray, good: np.ndarray, c: float = 1.0, iterations: int = 50,
                      record: dict[str, Any] | None = None) -> QualityModel:
    """L2-regularised logistic regression (0.5 |w|^2 + c * log-loss, bias free) by Newton steps.

    x: (N, len(FEATURES)) signals; good: (N,) 1 where the box was right, 0 where it was wrong."""
    x = np.asarray(x, np.float64)
    y = np.asarray(good, np.float64)
    if x.ndim != 2 or x.shape[1] != len(FEATURES) or len(x) != len(y):
        raise ValueError(f"need x of shape (N, {len(FEATURES)}) and N labels, got {x.shape} and {y.shape}")
    if y.min() == y.max():   # InvalidInputError (a ValueError): the data's fault, reported by the commands
        right = int(y.sum())
        raise InvalidInputError(f"cannot fit a quality model: of {len(y)} labelled frames {right} have a right box "
                                f"and {len(y) - right} a wrong one; add sequences where the tracker both succeeds "
                                "and fails")
    mean, std = x.mean(0), x.std(0)
    std = np.where(std > 1e-9, std, 1.0)     # a constant signal gets coefficient ~0 instead of a division by 0
    a = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    w = np.zeros(a.shape[1])
    reg = np.eye(a.shape[1]) / c
    reg[-1, -1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ w, -50, 50)))
        grad = a.T @ (p - y) + reg @ w
        hess = (a * (p * (1 - p))[:, None]).T @ a + reg
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return QualityModel(tuple(mean), tuple(std), tuple(w[:-1]), float(w[-1]), dict(record or {}))


def roc_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    score = np.asarray(score, np.float64)
    positive = np.asarray(positive, bool)
    n1, n0 = int(positive.sum()), int((~positive).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ordered = np.sort(score)
    # 1-based ranks, ties sharing the mean of the ranks they span
    ranks = (np.searchsorted(ordered, score, "left") + np.searchsorted(ordered, score, "right") + 1) / 2.0
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
