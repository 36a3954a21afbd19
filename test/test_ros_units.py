"""Pure parts of the ROS layer: image conversion, boxes, the frame store, the parameter table, the overlay,
the launch file. No node is started here."""
from __future__ import annotations

import ast
import math
import sys
import types

import numpy as np
import pytest

pytest.importorskip("sensor_msgs", reason="ROS message wheels not installed (make setup installs them)")
from sensor_msgs.msg import CompressedImage, Image, RegionOfInterest  # noqa: E402

from rts_ros.errors import ConfigError, InvalidInputError  # noqa: E402
from rts_ros.ros import params as P  # noqa: E402
from rts_ros.ros.compute_thread import ComputeThread  # noqa: E402
from rts_ros.ros.frames import FrameStore, InitTicket  # noqa: E402
from rts_ros.ros.geometry import clip_box, mask_tight_box, roi_is_zero  # noqa: E402
from rts_ros.ros.image_conversion import (  # noqa: E402
    fill_image, image_to_rgb, mask_from_image, message_to_rgb)
from rts_ros.ros.overlay import render_overlay  # noqa: E402
from rts_ros.ros.stats import Stats  # noqa: E402
from rts_ros.testing import REPO_ROOT  # noqa: E402

RNG = np.random.default_rng(1)
RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


def image_msg(pixels: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False) -> Image:
    """A message built by hand from raw pixels: rows of `pixels` bytes plus `pad` junk bytes each."""
    h, w = pixels.shape[:2]
    raw = pixels.astype(pixels.dtype.newbyteorder(">" if bigendian else "<")).reshape(h, -1).view(np.uint8)
    rows = np.concatenate([raw, np.full((h, pad), 0xAB, np.uint8)], axis=1)
    return Image(height=h, width=w, encoding=encoding, is_bigendian=int(bigendian), step=rows.shape[1],
                 data=rows.tobytes())


@pytest.mark.parametrize("encoding,pixels", [
    ("rgb8", RGB), ("bgr8", RGB[:, :, ::-1]), ("8UC3", RGB[:, :, ::-1]),
    ("rgba8", np.dstack([RGB, np.full((5, 7), 9, np.uint8)])),
    ("bgra8", np.dstack([RGB[:, :, ::-1], np.full((5, 7), 9, np.uint8)])),
])
@pytest.mark.parametrize("pad", [0, 3])
def test_colour_encodings_give_rgb_honouring_step(encoding, pixels, pad):
    out = image_to_rgb(image_msg(np.ascontiguousarray(pixels), encoding, pad))
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, RGB)


@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
def test_mono8_is_replicated_to_three_channels(encoding):
    gray = RGB[:, :, 0].copy()
    out = image_to_rgb(image_msg(gray, encoding, pad=2))
    np.testing.assert_array_equal(out, np.repeat(gray[:, :, None], 3, axis=2))


