"""Helpers shared by the tests and benchmarks (no test framework import here)."""
from __future__ import annotations

import os
from pathlib import Path

from rts_ros.data.synthetic_assets import OPENCV_DOC_DATA

REPO_ROOT = Path(__file__).resolve().parent.parent


def without_root_file_access() -> tuple[str, ...]:
    """Command prefix under which a chmod'ed file or folder really is unreadable or unwritable: root ignores file
    modes unless its DAC capabilities are dropped (setpriv). Skips the calling test where that cannot be done."""
    if os.geteuid() != 0:
        return ()
    import shutil

    import pytest

    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permission errors cannot be produced")
    return ("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--")


def parity_dir() -> Path:
    """Folder of the reference parity fixtures: $RTS_PARITY_DIR or ../shared/parity beside the repo."""
    env = os.environ.get("RTS_PARITY_DIR")
    return Path(env) if env else (REPO_ROOT.parent / "shared" / "parity")


class PhotoScene:
    """A real-photo scene for tracker tests: home.jpg (320x240) as the background and a round patch of apple.jpg
    (`side` pixels) as the target, pasted at any top-left corner. BGR, as OpenCV reads them."""

    def __init__(self, side: int):
        import cv2
        import numpy as np

        missing = [n for n in ("home.jpg", "apple.jpg") if not (OPENCV_DOC_DATA / n).is_file()]
        if missing:
            raise FileNotFoundError(f"{', '.join(missing)} not found in {OPENCV_DOC_DATA} (Debian package opencv-doc)")
        self.side = side
        self.background = cv2.resize(cv2.imread(str(OPENCV_DOC_DATA / "home.jpg")), (320, 240))
        self.sprite = cv2.resize(cv2.imread(str(OPENCV_DOC_DATA / "apple.jpg")), (side, side))
        yy, xx = np.mgrid[:side, :side]
        c = (side - 1) / 2
        self.disk = (yy - c) ** 2 + (xx - c) ** 2 <= c ** 2

    def frame(self, *corners: tuple[int, int] | None):
        """The background with the target pasted at each (x, y) top-left corner given (None: left out)."""
        im = self.background.copy()
        for corner in corners:
            if corner is not None:
                x, y = corner
                im[y:y + self.side, x:x + self.side][self.disk] = self.sprite[self.disk]
        return im
