"""Fit or check a weights folder's quality model (rts_ros.tracker.quality) on annotated sequences.

The tracker runs once over each sequence from its first annotated box; every tracked frame with an annotation
gives the tracker's quality signals and the box IoU. Frames with IoU >= 0.5 are "right", IoU < 0.1 "wrong";
those in between take no part. The report compares how well `quality` and `confidence` rank right above wrong
(ROC-AUC) and the mean IoU of the frames a downstream node would keep when it trusts the best half or 80%.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from rts_ros.data.eval_folders import EvalSequence
from rts_ros.eval.runner import run_sequence
from rts_ros.eval.trackers import RTSTracker
from rts_ros.tracker.quality import FEATURES, QualityModel, fit_quality_model, roc_auc
from rts_ros.weights.folder import set_meta_key

RIGHT_IOU, WRONG_IOU = 0.5, 0.1


@dataclass
class QualityRows:
    """One row per tracked, annotated frame."""
    features: np.ndarray     # (N, len(FEATURES))
    iou: np.ndarray          # (N,)
    quality: np.ndarray      # (N,) the tracker's own quality (NaN without a model)
    sequence: list[str]

    @property
    def labelled(self) -> np.ndarray:
        return (self.iou >= RIGHT_IOU) | (self.iou < WRONG_IOU)

    @property
    def right(self) -> np.ndarray:
        return self.iou >= RIGHT_IOU


def collect(tracker, sequences: list[EvalSequence], on_frame: Callable[[], None] | None = None) -> QualityRows:
    """Run `tracker` (a rts_ros.api.Tracker) over each sequence as rts-eval does (rts_ros.eval.runner)."""
    wrapper = RTSTracker(tracker=tracker)
    feats, ious, names = [], [], []
    for seq in sequences:
        seq_feats: list[np.ndarray] = []

        def record() -> None:
            if tracker.last_info is not None:     # None right after initialize: the start frame has no signals
                seq_feats.append(tracker.last_info.quality_features)
            if on_frame is not None:
                on_frame()

        result = run_sequence(wrapper, seq, on_frame=record)
        # run_sequence scores the annotated frames after the start frame, in order
        valid = np.all(np.isfinite(seq.boxes), axis=1)
        start = int(np.argmax(valid))
        scored = [f for f, ok in zip(seq_feats, valid[start + 1:]) if ok]
        if len(scored) != len(result.ious):   # the pairing below relies on run_sequence's frame order
            raise RuntimeError(f"{seq.name}: {len(scored)} signal rows for {len(result.ious)} scored frames")
        feats += scored
        ious += list(result.ious)
        names += [seq.name] * len(result.ious)
    x = np.array(feats, np.float64).reshape(-1, len(FEATURES))
    model = tracker.quality_model
    quality = np.array([model.predict(f) for f in x]) if model is not None else np.full(len(x), np.nan)
    return QualityRows(x, np.array(ious), quality, names)


def fit(rows: QualityRows, record: dict | None = None) -> QualityModel:
    m = rows.labelled
    return fit_quality_model(rows.features[m], rows.right[m].astype(np.float64), record=record)


def report(rows: QualityRows, quality: np.ndarray) -> dict[str, float]:
    """ROC-AUC of quality and of confidence (right vs wrong), and mean IoU kept at 50% / 80% coverage."""
    m = rows.labelled
    confidence = rows.features[:, FEATURES.index("confidence")]
    out = {"frames": float(len(rows.iou)), "right": float(rows.right.sum()),
           "wrong": float((rows.iou < WRONG_IOU).sum()),
           "auc_quality": roc_auc(quality[m], rows.right[m]), "auc_confidence": roc_auc(confidence[m], rows.right[m]),
           "mean_iou": float(rows.iou.mean()) if len(rows.iou) else float("nan")}
    for name, score in (("quality", quality), ("confidence", confidence)):
        order = np.argsort(-score, kind="mergesort")
        for cover in (0.5, 0.8):
            keep = order[: max(1, int(cover * len(order)))]
            out[f"iou_kept{int(cover * 100)}_{name}"] = float(rows.iou[keep].mean()) if len(keep) else float("nan")
    return out


def format_report(r: dict[str, float]) -> str:
    return "\n".join([
        f"frames {int(r['frames'])}: right (IoU >= {RIGHT_IOU}) {int(r['right'])}, wrong (IoU < {WRONG_IOU}) "
        f"{int(r['wrong'])}, mean IoU {r['mean_iou']:.3f}",
        f"ROC-AUC right vs wrong: quality {r['auc_quality']:.3f}, confidence {r['auc_confidence']:.3f}",
        f"mean IoU of the frames kept when trusting the best 80%: quality {r['iou_kept80_quality']:.3f}, "
        f"confidence {r['iou_kept80_confidence']:.3f}; best 50%: quality {r['iou_kept50_quality']:.3f}, "
        f"confidence {r['iou_kept50_confidence']:.3f}",
    ])


def write_model(weights_dir: Path, model: QualityModel) -> Path:
    """Store the model as the `quality` key of <weights_dir>/rts.json (other keys kept)."""
    return set_meta_key(weights_dir, "rts", "quality", model.to_dict())
