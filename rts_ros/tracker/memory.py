"""Sample memories of both branches with the reference's weight rules (§3.6).

The weights live on the host (a few dozen floats; the slot choice needs them anyway); the samples are
preallocated device tensors written in place, so inserting never synchronises.
"""
from __future__ import annotations

import numpy as np
import torch


class SampleMemory:
    """Fixed-capacity memory of named tensors with learning-rate based weights."""

    def __init__(self, capacity: int, learning_rate: float, min_init_weight: float | None,
                 bounded_counter: bool = True) -> None:
        if capacity < 1:
            raise ValueError("memory capacity must be >= 1")
        self.capacity = int(capacity)
        self.lr = float(learning_rate)
        self.min_init_weight = min_init_weight
        self.bounded_counter = bounded_counter  # seg: min(n + 1, capacity); clf: grows without bound
        self.weights = np.zeros(self.capacity, dtype=np.float32)
        self.num_stored = 0
        self.num_init = 0
        self.prev_slot: int | None = None
        self.samples: dict[str, torch.Tensor] = {}

    def init(self, samples: dict[str, torch.Tensor], weights: np.ndarray | None = None) -> None:
        """Fill the first N slots (the first-frame samples, N = batch size) with equal weights."""
        n = next(iter(samples.values())).shape[0]
        if n > self.capacity:
            raise ValueError(f"{n} init samples do not fit a memory of {self.capacity}")
        self.samples = {}
        for k, v in samples.items():
            buf = v.new_zeros((self.capacity, *v.shape[1:]))
            buf[:n] = v
            self.samples[k] = buf
        self.weights[:] = 0
        self.weights[:n] = (np.full(n, 1.0 / n, np.float32) if weights is None else np.asarray(weights, np.float32))
        self.num_stored = n
        self.num_init = n
        self.prev_slot = None

    @property
    def num_used(self) -> int:
        return min(self.num_stored, self.capacity)

    def _next_slot_and_update_weights(self) -> int:
        w = self.weights
        protect = self.num_init if self.min_init_weight is not None else 0
        if self.num_stored < self.capacity:
            slot = self.num_stored
        else:
            slot = int(np.argmin(w[protect:])) + protect
        if self.prev_slot is None:
            w /= np.float32(1 - self.lr)
            w[slot] = self.lr
        else:
            w[slot] = w[self.prev_slot] / np.float32(1 - self.lr)
        w /= w.sum()
        if self.min_init_weight is not None and w[: self.num_init].sum() < self.min_init_weight:
            w /= np.float32(self.min_init_weight + w[self.num_init:].sum())
            w[: self.num_init] = np.float32(self.min_init_weight / self.num_init)
        return slot

    def insert(self, samples: dict[str, torch.Tensor]) -> int:
        """Store one sample (each tensor with a leading batch dim of 1); returns the slot used."""
        slot = self._next_slot_and_update_weights()
        for k, v in samples.items():
            self.samples[k][slot: slot + 1] = v
        self.prev_slot = slot
        self.num_stored = min(self.num_stored + 1, self.capacity) if self.bounded_counter else self.num_stored + 1
        return slot

    def used(self, key: str) -> torch.Tensor:
        return self.samples[key][: self.num_used]

    def used_weights(self) -> np.ndarray:
        return self.weights[: self.num_used].copy()
