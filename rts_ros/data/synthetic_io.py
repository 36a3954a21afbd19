"""Writing synthetic sequences to disk: OTB/LaSOT + DAVIS-style folders, and an mp4 demo video."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from rts_ros.data.synthetic import Sequence, SynthConfig, generate_sequence
from rts_ros.errors import InvalidInputError


def write_sequence_folder(seq: Sequence, folder: Path, image_format: str = "jpg") -> Path:
    """Write ``img/00000001.<fmt>``, ``masks/00000001.png``, ``groundtruth.txt`` and ``visible.txt``.

    Frames where the target is not visible get the row ``0,0,0,0`` (the LaSOT convention for absence),
    which ``rts-eval`` reads as "target absent".
    """
    if image_format not in ("jpg", "png"):
        raise InvalidInputError(f"image format must be 'jpg' or 'png', got {image_format!r}")
    folder = Path(folder)
    try:
        (folder / "img").mkdir(parents=True, exist_ok=True)
        (folder / "masks").mkdir(parents=True, exist_ok=True)
    except OSError as e:   # a file in the folder's place, no write permission
        raise InvalidInputError(f"cannot create {e.filename or folder}: {e.strerror or e}; choose a writable "
                                "folder") from None
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if image_format == "jpg" else []
    for i, (frame, mask) in enumerate(zip(seq.frames, seq.masks), start=1):
        name = f"{i:08d}"
        if not cv2.imwrite(str(folder / "img" / f"{name}.{image_format}"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                           params):
            raise InvalidInputError(f"could not write into {folder}: check that it is writable")
        cv2.imwrite(str(folder / "masks" / f"{name}.png"), mask)
    rows = [",".join(f"{v:g}" for v in box) if vis else "0,0,0,0" for box, vis in zip(seq.boxes, seq.visible)]
    (folder / "groundtruth.txt").write_text("\n".join(rows) + "\n")
    (folder / "visible.txt").write_text("\n".join("1" if v else "0" for v in seq.visible) + "\n")
    return folder


def write_video(path: Path, frames: list[np.ndarray], fps: float = 20.0) -> Path:
    """Write RGB frames as an mp4 (mp4v codec, readable by OpenCV and common players)."""
    if not frames:
        raise InvalidInputError("no frames to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
    if not writer.isOpened():
        raise InvalidInputError(f"OpenCV cannot open a video writer for {path} (needs an ffmpeg-enabled build)")
    try:
        for f in frames:
            writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path


def write_demo_video(path: Path, seed: int = 4242, height: int = 240, width: int = 320, num_frames: int = 150,
                     difficulty: float = 0.4, fps: float = 20.0, config: SynthConfig | None = None) -> Sequence:
    """Generate a sequence, write it as ``path`` (mp4) and return it (its boxes/masks are the ground truth).

    The default has no exit from the frame so that a demo shows continuous tracking.
    """
    cfg = config or SynthConfig.from_difficulty(difficulty, exit_prob=0.0)
    seq = generate_sequence(seed, height, width, num_frames, config=cfg)
    write_video(path, seq.frames, fps)
    return seq
