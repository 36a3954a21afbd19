"""Hand-over between the executor's callbacks and the tracking worker (no rclpy import: unit-testable).

The image callback only stores the newest frame and appends it to a short ring buffer (for stamped
init); the worker takes the newest frame and learns how many it skipped. Init requests collapse to the
newest one; a reset request cancels a pending init that arrived before it. An init may carry an InitTicket
(the rts/start service): whoever ends the init's life (applied, refused, replaced, cancelled) answers it.
"""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Frame:
    msg: Any             # sensor_msgs/Image, untouched (conversion happens in the worker)
    stamp_ns: int        # header stamp in nanoseconds
    seq: int             # arrival order, 1, 2, ...
    received: float      # time.monotonic() at arrival


class InitTicket:
    """The answer to one synchronous init: set once, by the worker or by whoever withdraws the init."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = False
        self._on_answer: list[Callable[[], None]] = []
        self.success = False
        self.message = ""
        self.result: Any | None = None   # the tracker's start-frame result on success
        self.frame: Frame | None = None  # the image it started on
        self.image_wh: tuple[int, int] = (0, 0)

    def answer(self, success: bool, message: str, result: Any | None = None, frame: Frame | None = None,
               image_wh: tuple[int, int] = (0, 0)) -> bool:
        """Set the answer; False (and nothing changes) when it was already answered."""
        with self._lock:
            if self._done:
                return False
            self.success, self.message, self.result, self.frame, self.image_wh = (
                success, message, result, frame, image_wh)
            self._done = True
            callbacks, self._on_answer = self._on_answer, []
        for fn in callbacks:   # outside the lock: a callback may read the answer
            fn()
        return True

    def on_answer(self, fn: Callable[[], None]) -> None:
        """Call fn() once answered: from the answering thread, or at once when the answer is already there."""
        with self._lock:
            if not self._done:
                self._on_answer.append(fn)
                return
        fn()

    @property
    def answered(self) -> bool:
        return self._done


@dataclass(frozen=True)
class Work:
    reset: bool          # apply a reset before anything else
    init: Any | None     # newest InitTarget message, or None
    ticket: InitTicket | None  # the init's synchronous caller, if any
    inits_collapsed: int  # init requests replaced by a newer one before the worker took them
    frame: Frame | None  # newest frame not yet taken, or None
    skipped: int         # frames that arrived and were replaced before the worker took one


class FrameStore:
    def __init__(self, buffer_len: int):
        self._cv = threading.Condition()
        self._ring: collections.deque[Frame] = collections.deque(maxlen=max(1, buffer_len))
        self._newest: Frame | None = None
        self._skipped = 0
        self._seq = 0
        self._init = None
        self._ticket: InitTicket | None = None
        self._collapsed = 0
        self._reset = False
        self._closed = False

    # --- producers (executor thread) -----------------------------------------------------------------
    def put_frame(self, msg: Any, stamp_ns: int) -> None:
        with self._cv:
            self._seq += 1
            frame = Frame(msg, stamp_ns, self._seq, time.monotonic())
            if self._newest is not None:
                self._skipped += 1
            self._newest = frame
            self._ring.append(frame)
            self._cv.notify()

    def put_init(self, msg: Any, ticket: InitTicket | None = None) -> None:
        with self._cv:
            if self._init is not None:
                self._collapsed += 1
                self._withdraw("replaced by a newer init before it was applied")
            self._init, self._ticket = msg, ticket
            self._cv.notify()

    def withdraw_init(self, ticket: InitTicket, reason: str) -> bool:
        """Drop the pending init of `ticket` and answer it with `reason`; False when the worker already took it
        (its answer then comes from the worker) or it is gone."""
        with self._cv:
            if self._ticket is not ticket or self._init is None:
                return False
            self._withdraw(reason)
            self._init, self._collapsed = None, 0
            return True

    def request_reset(self) -> None:
        with self._cv:
            self._reset = True
            if self._init is not None:
                self._withdraw("cancelled by a reset that arrived after it")
            self._init, self._collapsed = None, 0  # an init sent before the reset is cancelled by it
            self._cv.notify()

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._withdraw("the node stopped tracking (deactivated or shutting down)")
            self._cv.notify_all()

    def _withdraw(self, reason: str) -> None:
        # caller holds the lock
        if self._ticket is not None:
            self._ticket.answer(False, reason)
        self._ticket = None

    # --- consumer (worker thread) ----------------------------------------------------------------------
    @property
    def has_frames(self) -> bool:
        with self._cv:
            return bool(self._ring)

    @property
    def reset_pending(self) -> bool:
        with self._cv:
            return self._reset

    def take(self, timeout: float) -> Work | None:
        """Wait up to `timeout` s for something to do; None when closed or nothing arrived.

        An init is handed out only once a frame exists (an init sent before the first image waits).
        """
        with self._cv:
            def ready() -> bool:
                return self._closed or self._reset or self._newest is not None or (
                    self._init is not None and bool(self._ring))
            if not self._cv.wait_for(ready, timeout) or self._closed:
                return None
            init = self._init if self._ring else None
            ticket = self._ticket if init is not None else None
            work = Work(self._reset, init, ticket, self._collapsed if init is not None else 0, self._newest,
                        self._skipped)
            self._reset = False
            if init is not None:
                self._init, self._ticket, self._collapsed = None, None, 0
            self._newest, self._skipped = None, 0
            return work

    def init_waiting(self) -> bool:
        with self._cv:
            return self._init is not None and not self._ring

    def find(self, stamp_ns: int) -> Frame | None:
        """The buffered frame whose stamp equals stamp_ns exactly (the newest such), else None."""
        with self._cv:
            for frame in reversed(self._ring):
                if frame.stamp_ns == stamp_ns:
                    return frame
            return None

    def newest_buffered(self) -> Frame | None:
        with self._cv:
            return self._ring[-1] if self._ring else None

    def stamp_range(self) -> tuple[int, int] | None:
        with self._cv:
            return (self._ring[0].stamp_ns, self._ring[-1].stamp_ns) if self._ring else None

    def clear(self) -> None:
        with self._cv:
            self._withdraw("the node stopped tracking (deactivated)")
            self._ring.clear()
            self._newest, self._skipped, self._init, self._collapsed, self._reset = None, 0, None, 0, False
