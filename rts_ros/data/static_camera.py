"""Training sequences from a static-camera video: moving objects found by background subtraction.

Real video with exact masks is what the small default model lacks most (its features come from synthetic
clips). A fixed camera gives masks of everything that moves for free: OpenCV's MOG2 learns the background over
the whole video, then a second pass marks each frame's foreground, with cast shadows labelled apart (they
stay background here, as in VOS annotations). Connected blobs are linked from frame to frame by box overlap;
a track ends where the link is ambiguous (blobs merge or split) or the blob's area jumps, so that one track
follows one object. The other moving objects of the frame stay in it as look-alike distractors.

The masks are pseudo-labels: parts that match the background (dark clothes on dark asphalt) drop out, and a
person standing still fades into the background model. Use them next to exact labels, not instead. A camera
that pans or drifts turns the whole background into foreground: such a video is reported, or refused
(CameraMovesError) above `max_camera_shift`. `preview_sheet` draws one tile per sequence for checking the labels
by eye.
"""
from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from rts_ros.data.eval_folders import box_of_mask
from rts_ros.errors import InvalidInputError


@dataclass(frozen=True)
class StaticCameraParams:
    history: int = 300            # MOG2 background history (frames)
    var_threshold: float = 16.0   # MOG2 squared Mahalanobis distance for foreground
    min_area: int = 150           # smallest blob kept (pixels)
    min_side: int = 10            # smallest blob box side (pixels)
    min_length: int = 12          # shortest track kept (frames)
    link_iou: float = 0.3         # box IoU that links a blob to a track in the next frame
    merge_overlap: float = 0.5    # share of the smaller box inside the other that counts as contact: a blob
                                  # in contact with two tracks (or a track with two blobs) is a merge (split)
    max_area_change: float = 1.6  # area ratio between consecutive frames that ends a track
    min_travel: float = 0.5       # shortest path of the box centre over the track, in mean box sides: drops
                                  # flicker that never moves (reflections, swaying leaves)
    max_frames: int | None = None  # use only the first frames of the video (None: all)
    max_camera_shift: float | None = None  # refuse a video whose background moves more (pixels between quarters
                                           # of the video); None: only warn above CAMERA_SHIFT_WARNING


class CameraMovesError(InvalidInputError):
    """The video's background moves: background subtraction would label everything as foreground."""


_DRIFT_WIDTH = 320       # frames are compared at this width
_DRIFT_SAMPLES = 256     # at most this many frames kept for the comparison (every k-th, k doubling)
_MIN_INLIERS = 20        # feature matches that must agree before their transform is believed
_LOW_TEXTURE_MARGIN = 3  # limits are this many times wider when only phase correlation could measure
CAMERA_SHIFT_WARNING = 4.0  # pixels. Fixed cameras measured 0.1-2.5 px on public clips, except where movers
                            # stay in the medians (a dense crowd: 9; bottles moved by hand: 28); a moving
                            # camera (opencv-doc's Megamind.avi) 218


@dataclass
class Track:
    """One object: its frames (consecutive indices from `start`) and for each a mask cut to its box."""
    start: int
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)   # x0, y0, x1, y1 (exclusive)
    crops: list[np.ndarray] = field(default_factory=list)                  # bool (y1-y0, x1-x0)

    @property
    def length(self) -> int:
        return len(self.boxes)

    @property
    def frames(self) -> range:
        return range(self.start, self.start + self.length)

    def mask(self, frame: int, hw: tuple[int, int]) -> np.ndarray:
        """The full-frame bool mask of this track at video frame `frame`."""
        x0, y0, x1, y1 = self.boxes[frame - self.start]
        m = np.zeros(hw, bool)
        m[y0:y1, x0:x1] = self.crops[frame - self.start]
        return m


