"""Image material for the synthetic video generator: photos, procedural textures and silhouettes.

Real photos come from Debian's ``opencv-doc`` sample images (BSD-licensed, installed system-wide, never
copied into the repository).  When they are absent every consumer falls back to procedural textures, so
the generator works on any machine; the content then differs but stays deterministic for a given seed.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import cv2
import numpy as np

# Debian's opencv-doc sample data (photos and the videos vtest.avi, Megamind.avi, ...); tests read it too.
OPENCV_DOC_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
# Env override first (tests, other distributions), then Debian's location.
_PHOTO_DIRS = (str(OPENCV_DOC_DATA),)
_SILHOUETTE_DIRS = (str(OPENCV_DOC_DATA.parent / "shape" / "data" / "shape_sample"),)

# Colour photos of natural/cluttered scenes that make good backgrounds and object cut-outs
# (calibration boards, text sheets, logos and synthetic drawings are left out on purpose).
_PHOTO_NAMES = (
    "Blender_Suzanne1.jpg", "HappyFish.jpg", "aero1.jpg", "aero3.jpg", "apple.jpg", "baboon.jpg",
    "basketball1.png", "building.jpg", "butterfly.jpg", "chicky_512.png", "fruits.jpg", "graf1.png",
    "home.jpg", "leuvenA.jpg", "lena.jpg", "messi5.jpg", "orange.jpg", "rubberwhale1.png", "smarties.png",
    "squirrel_cls.jpg", "starry_night.jpg", "stuff.jpg", "box_in_scene.png", "board.jpg",
)


def _env_dirs(var: str, defaults: tuple[str, ...]) -> list[Path]:
    env = os.environ.get(var)
    return [Path(p) for p in env.split(os.pathsep)] if env else [Path(p) for p in defaults]


@functools.lru_cache(maxsize=1)
def photo_paths() -> tuple[Path, ...]:
    """Sorted list of usable photos ($RTS_SYNTH_PHOTO_DIRS or opencv-doc); empty when none are installed."""
    found: list[Path] = []
    for folder in _env_dirs("RTS_SYNTH_PHOTO_DIRS", _PHOTO_DIRS):
        if not folder.is_dir():
            continue
        if "RTS_SYNTH_PHOTO_DIRS" in os.environ:
            found += sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        else:
            found += [folder / n for n in _PHOTO_NAMES if (folder / n).is_file()]
    return tuple(found)


@functools.lru_cache(maxsize=32)
def load_photo(path: Path) -> np.ndarray | None:
    """RGB uint8 photo, downscaled so that its long side is at most 640 px (keeps crops cheap)."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None or min(img.shape[:2]) < 64:
        return None
    scale = 640.0 / max(img.shape[:2])
    if scale < 1.0:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@functools.lru_cache(maxsize=1)
def silhouettes() -> tuple[np.ndarray, ...]:
    """Binary object silhouettes (uint8 0/255, cropped to their box); empty when not installed."""
    out = []
    for folder in _env_dirs("RTS_SYNTH_SILHOUETTE_DIRS", _SILHOUETTE_DIRS):
        if not folder.is_dir():
            continue
        for p in sorted(folder.glob("*.png")):
            m = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
            if m is None:
                continue
            ys, xs = np.nonzero(m > 127)
            if len(xs) < 50:
                continue
            out.append(((m[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1] > 127) * 255).astype(np.uint8))
    return tuple(out)


def random_photo_crop(rng: np.random.Generator, height: int, width: int) -> np.ndarray | None:
    """A random crop of a random photo resized to (height, width), or None when no photo is installed."""
    paths = photo_paths()
    if not paths:
        return None
    img = load_photo(paths[int(rng.integers(len(paths)))])
    if img is None:
        return None
    ih, iw = img.shape[:2]
    aspect = width / height
    # Crop of 40..100% of the largest crop with the requested aspect ratio.
    ch_max = min(ih, iw / aspect)
    ch = ch_max * rng.uniform(0.4, 1.0)
    cw = ch * aspect
    y0 = rng.uniform(0, ih - ch)
    x0 = rng.uniform(0, iw - cw)
    crop = img[int(y0): int(y0 + ch), int(x0): int(x0 + cw)]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return cv2.resize(np.ascontiguousarray(crop), (width, height), interpolation=cv2.INTER_LINEAR)


def random_color(rng: np.random.Generator) -> np.ndarray:
    """A saturated-ish RGB colour as float32 (HSV sampling avoids many greys)."""
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(80, 255), rng.uniform(70, 255)]]], np.float32)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int, channels: int = 3) -> np.ndarray:
    """Low-frequency noise in [0, 1]: random values on a coarse grid, upsampled bicubically."""
    gh = max(2, int(round(cells * height / max(height, width))))
    gw = max(2, int(round(cells * width / max(height, width))))
    grid = rng.random((gh, gw, channels), dtype=np.float32)
    up = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(up.reshape(height, width, channels), 0.0, 1.0)


def procedural_texture(rng: np.random.Generator, height: int, width: int, kind: str | None = None) -> np.ndarray:
    """A textured RGB uint8 patch: stripes, checker, spots or colour noise between two random colours."""
    kind = kind or str(rng.choice(["stripes", "checker", "spots", "noise"]))
    c1, c2 = random_color(rng), random_color(rng)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == "stripes":
        ang = rng.uniform(0, np.pi)
        period = rng.uniform(6, 24)
        t = 0.5 + 0.5 * np.sin((xx * np.cos(ang) + yy * np.sin(ang)) * (2 * np.pi / period))
    elif kind == "checker":
        cell = rng.uniform(5, 20)
        t = ((np.floor(xx / cell) + np.floor(yy / cell)) % 2).astype(np.float32)
    elif kind == "spots":
        t = np.zeros((height, width), np.float32)
        for _ in range(int(rng.integers(4, 14))):
            cv2.circle(t, (int(rng.integers(width)), int(rng.integers(height))),
                       int(rng.integers(2, max(3, min(height, width) // 5))), 1.0, -1)
    else:
        t = smooth_noise(rng, height, width, cells=int(rng.integers(3, 9)), channels=1)[..., 0]
    # Mild shading so that flat regions still carry some gradient.
    shade = 0.75 + 0.5 * smooth_noise(rng, height, width, cells=3, channels=1)
    img = (c1 * t[..., None] + c2 * (1.0 - t[..., None])) * shade
    return np.clip(img, 0, 255).astype(np.uint8)


def procedural_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Cluttered RGB uint8 background: colour noise plus random rectangles, discs and lines."""
    base = smooth_noise(rng, height, width, cells=int(rng.integers(3, 8))) * 200 + 30
    img = np.ascontiguousarray(base.astype(np.uint8))
    for _ in range(int(rng.integers(10, 30))):
        col = tuple(int(v) for v in random_color(rng))
        x, y = int(rng.integers(width)), int(rng.integers(height))
        size = int(rng.integers(4, max(5, min(height, width) // 4)))
        shape = rng.integers(3)
        if shape == 0:
            cv2.rectangle(img, (x, y), (x + size, y + int(rng.integers(4, size + 5))), col, -1)
        elif shape == 1:
            cv2.circle(img, (x, y), size // 2, col, -1)
        else:
            cv2.line(img, (x, y), (int(rng.integers(width)), int(rng.integers(height))), col,
                     int(rng.integers(1, 4)))
    return cv2.GaussianBlur(img, (3, 3), 0)