@pytest.mark.parametrize("bigendian", [False, True])
def test_mono16_is_scaled_by_1_over_256_in_either_byte_order(bigendian):
    values = np.array([[0, 255, 256, 65535], [512, 1000, 40000, 257]], np.uint16)
    out = image_to_rgb(image_msg(values, "mono16", pad=2, bigendian=bigendian))
    np.testing.assert_array_equal(out[:, :, 0], values // 256)
    np.testing.assert_array_equal(out[:, :, 2], values // 256)


@pytest.mark.parametrize("change,phrase", [
    (dict(encoding="nv21"), "unsupported encoding 'nv21'"),
    (dict(encoding="yuv422", width=7, step=14), "width must be even"),
    (dict(encoding="rgb16"), "unsupported encoding"),
    (dict(data=b"\x00" * 20), "fewer than height*step"),
    (dict(step=20), "smaller than one row"),
    (dict(width=0), "zero-size image"),
    (dict(height=0), "zero-size image"),
])
def test_unusable_images_raise_a_clear_error(change, phrase):
    msg = image_msg(RGB, "rgb8")
    for k, v in change.items():
        setattr(msg, k, v)
    with pytest.raises(InvalidInputError, match=phrase.replace("*", r"\*")):
        image_to_rgb(msg)


def _mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """A Bayer mosaic built by hand: pattern names the colours of the 2x2 block at the origin, row by row."""
    out = np.zeros(rgb.shape[:2], rgb.dtype)
    for i, colour in enumerate(pattern):
        dy, dx = divmod(i, 2)
        out[dy::2, dx::2] = rgb[dy::2, dx::2, "RGB".index(colour)]
    return out


@pytest.mark.parametrize("pattern", ["RGGB", "BGGR", "GBRG", "GRBG"])
@pytest.mark.parametrize("bits", [8, 16])
def test_bayer_mosaics_are_demosaiced_to_rgb(pattern, bits):
    h, w = 12, 16
    flat = np.empty((h, w, 3), np.uint8)
    flat[:] = (200, 100, 30)      # distinct R, G, B: a pattern read the wrong way round swaps them
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = np.dstack([40 + 8 * xx, 60 + 6 * yy, 200 - 5 * xx]).astype(np.uint8)   # linear ramps
    for rgb in (flat, smooth):
        mosaic = _mosaic(rgb, pattern)
        if bits == 16:
            mosaic = mosaic.astype(np.uint16) * 256 + 77   # the low byte is dropped by the 1/256 scaling
        out = image_to_rgb(image_msg(mosaic, f"bayer_{pattern.lower()}{bits}", pad=3))
        assert out.shape == (h, w, 3) and out.dtype == np.uint8
        inner = (slice(2, -2), slice(2, -2))   # borders are extrapolated by the demosaicing
        # bilinear demosaicing is exact on linear ramps, up to rounding
        assert np.abs(out[inner].astype(int) - rgb[inner].astype(int)).max() <= 1, pattern


def _yuv_to_rgb_bt601(y, u, v):
    """ITU-R BT.601, video range: the conversion of packed 4:2:2 camera output."""
    c, d, e = 1.164 * (y - 16.0), u - 128.0, v - 128.0
    return np.clip(np.stack([c + 1.596 * e, c - 0.392 * d - 0.813 * e, c + 2.017 * d], -1), 0, 255)


@pytest.mark.parametrize("encoding,order", [("yuv422", "UYVY"), ("uyvy", "UYVY"), ("yuv422_yuy2", "YUYV"),
                                            ("yuyv", "YUYV")])
def test_packed_yuv422_is_converted_with_bt601(encoding, order):
    h, w = 3, 8
    y = RNG.integers(16, 236, (h, w)).astype(np.uint8)
    u = RNG.integers(16, 241, (h, w // 2)).astype(np.uint8)
    v = RNG.integers(16, 241, (h, w // 2)).astype(np.uint8)
    planes = {"Y": None, "U": u, "V": v}
    packed = np.zeros((h, w * 2), np.uint8)
    ys = iter([y[:, 0::2], y[:, 1::2]])
    for k, name in enumerate(order):
        packed[:, k::4] = next(ys) if name == "Y" else planes[name]
    msg = Image(height=h, width=w, encoding=encoding, step=w * 2 + 4,
                data=np.concatenate([packed, np.zeros((h, 4), np.uint8)], 1).tobytes())
    out = image_to_rgb(msg).astype(float)
    want = _yuv_to_rgb_bt601(y.astype(float), np.repeat(u, 2, 1).astype(float), np.repeat(v, 2, 1).astype(float))
    assert np.abs(out - want).max() <= 2.5


def _compressed(data: bytes, fmt: str) -> CompressedImage:
    return CompressedImage(format=fmt, data=data)


def test_compressed_png_decodes_exactly_and_jpeg_closely():
    import cv2

    big = cv2.resize(RGB, (70, 50), interpolation=cv2.INTER_LINEAR)   # smooth enough for JPEG
    ok, png = cv2.imencode(".png", big[:, :, ::-1])
    assert ok
    np.testing.assert_array_equal(message_to_rgb(_compressed(png.tobytes(), "rgb8; png compressed bgr8")), big)
    ok, jpg = cv2.imencode(".jpg", big[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    out = message_to_rgb(_compressed(jpg.tobytes(), "jpeg"))
    assert out.shape == big.shape and out.dtype == np.uint8
    mse = np.mean((out.astype(float) - big.astype(float)) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) > 30          # PSNR: a decoded JPEG of quality 95
    assert out[..., 0].mean() == pytest.approx(big[..., 0].mean(), abs=3)   # channel order kept
    assert out[..., 2].mean() == pytest.approx(big[..., 2].mean(), abs=3)
    gray = RGB[:, :, 1].copy()
    ok, png = cv2.imencode(".png", gray)
    np.testing.assert_array_equal(message_to_rgb(_compressed(png.tobytes(), "mono8; png compressed")),
                                  np.repeat(gray[:, :, None], 3, 2))
    deep = (RGB.astype(np.uint16) * 256 + 200)
    ok, png = cv2.imencode(".png", deep[:, :, ::-1])
    np.testing.assert_array_equal(message_to_rgb(_compressed(png.tobytes(), "rgb16; png compressed bgr16")), RGB)
    ok, png = cv2.imencode(".png", np.dstack([RGB[:, :, ::-1], np.full((5, 7), 9, np.uint8)]))
    np.testing.assert_array_equal(message_to_rgb(_compressed(png.tobytes(), "bgra8; png compressed bgra8")), RGB)


@pytest.mark.parametrize("data,fmt,phrase", [
    (b"", "jpeg", "has no data"),
    (b"\xff\xd8\xff\xe0 not really a jpeg", "jpeg", "could not decode"),
    (bytes(range(256)) * 4, "png", "could not decode"),
    (b"\x00" * 16, "16UC1; compressedDepth png", "depth image"),
])
def test_unusable_compressed_images_raise_a_clear_error(data, fmt, phrase):
    with pytest.raises(InvalidInputError, match=phrase):
        message_to_rgb(_compressed(data, fmt))


def test_fill_image_round_trips():
    msg = Image()
    fill_image(msg, RGB, "rgb8")
    assert (msg.height, msg.width, msg.step, msg.encoding) == (5, 7, 21, "rgb8")
    np.testing.assert_array_equal(image_to_rgb(msg), RGB)


def test_init_mask_checks():
    m = np.zeros((5, 7), np.uint8)
    m[1:3, 2:5] = 3
    got = mask_from_image(image_msg(m, "mono8", pad=1), (5, 7))
    np.testing.assert_array_equal(got, m != 0)
    with pytest.raises(InvalidInputError, match="differs from the image"):
        mask_from_image(image_msg(m, "mono8"), (6, 7))
    with pytest.raises(InvalidInputError, match="send a mono8 mask"):
        mask_from_image(image_msg(RGB, "rgb8"), (5, 7))
    with pytest.raises(InvalidInputError, match="no nonzero pixel"):
        mask_from_image(image_msg(np.zeros((5, 7), np.uint8), "mono8"), (5, 7))
    assert mask_tight_box(m != 0) == (2.0, 1.0, 3.0, 2.0)


def test_clip_box_floors_the_start_and_ceils_the_end_inside_the_image():
    assert clip_box((10.4, 20.6, 5.2, 4.1), 100, 50) == (10, 20, 16, 25)   # ceil(15.6)=16, ceil(24.7)=25
    assert clip_box((-3.5, -1.0, 20.0, 10.0), 100, 50) == (0, 0, 17, 9)    # ceil(16.5)=17
    assert clip_box((90.0, 45.0, 30.0, 30.0), 100, 50) == (90, 45, 100, 50)
    assert clip_box((200.0, 10.0, 5.0, 5.0), 100, 50) == (0, 0, 0, 0)      # fully outside
    assert clip_box((math.nan, 0, 1, 1), 100, 50) == (0, 0, 0, 0)
    assert roi_is_zero(RegionOfInterest()) and not roi_is_zero(RegionOfInterest(width=1))


# --- frame store ------------------------------------------------------------------------------------------
def test_store_keeps_the_newest_frame_and_counts_the_skipped():
    s = FrameStore(3)
    assert s.take(0.01) is None
    for i in range(1, 6):
        s.put_frame(f"m{i}", i * 10)
    w = s.take(0.01)
    assert w.frame.msg == "m5" and w.skipped == 4 and w.init is None and not w.reset
    assert s.take(0.01) is None                           # nothing new
    assert s.find(30).msg == "m3" and s.find(20) is None  # ring of 3: 30, 40, 50
    assert s.stamp_range() == (30, 50)


def test_every_synchronous_init_gets_exactly_one_answer():
    s = FrameStore(3)
    replaced, cancelled, withdrawn, taken = InitTicket(), InitTicket(), InitTicket(), InitTicket()
    s.put_init("a", replaced)
    s.put_init("b", cancelled)                            # a newer init replaces the first
    assert replaced.answered and not replaced.success and "replaced by a newer init" in replaced.message
    s.request_reset()                                     # a reset cancels the pending one
    assert cancelled.answered and not cancelled.success and "cancelled by a reset" in cancelled.message
    s.put_init("c", withdrawn)
    assert s.withdraw_init(withdrawn, "timed out") and withdrawn.message == "timed out"
    assert not s.withdraw_init(withdrawn, "again")        # gone: nothing to withdraw
    s.put_frame("f", 1)
    w = s.take(0.01)
    assert w.reset and w.init is None and w.ticket is None  # the withdrawn init never reaches the worker
    s.put_init("d", taken)
    w = s.take(0.01)
    assert w.init == "d" and w.ticket is taken and not taken.answered   # the worker answers it now
    assert not s.withdraw_init(taken, "late")             # already taken: a late withdrawal changes nothing
    assert taken.answer(True, "ok") and not taken.answer(False, "twice")
    assert taken.success and taken.message == "ok"
    pending = InitTicket()
    s.put_init("e", pending)
    s.clear()                                             # deactivate
    assert pending.answered and not pending.success and "deactivated" in pending.message


def test_a_ticket_calls_back_once_answered_from_whichever_thread_answers():
    import threading

    early, late = InitTicket(), InitTicket()
    calls: list = []
    early.on_answer(lambda: calls.append(("early", early.message)))
    assert calls == []
    worker = threading.Thread(target=early.answer, args=(True, "started"))
    worker.start()
    worker.join()
    assert calls == [("early", "started")]          # called by the answering thread, after the answer was set
    assert not early.answer(False, "twice") and calls == [("early", "started")]
    late.answer(False, "refused")
    late.on_answer(lambda: calls.append(("late", late.message)))   # already answered: called at once
    assert calls[-1] == ("late", "refused")
    # two threads answering at once: exactly one answer wins, and its callback runs once
    for _ in range(50):
        t, seen = InitTicket(), []
        t.on_answer(lambda t=t: seen.append(t.message))
        racers = [threading.Thread(target=t.answer, args=(i % 2 == 0, f"answer {i}")) for i in range(4)]
        for r in racers:
            r.start()
        for r in racers:
            r.join()
        assert seen == [t.message] and t.success == (t.message in ("answer 0", "answer 2"))


def test_store_collapses_inits_and_reset_cancels_an_earlier_init():
    s = FrameStore(3)
    s.put_init("early")
    assert s.take(0.01) is None and s.init_waiting()      # no frame yet: the init waits
    s.put_frame("f", 1)
    for i in range(100):
        s.put_init(i)
    w = s.take(0.01)
    assert w.init == 99 and w.inits_collapsed == 100      # "early" and 0..98 replaced
    s.put_init("x")
    s.request_reset()
    w = s.take(0.01)
    assert w.reset and w.init is None
    s.request_reset()
    s.put_init("after")
    w = s.take(0.01)
    assert w.reset and w.init == "after"


def test_compute_thread_runs_jobs_in_order_on_one_thread_and_hands_back_errors():
    import threading
    import weakref

    ct = ComputeThread("test_compute")
    try:
        seen: list = []
        futs = [ct.submit(lambda i=i: seen.append((i, threading.current_thread().name)) or i) for i in range(20)]
        assert [f.result(timeout=10) for f in futs] == list(range(20))
        assert [i for i, _ in seen] == list(range(20)) and {n for _, n in seen} == {"test_compute"}
        assert ct.call(lambda: threading.current_thread().name) == "test_compute"
        with pytest.raises(ZeroDivisionError):
            ct.call(lambda: 1 / 0)
        assert ct.call(lambda: "still serving") == "still serving"   # an error does not end the thread
        # a call made from the compute thread itself runs at once (no deadlock waiting on its own queue)
        assert ct.call(lambda: ct.call(lambda: 5)) == 5

        class Model:
            pass

        ref = weakref.ref(ct.call(Model))   # the thread keeps no reference to a finished job's result
        import gc

        gc.collect()
        assert ref() is None
    finally:
        ct.close()
    with pytest.raises(RuntimeError, match="closed"):
        ct.submit(print)
    assert not ct._thread.is_alive()


def test_stats_median_overhead():
    st = Stats()
    for lat, trk in [(0.1, 0.08), (0.2, 0.15), (0.3, 0.29)]:
        st.frame_done(lat, trk)
    st.add(skipped=4)
    snap = st.snapshot()
    assert snap.frames_processed == 3 and snap.frames_skipped == 4
    assert snap.latency_ms == pytest.approx(200) and snap.tracker_ms == pytest.approx(150)
    assert snap.overhead_ms == pytest.approx(20)  # median of 20, 50, 10 ms


# --- parameters ---------------------------------------------------------------------------------------------
def defaults() -> dict:
    return {s.name: s.default for s in P.all_param_specs()}


def test_every_tracker_config_field_is_a_parameter_and_defaults_round_trip():
    import dataclasses

    from rts_ros.tracker.config import TrackerConfig

    names = {s.name for s in P.all_param_specs()}
    assert {f"tracker.{f.name}" for f in dataclasses.fields(TrackerConfig)} <= names
    settings = P.validate(defaults())
    assert settings.tracker == TrackerConfig()
    assert (settings.device, settings.autostart, settings.image_reliable, settings.image_depth) == ("auto", True,
                                                                                                    False, 1)


def test_shipped_yaml_is_the_generated_one():
    assert (REPO_ROOT / "config" / "tracker.yaml").read_text() == P.render_yaml(), \
        "config/tracker.yaml is stale: regenerate with python -m rts_ros.ros.params --yaml > config/tracker.yaml"


def test_yaml_values_parse_back_to_the_defaults():
    import yaml

    doc = yaml.safe_load((REPO_ROOT / "config" / "tracker.yaml").read_text())["/**"]["ros__parameters"]

    def flat(d, prefix=""):
        for k, v in d.items():
            yield from flat(v, f"{prefix}{k}.") if isinstance(v, dict) else [(prefix + k, v)]
    values = dict(flat(doc))
    assert set(values) == set(defaults())
    for k, v in values.items():
        d = defaults()[k]
        assert (isinstance(d, float) and math.isnan(d) and math.isnan(v)) or v == d, k


@pytest.mark.parametrize("name,value,phrase", [
    ("device", "gpu", "parameter device = 'gpu': must be auto, cpu, cuda or cuda:N"),
    ("image_qos.reliability", "fast", "must be one of best_effort, reliable"),
    ("frame_buffer", 0, "must be an integer in [1, 1000]"),
    ("tracker.image_sample_size", [100, 100], "image_sample_size"),
    ("tracker.border_mode", "wrap", "border_mode"),
    ("tracker.clf_augmentation_blur", [1.0, 2.0, 3.0], "even number of values"),
])
def test_bad_parameters_are_refused_with_the_name(name, value, phrase):
    values = defaults()
    values[name] = value
    with pytest.raises(ConfigError, match=phrase.replace("[", r"\[").replace("]", r"\]")):
        P.validate(values)


def test_optional_and_paired_tracker_fields_map_to_flat_ros_values():
    values = defaults()
    values["tracker.patch_max_scale_change"] = 1.5
    values["tracker.max_scale_change"] = [math.nan, math.nan]
    values["tracker.clf_augmentation_blur"] = [2.0, 1.0]
    cfg = P.validate(values).tracker
    assert cfg.patch_max_scale_change == 1.5 and cfg.max_scale_change is None
    assert cfg.clf_augmentation_blur == ((2.0, 1.0),)


def test_markdown_table_lists_every_parameter():
    md = P.render_markdown()
    assert all(f"`{s.name}`" in md for s in P.all_param_specs())


# --- overlay ----------------------------------------------------------------------------------------------
def test_overlay_tints_the_mask_and_draws_the_box():
    rgb = np.zeros((60, 80, 3), np.uint8)
    mask = np.zeros((60, 80), np.uint8)
    mask[20:30, 30:40] = 255
    out = render_overlay(rgb, mask, (25, 15, 50, 40), "TRACKING", 0.9)
    assert out.shape == (60, 80, 3)
    assert out[25, 35].any() and not out[45, 70].any()       # tinted inside the mask, untouched far away
    assert out[15, 35].any() and out[39, 35].any()           # box edges drawn (top row 15, bottom row 39)


# --- launch file --------------------------------------------------------------------------------------------
def _run_launch_file(monkeypatch, given: dict) -> dict:
    """`launch`/`launch_ros` are not installable from wheels here: run the launch file against stand-ins that
    record what it declares, with the launch arguments `given` on the command line (the rest at defaults)."""
    path = REPO_ROOT / "launch" / "tracker.launch.py"
    ast.parse(path.read_text())
    rec: dict = {"args": {}, "nodes": []}

    def mod(name, **attrs):
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, m)

    class Declare:
        def __init__(self, name, default_value="", description=""):
            rec["args"][name] = default_value

    class LC:
        def __init__(self, name):
            self.name = name

        def perform(self, context):
            return context.get(self.name, rec["args"][self.name])

    class PV:
        def __init__(self, value, value_type=None):
            self.value, self.value_type = value, value_type

    class Node:
        def __init__(self, **kw):
            rec["nodes"].append(kw)

    class Opaque:
        def __init__(self, function):
            self.function = function

    mod("launch", LaunchDescription=lambda entities: entities)
    mod("launch.actions", DeclareLaunchArgument=Declare, OpaqueFunction=Opaque)
    mod("launch.substitutions", LaunchConfiguration=LC)
    mod("launch_ros")
    mod("launch_ros.actions", LifecycleNode=Node)
    mod("launch_ros.parameter_descriptions", ParameterValue=PV)
    mod("ament_index_python.packages", get_package_share_directory=lambda pkg: f"/opt/share/{pkg}")
    ns: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), ns)
    entities = ns["generate_launch_description"]()
    assert len(entities) == 7
    (opaque,) = [e for e in entities if isinstance(e, Opaque)]
    opaque.function(given)   # what `ros2 launch` does once the arguments are known
    rec["entities"] = entities
    return rec


def test_launch_file_declares_the_documented_arguments(monkeypatch):
    rec = _run_launch_file(monkeypatch, {})
    assert set(rec["args"]) == {"namespace", "params_file", "image_topic", "image_transport", "weights", "device"}
    assert rec["args"]["params_file"] == "/opt/share/rts_ros/config/tracker.yaml"
    (node,) = rec["nodes"]
    assert (node["package"], node["executable"]) == ("rts_ros", "rts_tracker")
    assert node["remappings"][0][0] == "image" and node["remappings"][0][1].name == "image_topic"
    assert node["namespace"].name == "namespace"
    # nothing given: the params file alone decides transport, weights and device
    (params_file,) = node["parameters"]
    assert params_file.name == "params_file"


def test_launch_arguments_override_the_params_file_only_when_given(monkeypatch):
    rec = _run_launch_file(monkeypatch, {"device": "cuda:1", "weights": "/models/rts50"})
    (node,) = rec["nodes"]
    params_file, overrides = node["parameters"]
    assert params_file.name == "params_file"   # later entries win in ROS 2, so the overrides come second
    assert {k: v.value for k, v in overrides.items()} == {"device": "cuda:1", "weights": "/models/rts50"}
    assert all(v.value_type is str for v in overrides.values())
