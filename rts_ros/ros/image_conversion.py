"""sensor_msgs/Image <-> numpy without cv_bridge. Pure functions of the message fields.

Supported input encodings (documented in the README):
  rgb8, bgr8, rgba8, bgra8 (alpha dropped), mono8 and 8UC1 (gray replicated to RGB), 8UC3 (taken as bgr8,
  OpenCV's order), mono16 and 16UC1 (scaled to 8 bit by value/256, byte order from is_bigendian).
Anything else is refused with InvalidInputError naming the supported list. `step` (row length in bytes,
row padding allowed) and the data length are checked; padding bytes are ignored.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from rts_ros.errors import InvalidInputError


@dataclass(frozen=True)
class _Layout:
    channels: int
    itemsize: int
    order: str  # channel order after the reshape: "rgb", "bgr", "gray"


_LAYOUTS = {
    "rgb8": _Layout(3, 1, "rgb"),
    "bgr8": _Layout(3, 1, "bgr"),
    "8UC3": _Layout(3, 1, "bgr"),
    "rgba8": _Layout(4, 1, "rgb"),
    "bgra8": _Layout(4, 1, "bgr"),
    "mono8": _Layout(1, 1, "gray"),
    "8UC1": _Layout(1, 1, "gray"),
    "mono16": _Layout(1, 2, "gray"),
    "16UC1": _Layout(1, 2, "gray"),
}
SUPPORTED_ENCODINGS = tuple(_LAYOUTS)


def image_array(msg, what: str = "image") -> np.ndarray:
    """The image's pixels as HxWxC (uint8 or uint16, native byte order), honouring step and is_bigendian."""
    enc = msg.encoding
    layout = _LAYOUTS.get(enc)
    if layout is None:
        raise InvalidInputError(
            f"{what}: unsupported encoding {enc!r}; publish one of {', '.join(SUPPORTED_ENCODINGS)}")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h == 0 or w == 0:
        raise InvalidInputError(f"{what}: zero-size image ({w}x{h}); the camera must send width, height > 0")
    row = w * layout.channels * layout.itemsize
    if step < row:
        raise InvalidInputError(
            f"{what}: step {step} is smaller than one row of {w} {enc} pixels ({row} bytes); "
            "step must be the row length in bytes")
    data = msg.data
    n = len(data)
    if n < h * step:
        raise InvalidInputError(
            f"{what}: data has {n} bytes, fewer than height*step = {h}*{step} = {h * step}; truncated message?")
    buf = np.frombuffer(data, dtype=np.uint8, count=h * step) if not isinstance(data, np.ndarray) \
        else np.asarray(data, dtype=np.uint8)[: h * step]
    rows = buf.reshape(h, step)[:, :row]
    if layout.itemsize == 1:
        return rows.reshape(h, w, layout.channels)
    dtype = np.dtype(">u2" if msg.is_bigendian else "<u2")
    return np.ascontiguousarray(rows).view(dtype).astype(np.uint16).reshape(h, w, layout.channels)


def image_to_rgb(msg, what: str = "image") -> np.ndarray:
    """HxWx3 uint8 RGB (contiguous) from a sensor_msgs/Image; InvalidInputError on anything unusable."""
    arr = image_array(msg, what)
    layout = _LAYOUTS[msg.encoding]
    if arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)  # 16 -> 8 bit: value / 256, the documented conversion
    # cv2 copies rows with arbitrary stride (padding) in one pass, several times faster than numpy here
    if layout.order == "gray":
        return cv2.cvtColor(np.ascontiguousarray(arr[:, :, 0]), cv2.COLOR_GRAY2RGB)
    if layout.channels == 4:
        return cv2.cvtColor(arr, cv2.COLOR_BGRA2RGB if layout.order == "bgr" else cv2.COLOR_RGBA2RGB)
    if layout.order == "bgr":
        return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(arr)


def mask_from_image(msg, image_hw: tuple[int, int], what: str = "init mask") -> np.ndarray:
    """Init mask -> HxW bool (nonzero = target). Must be mono8/8UC1 and the image's size."""
    if msg.encoding not in ("mono8", "8UC1"):
        raise InvalidInputError(
            f"{what}: encoding {msg.encoding!r} is not supported; send a mono8 mask (nonzero = target)")
    arr = image_array(msg, what)[:, :, 0]
    if arr.shape != tuple(image_hw):
        raise InvalidInputError(
            f"{what}: size {arr.shape[1]}x{arr.shape[0]} differs from the image's {image_hw[1]}x{image_hw[0]}; "
            "the mask must have the image's width and height")
    if not arr.any():
        raise InvalidInputError(f"{what}: no nonzero pixel; mark the target with nonzero values")
    return arr != 0


def fill_image(msg, array: np.ndarray, encoding: str) -> None:
    """Fill msg (height, width, encoding, step, data) from a contiguous HxW or HxWxC uint8 array."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    msg.height, msg.width = int(a.shape[0]), int(a.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(a.strides[0])
    msg.data = a.tobytes()  # bytes: the fastest assignment path of the generated message class
