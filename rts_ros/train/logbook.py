"""Loss log (CSV, one row per step) and loss plot (PNG) of a training run."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

COLUMNS = ("step", "epoch", "lr", "seconds", "total", "lovasz", "clf_init", "clf_final", "iou", "few_shot")


class LossLog:
    def __init__(self, path: Path, keep_rows: int | None = None):
        """Open `path`; on resume keep only the first `keep_rows` data rows (those before the checkpoint)."""
        self.path = path
        rows: list[list[str]] = []
        if keep_rows is not None and path.is_file():
            with path.open() as f:
                rows = list(csv.reader(f))[1:keep_rows + 1]
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(COLUMNS)
            w.writerows(rows)
        self.rows = len(rows)

    def append(self, values: dict[str, float]) -> None:
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([f"{values.get(c, float('nan')):.6g}" for c in COLUMNS])
        self.rows += 1


def read_log(path: Path) -> dict[str, np.ndarray]:
    with path.open() as f:
        rows = list(csv.DictReader(f))
    return {c: np.array([float(r[c]) if r.get(c) not in (None, "") else np.nan for r in rows]) for c in COLUMNS}


def _smooth(y: np.ndarray, n: int) -> np.ndarray:
    if len(y) < n or n <= 1:
        return y
    k = np.ones(n) / n
    return np.convolve(y, k, mode="valid")


def plot_log(csv_path: Path, png_path: Path, title: str = "training") -> None:
    """Total loss, test-frame IoU and the Lovász or few-shot loss versus step (moving averages)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log = read_log(csv_path)
    if len(log["step"]) == 0:
        return
    n = max(1, min(50, len(log["step"]) // 10))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    third = "few_shot" if np.isfinite(log["few_shot"]).any() else "lovasz"
    for ax, key in zip(axes, ("total", "iou", third)):
        y = log[key]
        ok = np.isfinite(y)
        if not ok.any():
            continue
        s, y = log["step"][ok], y[ok]
        ax.plot(s, y, color="0.8", lw=0.6)
        ys = _smooth(y, n)
        ax.plot(s[len(s) - len(ys):], ys, color="C0", lw=1.5)
        ax.set_title(key + (" (test frames)" if key == "iou" else ""))
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)
