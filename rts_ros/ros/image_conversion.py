"""sensor_msgs/Image and sensor_msgs/CompressedImage -> numpy without cv_bridge. Pure functions of the
message fields.

Supported raw encodings (documented in the README):
  rgb8, bgr8, rgba8, bgra8 (alpha dropped), mono8 and 8UC1 (gray replicated to RGB), 8UC3 (taken as bgr8,
  OpenCV's order), mono16 and 16UC1 (scaled to 8 bit by value/256, byte order from is_bigendian),
  bayer_rggb8/bggr8/gbrg8/grbg8 and their 16-bit forms (demosaiced, 16 bit scaled by 1/256 first), and the
  packed 4:2:2 YUV of USB cameras: yuv422 / uyvy (U Y0 V Y1) and yuv422_yuy2 / yuyv (Y0 U Y1 V).
Anything else is refused with InvalidInputError naming the supported list. `step` (row length in bytes,
row padding allowed) and the data length are checked; padding bytes are ignored.

Compressed images (image_transport's `compressed` transport, or any JPEG/PNG payload) are decoded with
OpenCV; image_transport compresses colour as BGR, which is what OpenCV decodes to. `compressedDepth` is refused.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from rts_ros.errors import InvalidInputError


@dataclass(frozen=True)
class _Layout:
    channels: int           # values per pixel in the message (2 for packed YUV 4:2:2: Y plus U or V)
    itemsize: int
    to_rgb: int | None      # cv2.cvtColor code from the 8-bit array to RGB; None: already RGB


_GRAY = cv2.COLOR_GRAY2RGB
# OpenCV names a Bayer pattern by the 2x2 block at row 1, column 1, ROS by the block at the origin
# (cv_bridge maps them the same way; test_ros_units checks each against a mosaic built by hand).
_LAYOUTS = {
    "rgb8": _Layout(3, 1, None),
    "bgr8": _Layout(3, 1, cv2.COLOR_BGR2RGB),
    "8UC3": _Layout(3, 1, cv2.COLOR_BGR2RGB),
    "rgba8": _Layout(4, 1, cv2.COLOR_RGBA2RGB),
    "bgra8": _Layout(4, 1, cv2.COLOR_BGRA2RGB),
    "mono8": _Layout(1, 1, _GRAY),
    "8UC1": _Layout(1, 1, _GRAY),
    "mono16": _Layout(1, 2, _GRAY),
    "16UC1": _Layout(1, 2, _GRAY),
    "bayer_rggb8": _Layout(1, 1, cv2.COLOR_BayerBG2RGB),
    "bayer_bggr8": _Layout(1, 1, cv2.COLOR_BayerRG2RGB),
    "bayer_gbrg8": _Layout(1, 1, cv2.COLOR_BayerGR2RGB),
    "bayer_grbg8": _Layout(1, 1, cv2.COLOR_BayerGB2RGB),
    "bayer_rggb16": _Layout(1, 2, cv2.COLOR_BayerBG2RGB),
    "bayer_bggr16": _Layout(1, 2, cv2.COLOR_BayerRG2RGB),
    "bayer_gbrg16": _Layout(1, 2, cv2.COLOR_BayerGR2RGB),
    "bayer_grbg16": _Layout(1, 2, cv2.COLOR_BayerGB2RGB),
    "yuv422": _Layout(2, 1, cv2.COLOR_YUV2RGB_UYVY),
    "uyvy": _Layout(2, 1, cv2.COLOR_YUV2RGB_UYVY),
    "yuv422_yuy2": _Layout(2, 1, cv2.COLOR_YUV2RGB_YUYV),
    "yuyv": _Layout(2, 1, cv2.COLOR_YUV2RGB_YUYV),
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
    if layout.channels == 2 and w % 2:
        raise InvalidInputError(f"{what}: {enc} packs two pixels per U/V pair, so its width must be even "
                                f"(got {w})")
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
    if layout.to_rgb is None:
        return np.ascontiguousarray(arr)
    if layout.channels == 1:
        arr = np.ascontiguousarray(arr[:, :, 0])
    # cv2 copies rows with arbitrary stride (padding) in one pass, several times faster than numpy here
    return cv2.cvtColor(arr, layout.to_rgb)


def compressed_to_rgb(msg, what: str = "image") -> np.ndarray:
    """HxWx3 uint8 RGB from a sensor_msgs/CompressedImage (JPEG, PNG, ... whatever OpenCV decodes)."""
    fmt = str(msg.format)
    if "compressedDepth" in fmt:
        raise InvalidInputError(
            f"{what}: format {fmt!r} is a depth image (compressedDepth); track on a colour or gray camera topic")
    data = msg.data
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) \
        else np.asarray(data, dtype=np.uint8).reshape(-1)
    if buf.size == 0:
        raise InvalidInputError(f"{what}: compressed image (format {fmt!r}) has no data")
    arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if arr is None or arr.size == 0:
        raise InvalidInputError(
            f"{what}: could not decode {buf.size} bytes of format {fmt!r} as an image (corrupt or truncated "
            "JPEG/PNG?); publish JPEG or PNG data, e.g. image_transport's compressed transport")
    if arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise InvalidInputError(f"{what}: format {fmt!r} decoded to {arr.dtype} pixels; send 8- or 16-bit images")
    if arr.ndim == 2 or arr.shape[2] == 1:
        return cv2.cvtColor(arr.reshape(arr.shape[:2]), cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(arr, cv2.COLOR_BGRA2RGB if arr.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def message_to_rgb(msg, what: str = "image") -> np.ndarray:
    """HxWx3 uint8 RGB from either image message type (a CompressedImage has `format`, an Image `encoding`)."""
    if hasattr(msg, "format") and not hasattr(msg, "encoding"):
        return compressed_to_rgb(msg, what)
    return image_to_rgb(msg, what)


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
