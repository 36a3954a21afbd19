"""Running one tracker over one annotated sequence and scoring it (one-pass evaluation, OPE).

The tracker starts on the first frame whose ground-truth box is valid and runs to the end without resets.
Box metrics use every later frame where the target is present; J and F use every later frame with a mask
annotation except the last one (the DAVIS protocol leaves out the first and the last frame). Where the start
frame has a mask annotation and the tracker turned the start box into a mask itself, that mask's IoU with the
annotation is kept apart as ``init_j`` (the quality of the box-to-mask initialisation).
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from rts_ros.data.eval_folders import EvalSequence
from rts_ros.errors import InvalidInputError
from rts_ros.eval import metrics


@dataclass
class SequenceResult:
    tracker: str
    sequence: str
    pred_boxes: np.ndarray                 # (N, 4), NaN before the start frame / when no box
    ious: np.ndarray                       # over evaluated frames
    center_errors: np.ndarray
    norm_center_errors: np.ndarray
    j: list[float] = field(default_factory=list)
    f: list[float] = field(default_factory=list)
    seconds: float = 0.0                   # time inside the tracker calls only
    tracked_frames: int = 0                # frames given to the tracker (start frame included)
    init_j: float = float("nan")           # IoU of the tracker's own start mask (from the box) with the annotation
    status_counts: dict[str, int] = field(default_factory=dict)  # frames after the start per reported status

    def status_share(self, status: str) -> float:
        """Share of the frames after the start in which the tracker reported ``status`` (NaN: it reports none)."""
        return status_share(self.status_counts, status)

    @property
    def auc(self) -> float:
        return float(metrics.success_curve(self.ious).mean()) if len(self.ious) else float("nan")

    @property
    def precision20(self) -> float:
        return float(metrics.precision_curve(self.center_errors)[20]) if len(self.ious) else float("nan")

    @property
    def norm_precision(self) -> float:
        if not len(self.ious):
            return float("nan")
        return float(metrics.precision_curve(self.norm_center_errors, metrics.NORM_PRECISION_THRESHOLDS).mean())

    @property
    def mean_j(self) -> float:
        return float(np.mean(self.j)) if self.j else float("nan")

    @property
    def mean_f(self) -> float:
        return float(np.mean(self.f)) if self.f else float("nan")

    @property
    def fps(self) -> float:
        return self.tracked_frames / self.seconds if self.seconds > 0 else float("nan")


# Start-box shifts (dx, dy) in pixels for repeated runs: a one-pixel change of the start is enough to move a
# chaotic tracker's AUC by several hundredths, so averaging over a few starts separates effects from noise.
START_SHIFTS = ((1, 0), (0, 1), (-1, 0), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1))


def run_sequence(tracker, seq: EvalSequence, max_frames: int | None = None, on_frame=None,
                 start_shift: tuple[float, float] = (0.0, 0.0)) -> SequenceResult:
    """Track ``seq`` with ``tracker`` (see rts_ros.eval.trackers) and score it. ``start_shift`` (dx, dy) moves
    the box the tracker starts from; the annotation it is scored against stays as it is."""
    n = len(seq) if max_frames is None else min(len(seq), max_frames)
    valid = np.all(np.isfinite(seq.boxes[:n]), axis=1)
    if not valid.any():
        raise InvalidInputError(f"sequence {seq.name}: no frame has a valid ground-truth box to start from")
    start = int(np.argmax(valid))
    pred = np.full((n, 4), np.nan)
    pred[start] = seq.boxes[start]
    seconds, j, f, init_j = 0.0, [], [], float("nan")
    status_counts: dict[str, int] = {}
    for i in range(start, n):
        image = seq.image(i)
        if i == start:
            gt_mask = seq.mask(i)
            t0 = time.perf_counter()
            start_box = seq.boxes[i] + np.array([start_shift[0], start_shift[1], 0.0, 0.0])
            init_mask = tracker.start(image, start_box, gt_mask)
            seconds += time.perf_counter() - t0
            if init_mask is not None and gt_mask is not None:
                init_j = metrics.mask_iou(init_mask, gt_mask)
        else:
            t0 = time.perf_counter()
            p = tracker.step(image)
            seconds += time.perf_counter() - t0
            if p.box is not None:
                pred[i] = p.box
            if p.status is not None:
                status_counts[p.status] = status_counts.get(p.status, 0) + 1
            if p.mask is not None and i < len(seq) - 1:
                gt_mask = seq.mask(i)
                if gt_mask is not None:
                    if p.mask.shape != gt_mask.shape:
                        raise InvalidInputError(f"{seq.name} frame {i}: predicted mask {p.mask.shape} vs "
                                                f"annotation {gt_mask.shape}")
                    j.append(metrics.mask_iou(p.mask, gt_mask))
                    f.append(metrics.boundary_f(p.mask, gt_mask))
        if on_frame is not None:
            on_frame()
    ev = valid.copy()
    ev[: start + 1] = False
    gt = seq.boxes[:n][ev]
    return SequenceResult(
        tracker=getattr(tracker, "name", type(tracker).__name__), sequence=seq.name, pred_boxes=pred,
        ious=metrics.box_iou(pred[ev], gt), center_errors=metrics.center_error(pred[ev], gt),
        norm_center_errors=metrics.normalized_center_error(pred[ev], gt), j=j, f=f, seconds=seconds,
        tracked_frames=n - start, init_j=init_j, status_counts=status_counts,
    )


def merge_runs(runs: list[SequenceResult]) -> SequenceResult:
    """Several runs of one tracker on one sequence (e.g. from shifted starts) as one result: frames of all runs
    pooled, so the success curve is the mean of the runs' curves; predictions of the first run."""
    first = runs[0]
    init = [r.init_j for r in runs if not np.isnan(r.init_j)]
    return SequenceResult(
        tracker=first.tracker, sequence=first.sequence, pred_boxes=first.pred_boxes,
        ious=np.concatenate([r.ious for r in runs]), center_errors=np.concatenate([r.center_errors for r in runs]),
        norm_center_errors=np.concatenate([r.norm_center_errors for r in runs]),
        j=[v for r in runs for v in r.j], f=[v for r in runs for v in r.f], seconds=sum(r.seconds for r in runs),
        tracked_frames=sum(r.tracked_frames for r in runs), init_j=float(np.mean(init)) if init else float("nan"),
        status_counts=dict(pooled_status_counts(runs)),
    )


def pooled_status_counts(results: list[SequenceResult]) -> Counter:
    """Frames per reported status, summed over ``results``."""
    return sum((Counter(r.status_counts) for r in results), Counter())


def status_share(counts: dict[str, int], status: str) -> float:
    """``counts[status]`` over all counted frames; NaN where nothing was counted (the tracker reports no status)."""
    total = sum(counts.values())
    return counts.get(status, 0) / total if total else float("nan")
