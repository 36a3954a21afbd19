"""Sequence sampling of spec §5: pick a dataset by weight, a sequence, 1 train frame and 3 sorted test frames."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rts_ros.data.datasets import SequenceDataset
from rts_ros.errors import ConfigError

MIN_VISIBLE = 9            # sequences need > 8 visible frames
MAX_ATTEMPTS = 100         # bounded re-draws of sequences and base frames


@dataclass(frozen=True)
class FrameChoice:
    dataset: int
    sequence: int
    train: tuple[int, ...]
    test: tuple[int, ...]


def choose_frames(visible: np.ndarray, rng: np.random.Generator, num_test: int = 3,
                  max_gap: int = 100) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """(train frames, sorted test frames) per §5, or None when the sequence cannot give a sample.

    The base frame is uniform among visible frames with index < len - num_test that have a visible frame
    within the window before them; test frames are drawn with replacement among visible frames in
    [base + 1, base + max_gap + gap); the gap grows by 5 per failed attempt (the base is re-drawn each time).
    """
    n = len(visible)
    vis_idx = np.flatnonzero(visible)
    if len(vis_idx) < MIN_VISIBLE:
        return None
    gap = 0
    for _ in range(MAX_ATTEMPTS):
        window = max_gap + gap
        cand = vis_idx[vis_idx < n - num_test]
        # Reference side effect: the base needs a visible frame within `window` before it.
        prev_ok = np.array([np.any((vis_idx < b) & (vis_idx >= b - window)) for b in cand], dtype=bool)
        cand = cand[prev_ok]
        if len(cand):
            base = int(rng.choice(cand))
            after = vis_idx[(vis_idx > base) & (vis_idx < base + window)]
            if len(after):
                test = np.sort(rng.choice(after, size=num_test, replace=True))
                return (base,), tuple(int(t) for t in test)
        gap += 5
    return None


class SequenceSampler:
    """Draws FrameChoices from weighted datasets; each draw is a pure function of the Generator."""

    def __init__(self, datasets: list[SequenceDataset], weights: list[float], num_test: int = 3,
                 max_gap: int = 100):
        if not datasets or len(datasets) != len(weights):
            raise ConfigError("SequenceSampler: give one weight per dataset and at least one dataset")
        w = np.asarray(weights, dtype=np.float64)
        if np.any(w < 0) or w.sum() <= 0:
            raise ConfigError(f"SequenceSampler: weights {weights} must be >= 0 with a positive sum")
        self.datasets = datasets
        self.p = w / w.sum()
        self.num_test = num_test
        self.max_gap = max_gap

    def draw(self, rng: np.random.Generator) -> FrameChoice:
        for _ in range(MAX_ATTEMPTS):
            d = int(rng.choice(len(self.datasets), p=self.p))
            ds = self.datasets[d]
            s = int(rng.integers(len(ds)))
            frames = choose_frames(ds.visible(s), rng, self.num_test, self.max_gap)
            if frames is not None:
                return FrameChoice(d, s, frames[0], frames[1])
        raise ConfigError(
            f"no usable sequence found in {MAX_ATTEMPTS} draws: sequences need more than {MIN_VISIBLE - 1} "
            "visible frames; check the datasets")
