"""Reading annotated evaluation sequences: OTB/LaSOT-style and DAVIS-style folders.

Accepted layouts (found recursively under each path given to ``find_sequences``):

* OTB / LaSOT / rts-synth: ``<seq>/groundtruth.txt`` or ``groundtruth_rect.txt`` (one ``x,y,w,h`` row per
  frame, or a VOT polygon ``x1,y1,...,x4,y4`` read as its bounding box; comma, tab, semicolon or space
  separated; an empty row, NaN or a zero/negative size = target absent) and the
  frames in ``<seq>/img/`` or ``<seq>/`` itself.  Optional ``<seq>/masks/*.png`` (0 / non-zero) add masks.
* DAVIS: ``<root>/JPEGImages[/480p]/<seq>/*.jpg`` + ``<root>/Annotations[/480p]/<seq>/*.png`` (palette
  PNGs with object ids, one evaluation sequence per object id; or DAVIS 2016's binary 0/255 masks), or
  ``<seq>/{images,masks}`` pairs.
  Frames without an annotation PNG are "not annotated" (sparse annotations are allowed).
"""
from __future__ import annotations

import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rts_ros.data.datasets import object_ids, read_index_png, read_rgb
from rts_ros.data.image_files import image_files
from rts_ros.errors import InvalidInputError

GT_NAMES = ("groundtruth.txt", "groundtruth_rect.txt")
MASK_DIRS = ("masks", "Annotations", "annotations")
FRAME_DIRS = ("img", "images", "JPEGImages", "color")
_MAX_DEPTH = 5


@dataclass
class EvalSequence:
    """One target in one video.  ``boxes`` rows are NaN where the target is absent or not annotated."""

    name: str
    frames: list[Path]
    boxes: np.ndarray                       # (N, 4) x, y, w, h float64
    masks: list[Path | None] | None = None  # per frame annotation PNG (None = not annotated)
    object_id: int | None = None            # palette id in the PNGs; None = any non-zero pixel

    def __len__(self) -> int:
        return len(self.frames)

    def image(self, i: int) -> np.ndarray:
        return read_rgb(self.frames[i])

    def mask(self, i: int) -> np.ndarray | None:
        """Bool mask of frame i, or None when that frame has no mask annotation."""
        if self.masks is None or self.masks[i] is None:
            return None
        ids = read_index_png(self.masks[i])
        return ids == self.object_id if self.object_id is not None else ids > 0


def qualify_duplicate_names(found: list[tuple[Path, EvalSequence]]) -> list[EvalSequence]:
    """The sequences of several data roots, each (root, sequence). A name that occurs more than once becomes
    ``<root folder>_<name>`` (and gets ``_2``, ``_3``... if that still repeats), so results, per-sequence rows
    and prediction files of different sequences never share a name."""
    counts = Counter(seq.name for _, seq in found)
    out, used = [], set()
    for root, seq in found:
        name = seq.name if counts[seq.name] == 1 else f"{Path(root).name}_{seq.name}"
        base, k = name, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        out.append(seq if name == seq.name else replace(seq, name=name))
    return out


