"""Optional (not in the reference): an independent short-term tracker that tells the mask which blobs to keep.

The small model's instance branch seldom peaks on the target on real video, so when the mask holds the target's
blob and a look-alike's, nothing in the network says which is which, and keeping the largest blob is a guess.
OpenCV's KCF does not share the network's drift: its box, grown by a margin, marks where the target probably
is. KCF has no scale estimate, so it is restarted on the tracker's output box whenever that box is trusted
(quality estimate high) and KCF failed or has run for a while.
"""
from __future__ import annotations

import cv2
import numpy as np


class KCFGuide:
    """Wraps cv2.TrackerKCF; boxes are (x, y, w, h) in image pixels, windows (y0, y1, x0, x1), images HxWx3 uint8 RGB.

    target_px > 0: KCF sees the frame shrunk so that the box it (re)starts on is about target_px on a side
    (geometric mean); its cost grows with the target's size in pixels, its accuracy hardly does."""

    def __init__(self, margin: float, reinit_quality: float, reinit_every: int, target_px: float = 0.0) -> None:
        self.margin = float(margin)
        self.reinit_quality = float(reinit_quality)
        self.reinit_every = int(reinit_every)
        self.target_px = float(target_px)
        self._kcf = None
        self._scale = 1.0        # KCF's image = this x the camera image
        self._since_init = 0
        self._failed = False
        self._frame: np.ndarray | None = None   # KCF's input made by update() for the current frame

    def _input(self, rgb: np.ndarray) -> np.ndarray:
        small = rgb
        if self._scale < 1.0:
            small = cv2.resize(rgb, None, fx=self._scale, fy=self._scale, interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(small, cv2.COLOR_RGB2BGR)   # KCF's colour-name features expect OpenCV's order

    def start(self, rgb: np.ndarray, box, same_frame: bool = False) -> None:
        """(Re)start on `box`; same_frame: `rgb` is the frame update() just saw (its KCF input is reused)."""
        x, y, w, h = (float(v) for v in box)
        side = float(np.sqrt(max(w, 1.0) * max(h, 1.0)))
        scale = min(1.0, self.target_px / side) if self.target_px > 0 else 1.0
        reuse = same_frame and self._frame is not None and scale == self._scale
        self._scale = scale
        frame = self._frame if reuse else self._input(rgb)
        s = self._scale
        self._kcf = cv2.TrackerKCF.create()
        self._kcf.init(frame, (int(round(x * s)), int(round(y * s)),
                                          max(1, int(round(w * s))), max(1, int(round(h * s)))))
        self._since_init = 0
        self._failed = False

    def update(self, rgb: np.ndarray) -> tuple[int, int, int, int] | None:
        """This frame's guide window (y0, y1, x0, x1): KCF's box grown by the margin; None when KCF lost the
        target."""
        if self._kcf is None:
            return None
        self._since_init += 1
        self._frame = self._input(rgb)
        ok, b = self._kcf.update(self._frame)
        self._failed = not ok
        if not ok:
            return None
        x, y, w, h = (float(v) / self._scale for v in b)
        x0, y0 = x - self.margin * w, y - self.margin * h
        x1, y1 = x + (1 + self.margin) * w, y + (1 + self.margin) * h
        return int(np.floor(y0)), int(np.ceil(y1)), int(np.floor(x0)), int(np.ceil(x1))

    def after_frame(self, rgb: np.ndarray, output_box, quality: float) -> None:
        """Restart on the tracker's output box when that box is trusted and KCF failed or aged."""
        if not (np.isfinite(quality) and quality >= self.reinit_quality):
            return
        if output_box[2] < 1 or output_box[3] < 1:
            return
        if self._failed or self._since_init >= self.reinit_every:
            self.start(rgb, output_box, same_frame=True)
