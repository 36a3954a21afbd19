"""Node overhead benchmark: stamp-to-publish latency minus tracker time, at 640x480 and 1280x720.

Starts the rts_tracker node in a subprocess (loopback only, a ROS domain of its own), feeds it a synthetic
camera in lockstep (next frame once the previous Track arrived, so no frame waits behind another) and reads
the node's own figures from /diagnostics: per-frame medians of the stamp-to-publish latency, of the time
spent inside the tracker, and of their difference (conversion, hand-over to the worker, mask/Track
building and publishing: what the ROS layer adds).

With `--transports raw,compressed` (the default) each size runs twice: sensor_msgs/Image, then JPEG
(quality 90) as sensor_msgs/CompressedImage with the node's `image_transport: compressed`, whose overhead
includes the decoding.

Then (`--stream-hz`, default 30) a free-running camera per size: frames at a fixed rate whatever the node does,
as a camera driver sends them. It says whether the node keeps up (tracked frames per second of camera time),
the latency from the image stamp to the Track's arrival, and where the other frames went.

    python -m rts_ros.ros.bench [--weights DIR] [--device cpu] [--frames 10] [--sizes 640x480,1280x720]
                                [--transports raw,compressed] [--stream-hz 30] [--stream-seconds 8]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _small_weights(folder: Path) -> Path:
    import torch

    from rts_ros.model import build_rts
    from rts_ros.weights import save_network

    kw = {"backbone_type": "resnet", "backbone_block": "basic", "backbone_layers": [1, 1, 1, 1], "backbone_width": 8}
    torch.manual_seed(0)
    save_network(folder, "rts", build_rts(dict(kw)).state_dict(), kw, fun_module="rts_ros.model", fun_name="build_rts")
    return folder


def _start_node(ns: str, weights: str, device: str, extra: list[str], log: Path):
    """The rts_tracker node in namespace ns (a process, loopback only) and a client node in this process."""
    from rts_ros.ros.harness import Client, NodeProcess, node_env, use_env

    env = node_env()
    use_env(env)
    proc = NodeProcess(["-r", f"__ns:={ns}", "-p", f"weights:={weights}", "-p", f"device:={device}",
                        "-p", "diagnostics_period:=0.5", *extra], env, log)
    return proc, Client("rts_bench")


def _run_stream(width: int, height: int, rate_hz: float, seconds: float, weights: str, device: str,
                extra: list[str], workdir: Path) -> dict:
    """A free-running camera: the target is set on a first frame, then frames go out at rate_hz whatever the node
    does (as a driver sends them). Returns the rate of tracked frames, the median stamp-to-arrival latency, and
    where the other frames went (every streamed frame comes after the start, so they add up exactly)."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from rts_ros.msg import InitTarget, Track
    from rts_ros.ros.image_conversion import fill_image
    from rts_ros.ros.synthetic_camera import synthetic_frame

    ns = f"/stream{width}"
    proc, client = _start_node(ns, weights, device, extra, workdir / f"stream_{width}x{height}.log")
    try:
        node = client.node
        img_pub = node.create_publisher(Image, f"{ns}/image", qos_profile_sensor_data)
        init_pub = node.create_publisher(InitTarget, f"{ns}/rts/init", QoSProfile(
            depth=10, reliability=ReliabilityPolicy.RELIABLE))
        arrived: list = []   # (Track, arrival time)
        node.create_subscription(Track, f"{ns}/rts/bbox", lambda m: arrived.append((m, time.time())), 100)
        if not client.wait_for(lambda: img_pub.get_subscription_count() > 0, 300):
            raise RuntimeError("the node did not come up; its output:\n" + proc.output()[-2000:])
        n = int(rate_hz * seconds)
        clips = [synthetic_frame(i, width, height) for i in range(min(n + 1, 42))]   # the orbit repeats after ~42
        msgs = []
        for rgb, _ in clips:
            msg = Image()
            fill_image(msg, rgb, "rgb8")
            msgs.append(msg)

        def answered(stamp, started: bool) -> bool:
            return any(t.header.stamp == stamp and (t.state != Track.IDLE) == started for t, _ in list(arrived))

        # the start, before the stream: frame 0 until the node answers it, the init on it, the start's Track
        for _ in range(120):
            msgs[0].header.stamp = node.get_clock().now().to_msg()
            img_pub.publish(msgs[0])
            if client.wait_for(lambda: answered(msgs[0].header.stamp, False), 0.5):
                break
        else:
            raise RuntimeError("the node answered no frame; its output:\n" + proc.output()[-2000:])
        init = InitTarget()
        init.header.stamp = msgs[0].header.stamp
        init.roi.x_offset, init.roi.y_offset, init.roi.width, init.roi.height = clips[0][1]
        init_pub.publish(init)
        if not client.wait_for(lambda: answered(init.header.stamp, True), 120):
            raise RuntimeError("the node did not start tracking; its output:\n" + proc.output()[-2000:])
        streamed = set()
        t0 = time.monotonic()
        for i in range(n):
            msg = msgs[(i + 1) % len(msgs)]
            msg.header.stamp = node.get_clock().now().to_msg()
            streamed.add((msg.header.stamp.sec, msg.header.stamp.nanosec))
            img_pub.publish(msg)
            while time.monotonic() < t0 + (i + 1) / rate_hz:
                time.sleep(0.001)
        time.sleep(1.0)
        tracked = [(t, at) for t, at in list(arrived) if t.state != Track.IDLE
                   and (t.header.stamp.sec, t.header.stamp.nanosec) in streamed]
        if len(tracked) < 2:
            raise RuntimeError(f"only {len(tracked)} tracked frames; node output:\n" + proc.output()[-2000:])
        stamps = [t.header.stamp.sec + t.header.stamp.nanosec * 1e-9 for t, _ in tracked]
        skipped = sum(t.frames_skipped for t, _ in tracked)
        return {"sent": n, "tracked": len(tracked), "skipped_in_node": skipped,
                "lost_before_node": n - len(tracked) - skipped,
                "rate_hz": (len(tracked) - 1) / max(1e-9, max(stamps) - min(stamps)),
                "latency_ms": 1e3 * statistics.median(at - st for (_, at), st in zip(tracked, stamps))}
    finally:
        client.close()
        proc.stop()


