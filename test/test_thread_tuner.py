"""ThreadTuner: chooses 2 or 1 CPU threads by the frame times each gives (a fake clock and frame-time model;
the real effect is measured in README, node `cpu_threads`)."""
import pytest

from rts_ros.tracker.thread_tuner import ThreadTuner


class Machine:
    """Frame time by thread count, changed by the test (e.g. when other processes start to load the CPU)."""

    def __init__(self, ms: dict[int, float]):
        self.ms, self.now, self.applied = dict(ms), 0.0, []

    def clock(self) -> float:
        return self.now

    def run(self, tuner: ThreadTuner, frames: int) -> list[int]:
        """Track ``frames`` frames; the thread count each ran with. observe() must say True exactly on the
        frames where the settled count changed."""
        used = []
        for _ in range(frames):
            used.append(tuner.current)
            dt = self.ms[tuner.current] / 1000
            self.now += dt
            switches = tuner.switches
            assert tuner.observe(dt) == (tuner.switches != switches)
        return used


def make(m: Machine, **kw) -> ThreadTuner:
    return ThreadTuner(apply=m.applied.append, clock=m.clock, **kw)


def test_idle_keeps_two_threads_after_one_short_probe():
    m = Machine({2: 30.0, 1: 40.0})
    t = make(m)
    used = m.run(t, 200)                     # 6 s of frames: the first probe only (the next is due after 30 s)
    assert t.current == 2 and t.switches == 0
    assert used.count(1) == 7                # one probe window at 1 thread, then back
    assert m.applied[:3] == [2, 1, 2]


def test_load_arriving_switches_to_one_thread_within_a_few_frames():
    m = Machine({2: 30.0, 1: 40.0})
    t = make(m)
    m.run(t, 100)
    m.ms = {2: 200.0, 1: 45.0}               # two busy processes start
    used = m.run(t, 40)
    assert t.current == 1 and t.switches == 1
    assert used.index(1) <= 7                # the rising median triggers a probe at once, not after 30 s
    assert used[used.index(1):].count(2) == 0


def test_a_bad_probe_costs_one_frame():
    m = Machine({2: 200.0, 1: 40.0})         # loaded from the start
    t = make(m)
    m.run(t, 20)
    assert t.current == 1
    m.now += 31                              # the periodic probe is due
    used = m.run(t, 30)
    assert used.count(2) == 1 and t.current == 1   # 200 ms > 3 x 40 ms: back after one frame


def test_load_leaving_returns_to_two_threads_at_the_next_periodic_probe():
    m = Machine({2: 200.0, 1: 40.0})
    t = make(m)
    m.run(t, 20)
    assert t.current == 1
    m.ms = {2: 30.0, 1: 40.0}
    m.run(t, 100)                            # 4 s: no probe due yet
    assert t.current == 1
    m.now += 30
    m.run(t, 20)
    assert t.current == 2 and t.switches == 2


def test_a_small_difference_does_not_switch():
    m = Machine({2: 30.0, 1: 32.0})
    t = make(m)
    m.run(t, 50)
    assert t.current == 2 and t.switches == 0


def test_bad_counts_are_refused():
    for counts in ((2, 2), (0, 1), (3,)):
        with pytest.raises(ValueError, match="two different thread counts"):
            ThreadTuner(counts=counts, apply=lambda n: None)
