"""One thread for every call into the network, for the node's whole life (no rclpy here: unit-testable).

Why one thread: each thread that runs a parallel torch region on the CPU gets its own OpenMP team. Once two
teams exist (say the model loaded and warmed up on the executor's thread, frames tracked on a worker),
libgomp counts more busy threads than cores and stops spin-waiting between regions. With the default model
on a 2-core CPU a 640x480 frame then took 40 ms instead of 24 ms. Loading, warm-up and tracking all run here.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable


class ComputeThread:
    def __init__(self, name: str = "rts_compute"):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Queue fn(*args); jobs run one at a time, in order. The future carries its result or exception."""
        if self._closed:
            raise RuntimeError("the compute thread is closed")
        fut: Future = Future()
        self._jobs.put((fut, fn, args))
        return fut

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run fn(*args) on the compute thread and wait for it (from any other thread)."""
        if threading.current_thread() is self._thread:
            return fn(*args)
        return self.submit(fn, *args).result()

    def close(self, timeout: float = 30.0) -> None:
        """No new jobs; wait up to `timeout` s for the queued ones (a running loop must be stopped first)."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fut, fn, args = job
            del job
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn(*args))
                except BaseException as e:  # handed to the waiting caller, which reports it
                    fut.set_exception(e)
            # drop this job's references before waiting for the next one (a released model must be freed)
            del fut, fn, args
