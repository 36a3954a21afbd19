"""The synthetic video generator (rts_ros.data.synthetic) seen as a training SequenceDataset.

Sequence s is `generate_sequence(seed_offset + s, ...)` with a difficulty spread deterministically over
[difficulty_min, difficulty_max]; clips are regenerated on demand (tens of ms) with a small cache.
The default seed offset keeps training clips apart from the small seeds used by tests and held-out sets.
``size_scale`` multiplies the targets' size range (large targets that fill most of the frame).
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from rts_ros.data.datasets import Frame, SequenceDataset
from rts_ros.data.synthetic import Sequence, SynthConfig, generate_sequence
from rts_ros.errors import ConfigError

TRAIN_SEED_OFFSET = 10_000_000


class SyntheticClips(SequenceDataset):
    name = "synthetic"

    def __init__(self, num_sequences: int = 100_000, height: int = 240, width: int = 320, num_frames: int = 40,
                 difficulty_min: float = 0.2, difficulty_max: float = 0.9, seed_offset: int = TRAIN_SEED_OFFSET,
                 size_scale: float = 1.0):
        if num_sequences < 1 or num_frames < 9:
            raise ConfigError("synthetic dataset: need num_sequences >= 1 and num_frames >= 9 (sampler rule)")
        if not 0.0 <= difficulty_min <= difficulty_max <= 1.0:
            raise ConfigError(f"synthetic dataset: difficulty range [{difficulty_min}, {difficulty_max}] must lie "
                              "in [0, 1] and be ordered")
        if not 0.25 <= size_scale <= 4.0:
            raise ConfigError(f"synthetic dataset: size_scale {size_scale} must lie in [0.25, 4] (it multiplies the "
                              "target's size range, a fraction of the frame's short side)")
        self.num_sequences = int(num_sequences)
        self.size_scale = float(size_scale)
        self.size = (int(height), int(width))
        self.num_frames = int(num_frames)
        self.difficulty = (float(difficulty_min), float(difficulty_max))
        self.seed_offset = int(seed_offset)
        self._get = functools.lru_cache(maxsize=4)(self._generate)

    def __len__(self) -> int:
        return self.num_sequences

    def sequence_name(self, seq: int) -> str:
        return f"synth_{self.seed_offset + seq}"

    def _generate(self, seq: int) -> Sequence:
        # Golden-ratio spread: neighbouring sequences get well separated difficulties.
        frac = (seq * 0.6180339887498949) % 1.0
        d = self.difficulty[0] + frac * (self.difficulty[1] - self.difficulty[0])
        cfg = SynthConfig.from_difficulty(d)
        if self.size_scale != 1.0:  # e.g. 2.5: targets filling most of the frame, as in DAVIS
            cfg = dataclasses.replace(cfg, size_range=tuple(self.size_scale * v for v in cfg.size_range))
        return generate_sequence(self.seed_offset + seq, self.size[0], self.size[1], self.num_frames, config=cfg)

    def visible(self, seq: int) -> np.ndarray:
        return np.asarray(self._get(seq).visible, dtype=bool)

    def frame(self, seq: int, index: int) -> Frame:
        s = self._get(seq)
        return Frame(s.frames[index], (s.masks[index] > 0).astype(np.uint8), s.boxes[index].copy())
