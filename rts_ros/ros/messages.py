"""Building the node's output messages from tracker results (rclpy message classes, no node state)."""
from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import CompressedImage, Image

from rts_ros.msg import Track
from rts_ros.ros.geometry import clip_box
from rts_ros.ros.image_conversion import fill_image
from rts_ros.ros.overlay import render_overlay
from rts_ros.ros.stats import StatsSnapshot

STATE_NAMES = {Track.IDLE: "IDLE", Track.TRACKING: "TRACKING", Track.UNCERTAIN: "UNCERTAIN", Track.LOST: "LOST"}


def track_message(header, result: Any | None, width: int, height: int, skipped: int) -> Track:
    """Track for one image; `result` None = IDLE (no target)."""
    msg = Track()
    msg.header = header
    msg.frames_skipped = int(skipped)
    if result is None:
        msg.state = Track.IDLE
        return msg
    x0, y0, x1, y1 = clip_box(result.box, width, height)
    msg.bbox.x_offset, msg.bbox.y_offset, msg.bbox.width, msg.bbox.height = x0, y0, x1 - x0, y1 - y0
    msg.box = [float(v) for v in result.box]
    conf = float(result.confidence)
    msg.confidence = conf if math.isfinite(conf) else 0.0
    msg.quality = float(result.quality)   # NaN = the weights have no quality model (documented in Track.msg)
    msg.state = int(result.state)
    msg.mask_area = int(result.mask_area)
    msg.frame_index = int(result.frame_index)
    return msg


def mask_message(header, mask: np.ndarray) -> Image:
    msg = Image()
    msg.header = header
    fill_image(msg, mask, "mono8")
    return msg


def mask_compressed_message(header, mask: np.ndarray) -> CompressedImage:
    """The mask as lossless PNG (a 0/255 mask compresses to a few kB), in image_transport's compressed format."""
    ok, data = cv2.imencode(".png", mask, [cv2.IMWRITE_PNG_COMPRESSION, 1])   # level 1: fast, still small
    if not ok:
        raise RuntimeError("OpenCV could not PNG-encode the mask")
    return CompressedImage(header=header, format="mono8; png compressed mono8", data=data.tobytes())


def debug_overlay(rgb: np.ndarray, result: Any | None, track: Track) -> np.ndarray:
    """The BGR overlay of `rts/debug_image`: mask, box, state, confidence and quality."""
    b = track.bbox
    return render_overlay(rgb, None if result is None else result.mask,
                          (b.x_offset, b.y_offset, b.x_offset + b.width, b.y_offset + b.height),
                          STATE_NAMES.get(track.state, str(track.state)), track.confidence, track.quality)


def debug_message(header, overlay: np.ndarray) -> Image:
    msg = Image()
    msg.header = header
    fill_image(msg, overlay, "bgr8")
    return msg


def debug_compressed_message(header, overlay: np.ndarray, quality: int = 80) -> CompressedImage:
    """The overlay as JPEG, for viewers on another machine (a tenth of the raw bytes or less)."""
    ok, data = cv2.imencode(".jpg", overlay, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV could not JPEG-encode the overlay")
    return CompressedImage(header=header, format="bgr8; jpeg compressed bgr8", data=data.tobytes())


def diagnostics_message(stamp, name: str, hardware_id: str, level: bytes, summary: str, snap: StatsSnapshot | None,
                        extra: dict[str, str]) -> DiagnosticArray:
    status = DiagnosticStatus(level=level, name=name, message=summary, hardware_id=hardware_id)
    values = dict(extra)
    if snap is not None:
        def f(v: float) -> str:
            return "nan" if math.isnan(v) else f"{v:.2f}"
        values.update({
            "rate_hz": f(snap.rate_hz), "latency_ms": f(snap.latency_ms), "tracker_ms": f(snap.tracker_ms),
            "overhead_ms": f(snap.overhead_ms), "frames_processed": str(snap.frames_processed),
            "frames_skipped": str(snap.frames_skipped), "input_errors": str(snap.input_errors),
            "inits": str(snap.inits), "inits_collapsed": str(snap.inits_collapsed)})
    status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    arr = DiagnosticArray()
    arr.header.stamp = stamp
    arr.status = [status]
    return arr