def _run_size(width: int, height: int, frames: int, weights: str, device: str, extra: list[str],
              workdir: Path, transport: str = "raw") -> dict:
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    import cv2
    from sensor_msgs.msg import CompressedImage, Image

    from rts_ros.msg import InitTarget, Track
    from rts_ros.ros.image_conversion import fill_image
    from rts_ros.ros.synthetic_camera import synthetic_frame

    ns = f"/bench{width}{transport}"
    compressed = transport == "compressed"
    proc, client = _start_node(ns, weights, device, extra + ["-p", f"image_transport:={transport}"],
                               workdir / f"node_{width}x{height}_{transport}.log")
    try:
        node = client.node
        img_pub = node.create_publisher(CompressedImage if compressed else Image,
                                        f"{ns}/image/compressed" if compressed else f"{ns}/image",
                                        qos_profile_sensor_data)
        init_pub = node.create_publisher(InitTarget, f"{ns}/rts/init", QoSProfile(
            depth=10, reliability=ReliabilityPolicy.RELIABLE))
        client.subscribe(Track, f"{ns}/rts/bbox", key="track")
        client.subscribe(DiagnosticArray, "/diagnostics", key="diag")
        if not client.wait_for(lambda: img_pub.get_subscription_count() > 0, 300):
            raise RuntimeError("the node did not come up; its output:\n" + proc.output()[-2000:])
        clips = [synthetic_frame(i, width, height) for i in range(frames + 1)]
        e2e = []
        for i, (rgb, box) in enumerate(clips):
            if compressed:
                ok, data = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
                msg = CompressedImage(format="rgb8; jpeg compressed bgr8", data=data.tobytes())
            else:
                msg = Image()
                fill_image(msg, rgb, "rgb8")
            msg.header.frame_id = "bench"
            msg.header.stamp = node.get_clock().now().to_msg()
            stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            img_pub.publish(msg)
            if i == 0:
                time.sleep(0.2)
                init = InitTarget()
                init.roi.x_offset, init.roi.y_offset, init.roi.width, init.roi.height = box
                init_pub.publish(init)
            ok = client.wait_for(lambda: any((t.header.stamp.sec, t.header.stamp.nanosec) == stamp
                                             and t.state != Track.IDLE for t in client.msgs("track")), 120)
            if not ok:
                raise RuntimeError(f"no Track for frame {i}; node output:\n" + proc.output()[-2000:])
            if i > 0:
                e2e.append(time.time() - (stamp[0] + stamp[1] * 1e-9))
        time.sleep(0.6)  # one more diagnostics period
        diag = [s for a in client.msgs("diag") for s in a.status if f"{ns}/rts_tracker" in s.name]
        values = {kv.key: kv.value for kv in diag[-1].values}
        return {"latency_ms": float(values["latency_ms"]), "tracker_ms": float(values["tracker_ms"]),
                "overhead_ms": float(values["overhead_ms"]), "device": values["device"],
                "roundtrip_ms": statistics.median(e2e) * 1e3}
    finally:
        client.close()
        proc.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="rts_tracker node overhead (stamp-to-publish latency - tracker time), "
                                             "then the node fed by a free-running camera")
    ap.add_argument("--weights", default="", help="weights folder (default: the shipped model, else a small "
                                                  "random network: the overhead does not depend on the model)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--cpu-threads", type=int, default=None,
                    help="the node's cpu_threads parameter: -1 auto (the node's default), 0 torch's, N fixed")
    ap.add_argument("--frames", type=int, default=10, help="tracked frames per size (after the init frame)")
    ap.add_argument("--sizes", default="640x480,1280x720")
    ap.add_argument("--transports", default="raw,compressed",
                    help="raw (sensor_msgs/Image) and/or compressed (JPEG in sensor_msgs/CompressedImage)")
    ap.add_argument("--stream-hz", type=float, default=30.0,
                    help="then a free-running camera at this rate for each size (0: skip)")
    ap.add_argument("--stream-seconds", type=float, default=8.0)
    args = ap.parse_args(argv)
    if args.stream_hz < 0 or (args.stream_hz > 0 and args.stream_seconds * args.stream_hz < 10):
        ap.error("--stream-hz must be >= 0, and a stream needs at least 10 frames (--stream-seconds)")
    transports = [t for t in args.transports.split(",") if t]
    if not transports or set(transports) - {"raw", "compressed"}:
        ap.error(f"--transports takes raw and/or compressed, got {args.transports!r}")
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="rts_bench_") as tmp:
        weights, extra, label = args.weights, [], args.weights
        if not weights:
            try:
                from rts_ros.weights import default_weights_dir

                weights, label = str(default_weights_dir()), "shipped default model"
            except Exception:  # no shipped model here: a small network gives the same node overhead
                weights, label = str(_small_weights(Path(tmp) / "small")), "small random network"
                extra = ["-p", "tracker.image_sample_size:=[96, 96]", "-p", "tracker.box_init:=grabcut"]
        threads = "the node's default CPU threads"
        if args.cpu_threads is not None:
            extra += ["-p", f"cpu_threads:={args.cpu_threads}"]
            threads = f"cpu_threads {args.cpu_threads}"
        print(f"rts_tracker node overhead ({label}, device {args.device}, {threads}, {args.frames} frames per size, "
              f"lockstep)")
        print(f"{'size':>10} {'transport':>10} {'latency ms':>11} {'tracker ms':>11} {'overhead ms':>12} "
              f"{'round trip ms':>14}")
        for w, h in sizes:
            for transport in transports:
                r = _run_size(w, h, args.frames, weights, args.device, extra, Path(tmp), transport)
                print(f"{w}x{h:<6} {transport:>10} {r['latency_ms']:11.1f} {r['tracker_ms']:11.1f} "
                      f"{r['overhead_ms']:12.1f} {r['roundtrip_ms']:14.1f}   ({r['device']})")
        print("latency: image stamp to Track publish in the node; overhead = latency - tracker call (medians); "
              "round trip: stamp to Track received by this process; compressed: JPEG quality 90, decoding included. "
              "These are a track's first frames, which update the memories on every frame (alr_init_buff): "
              "the tracker column is above a long sequence's mean; the overhead is what this measures")
        if args.stream_hz > 0:
            print(f"\nfree-running camera at {args.stream_hz:g} Hz for {args.stream_seconds:g} s per size (raw, the "
                  "publisher in this process on the same machine)")
            print(f"{'size':>10} {'tracked Hz':>11} {'latency ms':>11} {'frames sent':>12} {'tracked':>8} "
                  f"{'skipped in node':>16} {'lost before node':>17}")
            for w, h in sizes:
                r = _run_stream(w, h, args.stream_hz, args.stream_seconds, weights, args.device, extra, Path(tmp))
                print(f"{w}x{h:<6} {r['rate_hz']:11.1f} {r['latency_ms']:11.1f} {r['sent']:12d} {r['tracked']:8d} "
                      f"{r['skipped_in_node']:16d} {r['lost_before_node']:17d}")
            print("tracked Hz: tracked frames per second of camera time; latency: image stamp to the Track's arrival "
                  "here (median); skipped in node: frames the worker replaced by newer ones (Track.frames_skipped); "
                  "lost before node: dropped by the image queue (depth 1) or the transport")
    return 0


if __name__ == "__main__":
    sys.exit(main())
