"""Choose between two CPU thread counts by the frame times they give, while tracking.

Two threads are fastest on an idle 2-core CPU; one thread is several times faster once other processes keep the
cores busy (torch's OpenMP workers spin-wait, and a preempted worker stalls every operation). Which holds can
change at any time on a robot, so the tuner keeps a window of recent frame times, and every ``probe_every_s``
tries the other count for a window of frames; it also probes at once when the window's median rises to
``rise_ratio`` times the best median seen since the last switch (load arrived), and after the first window. The
probe is kept when its median is clearly lower, and cut short at its first frame slower than ``abort_ratio``
times the current median, so a bad probe costs one slow frame.
"""
from __future__ import annotations

import statistics
import time
from collections import deque
from typing import Callable


class ThreadTuner:
    """Feed it each frame's tracker time on the thread that tracks; it sets the thread count there."""

    def __init__(self, counts: tuple[int, int] = (2, 1), apply: Callable[[int], object] | None = None,
                 window: int = 7, probe_every_s: float = 30.0, abort_ratio: float = 3.0, gain: float = 0.85,
                 rise_ratio: float = 1.5, clock: Callable[[], float] = time.monotonic):
        if len(counts) != 2 or min(counts) < 1 or counts[0] == counts[1]:
            raise ValueError(f"counts must be two different thread counts >= 1, got {counts!r}")
        if apply is None:
            from rts_ros.tracker.cpu_threads import set_cpu_threads as apply
        self._counts, self._apply, self._clock = counts, apply, clock
        self._window, self._probe_every_s = window, probe_every_s
        self._abort_ratio, self._gain, self._rise_ratio = abort_ratio, gain, rise_ratio
        self.current = counts[0]
        self._settled = counts[0]            # the count a probe returns to
        self._recent: deque[float] = deque(maxlen=window)   # frame times at the settled count
        self._probe: list[float] | None = None
        self._next_probe = clock()           # probe as soon as the first window is full
        self._best = float("inf")            # lowest window median at the settled count since the last switch
        self.switches = 0
        self._apply(self.current)

    def observe(self, frame_s: float) -> bool:
        """Record one frame's time (on the tracking thread); True when this frame ended a probe that was kept,
        i.e. the settled count changed (``current``)."""
        if self._probe is None:
            self._recent.append(frame_s)
            if len(self._recent) < self._window:
                return False
            now = statistics.median(self._recent)
            self._best = min(self._best, now)
            if self._clock() >= self._next_probe or now > self._rise_ratio * self._best:
                self._probe = []
                self._set(self._other(self._settled))
            return False
        base = statistics.median(self._recent)
        self._probe.append(frame_s)
        if frame_s > self._abort_ratio * base:          # clearly worse already: one slow frame is the cost
            return self._end_probe(keep=False)
        if len(self._probe) == self._window:
            return self._end_probe(keep=statistics.median(self._probe) < self._gain * base)
        return False

    def _end_probe(self, keep: bool) -> bool:
        probe, self._probe = self._probe or [], None
        self._next_probe = self._clock() + self._probe_every_s
        if keep:
            self._settled = self.current
            self._recent = deque(probe, maxlen=self._window)
            self._best = statistics.median(probe)
            self.switches += 1
            return True   # already running at the probed count
        # the window is refilled at the settled count before the next probe decision (the rise test included)
        self._recent.clear()
        self._best = float("inf")
        self._set(self._settled)
        return False

    def _other(self, count: int) -> int:
        return self._counts[1] if count == self._counts[0] else self._counts[0]

    def _set(self, count: int) -> None:
        self.current = count
        self._apply(count)
