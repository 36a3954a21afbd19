"""Trackers that rts-eval can run: ``rts`` (this library) and the OpenCV contrib baselines ``csrt``/``kcf``.

Each adapter has ``start(image, box, mask)`` for the first frame (returning the start mask the tracker made
from the box, or None) and ``step(image) -> Prediction`` after it; images are RGB uint8. Only the time spent
inside these two calls is counted as tracking time.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rts_ros.errors import ConfigError, InvalidInputError
from rts_ros.tracker.types import TrackState

KNOWN_TRACKERS = ("rts", "csrt", "kcf")


STATUSES = ("tracking", "uncertain", "lost")


@dataclass(frozen=True)
class Prediction:
    box: np.ndarray | None          # x, y, w, h; None = the tracker gave no box
    mask: np.ndarray | None = None  # bool HxW for segmentation trackers
    status: str | None = None       # what the tracker says of itself (STATUSES); None = it says nothing


class OpenCVTracker:
    """CSRT or KCF from opencv-contrib.  When OpenCV reports a failure the previous box is kept, so every
    frame carries a box as in the OTB protocol (this is the favourable reading for the baselines)."""

    def __init__(self, kind: str):
        import cv2

        self.name = kind
        factory = {"csrt": "TrackerCSRT", "kcf": "TrackerKCF"}[kind]
        cls = getattr(cv2, factory, None) or getattr(getattr(cv2, "legacy", None), factory, None)
        if cls is None:
            raise ConfigError(f"OpenCV has no {factory}: install opencv-contrib-python-headless "
                              "(not opencv-python-headless; never both)")
        self._create = cls.create
        self._tracker = None
        self._last: np.ndarray | None = None

    def start(self, image: np.ndarray, box: np.ndarray, mask: np.ndarray | None = None) -> None:
        """Box trackers make no start mask: None."""
        import cv2

        self._tracker = self._create()
        x, y, w, h = (int(round(v)) for v in box)
        self._tracker.init(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), (x, y, max(1, w), max(1, h)))
        self._last = np.asarray(box, np.float64)

    def step(self, image: np.ndarray) -> Prediction:
        import cv2

        ok, rect = self._tracker.update(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        found = bool(ok) and rect[2] > 0 and rect[3] > 0
        if found:
            self._last = np.asarray(rect, np.float64)
        return Prediction(None if self._last is None else self._last.copy(),
                          status="tracking" if found else "lost")


# TRACKING: both branches find the target; UNCERTAIN: one fails; LOST: both fail
_RTS_STATUS = {TrackState.TRACKING: "tracking", TrackState.UNCERTAIN: "uncertain", TrackState.LOST: "lost"}


class RTSTracker:
    """The library tracker (rts_ros.api.Tracker) with its box and mask outputs."""

    def __init__(self, weights: Path | None = None, device: str = "auto", init_with_mask: bool = False,
                 tracker=None, name: str = "rts"):
        from rts_ros.api import Tracker

        self.name = name
        self._tracker = tracker if tracker is not None else Tracker.from_weights(weights_dir=weights, device=device)
        self._init_with_mask = init_with_mask

    def start(self, image: np.ndarray, box: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray | None:
        """The start mask made from the box (STA or GrabCut), or None when initialised with the given mask."""
        self._tracker.reset()
        m = (mask.astype(np.uint8) * 255) if (self._init_with_mask and mask is not None) else None
        res = self._tracker.initialize(image, box=tuple(float(v) for v in box), mask=m)
        return None if m is not None else res.mask > 0

    def step(self, image: np.ndarray) -> Prediction:
        res = self._tracker.track(image)
        box = np.asarray(res.box, np.float64)
        ok = box.shape == (4,) and np.all(np.isfinite(box)) and box[2] > 0 and box[3] > 0
        return Prediction(box if ok else None, res.mask > 0, _RTS_STATUS.get(res.state))


def make_tracker(name: str, weights: Path | None = None, device: str = "auto", init_with_mask: bool = False):
    name = name.strip().lower()
    if name in ("csrt", "kcf"):
        return OpenCVTracker(name)
    if name == "rts":
        return RTSTracker(weights, device, init_with_mask)
    raise InvalidInputError(f"unknown tracker {name!r}: choose from {', '.join(KNOWN_TRACKERS)}")