def _read_frames(path: Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise InvalidInputError(f"cannot open video {path}: check that the file exists and OpenCV can decode it")
    try:
        # bounded: a broken stream that never ends still stops
        for _ in range(10_000_000 if max_frames is None else max_frames):
            ok, frame = cap.read()
            if not ok:
                return
            yield frame
    finally:
        cap.release()


class _DriftSampler:
    """Small grey copies of every k-th frame, k doubling whenever the store is full (bounded memory)."""

    def __init__(self):
        self.frames: list[np.ndarray] = []
        self.step, self.seen, self.scale = 1, 0, 1.0

    def add(self, frame: np.ndarray) -> None:
        if self.seen % self.step == 0:
            h, w = frame.shape[:2]
            self.scale = w / _DRIFT_WIDTH
            small = cv2.resize(frame, (_DRIFT_WIDTH, max(8, round(h / self.scale))), interpolation=cv2.INTER_AREA)
            self.frames.append(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
            if len(self.frames) >= _DRIFT_SAMPLES:
                self.frames, self.step = self.frames[::2], self.step * 2
        self.seen += 1


def _feature_shift(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """Largest corner displacement of the similarity transform that maps a's ORB features onto b's (RANSAC),
    and its number of inliers (0: not measurable). Moving objects are outliers; the background decides."""
    orb = cv2.ORB_create(1000)
    ka, da = orb.detectAndCompute(a, None)
    kb, db = orb.detectAndCompute(b, None)
    if da is None or db is None or len(ka) < _MIN_INLIERS or len(kb) < _MIN_INLIERS:
        return 0.0, 0
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(da, db)
    if len(matches) < _MIN_INLIERS:
        return 0.0, 0
    pa = np.float32([ka[m.queryIdx].pt for m in matches])
    pb = np.float32([kb[m.trainIdx].pt for m in matches])
    t, inliers = cv2.estimateAffinePartial2D(pa, pb, method=cv2.RANSAC, ransacReprojThreshold=2.0)
    if t is None:
        return 0.0, 0
    h, w = a.shape
    corners = np.float32([[0, 0], [w, 0], [0, h], [w, h]])
    return float(np.max(np.linalg.norm(corners @ t[:, :2].T + t[:, 2] - corners, axis=1))), int(inliers.sum())


def background_shift(frames: list[np.ndarray], scale: float = 1.0) -> tuple[float, bool]:
    """How far the background moves between the median images of the video's four quarters (neighbouring
    quarters and first against last), in pixels times `scale`, and whether features measured it. Medians keep
    most moving objects out. With too little texture for features (bare asphalt), phase correlation of the
    medians stands in; large movers pull on it, so the caller allows it a wider margin."""
    if len(frames) < 8:
        return 0.0, True
    groups = np.array_split(np.arange(len(frames)), 4)
    quarters = [np.median(np.stack([frames[i] for i in g]), axis=0).astype(np.uint8) for g in groups]
    pairs = ((0, 1), (1, 2), (2, 3), (0, 3))
    measured = [shift for shift, n in (_feature_shift(quarters[a], quarters[b]) for a, b in pairs)
                if n >= _MIN_INLIERS]
    if measured:
        return max(measured) * scale, True
    q = [x.astype(np.float32) for x in quarters]
    window = cv2.createHanningWindow(q[0].shape[::-1], cv2.CV_32F)
    return max(float(np.hypot(*cv2.phaseCorrelate(q[a], q[b], window)[0])) for a, b in pairs) * scale, False


def _check_camera(path: Path, shift: float, by_features: bool, p: StaticCameraParams,
                  warn: Callable[[str], None] | None) -> None:
    margin = 1 if by_features else _LOW_TEXTURE_MARGIN
    how = "" if by_features else (f" (measured by phase correlation, as the scene has too little texture for "
                                  f"features; large movers disturb it, so the limit is {margin}x wider)")
    if p.max_camera_shift is not None and shift > p.max_camera_shift * margin:
        raise CameraMovesError(
            f"{path}: the background moves by {shift:.1f} px between parts of the video, over the limit of "
            f"{p.max_camera_shift * margin:g} px{how}. Background subtraction needs a camera that does not move: "
            "leave this video out, or raise --max-camera-shift if the camera only shakes")
    if warn is not None and shift > CAMERA_SHIFT_WARNING * margin:
        warn(f"{path}: the background seems to move by {shift:.1f} px between parts of the video{how}. If the "
             "camera moves, the labels are wrong: check the preview sheet, and leave the video out "
             "(--max-camera-shift refuses such videos)")


def foreground_masks(path: Path, p: StaticCameraParams, progress: Callable[[int], None] | None = None,
                     warn: Callable[[str], None] | None = None) -> Iterator[np.ndarray]:
    """bool foreground (shadows excluded) of every frame, from a background model learned on the whole video.
    A background that moves is reported through `warn`, or raises CameraMovesError above p.max_camera_shift."""
    bg = cv2.createBackgroundSubtractorMOG2(history=p.history, varThreshold=p.var_threshold, detectShadows=True)
    # pass 1, twice: learn the background from all frames at one fixed rate. MOG2's own schedule learns the
    # first frames fastest, so whatever stands there early would stay half-learnt as background.
    rate = -1.0
    drift = _DriftSampler()
    for _ in range(2):
        n = 0
        for frame in _read_frames(path, p.max_frames):
            bg.apply(frame, learningRate=rate)
            if rate < 0:
                drift.add(frame)
            n += 1
            if progress:
                progress(1)
        if n == 0:
            raise InvalidInputError(f"video {path} has no frames")
        if rate < 0:
            _check_camera(path, *background_shift(drift.frames, drift.scale), p, warn)
        rate = 1.0 / min(n, p.history)
    open_k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    close_k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    for frame in _read_frames(path, p.max_frames):   # pass 2: the fixed model labels each frame
        fg = (bg.apply(frame, learningRate=0) == 255).astype(np.uint8)   # 127 = shadow, left as background
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, open_k)
        fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, close_k)
        if progress:
            progress(1)
        yield fg.astype(bool)


def _blobs(fg: np.ndarray, p: StaticCameraParams) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    out = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area < p.min_area or min(w, h) < p.min_side:
            continue
        out.append(((x, y, x + w, y + h), labels[y:y + h, x:x + w] == i))
    return out


def _box_inter(a, b) -> int:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    return iw * ih if iw > 0 and ih > 0 else 0


def _area(a) -> int:
    return (a[2] - a[0]) * (a[3] - a[1])


def _box_iou(a, b) -> float:
    inter = _box_inter(a, b)
    return inter / (_area(a) + _area(b) - inter)


def _box_overlap(a, b) -> float:
    """Share of the smaller box that lies inside the other."""
    return _box_inter(a, b) / min(_area(a), _area(b))


def link_tracks(masks: Iterator[np.ndarray], p: StaticCameraParams) -> list[Track]:
    """Blobs linked across frames into tracks of at least p.min_length frames, in order of start frame."""
    done: list[Track] = []
    active: list[Track] = []
    for t, fg in enumerate(masks):
        blobs = _blobs(fg, p)
        # a link needs box IoU >= link_iou; a track or blob in contact with two partners is a merge or a split
        # and ends the tracks involved, even where a small object is swallowed by a large one (IoU alone
        # would let the large track absorb it)
        pairs = [(i, j) for i, tr in enumerate(active) for j, (box, _) in enumerate(blobs)
                 if _box_overlap(tr.boxes[-1], box) >= p.merge_overlap or _box_iou(tr.boxes[-1], box) >= p.link_iou]
        per_track = {i: [j for i2, j in pairs if i2 == i] for i in range(len(active))}
        per_blob = {j: [i for i, j2 in pairs if j2 == j] for j in range(len(blobs))}
        used, keep = set(), []
        for i, tr in enumerate(active):
            cand = per_track[i]
            j = cand[0] if len(cand) == 1 and len(per_blob[cand[0]]) == 1 else None
            if j is not None and _continues(tr, blobs[j], p):
                tr.boxes.append(blobs[j][0])
                tr.crops.append(blobs[j][1])
                used.add(j)
                keep.append(tr)
            else:
                done.append(tr)
        # a blob that continued no track starts one, unless it touches two tracks (a merge)
        for j, (box, crop) in enumerate(blobs):
            if j not in used and len(per_blob[j]) <= 1:
                keep.append(Track(t, [box], [crop]))
        active = keep
    done += active
    kept = [tr for tr in done if tr.length >= p.min_length and _travel(tr) >= p.min_travel]
    return sorted(kept, key=lambda tr: (tr.start, tr.boxes[0]))


def _continues(tr: Track, blob: tuple[tuple[int, int, int, int], np.ndarray], p: StaticCameraParams) -> bool:
    """The track's sole partner blob continues it: enough box overlap and no jump in area."""
    box, crop = blob
    if _box_iou(tr.boxes[-1], box) < p.link_iou:
        return False
    area0, area1 = float(tr.crops[-1].sum()), float(crop.sum())
    return max(area0, area1) <= p.max_area_change * min(area0, area1)


def _travel(tr: Track) -> float:
    """Path length of the box centre, in units of the mean box side."""
    b = np.asarray(tr.boxes, np.float64)
    centres = (b[:, :2] + b[:, 2:]) / 2
    side = float(np.mean(np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))))
    return float(np.sum(np.linalg.norm(np.diff(centres, axis=0), axis=1))) / side


