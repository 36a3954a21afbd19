"""Readers of the standard training-set layouts (LaSOT, GOT-10k, YouTube-VOS, DAVIS) as sequence datasets.

Every reader exposes the same small interface used by the training sampler (`SequenceDataset`):
number of sequences, per-frame visibility, and frames as (RGB uint8 image, 0/1 mask, [x, y, w, h] box).
Box-only datasets (LaSOT, GOT-10k) need masks for RTS training: pass `mask_root` with pre-generated masks
(`<mask_root>/<sequence name>/<frame stem>.png`, non-zero = target), or `box_masks=True` to use filled boxes.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rts_ros.data.image_files import IMAGE_SUFFIXES, image_files
from rts_ros.errors import ConfigError, InvalidInputError



@dataclass
class Frame:
    image: np.ndarray   # H x W x 3 uint8 RGB
    mask: np.ndarray    # H x W uint8 0/1
    box: np.ndarray     # [x, y, w, h] float64


def read_rgb(path: Path) -> np.ndarray:
    """RGB uint8 image; a clear error when the file is missing or unreadable."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InvalidInputError(f"cannot read image {path}: check that the file exists and is an image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _png_palette(path: Path) -> np.ndarray | None:
    """The PLTE chunk of a PNG file as an (N, 3) RGB array, or None for non-palette files."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    pos = 8
    for _ in range(10000):   # chunk walk, bounded
        if pos + 8 > len(data):
            return None
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"PLTE":
            pal = np.frombuffer(data[pos + 8:pos + 8 + length], dtype=np.uint8)
            return pal.reshape(-1, 3)
        if kind in (b"IDAT", b"IEND"):
            return None
        pos += 12 + length
    return None


def read_index_png(path: Path) -> np.ndarray:
    """Object-id map of an annotation PNG (DAVIS / YouTube-VOS palette PNGs, or grey PNGs holding ids).

    OpenCV expands palette images to colours, so colours are mapped back to palette indices.
    """
    palette = _png_palette(path)
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InvalidInputError(f"cannot read annotation {path}: check that the file exists and is a PNG")
    if palette is None:
        return img if img.ndim == 2 else img[..., 0]
    if img.ndim == 2:
        return img
    rgb = img[..., 2::-1].astype(np.int64)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    pal = palette.astype(np.int64)
    pal_code = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
    ids = np.zeros(code.shape, dtype=np.uint8)
    for idx in range(len(pal_code) - 1, 0, -1):     # the lowest index wins for repeated colours; 0 stays 0
        ids[code == pal_code[idx]] = idx
    ids[code == pal_code[0]] = 0
    return ids


def object_ids(annotation: np.ndarray) -> list[int]:
    """Object ids of a VOS annotation: palette ids without 0 (background) and 255 (DAVIS 2017's void), or
    [255] for DAVIS 2016's binary 0/255 masks, where 255 is the one object."""
    values = {int(v) for v in np.unique(annotation)}
    ids = sorted(values - {0, 255})
    return ids if ids or 255 not in values else [255]


def box_from_mask(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return np.zeros(4)
    return np.array([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], dtype=np.float64)


def read_boxes(path: Path) -> np.ndarray:
    """N x 4 boxes from a groundtruth.txt (comma, tab or space separated)."""
    if not path.is_file():
        raise InvalidInputError(f"missing box file {path}: expected one 'x,y,w,h' line per frame")
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        vals = [v for v in line.replace("\t", ",").replace(" ", ",").split(",") if v]
        if len(vals) < 4:
            raise InvalidInputError(f"{path}: line {line!r} does not hold 4 numbers x,y,w,h")
        rows.append([float(v) if v.lower() != "nan" else 0.0 for v in vals[:4]])
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def _read_flags(path: Path, n: int) -> np.ndarray:
    """0/1 flags, comma separated on one line (LaSOT) or one per line (GOT-10k); zeros when absent."""
    if not path.is_file():
        return np.zeros(n, dtype=bool)
    vals = [v for v in path.read_text().replace("\n", ",").split(",") if v.strip()]
    arr = np.array([float(v) for v in vals], dtype=np.float64)
    if len(arr) < n:
        arr = np.concatenate([arr, np.zeros(n - len(arr))])
    return arr[:n]


class SequenceDataset:
    """Base class: a list of sequences, each a list of frames with masks and boxes."""
    name = "dataset"

    def __len__(self) -> int:
        raise NotImplementedError

    def sequence_name(self, seq: int) -> str:
        raise NotImplementedError

    def visible(self, seq: int) -> np.ndarray:
        """Boolean visibility per frame of sequence `seq`."""
        raise NotImplementedError

    def frame(self, seq: int, index: int) -> Frame:
        raise NotImplementedError


class BoxSequenceDataset(SequenceDataset):
    """Sequences of image files + one box per frame; masks pre-generated or filled boxes."""

    def __init__(self, sequences: list[tuple[str, list[Path], np.ndarray, np.ndarray]],
                 mask_root: str | Path | None, box_masks: bool):
        if mask_root is None and not box_masks:
            raise ConfigError(
                f"{self.name}: this dataset has boxes only; RTS training needs masks. Pass mask_root (folder "
                "<mask_root>/<sequence>/<frame stem>.png) or box_masks=True to train on filled boxes")
        self._seqs = sequences
        self._mask_root = Path(mask_root) if mask_root is not None else None

    def __len__(self) -> int:
        return len(self._seqs)

    def sequence_name(self, seq: int) -> str:
        return self._seqs[seq][0]

    def visible(self, seq: int) -> np.ndarray:
        return self._seqs[seq][3]

    def frame(self, seq: int, index: int) -> Frame:
        name, images, boxes, _ = self._seqs[seq]
        image = read_rgb(images[index])
        box = boxes[index].copy()
        if self._mask_root is not None:
            mpath = self._mask_root / name / (images[index].stem + ".png")
            mask = cv2.imread(str(mpath), cv2.IMREAD_GRAYSCALE)
            if mask is None:
                raise InvalidInputError(f"{self.name}: missing pre-generated mask {mpath}")
            mask = (mask > 0).astype(np.uint8)
        else:
            mask = np.zeros(image.shape[:2], dtype=np.uint8)
            x0, y0 = int(max(box[0], 0)), int(max(box[1], 0))
            mask[y0:int(max(box[1] + box[3], 0)), x0:int(max(box[0] + box[2], 0))] = 1
        return Frame(image, mask, box)


class LaSOT(BoxSequenceDataset):
    """LaSOT: <root>/<class>/<class>-<n>/{img/*.jpg, groundtruth.txt, full_occlusion.txt, out_of_view.txt}."""
    name = "lasot"

    def __init__(self, root: str | Path, mask_root: str | Path | None = None, box_masks: bool = False,
                 sequences: list[str] | None = None):
        root = Path(root)
        if not root.is_dir():
            raise ConfigError(f"LaSOT root {root} is not a folder")
        seqs = []
        for cls_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            for seq_dir in sorted(p for p in cls_dir.iterdir() if p.is_dir() and (p / "img").is_dir()):
                if sequences is not None and seq_dir.name not in sequences:
                    continue
                images = image_files(seq_dir / "img")
                boxes = read_boxes(seq_dir / "groundtruth.txt")[:len(images)]
                n = len(boxes)
                hidden = (_read_flags(seq_dir / "full_occlusion.txt", n) > 0) | (
                    _read_flags(seq_dir / "out_of_view.txt", n) > 0)
                vis = ~hidden & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
                seqs.append((seq_dir.name, images[:n], boxes, vis))
        if not seqs:
            raise ConfigError(f"no LaSOT sequences under {root}: expected <class>/<class>-<n>/img/")
        super().__init__(seqs, mask_root, box_masks)


class GOT10k(BoxSequenceDataset):
    """GOT-10k: <root>/<split>/<seq>/{00000001.jpg..., groundtruth.txt, absence.label, cover.label}."""
    name = "got10k"

    def __init__(self, root: str | Path, split: str = "train", mask_root: str | Path | None = None,
                 box_masks: bool = False, sequences: list[str] | None = None):
        base = Path(root) / split
        if not base.is_dir():
            raise ConfigError(f"GOT-10k split folder {base} is not a folder")
        names = sequences
        if names is None:
            lst = base / "list.txt"
            names = ([s.strip() for s in lst.read_text().splitlines() if s.strip()] if lst.is_file()
                     else sorted(p.name for p in base.iterdir() if p.is_dir()))
        seqs = []
        for name in names:
            d = base / name
            images = image_files(d)
            boxes = read_boxes(d / "groundtruth.txt")[:len(images)]
            n = len(boxes)
            absent = _read_flags(d / "absence.label", n) > 0
            cover_file = d / "cover.label"
            cover = _read_flags(cover_file, n) if cover_file.is_file() else np.ones(n)
            vis = ~absent & (cover > 0) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
            seqs.append((name, images[:n], boxes, vis))
        if not seqs:
            raise ConfigError(f"no GOT-10k sequences under {base}")
        super().__init__(seqs, mask_root, box_masks)


class _IndexMaskDataset(SequenceDataset):
    """Video object segmentation layouts: one sequence per (video, object id); masks are id == object."""

    def __init__(self, entries: list[tuple[str, list[Path], list[Path], int]]):
        if not entries:
            raise ConfigError(f"{self.name}: no annotated objects found; check the dataset root and split")
        self._entries = entries
        self._vis_cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def sequence_name(self, seq: int) -> str:
        return f"{self._entries[seq][0]}_{self._entries[seq][3]}"

    def visible(self, seq: int) -> np.ndarray:
        if seq not in self._vis_cache:
            _, _, annos, obj = self._entries[seq]
            self._vis_cache[seq] = np.array([(read_index_png(a) == obj).sum() > 0 for a in annos], dtype=bool)
        return self._vis_cache[seq]

    def frame(self, seq: int, index: int) -> Frame:
        _, images, annos, obj = self._entries[seq]
        image = read_rgb(images[index])
        mask = (read_index_png(annos[index]) == obj).astype(np.uint8)
        if mask.shape != image.shape[:2]:
            raise InvalidInputError(f"{self.name}: annotation {annos[index]} size {mask.shape} differs from "
                                    f"its image {image.shape[:2]}")
        return Frame(image, mask, box_from_mask(mask))


def _paired_frames(img_dir: Path, anno_dir: Path) -> tuple[list[Path], list[Path]]:
    annos = sorted(anno_dir.glob("*.png"))
    images = []
    for a in annos:
        match = [img_dir / (a.stem + s) for s in IMAGE_SUFFIXES if (img_dir / (a.stem + s)).is_file()]
        if not match:
            raise ConfigError(f"annotation {a} has no image {img_dir}/{a.stem}.jpg")
        images.append(match[0])
    return images, annos


class YouTubeVOS(_IndexMaskDataset):
    """YouTube-VOS: <root>/<split>/{JPEGImages,Annotations}/<video>/<frame>.{jpg,png} + <split>/meta.json."""
    name = "youtubevos"

    def __init__(self, root: str | Path, split: str = "train", videos: list[str] | None = None):
        base = Path(root) / split
        meta_path = base / "meta.json"
        if not meta_path.is_file():
            raise ConfigError(f"YouTube-VOS: {meta_path} not found; point root at the folder holding '{split}/'")
        meta = json.loads(meta_path.read_text())["videos"]
        entries = []
        for vid in sorted(meta):
            if videos is not None and vid not in videos:
                continue
            images, annos = _paired_frames(base / "JPEGImages" / vid, base / "Annotations" / vid)
            for obj in sorted(meta[vid]["objects"], key=int):
                entries.append((vid, images, annos, int(obj)))
        super().__init__(entries)


class DAVIS(_IndexMaskDataset):
    """DAVIS: <root>/{JPEGImages,Annotations}/<res>/<seq>/*.{jpg,png}, ImageSets/<year>/<split>.txt.

    One sequence per object of the first annotation (``object_ids``: DAVIS 2017 palette ids, or DAVIS 2016's
    one 0/255 object).
    """
    name = "davis"

    def __init__(self, root: str | Path, split: str = "train", year: str = "2017", resolution: str = "480p",
                 sequences: list[str] | None = None):
        root = Path(root)
        names = sequences
        if names is None:
            lst = root / "ImageSets" / year / f"{split}.txt"
            if not lst.is_file():
                raise ConfigError(f"DAVIS: split file {lst} not found; pass sequences= or fix root/year/split")
            names = [s.strip() for s in lst.read_text().splitlines() if s.strip()]
        entries = []
        for name in names:
            images, annos = _paired_frames(root / "JPEGImages" / resolution / name,
                                           root / "Annotations" / resolution / name)
            if not annos:
                continue
            for obj in object_ids(read_index_png(annos[0])):
                entries.append((name, images, annos, obj))
        super().__init__(entries)


DATASETS = {"lasot": LaSOT, "got10k": GOT10k, "youtubevos": YouTubeVOS, "davis": DAVIS}


def build_dataset(kind: str, **kwargs) -> SequenceDataset:
    """Dataset by name (lasot, got10k, youtubevos, davis); kwargs go to the reader."""
    if kind not in DATASETS:
        raise ConfigError(f"unknown dataset {kind!r}; choose one of {sorted(DATASETS)} (or 'synthetic')")
    return DATASETS[kind](**kwargs)
