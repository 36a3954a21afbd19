"""Aggregating sequence results into a table (markdown + CSV), per-sequence CSV, plots and predictions.

Dataset-level curves are the mean of the per-sequence curves (OTB), with a bootstrap interval of the AUC over
sequences; J and F are per-sequence means averaged over sequences (DAVIS); FPS is all tracked frames over all
tracking time. "uncertain" and "lost" are what the trackers report of themselves, pooled over frames: rts's
state (one branch / both branches fail), OpenCV's update() returning failure (lost).
"""
from __future__ import annotations

import csv
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rts_ros.eval import metrics
from rts_ros.eval.runner import SequenceResult, pooled_status_counts, status_share


@dataclass(frozen=True)
class Summary:
    tracker: str
    sequences: int
    frames: int
    auc: float
    auc_interval: tuple[float, float]  # 95% bootstrap interval over sequences (nan for one sequence)
    precision20: float
    norm_precision: float
    j: float
    f: float
    fps: float
    init_j: float            # mean IoU of the tracker's box-to-mask start masks (NaN: none made / no masks)
    uncertain: float         # share of the frames after the starts that the tracker reported as uncertain,
    lost: float              # and as lost (both NaN: the tracker reports no status)
    success: np.ndarray      # mean success curve over SUCCESS_THRESHOLDS
    precision: np.ndarray    # mean precision curve over PRECISION_THRESHOLDS

    @property
    def jf(self) -> float:
        return (self.j + self.f) / 2