def write_davis_folder(video: Path, tracks: list[Track], out_dir: Path, name: str,
                       progress: Callable[[int], None] | None = None) -> list[str]:
    """One DAVIS-2017-style sequence per track (JPEGImages/480p, Annotations/480p, ImageSets/2017/train.txt);
    returns the sequence names. Each frame is written once and hard-linked into the tracks that use it."""
    out_dir = Path(out_dir)
    # a second run for the same video replaces the first (its tracks may differ in number and length); the
    # exact name pattern leaves other videos' sequences alone (those of 'cam_2' when this is 'cam')
    ours = re.compile(rf"{re.escape(name)}_\d{{4}}").fullmatch
    for parent in (out_dir / "JPEGImages" / "480p", out_dir / "Annotations" / "480p"):
        for old_seq in (parent.iterdir() if parent.is_dir() else ()):
            if ours(old_seq.name):
                shutil.rmtree(old_seq)
    frames_dir = out_dir / "frames" / name
    if frames_dir.is_dir():
        shutil.rmtree(frames_dir)
    frames_dir.mkdir(parents=True)
    seq_names = [f"{name}_{k:04d}" for k in range(len(tracks))]
    by_frame: dict[int, list[int]] = {}
    for k, tr in enumerate(tracks):
        for f in tr.frames:
            by_frame.setdefault(f, []).append(k)
        (out_dir / "JPEGImages" / "480p" / seq_names[k]).mkdir(parents=True, exist_ok=True)
        (out_dir / "Annotations" / "480p" / seq_names[k]).mkdir(parents=True, exist_ok=True)
    last = max(by_frame, default=-1)
    for t, frame in enumerate(_read_frames(video, last + 1)):
        if progress:
            progress(1)
        if t not in by_frame:
            continue
        src = frames_dir / f"{t:05d}.jpg"
        if not cv2.imwrite(str(src), frame, [cv2.IMWRITE_JPEG_QUALITY, 92]):
            raise InvalidInputError(f"cannot write {src}")
        for k in by_frame[t]:
            stem = f"{t - tracks[k].start:05d}"
            dst = out_dir / "JPEGImages" / "480p" / seq_names[k] / f"{stem}.jpg"
            try:
                os.link(src, dst)
            except OSError:       # file systems without hard links
                dst.write_bytes(src.read_bytes())
            anno = out_dir / "Annotations" / "480p" / seq_names[k] / f"{stem}.png"
            # grey PNG holding object id 1
            if not cv2.imwrite(str(anno), tracks[k].mask(t, frame.shape[:2]).astype(np.uint8)):
                raise InvalidInputError(f"cannot write {anno}")
    split = out_dir / "ImageSets" / "2017" / "train.txt"
    split.parent.mkdir(parents=True, exist_ok=True)
    old = [s for s in (split.read_text().split() if split.is_file() else []) if not ours(s)]
    split.write_text("\n".join(old + seq_names) + "\n")
    return seq_names


