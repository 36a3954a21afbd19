"""Camera frames from a recording, without a ROS installation: rosbag2 folders, single .mcap/.db3 files and
ROS 1 .bag files, read with the `rosbags` library.

One topic of sensor_msgs/Image or sensor_msgs/CompressedImage is read in recording order and converted exactly
as the node converts live messages (rts_ros.ros.image_conversion), so `rts-track` on a bag sees what the node
would have seen on the same stream.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from rts_ros.errors import InvalidInputError
from rts_ros.ros.image_conversion import message_to_rgb
from rts_ros.ros.processor import stamp_ns

BAG_SUFFIXES = (".mcap", ".db3", ".bag")
# message type names as rosbag2 (ROS 2) and rosbag1 (ROS 1) store them
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage", "sensor_msgs/Image",
               "sensor_msgs/CompressedImage")


@dataclass(frozen=True)
class BagFrame:
    rgb: np.ndarray      # HxWx3 uint8
    stamp_ns: int        # the message's header stamp


@dataclass(frozen=True)
class BagTopic:
    name: str
    msgtype: str
    count: int


def is_bag(path: Path) -> bool:
    """A rosbag2 folder (with metadata.yaml) or a file with a bag suffix."""
    path = Path(path)
    # os.path: a folder that cannot be read is "not a bag" here (False, not PermissionError); reading it as a
    # folder of frames then says that it cannot be read
    return (path.is_dir() and os.path.isfile(path / "metadata.yaml")) or (
        path.is_file() and path.suffix.lower() in BAG_SUFFIXES)


def _reader(path: Path):
    try:
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore
    except ImportError as e:
        raise InvalidInputError(f"reading {path} needs the `rosbags` package ({e}); pip install rosbags") from e
    # the store is only the fallback for bags that do not carry their message definitions (old rosbag2)
    return AnyReader([Path(path)], default_typestore=get_typestore(Stores.LATEST))


def _image_topics(reader) -> list[BagTopic]:
    counts: dict[tuple[str, str], int] = {}
    for c in reader.connections:
        if c.msgtype in IMAGE_TYPES:
            counts[(c.topic, c.msgtype)] = counts.get((c.topic, c.msgtype), 0) + int(c.msgcount)
    return [BagTopic(t, m, n) for (t, m), n in sorted(counts.items())]


class _OpenBag:
    """AnyReader as a context manager whose errors say which file could not be read."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.reader = None

    def __enter__(self):
        if not self.path.exists():
            raise InvalidInputError(f"bag {self.path} does not exist")
        reader = _reader(self.path)
        try:
            reader.open()
        except Exception as e:  # rosbags raises its own error types for every kind of broken file
            raise InvalidInputError(f"cannot read bag {self.path}: {e} (a rosbag2 folder, .mcap, .db3 or ROS 1 "
                                    ".bag file is expected)") from e
        self.reader = reader
        return reader

    def __exit__(self, *exc) -> None:
        if self.reader is not None:
            self.reader.close()


def choose_topic(topics: list[BagTopic], wanted: str | None, path: Path) -> BagTopic:
    """The topic to track on: `wanted`, or the bag's only image topic."""
    listing = ", ".join(f"{t.name} ({t.msgtype.rsplit('/', 1)[-1]}, {t.count} messages)" for t in topics) or "none"
    if wanted is not None:
        for t in topics:
            if t.name == wanted:
                return t
        raise InvalidInputError(f"bag {path} has no image topic {wanted!r}; its image topics: {listing}")
    if len(topics) == 1:
        return topics[0]
    if not topics:
        raise InvalidInputError(f"bag {path} holds no sensor_msgs/Image or CompressedImage topic")
    raise InvalidInputError(f"bag {path} has several image topics; choose one with --topic: {listing}")


def read_frames(path: Path, topic: str | None = None) -> tuple[Iterator[BagFrame], BagTopic, float]:
    """(frames in recording order, the topic read, frame rate: the topic's messages over the recording's length).

    A message that cannot be converted raises InvalidInputError naming its index and stamp.
    """
    path = Path(path)
    with _OpenBag(path) as reader:
        chosen = choose_topic(_image_topics(reader), topic, path)
        duration_s = reader.duration * 1e-9   # of the whole recording: a camera topic spans about all of it
    fps = float(np.clip((chosen.count - 1) / duration_s, 1.0, 120.0)) if chosen.count > 1 and duration_s > 0 else 30.0

    def gen() -> Iterator[BagFrame]:
        with _OpenBag(path) as reader:
            conns = [c for c in reader.connections if c.topic == chosen.name]
            for i, (conn, _, raw) in enumerate(reader.messages(connections=conns)):
                msg = reader.deserialize(raw, conn.msgtype)
                stamp = stamp_ns(msg.header)
                try:
                    rgb = message_to_rgb(msg, f"{chosen.name} message {i} (stamp {stamp} ns)")
                except InvalidInputError as e:
                    raise InvalidInputError(f"bag {path}: {e}") from None
                yield BagFrame(rgb, stamp)

    return gen(), chosen, fps
