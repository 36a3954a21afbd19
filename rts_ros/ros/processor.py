"""The tracking worker: takes the newest frame (and pending init/reset) from the FrameStore, runs the
tracker, hands results to the publisher. No rclpy here; the node supplies `publish` and `log`.

Every bad input ends in one log line and the loop goes on with the next frame.
"""
from __future__ import annotations

import threading
import time
import traceback
from typing import Any, Callable, Protocol

import numpy as np

from rts_ros.errors import InvalidInputError, RTSError
from rts_ros.ros.frames import Frame, FrameStore, InitTicket, Work
from rts_ros.ros.geometry import mask_tight_box, roi_is_zero, roi_to_box
from rts_ros.ros.image_conversion import mask_from_image, message_to_rgb
from rts_ros.ros.stats import Stats


class Publish(Protocol):
    def __call__(self, frame: Frame, result: Any | None, rgb: np.ndarray | None, tracker_s: float,
                 skipped: int) -> None: ...


Log = Callable[[str, str, str], None]   # (level: "info"|"warn"|"error", throttle key, text)


def stamp_ns(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def _fmt_stamp(ns: int) -> str:
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


class FrameProcessor:
    def __init__(self, tracker: Any, store: FrameStore, stats: Stats, publish: Publish, log: Log,
                 publish_idle: bool = True, tuner: Any | None = None):
        """tuner: a ThreadTuner (cpu_threads -1) fed each tracked frame's time; it must live on this thread."""
        self.tracker = tracker
        self.tuner = tuner
        self.store = store
        self.stats = stats
        self.publish = publish
        self.log = log
        self.publish_idle = publish_idle
        self.lock = threading.Lock()    # held while a work item is processed (deactivate waits on it)
        self._size: tuple[int, int] | None = None   # (H, W) the tracker was initialised at
        self._last_seq = 0                          # newest frame already used (init or track)
        self._told_waiting = False

    @property
    def tracking(self) -> bool:
        return int(self.tracker.state) != 0

    def run(self, stop: threading.Event, poll_s: float = 0.2) -> None:
        while not stop.is_set():
            try:
                self.step(poll_s)
            except Exception:  # even a failing logger must not end the worker
                traceback.print_exc()
                stop.wait(poll_s)

    def step(self, timeout: float) -> None:
        work = self.store.take(timeout)
        if work is None:
            if self.store.init_waiting() and not self._told_waiting:
                self._told_waiting = True
                self.log("warn", "init-before-image",
                         "init received before any image: it will be applied to the first image that arrives "
                         "(is the camera publishing on the 'image' topic?)")
            return
        with self.lock:
            try:
                self._process(work)
            except Exception as e:  # a bug must not kill the worker: report it and carry on with the next frame
                self.log("error", f"unexpected-{type(e).__name__}",
                         f"unexpected error while processing a frame: {e!r}\n{traceback.format_exc()}")
                if work.ticket is not None:
                    work.ticket.answer(False, f"unexpected error while starting: {e!r} (see the node's log)")

    def reset(self) -> None:
        """Immediate reset (used on deactivate, with the store cleared)."""
        with self.lock:
            self.tracker.reset()
            self._size = None

    # ------------------------------------------------------------------------------------------------
    def _process(self, work: Work) -> None:
        if work.skipped:
            self.stats.add(skipped=work.skipped)
        if work.reset:
            self.tracker.reset()
            self._size = None
            self.log("info", "reset", "reset: tracking stopped, waiting for a new init")
        if work.init is not None:
            self._told_waiting = False
            self._apply_init(work.init, work.inits_collapsed, work.ticket)
        frame = work.frame
        if frame is not None and frame.seq > self._last_seq:
            self._track(frame, work.skipped)

    def _apply_init(self, msg: Any, collapsed: int, ticket: InitTicket | None = None) -> None:
        self.stats.add(inits=1, inits_collapsed=collapsed)
        if collapsed:
            self.log("info", "init-collapsed",
                     f"{collapsed + 1} init requests arrived while one was pending: applying only the newest")
        want = stamp_ns(msg.header)
        newest = self.store.newest_buffered()
        if newest is None:  # the buffer was cleared meanwhile (deactivate): nothing to initialise on
            if ticket is not None:
                ticket.answer(False, "no image is buffered any more (the node was deactivated meanwhile)")
            return
        frame = newest if want == 0 else self.store.find(want)
        if frame is None:
            lo, hi = self.store.stamp_range() or (0, 0)
            self.log("warn", "init-stamp",
                     f"init stamp {_fmt_stamp(want)} matches no buffered image (buffer holds {_fmt_stamp(lo)} .. "
                     f"{_fmt_stamp(hi)}; raise frame_buffer to keep more): initialising on the newest image "
                     f"{_fmt_stamp(newest.stamp_ns)}")
            frame = newest
        keep = "still tracking the previous target" if self.tracking else "the tracker stays idle"
        try:
            rgb = message_to_rgb(frame.msg, "init image")
            box, mask = self._init_target(msg, rgb.shape[:2])
            t0 = time.perf_counter()
            result = self.tracker.initialize(rgb, box=box, mask=mask)
            tracker_s = time.perf_counter() - t0
        except InvalidInputError as e:
            self.stats.add(input_errors=1)
            self.log("error", f"init-invalid-{e}", f"ignored init: {e} ({keep})")
            if ticket is not None:
                ticket.answer(False, f"{e} ({keep})")
            return
        self._size = rgb.shape[:2]
        self._last_seq = max(self._last_seq, frame.seq)
        self.log("info", "init-ok", f"initialised on the image stamped {_fmt_stamp(frame.stamp_ns)} with box "
                                    f"{tuple(round(float(v), 1) for v in result.box)}"
                                    f"{' and a mask' if mask is not None else ''}")
        self.publish(frame, result, rgb, tracker_s, 0)
        if ticket is not None:
            ticket.answer(True, f"tracking: started on the image stamped {_fmt_stamp(frame.stamp_ns)}", result, frame,
                          (rgb.shape[1], rgb.shape[0]))

    @staticmethod
    def _init_target(msg: Any, hw: tuple[int, int]) -> tuple[tuple[float, float, float, float], np.ndarray | None]:
        m = msg.mask
        has_mask = m.width > 0 or m.height > 0 or len(m.data) > 0 or m.encoding != ""
        mask = mask_from_image(m, hw) if has_mask else None
        if mask is not None and roi_is_zero(msg.roi):
            return mask_tight_box(mask), mask
        if msg.roi.width == 0 or msg.roi.height == 0:
            raise InvalidInputError(
                f"roi {roi_to_box(msg.roi)} (x, y, w, h) has zero width or height; give the target's box in pixels"
                + ("" if mask is None else " or an all-zero roi to use the mask's box"))
        return roi_to_box(msg.roi), mask

    def _track(self, frame: Frame, skipped: int) -> None:
        self._last_seq = frame.seq
        try:
            rgb = message_to_rgb(frame.msg)
        except InvalidInputError as e:
            self.stats.add(input_errors=1)
            self.log("error", f"image-{str(e)[:40]}", f"skipped image: {e}")
            return
        if not self.tracking:
            if self.publish_idle:
                self.publish(frame, None, rgb, 0.0, skipped)
            return
        if rgb.shape[:2] != self._size:
            self.stats.add(input_errors=1)
            (h0, w0), (h1, w1) = self._size, rgb.shape[:2]
            self.log("error", "image-size",
                     f"skipped image: size changed from {w0}x{h0} to {w1}x{h1} while tracking; send a new init "
                     "(or call rts/reset) to track at the new size")
            return
        t0 = time.perf_counter()
        try:
            result = self.tracker.track(rgb)
        except RTSError as e:
            self.stats.add(input_errors=1)
            self.log("error", "track-error", f"skipped image: the tracker refused it: {e}")
            return
        tracker_s = time.perf_counter() - t0
        if self.tuner is not None and self.tuner.observe(tracker_s):
            self.log("info", "cpu-threads", f"cpu_threads auto: now {self.tuner.current} thread(s) per operation "
                                            "(the faster count at present)")
        if self.store.reset_pending:  # a reset arrived while tracking: this result is stale
            return
        self.publish(frame, result, rgb, tracker_s, skipped)