def parse_groundtruth(text: str, source: str = "groundtruth") -> np.ndarray:
    """(N, 4) boxes, one per line: ``x,y,w,h``, or a VOT polygon ``x1,y1,...,x4,y4`` (its axis-aligned bounding
    box). Absent targets (an empty line, NaN, an empty size) become NaN rows; blank lines at the end are ignored."""
    rows = []
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    for lineno, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:       # an empty row is a frame without the target: dropping it would shift later boxes
            rows.append([np.nan] * 4)
            continue
        vals = [v for v in re.split(r"[,\t; ]+", line) if v]
        if len(vals) not in (4, 8):
            raise InvalidInputError(f"{source}: line {lineno} {line!r} holds {len(vals)} values; expected 4 (x,y,w,h) "
                                    "or 8 (a polygon x1,y1,...,x4,y4)")
        try:
            box = [float(v) for v in vals]
        except ValueError:
            raise InvalidInputError(f"{source}: line {lineno} {line!r} is not numeric (expected x,y,w,h)") from None
        if len(box) == 8:
            xs, ys = box[0::2], box[1::2]
            box = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        if not np.all(np.isfinite(box)) or box[2] <= 0 or box[3] <= 0:
            box = [np.nan] * 4
        rows.append(box)
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def box_of_mask(mask: np.ndarray) -> np.ndarray:
    """Tight x, y, w, h of a bool mask (NaN when empty)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return np.full(4, np.nan)
    return np.array([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], np.float64)


def _frame_dir(seq_dir: Path) -> Path:
    for name in FRAME_DIRS:
        if (seq_dir / name).is_dir() and image_files(seq_dir / name):
            return seq_dir / name
    return seq_dir


def _match_masks(frames: list[Path], mask_files: list[Path]) -> list[Path | None]:
    """Pair masks with frames by file stem, else by order when the counts are equal."""
    by_stem = {p.stem: p for p in mask_files}
    paired = [by_stem.get(f.stem) for f in frames]
    if any(p is not None for p in paired):
        return paired
    if len(mask_files) == len(frames):
        return list(mask_files)
    raise InvalidInputError(f"cannot pair {len(mask_files)} masks in {mask_files[0].parent} with {len(frames)} "
                            "frames: give them the frame file names or one mask per frame")


def _warn(msg: str) -> None:
    print(f"rts-eval: warning: {msg}", file=sys.stderr)


def load_box_sequence(seq_dir: Path, name: str | None = None) -> EvalSequence:
    """An OTB/LaSOT/rts-synth folder (ground-truth file + frames [+ masks/])."""
    gt_path = next((seq_dir / n for n in GT_NAMES if (seq_dir / n).is_file()), None)
    frames = image_files(_frame_dir(seq_dir))
    if not frames:
        raise InvalidInputError(f"no frames (.jpg/.png) in {seq_dir} or {seq_dir}/img")
    mask_dir = next((seq_dir / d for d in MASK_DIRS if (seq_dir / d).is_dir()), None)
    masks = _match_masks(frames, image_files(mask_dir)) if mask_dir is not None and image_files(mask_dir) else None
    if gt_path is not None:
        boxes = parse_groundtruth(gt_path.read_text(), str(gt_path))
        if len(boxes) != len(frames):
            _warn(f"{gt_path}: {len(boxes)} boxes for {len(frames)} frames; using the first "
                  f"{min(len(boxes), len(frames))}")
            n = min(len(boxes), len(frames))
            frames, boxes = frames[:n], boxes[:n]
            masks = masks[:n] if masks is not None else None
    elif masks is not None:
        seq = EvalSequence(name or seq_dir.name, frames, np.full((len(frames), 4), np.nan), masks)
        seq.boxes = np.stack([box_of_mask(m) if m is not None else np.full(4, np.nan)
                              for m in (seq.mask(i) for i in range(len(frames)))])
        return seq
    else:
        raise InvalidInputError(f"{seq_dir} has neither {' nor '.join(GT_NAMES)} nor a masks/ folder")
    return EvalSequence(name or seq_dir.name, frames, boxes, masks)


def load_davis(root: Path) -> list[EvalSequence]:
    """All (video, object id) pairs of a DAVIS-layout root (JPEGImages/ + Annotations/)."""
    img_root, ann_root = root / "JPEGImages", root / "Annotations"
    for res in ("480p", "Full-Resolution", "1080p"):
        if (img_root / res).is_dir() and (ann_root / res).is_dir():
            img_root, ann_root = img_root / res, ann_root / res
            break
    out = []
    for vid in sorted(p for p in img_root.iterdir() if p.is_dir()):
        if not (ann_root / vid.name).is_dir():
            _warn(f"no annotations for {vid}; skipped")
            continue
        frames = image_files(vid)
        masks = _match_masks(frames, image_files(ann_root / vid.name))
        out += _split_objects(vid.name, frames, masks)
    return out


def _split_objects(name: str, frames: list[Path], masks: list[Path | None]) -> list[EvalSequence]:
    first = next((i for i, m in enumerate(masks) if m is not None), None)
    if first is None:
        return []
    ids = object_ids(read_index_png(masks[first]))
    out = []
    for oid in ids:
        seq = EvalSequence(name if len(ids) == 1 else f"{name}_{oid}", frames, np.full((len(frames), 4), np.nan),
                           masks, oid)
        seq.boxes = np.stack([box_of_mask(m) if m is not None else np.full(4, np.nan)
                              for m in (seq.mask(i) for i in range(len(frames)))])
        out.append(seq)
    return out


def _is_box_sequence(d: Path) -> bool:
    if any((d / n).is_file() for n in GT_NAMES):
        return True
    return any((d / m).is_dir() for m in MASK_DIRS) and any((d / f).is_dir() for f in FRAME_DIRS)


def find_sequences(path: Path) -> list[EvalSequence]:
    """Every evaluation sequence under ``path`` (a sequence folder, a dataset root, or a DAVIS root)."""
    path = Path(path)
    if not path.is_dir():
        raise InvalidInputError(f"{path} is not a folder: give a sequence folder or a dataset root")
    found: list[EvalSequence] = []
    stack = [(path, 0)]
    try:
        while stack:  # depth-bounded walk
            d, depth = stack.pop()
            if (d / "JPEGImages").is_dir() and (d / "Annotations").is_dir():
                found += load_davis(d)
            elif _is_box_sequence(d):
                found.append(load_box_sequence(d, d.name if d != path else path.name))
            elif depth < _MAX_DEPTH:
                stack += [(c, depth + 1) for c in sorted(d.iterdir(), reverse=True) if c.is_dir()]
    except OSError as e:   # a folder or ground-truth file without read permission
        # e.filename may be an entry of a folder that cannot be searched: then name that folder
        where = e.filename if e.filename and os.path.exists(e.filename) else d
        raise InvalidInputError(f"cannot read {where}: {e.strerror or e}; check its permissions") from None
    if not found:
        raise InvalidInputError(f"no sequence found under {path}: expected folders with groundtruth.txt "
                                "(+ img/) or a DAVIS root (JPEGImages/ + Annotations/)")
    return sorted(found, key=lambda s: s.name)
