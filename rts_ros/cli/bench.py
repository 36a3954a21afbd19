"""`make bench`: tracker speed (per-stage times and FPS), then the ROS node overhead.

    python -m rts_ros.cli.bench [--weights DIR] [--device auto|cpu|cuda] [--frames N] [--threads 2] [--no-ros]

Default weights and frames: the parity fixture's recipe weights and frames when ../shared/parity is present
(the same networks and frames as the reference timing of 1.3-1.8 s/frame on 2 CPU threads), else the shipped
default model on synthetic frames. Two passes over the same frames: one without profiling (FPS, no extra
device synchronisation) and one with per-stage timing (synchronises the device around every stage).

ROS hook: afterwards, unless --no-ros, `rts_ros.ros.bench.main([...])` (node overhead) runs when rclpy and
that module import; its failure is reported and does not fail the tracker benchmark.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

STAGE_ORDER = ("crop", "backbone", "instance_branch", "segmentation_branch", "decoder", "memory_update", "output")


def _fixture_frames(parity: Path) -> tuple[list[np.ndarray], tuple[float, ...]]:
    import cv2

    tdir = parity / "tracker"
    seq = json.loads((tdir / "sequence.json").read_text())
    frames = [cv2.cvtColor(cv2.imread(str(tdir / "frames" / f"{i:03d}.png")), cv2.COLOR_BGR2RGB)
              for i in range(seq["num_frames"])]
    return frames, tuple(seq["init_bbox_xywh"])


def _synthetic_frames(n: int = 10, h: int = 480, w: int = 640) -> tuple[list[np.ndarray], tuple[float, ...]]:
    rng = np.random.default_rng(0)
    bg = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    frames = []
    for i in range(n):
        img = bg.copy()
        x, y = 200 + 6 * i, 150 + 3 * i
        img[y:y + 90, x:x + 70] = (220, 60, 40)
        frames.append(img)
    return frames, (200.0, 150.0, 70.0, 90.0)


def _recipe_tracker(parity: Path, device: str):
    import torch

    from rts_ros.api import Tracker
    from rts_ros.model import build_rts, build_sta
    from rts_ros.weights.recipe import recipe_arrays, recipe_constructor

    nets = []
    for name, build in (("rts", build_rts), ("sta", build_sta)):
        net = build(recipe_constructor(str(parity), name)["kwds"])
        net.load_state_dict({k: torch.from_numpy(np.array(v, copy=True))
                             for k, v in recipe_arrays(str(parity), name).items()})
        nets.append(net)
    return Tracker(nets[0], nets[1], device=device)


def _sequence(frames: list[np.ndarray], n: int) -> list[np.ndarray]:
    """n frames after the init frame, ping-pong over the sequence so that the motion stays continuous."""
    order = list(range(1, len(frames))) + list(range(len(frames) - 2, 0, -1))
    return [frames[order[k % len(order)]] for k in range(n)]


def _run_pass(tracker, frames, box, n: int, profile: bool) -> dict:
    tracker.profiling = profile
    t0 = time.perf_counter()
    tracker.initialize(frames[0], box=box)
    init_s = time.perf_counter() - t0
    per_frame, stages = [], {}
    for img in _sequence(frames, n):
        t0 = time.perf_counter()
        r = tracker.track(img)
        per_frame.append(time.perf_counter() - t0)
        for k, v in r.timings.items():
            stages.setdefault(k, []).append(v)
    return {"init_s": init_s, "per_frame": per_frame, "stages": stages}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rts-bench", description="tracker speed: per-stage times and FPS")
    ap.add_argument("--weights", type=Path, default=None, help="weights folder (default: recipe weights if the "
                                                               "parity fixtures are present, else the shipped model)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--frames", type=int, default=9, help="tracked frames per pass (default 9)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--no-ros", action="store_true", help="skip the ROS node overhead benchmark")
    args = ap.parse_args(argv)

    import torch

    from rts_ros.api import Tracker
    from rts_ros.testing import parity_dir

    torch.set_num_threads(args.threads)
    parity = parity_dir()
    if args.weights is None and (parity / "weights" / "rts50.recipe.json").exists():
        label = f"recipe weights + fixture frames ({parity})"
        tracker = _recipe_tracker(parity, args.device)
        frames, box = _fixture_frames(parity)
    else:
        label = f"weights {args.weights or 'shipped default'}"
        tracker = Tracker.from_weights(args.weights, device=args.device)
        frames, box = (_fixture_frames(parity) if (parity / "tracker").exists() else _synthetic_frames())
    dev = tracker.device
    if dev.startswith("cuda"):
        dev += f" ({torch.cuda.get_device_name(torch.device(dev))})"
    crop = tracker.config.image_sample_size
    print(f"RTS tracker benchmark: {label}")
    print(f"device {dev}, torch threads {torch.get_num_threads()}, frames {frames[0].shape[1]}x{frames[0].shape[0]}, "
          f"crop {crop[0]}x{crop[1]}, {args.frames} tracked frames per pass")

    fast = _run_pass(tracker, frames, box, args.frames, profile=False)
    prof = _run_pass(tracker, frames, box, args.frames, profile=True)
    med = statistics.median(fast["per_frame"])
    print(f"init (STA/GrabCut + first-frame training): {fast['init_s']:.2f} s")
    best = min(fast["per_frame"])
    print(f"per frame, profiling off: median {med * 1000:.1f} ms, mean {statistics.mean(fast['per_frame']) * 1000:.1f} ms, "
          f"best {best * 1000:.1f} ms -> {1.0 / med:.2f} FPS (median), "
          f"{len(fast['per_frame']) / sum(fast['per_frame']):.2f} FPS (mean), {1.0 / best:.2f} FPS (best frame)")
    print("(on a shared machine the best frame is the closest to the unloaded speed)")
    print("per-stage mean per frame (profiling on, device synchronised around each stage):")
    total = 0.0
    for k in STAGE_ORDER:
        v = prof["stages"].get(k)
        if v:
            m = sum(v) / args.frames  # stages absent on some frames count as 0 there
            total += m
            print(f"  {k:<20} {m * 1000:9.1f} ms")
    print(f"  {'sum':<20} {total * 1000:9.1f} ms")
    print(f"tracking: {args.frames} frames, {len(fast['per_frame']) / sum(fast['per_frame']):.2f} FPS")

    if not args.no_ros:
        _ros_hook(args)
    return 0


def _ros_hook(args) -> None:
    """Node overhead figures from rts_ros.ros.bench (owned by the ROS layer)."""
    if importlib.util.find_spec("rclpy") is None:
        print("ROS node overhead: skipped (rclpy is not installed)")
        return
    try:
        from rts_ros.ros import bench as ros_bench
    except ImportError as e:
        print(f"ROS node overhead: skipped ({e})")
        return
    ros_args = ["--device", args.device] + (["--weights", str(args.weights)] if args.weights else [])
    print()
    sys.stdout.flush()
    try:
        ros_bench.main(ros_args)
    except Exception as e:  # noqa: BLE001 - the tracker figures above stay valid
        print(f"ROS node overhead: failed ({type(e).__name__}: {e})")


if __name__ == "__main__":
    sys.exit(main())