def _nanmean(values: list[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def summarize(results: list[SequenceResult]) -> list[Summary]:
    """One Summary per tracker, in first-seen order."""
    out = []
    for name in dict.fromkeys(r.tracker for r in results):
        rs = [r for r in results if r.tracker == name]
        scored = [r for r in rs if len(r.ious)]
        succ = np.mean([metrics.success_curve(r.ious) for r in scored], 0) if scored else np.full(21, np.nan)
        prec = np.mean([metrics.precision_curve(r.center_errors) for r in scored], 0) if scored else np.full(51, np.nan)
        norm = (np.mean([metrics.precision_curve(r.norm_center_errors, metrics.NORM_PRECISION_THRESHOLDS)
                         for r in scored], 0) if scored else np.full(51, np.nan))
        secs = sum(r.seconds for r in rs)
        frames = sum(r.tracked_frames for r in rs)
        interval = metrics.bootstrap_interval([r.auc for r in scored])
        out.append(Summary(name, len(rs), frames, float(succ.mean()), interval, float(prec[20]),
                           float(norm.mean()),
                           _nanmean([r.mean_j for r in rs]), _nanmean([r.mean_f for r in rs]),
                           frames / secs if secs > 0 else float("nan"), _nanmean([r.init_j for r in rs]),
                           *_pooled_shares(rs, ("uncertain", "lost")), succ, prec))
    return out


def _pooled_shares(rs: list[SequenceResult], statuses: tuple[str, ...]) -> list[float]:
    counts = pooled_status_counts(rs)
    return [status_share(counts, k) for k in statuses]


def _fmt(v: float, digits: int = 3) -> str:
    return "-" if math.isnan(v) else f"{v:.{digits}f}"


def _interval(iv: tuple[float, float]) -> str:
    return "-" if math.isnan(iv[0]) else f"{iv[0]:.3f}-{iv[1]:.3f}"


TABLE_HEADER = ("tracker", "sequences", "frames", "success AUC", "AUC 95% interval", "precision@20px",
                "norm. precision", "J (mask IoU)", "F (boundary)", "J&F", "init J (box to mask)", "uncertain",
                "lost", "FPS")


def table_rows(summaries: list[Summary]) -> list[list[str]]:
    return [[s.tracker, str(s.sequences), str(s.frames), _fmt(s.auc), _interval(s.auc_interval), _fmt(s.precision20),
             _fmt(s.norm_precision), _fmt(s.j), _fmt(s.f), _fmt(s.jf), _fmt(s.init_j), _fmt(s.uncertain, 2),
             _fmt(s.lost, 2), _fmt(s.fps, 1)]
            for s in summaries]


def markdown_table(summaries: list[Summary]) -> str:
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(summaries)]
    return "\n".join(lines) + "\n"


def write_reports(out_dir: Path, results: list[SequenceResult], summaries: list[Summary],
                  title: str = "rts-eval") -> dict[str, Path]:
    """Write results.md/.csv, per_sequence.csv, predictions/ and the plots (success, precision, and per sequence
    when there are two trackers or more); return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out_dir / "results.md", "csv": out_dir / "results.csv",
             "per_sequence": out_dir / "per_sequence.csv"}
    paths["markdown"].write_text(f"# {title}\n\n" + markdown_table(summaries))
    with paths["csv"].open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(TABLE_HEADER)
        w.writerows(table_rows(summaries))
    with paths["per_sequence"].open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("tracker", "sequence", "frames", "success AUC", "precision@20px", "norm. precision",
                    "J", "F", "init J", "uncertain", "lost", "FPS"))
        for r in results:
            w.writerow((r.tracker, r.sequence, r.tracked_frames, _fmt(r.auc), _fmt(r.precision20),
                        _fmt(r.norm_precision), _fmt(r.mean_j), _fmt(r.mean_f), _fmt(r.init_j),
                        _fmt(r.status_share("uncertain"), 2), _fmt(r.status_share("lost"), 2), _fmt(r.fps, 1)))
    for r in results:
        pred_dir = out_dir / "predictions" / r.tracker
        pred_dir.mkdir(parents=True, exist_ok=True)
        np.savetxt(pred_dir / f"{r.sequence}.txt", r.pred_boxes, fmt="%.2f", delimiter=",")
    paths.update(write_plots(out_dir, summaries, title))
    if len(summaries) > 1:
        paths["per_sequence_plot"] = write_per_sequence_plot(out_dir, results, title)
    return paths


def paired_auc(results: list[SequenceResult], first: str, other: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(sequences, AUCs of ``first``, AUCs of ``other``) over the sequences both trackers scored, in order."""
    by = {(r.tracker, r.sequence): r.auc for r in results if len(r.ious)}
    names = [r.sequence for r in results if r.tracker == first and (other, r.sequence) in by]
    return (names, np.array([by[(first, n)] for n in names], float),
            np.array([by[(other, n)] for n in names], float))


def write_per_sequence_plot(out_dir: Path, results: list[SequenceResult], title: str) -> Path:
    """per_sequence_plot.png: the first tracker's success AUC on each sequence against each other tracker's.

    A mean over sequences can hide two trackers that each win big on different sequences; this shows it."""
    plt = _pyplot()
    names = list(dict.fromkeys(r.tracker for r in results))
    first = names[0]
    fig, ax = plt.subplots(figsize=(5.5, 5.5), dpi=100)
    for other in names[1:]:
        _, a, b = paired_auc(results, first, other)
        if not len(a):
            continue
        d = a - b
        ax.scatter(b, a, alpha=0.7, label=f"vs {other}: mean {d.mean():+.3f}, ahead on {np.mean(d > 0):.0%}, "
                                          f"|diff| > 0.2 on {np.mean(np.abs(d) > 0.2):.0%}")
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set(xlabel="other tracker's success AUC", ylabel=f"{first} success AUC", xlim=(0, 1), ylim=(0, 1))
    ax.set_title(textwrap.fill(f"Per sequence ({title}): above the line, {first} is ahead", 60), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = Path(out_dir) / "per_sequence_plot.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def _pyplot():
    """matplotlib's pyplot on the file-only backend (no display on a robot or in CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plots(out_dir: Path, summaries: list[Summary], title: str) -> dict[str, Path]:
    plt = _pyplot()
    paths = {"success_plot": Path(out_dir) / "success_plot.png",
             "precision_plot": Path(out_dir) / "precision_plot.png"}
    by_auc = sorted(summaries, key=lambda s: -np.nan_to_num(s.auc, nan=-1))
    _curve_plot(plt, paths["success_plot"], metrics.SUCCESS_THRESHOLDS,
                [(f"{s.tracker} [{_fmt(s.auc)}]", s.success) for s in by_auc],
                "overlap threshold", "success rate", (0, 1), f"Success plot of OPE ({title})", "lower left")
    by_p20 = sorted(summaries, key=lambda s: -np.nan_to_num(s.precision20, nan=-1))
    _curve_plot(plt, paths["precision_plot"], metrics.PRECISION_THRESHOLDS,
                [(f"{s.tracker} [{_fmt(s.precision20)}]", s.precision) for s in by_p20],
                "location error threshold (px)", "precision", (0, 50), f"Precision plot of OPE ({title})",
                "lower right")
    return paths


def _curve_plot(plt, path: Path, x, curves, xlabel: str, ylabel: str, xlim, title: str, legend_loc: str) -> None:
    """One OTB-style curve plot: a line per tracker, its score in the legend, written as PNG."""
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    for label, y in curves:
        ax.plot(x, y, lw=2, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel, xlim=xlim, ylim=(0, 1.02))
    ax.set_title(textwrap.fill(title, 60), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc=legend_loc)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_start_shifts(out_dir: Path, by_shift: dict[tuple[int, int], list[Summary]]) -> Path:
    """start_shifts.csv: the success AUC of every tracker from each start (dx, dy) of a --start-shifts run."""
    path = Path(out_dir) / "start_shifts.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("tracker", "start dx", "start dy", "success AUC"))
        for (dx, dy), summaries in by_shift.items():
            for s in summaries:
                w.writerow((s.tracker, dx, dy, _fmt(s.auc)))
    return path
