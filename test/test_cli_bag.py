"""rts-track on recordings: rosbag2 (MCAP and SQLite) bags written with the `rosbags` library hold real video
frames as sensor_msgs/Image and CompressedImage; tracking them must give exactly what tracking the same frames
as a folder gives (PNG is lossless), and bad recordings or topics must fail with one clear line."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("rosbags", reason="rosbags not installed (make setup installs it)")
torch = pytest.importorskip("torch")

from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402

from rts_ros.testing import OPENCV_DOC_DATA, REPO_ROOT  # noqa: E402

VIDEO = OPENCV_DOC_DATA / "vtest.avi"
TINY_KWDS = {"backbone_type": "resnet", "backbone_block": "basic", "backbone_layers": [1, 1, 1, 1],
             "backbone_width": 8, "out_feature_dim": 32, "decoder_mdim": 16}
BOX = "148,52,26,66"     # a pedestrian in vtest.avi's first frame at half size
N = 8
TS = get_typestore(Stores.LATEST)


def run_cli(*args, timeout=900):
    env = dict(os.environ, OMP_NUM_THREADS="2")
    return subprocess.run([sys.executable, "-m", "rts_ros.cli.track", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=REPO_ROOT)


@pytest.fixture(scope="module")
def frames():
    """The first N frames of a real video (Debian's opencv-doc), at half size, as BGR arrays."""
    if not VIDEO.is_file():
        pytest.skip(f"{VIDEO} missing: install Debian's opencv-doc (make test's CI does)")
    cap = cv2.VideoCapture(str(VIDEO))
    out = []
    while len(out) < N:
        ok, f = cap.read()
        assert ok, "vtest.avi is shorter than expected"
        out.append(cv2.resize(f, (f.shape[1] // 2, f.shape[0] // 2), interpolation=cv2.INTER_AREA))
    cap.release()
    return out


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    from rts_ros.model import build_rts
    from rts_ros.weights import save_network

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("w") / "tiny"
    save_network(folder, "rts", build_rts(dict(TINY_KWDS)).state_dict(), TINY_KWDS, fun_module="test",
                 fun_name="tiny")
    return folder


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    cfg = tmp_path_factory.mktemp("cfg") / "cfg.yaml"
    cfg.write_text("image_sample_size: [128, 224]\nbox_init: grabcut\n")
    return cfg


def stamp(i: int) -> int:
    return 1_700_000_000_000_000_000 + i * 40_000_000


def _header(i: int):
    Header, Time = TS.types["std_msgs/msg/Header"], TS.types["builtin_interfaces/msg/Time"]
    return Header(stamp=Time(sec=stamp(i) // 10**9, nanosec=stamp(i) % 10**9), frame_id="camera")


def raw_msg(i: int, bgr: np.ndarray):
    Image = TS.types["sensor_msgs/msg/Image"]
    h, w = bgr.shape[:2]
    return Image(header=_header(i), height=h, width=w, encoding="bgr8", is_bigendian=0, step=w * 3,
                 data=np.ascontiguousarray(bgr).reshape(-1))


def compressed_msg(i: int, bgr: np.ndarray, ext: str):
    CompressedImage = TS.types["sensor_msgs/msg/CompressedImage"]
    ok, data = cv2.imencode(ext, bgr)
    assert ok
    fmt = "bgr8; png compressed bgr8" if ext == ".png" else "bgr8; jpeg compressed bgr8"
    return CompressedImage(header=_header(i), format=fmt, data=data.reshape(-1))


def write_bag(path: Path, topics: dict, plugin=StoragePlugin.MCAP) -> Path:
    """topics: name -> (message type, [messages]); messages are written interleaved, in frame order."""
    with Writer(path, version=9, storage_plugin=plugin) as w:
        conns = {name: w.add_connection(name, msgtype, typestore=TS) for name, (msgtype, _) in topics.items()}
        n = max(len(m) for _, m in topics.values())
        for i in range(n):
            for name, (msgtype, msgs) in topics.items():
                if i < len(msgs):
                    w.write(conns[name], stamp(i) + 5_000_000, TS.serialize_cdr(msgs[i], msgtype))
    return path


@pytest.fixture(scope="module")
def bag(tmp_path_factory, frames):
    String = TS.types["std_msgs/msg/String"]
    return write_bag(tmp_path_factory.mktemp("bags") / "walk", {
        "/cam/image_raw": ("sensor_msgs/msg/Image", [raw_msg(i, f) for i, f in enumerate(frames)]),
        "/cam/image_raw/compressed": ("sensor_msgs/msg/CompressedImage",
                                      [compressed_msg(i, f, ".png") for i, f in enumerate(frames)]),
        "/cam/jpeg": ("sensor_msgs/msg/CompressedImage", [compressed_msg(i, f, ".jpg") for i, f in enumerate(frames)]),
        "/chatter": ("std_msgs/msg/String", [String(data=f"hello {i}") for i in range(3)]),
    })


@pytest.fixture(scope="module")
def folder_result(tmp_path_factory, frames, tiny_weights, config):
    d = tmp_path_factory.mktemp("frames")
    for i, f in enumerate(frames):
        cv2.imwrite(str(d / f"{i:04d}.png"), f)
    out = tmp_path_factory.mktemp("out") / "folder"
    r = run_cli(d, "--init-box", BOX, "--weights", tiny_weights, "--device", "cpu", "--config", config,
                "--output", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    return out


def _same_outputs(a: Path, b: Path) -> None:
    for name in ("boxes.txt", "confidence.txt", "state.txt"):
        assert (a / name).read_text() == (b / name).read_text(), name
    masks = sorted(p.name for p in (a / "masks").iterdir())
    assert masks == sorted(p.name for p in (b / "masks").iterdir()) and len(masks) == N
    for m in masks:
        assert np.array_equal(cv2.imread(str(a / "masks" / m)), cv2.imread(str(b / "masks" / m))), m


@pytest.mark.parametrize("topic,as_file", [("/cam/image_raw", False), ("/cam/image_raw/compressed", True)])
def test_bag_topic_tracks_exactly_like_the_same_frames_in_a_folder(tmp_path, bag, folder_result, tiny_weights,
                                                                   config, topic, as_file):
    source = next(bag.glob("*.mcap")) if as_file else bag    # the rosbag2 folder or its single .mcap file
    out = tmp_path / "bag"
    r = run_cli(source, "--topic", topic, "--init-box", BOX, "--weights", tiny_weights, "--device", "cpu",
                "--config", config, "--output", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert f"reading {topic}" in r.stderr and f"{N} messages" in r.stderr
    assert r.stdout.strip().splitlines()[-1].startswith(f"tracking: {N - 1} frames, ")
    _same_outputs(out, folder_result)
    assert [int(v) for v in (out / "stamps.txt").read_text().split()] == [stamp(i) for i in range(N)]


def test_jpeg_topic_tracks_every_frame(tmp_path, bag, tiny_weights, config):
    out = tmp_path / "jpeg"
    r = run_cli(bag, "--topic", "/cam/jpeg", "--init-box", BOX, "--weights", tiny_weights, "--device", "cpu",
                "--config", config, "--output", out, "--no-progress", "--overlay")
    assert r.returncode == 0, r.stderr
    assert len((out / "boxes.txt").read_text().splitlines()) == N
    mask = cv2.imread(str(out / "masks" / f"{N:08d}.png"), cv2.IMREAD_GRAYSCALE)
    assert mask.shape == (288, 384)
    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == N
    # the recording's 25 Hz becomes the overlay's frame rate
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(25.0, abs=0.5)


def test_sqlite_bag_with_one_image_topic_needs_no_topic(tmp_path, frames, tiny_weights, config):
    gray = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames[:3]]
    Image = TS.types["sensor_msgs/msg/Image"]
    msgs = [Image(header=_header(i), height=g.shape[0], width=g.shape[1], encoding="mono8", is_bigendian=0,
                  step=g.shape[1], data=g.reshape(-1)) for i, g in enumerate(gray)]
    bag = write_bag(tmp_path / "mono", {"/mono": ("sensor_msgs/msg/Image", msgs)}, StoragePlugin.SQLITE3)
    out = tmp_path / "out"
    r = run_cli(bag, "--init-box", BOX, "--weights", tiny_weights, "--device", "cpu", "--config", config,
                "--output", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "reading /mono" in r.stderr
    assert len((out / "boxes.txt").read_text().splitlines()) == 3


@pytest.mark.parametrize("extra,phrases", [
    ((), ("several image topics", "--topic", "/cam/image_raw (Image, 8 messages)", "/cam/jpeg (CompressedImage")),
    (("--topic", "/chatter"), ("no image topic '/chatter'", "/cam/image_raw/compressed")),
])
def test_ambiguous_or_wrong_topic_is_a_clear_error(tmp_path, bag, tiny_weights, extra, phrases):
    r = run_cli(bag, *extra, "--init-box", BOX, "--weights", tiny_weights, "--output", tmp_path / "o")
    assert r.returncode == 1
    assert r.stderr.startswith("error: ") and all(p in r.stderr for p in phrases), r.stderr
    assert "Traceback" not in r.stderr


def test_broken_recordings_are_clear_errors(tmp_path, frames, tiny_weights):
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(bytes(range(256)) * 8)
    r = run_cli(junk, "--init-box", BOX, "--weights", tiny_weights, "--output", tmp_path / "o1")
    assert r.returncode == 1 and "cannot read bag" in r.stderr and "Traceback" not in r.stderr, r.stderr
    # a readable bag whose second message is not a decodable image: the error names the message
    bad = compressed_msg(1, frames[1], ".jpg")
    bad = type(bad)(header=bad.header, format=bad.format, data=bad.data[:40])
    bag = write_bag(tmp_path / "bad", {"/c": ("sensor_msgs/msg/CompressedImage",
                                              [compressed_msg(0, frames[0], ".jpg"), bad])})
    r = run_cli(bag, "--init-box", BOX, "--weights", tiny_weights, "--device", "cpu", "--output", tmp_path / "o2",
                "--no-progress")
    assert r.returncode == 1 and "/c message 1" in r.stderr and "could not decode" in r.stderr, r.stderr
    r = run_cli(VIDEO, "--topic", "/x", "--init-box", BOX, "--weights", tiny_weights, "--output", tmp_path / "o3")
    assert r.returncode == 1 and "--topic applies to recordings" in r.stderr


def test_ros1_bag_is_read_too(tmp_path, frames, tiny_weights, config, folder_result):
    from rosbags.rosbag1 import Writer as Ros1Writer

    ts1 = get_typestore(Stores.ROS1_NOETIC)
    Image, Header, Time = (ts1.types[t] for t in ("sensor_msgs/msg/Image", "std_msgs/msg/Header",
                                                   "builtin_interfaces/msg/Time"))
    path = tmp_path / "old.bag"
    with Ros1Writer(path) as w:
        conn = w.add_connection("/usb_cam/image_raw", Image.__msgtype__, typestore=ts1)
        for i, f in enumerate(frames[:3]):
            h, wd = f.shape[:2]
            msg = Image(header=Header(seq=i, stamp=Time(sec=stamp(i) // 10**9, nanosec=stamp(i) % 10**9),
                                      frame_id="camera"),
                        height=h, width=wd, encoding="bgr8", is_bigendian=0, step=wd * 3, data=f.reshape(-1))
            w.write(conn, stamp(i), ts1.serialize_ros1(msg, Image.__msgtype__))
    out = tmp_path / "out"
    r = run_cli(path, "--init-box", BOX, "--weights", tiny_weights, "--device", "cpu", "--config", config,
                "--output", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert [int(v) for v in (out / "stamps.txt").read_text().split()] == [stamp(i) for i in range(3)]
    # tracking is causal: the first three frames give the folder run's first three boxes
    assert (out / "boxes.txt").read_text().splitlines() == (folder_result / "boxes.txt").read_text().splitlines()[:3]
