"""Listing the image files of a folder of frames: one rule for training readers, evaluation and rts-track."""
from __future__ import annotations

from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def image_files(folder: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Path]:
    """The files of ``folder`` with an image suffix, sorted by name. Hidden files are left out: macOS writes a
    '._x.jpg' of metadata beside every x.jpg on foreign disks, which is no frame."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("."))
