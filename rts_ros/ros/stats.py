"""Running figures for /diagnostics: processing rate, stamp-to-publish latency, tracker time, skips."""
from __future__ import annotations

import collections
import statistics
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class StatsSnapshot:
    rate_hz: float             # frames processed per second over the window
    latency_ms: float          # median stamp-to-publish latency over the window (nan when none)
    tracker_ms: float          # median tracker time (initialize/track call) over the window
    overhead_ms: float         # median of (latency - tracker time) per frame: what the node adds
    frames_processed: int
    frames_skipped: int
    input_errors: int
    inits: int
    inits_collapsed: int


class Stats:
    def __init__(self, window_s: float = 5.0):
        self._lock = threading.Lock()
        self._window = window_s
        self._recent: collections.deque[tuple[float, float, float]] = collections.deque(maxlen=1000)
        self.frames_processed = self.frames_skipped = self.input_errors = self.inits = self.inits_collapsed = 0

    def frame_done(self, latency_s: float, tracker_s: float) -> None:
        with self._lock:
            self.frames_processed += 1
            self._recent.append((time.monotonic(), latency_s, tracker_s))

    def add(self, *, skipped: int = 0, input_errors: int = 0, inits: int = 0, inits_collapsed: int = 0) -> None:
        with self._lock:
            self.frames_skipped += skipped
            self.input_errors += input_errors
            self.inits += inits
            self.inits_collapsed += inits_collapsed

    def snapshot(self) -> StatsSnapshot:
        now = time.monotonic()
        with self._lock:
            recent = [r for r in self._recent if now - r[0] <= self._window]
            counts = (self.frames_processed, self.frames_skipped, self.input_errors, self.inits, self.inits_collapsed)
        nan = float("nan")
        if recent:
            span = max(now - recent[0][0], 1e-3) if len(recent) > 1 else self._window
            rate = len(recent) / span if len(recent) > 1 else 1.0 / self._window
            lat = statistics.median(r[1] for r in recent) * 1e3
            trk = statistics.median(r[2] for r in recent) * 1e3
            ovh = statistics.median(r[1] - r[2] for r in recent) * 1e3
        else:
            rate, lat, trk, ovh = 0.0, nan, nan, nan
        return StatsSnapshot(rate, lat, trk, ovh, *counts)
