"""Per-stage timing. Off by default: then it costs nothing and never synchronises the device."""
from __future__ import annotations

import contextlib
import time

import torch

STAGES = ("crop", "backbone", "instance_branch", "segmentation_branch", "decoder", "memory_update", "output")


class StageTimer:
    def __init__(self, device: torch.device, enabled: bool = False) -> None:
        self.device = device
        self.enabled = enabled
        self.times: dict[str, float] = {}

    def reset(self) -> None:
        self.times = {}

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def stage(self, name: str):
        if not self.enabled:
            yield
            return
        self._sync()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - t0
