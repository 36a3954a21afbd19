"""rts-track: run the tracker on a folder of frames, a video file or a recording and write its outputs.

    rts-track INPUT (--init-box x,y,w,h | --init-mask PNG | both) [--weights DIR] [--device auto|cuda|cpu]
              --output DIR [--overlay] [--config YAML] [--topic /camera/image_raw]

INPUT: a folder of frames, a video file, or a recording (rosbag2 folder, .mcap, .db3 or ROS 1 .bag) whose
sensor_msgs/Image or CompressedImage topic is read (--topic, needed when it holds several).
Writes boxes.txt (x,y,w,h per input frame; first line = the init box or the init mask's tight box),
confidence.txt, quality.txt (nan without a quality model), state.txt, masks/00000001.png ... (0/255, the
first is the init mask), for a recording stamps.txt (each frame's header stamp, ns) and, with --overlay,
overlay.mp4. The last line printed is
`tracking: N frames, X FPS` (N tracked frames after the init frame, X = N / time spent in Tracker.track alone).
"""
from __future__ import annotations

import argparse
import itertools
import logging
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def _cv2():
    import cv2

    return cv2


def list_frames(folder: Path) -> list[Path]:
    from rts_ros.data.image_files import image_files

    try:
        files = image_files(folder, IMAGE_EXTS)
    except OSError as e:
        raise SystemExit(f"error: cannot read the folder {folder}: {e.strerror or e}") from None
    if not files:
        raise SystemExit(f"error: {folder} holds no image files ({', '.join(IMAGE_EXTS)})")
    return files


def iter_frames(source: Path) -> tuple[Iterator[np.ndarray], int | None, float]:
    """(RGB uint8 frames, frame count or None, fps) of a folder of images or a video file."""
    cv2 = _cv2()
    if source.is_dir():
        files = list_frames(source)

        def gen():
            for p in files:
                img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
                if img is None:
                    raise SystemExit(f"error: cannot read image {p}")
                if img.dtype != np.uint8:
                    img = cv2.convertScaleAbs(img, alpha=255.0 / max(float(img.max()), 1.0))
                if img.ndim == 3 and img.shape[2] == 4:
                    img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
                elif img.ndim == 3:
                    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
                yield img

        return gen(), len(files), 30.0
    if not source.is_file():
        raise SystemExit(f"error: input {source} is neither a folder of frames nor a video file")
    cap = cv2.VideoCapture(str(source))
    if not cap.isOpened():
        raise SystemExit(f"error: cannot open video {source} (unsupported format or codec?)")
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    fps = float(cap.get(cv2.CAP_PROP_FPS)) or 30.0

    def vgen():
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()

    return vgen(), count, fps


def _is_bag(path: Path) -> bool:
    from rts_ros.ros.bag import is_bag   # no ROS installation needed: rosbags reads the files

    return is_bag(path)


def _bag_frames(path: Path, topic: str | None) -> tuple[Iterator[tuple[np.ndarray, int]], int, float]:
    """(RGB frame, header stamp ns) of one image topic of a recording, their count and frame rate."""
    from rts_ros.ros.bag import read_frames

    frames, chosen, fps = read_frames(path, topic)
    print(f"reading {chosen.name} ({chosen.msgtype}, {chosen.count} messages) from {path}", file=sys.stderr)
    return ((f.rgb, f.stamp_ns) for f in frames), chosen.count, fps


def parse_box(text: str) -> tuple[float, float, float, float]:
    try:
        vals = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--init-box {text!r}: expected four numbers x,y,w,h") from None
    if len(vals) != 4:
        raise argparse.ArgumentTypeError(f"--init-box {text!r}: expected four numbers x,y,w,h")
    return vals  # type: ignore[return-value]


def fmt(v: float) -> str:
    return np.format_float_positional(float(v), precision=3, trim="-")


