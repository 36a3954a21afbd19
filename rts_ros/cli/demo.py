"""`make demo`: the rts_tracker node on the shipped model, fed a generated video over ROS 2 (loopback only).

1. writes a synthetic video with exact ground truth (`OUTPUT/input.mp4`),
2. starts `rts_tracker` in a subprocess with the default weights,
3. plays the video as a camera on `image` in lockstep (the next frame once the node answered the previous one,
   so every frame is tracked whatever the machine's speed) after a stamped init on `rts/init`,
4. records `rts/bbox` and `rts/mask`, writes `OUTPUT/overlay.mp4` (mask, box, ground truth, state, confidence)
   and `OUTPUT/summary.json` / `summary.txt` (IoU against the ground truth, states, node rate and latency).

    python -m rts_ros.cli.demo [--output demo_output] [--frames 150] [--weights DIR] [--device auto]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from rts_ros.eval.metrics import box_iou, mask_iou

STATE_NAMES = {0: "IDLE", 1: "TRACKING", 2: "UNCERTAIN", 3: "LOST"}


def _image_msg(rgb: np.ndarray, stamp_ns: int):
    from sensor_msgs.msg import Image

    from rts_ros.ros.image_conversion import fill_image

    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.header.frame_id = "demo_camera"
    fill_image(msg, rgb, "rgb8")
    return msg


def _stamp(header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def draw_ground_truth(frame: np.ndarray, box) -> None:
    """Thin white rectangle of the ground-truth box (x, y, w, h); nothing for None or a non-finite box (frames
    where the target is hidden have a NaN box)."""
    if box is None or not np.all(np.isfinite(box)):
        return
    gx, gy, gw, gh = (int(round(float(v))) for v in box)
    cv2.rectangle(frame, (gx, gy), (gx + gw - 1, gy + gh - 1), (255, 255, 255), 1)


def run(output: Path, frames: int, weights: str, device: str, seed: int, timeout_s: float) -> dict:
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from rts_ros.data.synthetic_io import write_demo_video
    from rts_ros.msg import InitTarget, Track
    from rts_ros.ros.harness import Client, NodeProcess, node_env, use_env
    from rts_ros.ros.image_conversion import image_array
    from rts_ros.ros.overlay import render_overlay

    output.mkdir(parents=True, exist_ok=True)
    print(f"demo: generating a {frames}-frame video with ground truth -> {output / 'input.mp4'}", flush=True)
    seq = write_demo_video(output / "input.mp4", seed=seed, num_frames=frames)

    env = node_env()
    use_env(env)
    ros_args = ["-r", "__ns:=/demo", "-p", f"device:={device}"]
    if weights:
        ros_args += ["-p", f"weights:={weights}"]
    node = NodeProcess(ros_args, env, output / "node.log")
    client = Client("rts_demo_camera")
    tracks: dict[int, object] = {}
    masks: dict[int, np.ndarray] = {}
    try:
        pub = client.node.create_publisher(Image, "/demo/image", qos_profile_sensor_data)
        init_pub = client.node.create_publisher(InitTarget, "/demo/rts/init",
                                                QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        client.subscribe(Track, "/demo/rts/bbox", key="track")
        client.subscribe(Image, "/demo/rts/mask", key="mask")
        print("demo: starting the rts_tracker node (loading weights, warm-up)", flush=True)
        if not client.wait_for(lambda: pub.get_subscription_count() > 0 and init_pub.get_subscription_count() > 0,
                               timeout_s):
            raise RuntimeError("the node did not come up; the end of its log:\n" + node.output()[-3000:])

        def answered(stamp_ns: int, need_state: bool):
            for t in client.received["track"]:
                if _stamp(t.header) == stamp_ns and (not need_state or t.state != 0):
                    return True
            return False

        def collect() -> None:
            for t in client.msgs("track"):
                if t.state != 0:
                    tracks[_stamp(t.header)] = t
            for m in client.msgs("mask"):
                masks[_stamp(m.header)] = image_array(m, "mask").reshape(m.height, m.width)

        t_start = time.monotonic()
        x, y, w, h = (float(v) for v in seq.boxes[0])
        round_trips: list[float] = []   # seconds from publishing a tracked frame to its Track's arrival
        for i, rgb in enumerate(seq.frames):
            stamp = (i + 1) * 50_000_000  # a 20 Hz camera clock
            t_frame = time.monotonic()
            # Lockstep with a bounded number of re-sends: a best-effort image may be dropped.
            for _attempt in range(5):
                pub.publish(_image_msg(rgb, stamp))
                if i == 0:
                    if not client.wait_for(lambda: answered(stamp, False), 10.0):
                        continue
                    init = InitTarget()
                    init.header.stamp.sec, init.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
                    init.roi.x_offset, init.roi.y_offset = int(round(x)), int(round(y))
                    init.roi.width, init.roi.height = int(round(w)), int(round(h))
                    init_pub.publish(init)
                if client.wait_for(lambda: answered(stamp, True), timeout_s if i == 0 else 30.0):
                    break
            else:
                raise RuntimeError(f"no answer for frame {i}; the end of the node log:\n" + node.output()[-3000:])
            if i > 0:   # the start frame also waits for the node and the box-to-mask step
                round_trips.append(time.monotonic() - t_frame)
            if i % 25 == 0:
                print(f"demo: frame {i + 1}/{len(seq.frames)}", flush=True)
        wall = time.monotonic() - t_start
        client.wait_for(lambda: len(client.received["mask"]) >= len(seq.frames), 5.0)
        collect()
    finally:
        client.close()
        node.stop()

    writer = cv2.VideoWriter(str(output / "overlay.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 20.0,
                             (seq.frames[0].shape[1], seq.frames[0].shape[0]))
    box_ious, mask_ious, states, quality_by_iou = [], [], [], []
    for i, rgb in enumerate(seq.frames):
        stamp = (i + 1) * 50_000_000
        t = tracks.get(stamp)
        m = masks.get(stamp)
        state = STATE_NAMES.get(t.state, "?") if t is not None else "MISSING"
        states.append(state)
        box = tuple(float(v) for v in t.box) if t is not None else None
        if seq.visible[i] and box is not None:
            box_ious.append(float(box_iou(np.array(box), np.array(seq.boxes[i]))[0]))
            if t.frame_index > 0:
                quality_by_iou.append((box_ious[-1], float(t.quality)))
        if seq.visible[i] and m is not None:
            mask_ious.append(mask_iou(m > 0, seq.masks[i] > 0))
        xyxy = None if box is None else (int(box[0]), int(box[1]), int(np.ceil(box[0] + box[2])),
                                         int(np.ceil(box[1] + box[3])))
        frame = render_overlay(rgb, m, xyxy, state, float(t.confidence) if t is not None else 0.0,
                               float(t.quality) if t is not None else float("nan"))
        draw_ground_truth(frame, seq.boxes[i] if seq.visible[i] else None)
        writer.write(frame)
    writer.release()

    right = [q for iou, q in quality_by_iou if iou >= 0.5 and np.isfinite(q)]
    wrong = [q for iou, q in quality_by_iou if iou < 0.1 and np.isfinite(q)]
    summary = {
        "frames": len(seq.frames),
        # the tracker's quality where its box was right (IoU >= 0.5) and where it was wrong (IoU < 0.1)
        "mean_quality_box_right": float(np.mean(right)) if right else None,
        "mean_quality_box_wrong": float(np.mean(wrong)) if wrong else None,
        "frames_box_right": len(right), "frames_box_wrong": len(wrong),
        "mean_box_iou_vs_ground_truth": float(np.mean(box_ious)) if box_ious else 0.0,
        "mean_mask_iou_vs_ground_truth": float(np.mean(mask_ious)) if mask_ious else 0.0,
        "frames_with_box_iou_over_0.5": int(sum(v > 0.5 for v in box_ious)),
        "states": {s: states.count(s) for s in sorted(set(states))},
        "lockstep_rate_hz": len(seq.frames) / wall if wall > 0 else 0.0,
        # per tracked frame: the median is the node's pace; the slowest shows transport or scheduling stalls
        "lockstep_round_trip_ms": {"median": 1e3 * float(np.median(round_trips)),
                                   "p90": 1e3 * float(np.percentile(round_trips, 90)),
                                   "max": 1e3 * float(np.max(round_trips))},
        "overlay": str(output / "overlay.mp4"),
        "input": str(output / "input.mp4"),
        "node_log": str(output / "node.log"),
    }
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    lines = [
        f"frames tracked: {summary['frames']} (states: {summary['states']})",
        f"mean box IoU vs ground truth: {summary['mean_box_iou_vs_ground_truth']:.3f} "
        f"({summary['frames_with_box_iou_over_0.5']} frames over 0.5)",
        f"mean mask IoU vs ground truth: {summary['mean_mask_iou_vs_ground_truth']:.3f}",
        "quality (probability that the box is right): " + _quality_line(right, wrong),
        "node round trip in lockstep (publish -> Track received), per tracked frame: median "
        f"{summary['lockstep_round_trip_ms']['median']:.0f} ms, 90th percentile "
        f"{summary['lockstep_round_trip_ms']['p90']:.0f} ms, slowest {summary['lockstep_round_trip_ms']['max']:.0f} ms; "
        f"{summary['lockstep_rate_hz']:.1f} frames/s over the whole run",
        f"overlay video: {summary['overlay']}",
    ]
    (output / "summary.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)
    return summary


def _quality_line(right: list[float], wrong: list[float]) -> str:
    if not right and not wrong:
        return "n/a (no quality model in these weights)"
    part = [f"mean {np.mean(v):.2f} on the {len(v)} frames whose box was {name}" for v, name in
            ((right, "right (IoU >= 0.5)"), (wrong, "wrong (IoU < 0.1)")) if v]
    return "; ".join(part)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--output", type=Path, default=Path("demo_output"))
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--weights", default="", help="weights folder (default: the shipped model)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the node to start")
    args = ap.parse_args(argv)
    if args.frames < 2:
        ap.error("--frames must be at least 2")
    run(args.output, args.frames, args.weights, args.device, args.seed, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
