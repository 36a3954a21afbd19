"""Smooth, bounded random trajectories for the synthetic video generator (all precomputed per sequence)."""
from __future__ import annotations

import numpy as np


def waypoint_path(rng: np.random.Generator, n: int, start: np.ndarray, box: tuple[float, float, float, float],
                  max_speed: float, exit_plan: tuple[int, int, float] | None = None) -> np.ndarray:
    """(n, 2) centre positions that steer with inertia towards random waypoints inside ``box``.

    ``exit_plan`` = (t_leave, t_back, margin): from t_leave the goal is the point ``margin`` px beyond the
    nearest side of ``box``, so the object leaves through it; from t_back it heads back inside (at 1.5x speed
    until it is inside ``box`` again), then wanders as before.
    """
    x0, y0, x1, y1 = box
    pos = np.array(start, np.float64)
    vel = np.zeros(2)
    goal = _random_point(rng, box)
    outside = None
    out = np.empty((n, 2))
    for t in range(n):
        out[t] = pos
        leaving = exit_plan is not None and exit_plan[0] <= t < exit_plan[1]
        inside = x0 <= pos[0] <= x1 and y0 <= pos[1] <= y1
        returning = exit_plan is not None and t >= exit_plan[1] and not inside
        if leaving and outside is None:
            outside = _exit_point(pos, box, exit_plan[2])
        target = outside if leaving else goal
        if not leaving and np.linalg.norm(goal - pos) < max_speed * 3:
            goal = _random_point(rng, box)
        desired = target - pos
        dist = np.linalg.norm(desired)
        speed = max_speed * (1.5 if (leaving or returning) else rng.uniform(0.5, 1.0))
        if dist > 1e-6:
            desired = desired / dist * min(speed, dist)
        # Inertia: new velocity is a blend, so paths curve instead of zig-zagging.
        vel = 0.8 * vel + 0.2 * desired + rng.normal(0, 0.1 * max_speed, 2)
        v = np.linalg.norm(vel)
        if v > speed:
            vel *= speed / v
        pos = pos + vel
        if exit_plan is None:
            pos = np.clip(pos, (x0, y0), (x1, y1))
    return out


def _exit_point(pos: np.ndarray, box: tuple[float, float, float, float], margin: float) -> np.ndarray:
    """Point ``margin`` beyond the side of ``box`` nearest to ``pos``, straight out from ``pos``."""
    x0, y0, x1, y1 = box
    gaps = [pos[0] - x0, x1 - pos[0], pos[1] - y0, y1 - pos[1]]
    side = int(np.argmin(gaps))
    return [np.array([x0 - margin, pos[1]]), np.array([x1 + margin, pos[1]]),
            np.array([pos[0], y0 - margin]), np.array([pos[0], y1 + margin])][side]


def _random_point(rng: np.random.Generator, box: tuple[float, float, float, float]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.array([rng.uniform(x0, max(x0, x1)), rng.uniform(y0, max(y0, y1))])


def crossing_path(rng: np.random.Generator, n: int, through: np.ndarray, t_cross: int, speed: float) -> np.ndarray:
    """(n, 2) straight-line path with constant velocity that passes ``through`` at frame ``t_cross``."""
    ang = rng.uniform(0, 2 * np.pi)
    vel = speed * np.array([np.cos(ang), np.sin(ang)])
    t = np.arange(n, dtype=np.float64)[:, None] - t_cross
    return through[None, :] + t * vel[None, :]


def smooth_signal(rng: np.random.Generator, n: int, amplitude: float, min_period: float = 20.0) -> np.ndarray:
    """Sum of two random sinusoids, zero at t=0, in [-amplitude, amplitude] (scale, angle, light...)."""
    t = np.arange(n, dtype=np.float64)
    sig = np.zeros(n)
    for _ in range(2):
        period = rng.uniform(min_period, min_period * 5)
        phase = rng.uniform(0, 2 * np.pi)
        sig += np.sin(2 * np.pi * t / period + phase) - np.sin(phase)
    return amplitude * sig / 4.0