class Outputs:
    """Writes the text files, masks and the optional overlay video as frames arrive."""

    def __init__(self, out: Path, overlay: bool, fps: float) -> None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "masks").mkdir(exist_ok=True)
        self.out = out
        self.files = {n: open(out / f"{n}.txt", "w", encoding="utf-8") for n in ("boxes", "confidence", "quality",
                                                                                  "state")}
        self.overlay = overlay
        self.fps = fps
        self.writer = None
        self.n = 0

    def add(self, rgb: np.ndarray, result, stamp_ns: int | None = None) -> None:
        cv2 = _cv2()
        self.n += 1
        if stamp_ns is not None:
            if "stamps" not in self.files:
                self.files["stamps"] = open(self.out / "stamps.txt", "w", encoding="utf-8")
            self.files["stamps"].write(f"{stamp_ns}\n")
        self.files["boxes"].write(",".join(fmt(v) for v in result.box) + "\n")
        self.files["confidence"].write(f"{result.confidence:.6f}\n")
        self.files["quality"].write(f"{result.quality:.6f}\n")
        self.files["state"].write(result.state.name + "\n")
        cv2.imwrite(str(self.out / "masks" / f"{self.n:08d}.png"), result.mask)
        if self.overlay:
            self._draw(rgb, result)

    def _draw(self, rgb: np.ndarray, result) -> None:
        cv2 = _cv2()
        img = cv2.cvtColor(rgb[..., :3] if rgb.ndim == 3 else cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB),
                           cv2.COLOR_RGB2BGR)
        m = result.mask > 0
        img[m] = (0.5 * img[m] + 0.5 * np.array([0, 0, 255])).astype(np.uint8)
        x, y, w, h = result.box
        color = {1: (0, 200, 0), 2: (0, 200, 255), 3: (0, 0, 255)}.get(int(result.state), (200, 200, 200))
        cv2.rectangle(img, (int(round(x)), int(round(y))), (int(round(x + w - 1)), int(round(y + h - 1))), color, 2)
        cv2.putText(img, f"{result.state.name} {result.confidence:.2f}", (5, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    color, 2)
        if self.writer is None:
            path = self.out / "overlay.mp4"
            self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                          (img.shape[1], img.shape[0]))
            if not self.writer.isOpened():
                raise SystemExit(f"error: cannot write {path} (no mp4v encoder in this OpenCV build?)")
        self.writer.write(img)

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        if self.writer is not None:
            self.writer.release()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rts-track", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", type=Path, help="folder of frames (sorted by name), a video file, or a recording "
                                            "(rosbag2 folder, .mcap, .db3, ROS 1 .bag)")
    p.add_argument("--topic", default=None, help="image topic of a recording (Image or CompressedImage); "
                                                 "optional when the recording has one image topic")
    p.add_argument("--init-box", type=parse_box, metavar="x,y,w,h", help="target box in the first frame")
    p.add_argument("--init-mask", type=Path, metavar="PNG", help="target mask of the first frame (non-zero = target)")
    p.add_argument("--weights", type=Path, default=None, help="weights folder (default: the shipped model)")
    p.add_argument("--device", default="auto", help="auto (default), cuda, cuda:N or cpu")
    p.add_argument("--config", type=Path, default=None, help="YAML file of TrackerConfig fields")
    p.add_argument("--output", type=Path, required=True, help="output folder (created)")
    p.add_argument("--overlay", action="store_true", help="also write overlay.mp4")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.init_box is None and args.init_mask is None:
        build_parser().error("give --init-box x,y,w,h, --init-mask PNG, or both")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")

    from rts_ros.errors import RTSError

    try:
        return _run(args)
    except RTSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _yaml_keys(path: Path) -> set[str]:
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    if isinstance(data, dict) and set(data) == {"tracker"}:
        data = data["tracker"]
    return set(data) if isinstance(data, dict) else set()


def _check_start(first: np.ndarray, box, mask) -> None:
    """The checks Tracker.initialize makes on the box and mask, run before the model is loaded (its warnings,
    such as a clipped box, still come from initialize itself)."""
    from rts_ros.tracker.inputs import check_box, check_mask

    log = logging.getLogger("rts_ros.tracker")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        hw = first.shape[:2]
        if mask is not None:
            check_mask(mask, hw)
        if box is not None:
            check_box(box, hw)
    finally:
        log.setLevel(level)


def _run(args) -> int:
    from tqdm import tqdm

    from rts_ros.api import Tracker, TrackerConfig
    from rts_ros.cli import check_output_dir

    cv2 = _cv2()
    # The YAML's fields override the model's recommended settings (rts.json `tracker`), field by field.
    overrides = TrackerConfig.from_yaml(args.config).to_dict() if args.config else None
    if overrides is not None:
        overrides = {k: v for k, v in overrides.items() if k in _yaml_keys(args.config)}
    if _is_bag(args.input):
        frames, count, fps = _bag_frames(args.input, args.topic)
    elif args.topic is not None:
        raise SystemExit(f"error: --topic applies to recordings (rosbag2 folder, .mcap, .db3, .bag); {args.input} "
                         "is not one")
    else:
        images, count, fps = iter_frames(args.input)
        frames = ((rgb, None) for rgb in images)   # no stamps outside recordings
    mask = None
    if args.init_mask is not None:
        mask = cv2.imread(str(args.init_mask), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise SystemExit(f"error: cannot read the init mask {args.init_mask}")
    # a bad box, mask or output folder stops the run before the model loads and before any output is written
    first = next(frames, None)
    if first is None:
        raise SystemExit(f"error: {args.input} has no frames")
    _check_start(first[0], args.init_box, mask)
    check_output_dir(args.output, "--output")
    frames = itertools.chain([first], frames)
    tracker = Tracker.from_weights(args.weights, device=args.device, overrides=overrides)
    out = Outputs(args.output, args.overlay, fps)
    track_s, n_tracked = 0.0, 0
    bar = tqdm(total=count, unit="frame", disable=args.no_progress, file=sys.stderr)
    try:
        for i, (rgb, stamp) in enumerate(frames):
            if i == 0:
                result = tracker.initialize(rgb, box=args.init_box, mask=mask)
            else:
                t0 = time.perf_counter()
                result = tracker.track(rgb)
                track_s += time.perf_counter() - t0
                n_tracked += 1
            out.add(rgb, result, stamp)
            bar.update(1)
    finally:
        bar.close()
        out.close()
    fps_txt = f"{n_tracked / track_s:.2f}" if track_s > 0 else "n/a"
    print(f"tracking: {n_tracked} frames, {fps_txt} FPS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