def preview_sheet(out_dir: Path, names: list[str], columns: int = 6, tile_width: int = 240,
                  max_tiles: int = 48) -> np.ndarray | None:
    """BGR contact sheet of written sequences: each tile is a sequence's middle frame with its mask tinted red,
    the mask's box in green and the name and length in yellow (evenly spaced sequences when there are more
    than max_tiles). None when there is nothing to draw."""
    out_dir = Path(out_dir)
    picks = [names[i] for i in np.unique(np.linspace(0, len(names) - 1, min(len(names), max_tiles)).astype(int))] \
        if names else []
    tiles = []
    for name in picks:
        frames = sorted((out_dir / "JPEGImages" / "480p" / name).glob("*.jpg"))
        if not frames:
            continue
        mid = frames[len(frames) // 2]
        img = cv2.imread(str(mid))
        mask = cv2.imread(str(out_dir / "Annotations" / "480p" / name / f"{mid.stem}.png"), cv2.IMREAD_GRAYSCALE)
        if img is None or mask is None:
            continue
        m = mask > 0
        img[m] = (0.45 * img[m] + (0, 0, 140)).astype(np.uint8)
        if m.any():
            x, y, w, h = (int(v) for v in box_of_mask(m))
            cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), (0, 255, 0), 2)
        h = max(1, round(img.shape[0] * tile_width / img.shape[1]))
        tile = cv2.resize(img, (tile_width, h), interpolation=cv2.INTER_AREA)
        cv2.putText(tile, f"{name} ({len(frames)})", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 255), 1)
        tiles.append(tile)
    if not tiles:
        return None
    h = max(t.shape[0] for t in tiles)
    tiles = [cv2.copyMakeBorder(t, 0, h - t.shape[0], 0, 0, cv2.BORDER_CONSTANT) for t in tiles]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % columns)
    return np.vstack([np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)])
