"""Running the node in a subprocess and talking to it over loopback (tests, benchmark, demos).

`node_env()` isolates a run: loopback-only discovery and transports (config/fastdds_localhost.xml) and a
ROS domain of its own, so that parallel runs on one machine do not see each other.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Sequence

REPO_ROOT = Path(__file__).resolve().parents[2]
FASTDDS_PROFILE = REPO_ROOT / "config" / "fastdds_localhost.xml"


def node_env(domain_id: int | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(FASTDDS_PROFILE))
    env["ROS_DOMAIN_ID"] = str(domain_id if domain_id is not None else random.randint(1, 100))
    env["PYTHONUNBUFFERED"] = "1"
    env["RCUTILS_LOGGING_BUFFERED_STREAM"] = "0"
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def use_env(env: dict[str, str]) -> None:
    """Apply the ROS variables of `env` to this process (before rclpy.init)."""
    for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_DEFAULT_PROFILES_FILE", "ROS_DOMAIN_ID"):
        os.environ[k] = env[k]


def tracker_executable() -> list[str]:
    """$RTS_TRACKER_EXE (a command line, e.g. a colcon-installed node), else the console script next to this
    Python (pip install), else `python -m rts_ros.ros.main`."""
    if os.environ.get("RTS_TRACKER_EXE"):
        return os.environ["RTS_TRACKER_EXE"].split()
    exe = Path(sys.executable).with_name("rts_tracker")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "rts_ros.ros.main"]


class NodeProcess:
    """`rts_tracker --ros-args <args>` in a subprocess; output goes to a log file."""

    def __init__(self, ros_args: Sequence[str], env: dict[str, str], log_path: Path):
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(tracker_executable() + ["--ros-args", *ros_args], env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        if self.alive():
            self.proc.send_signal(2)  # SIGINT: rclpy shuts down cleanly
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


class Client:
    """An rclpy node in this process with an executor thread; records what it receives."""

    def __init__(self, name: str = "rts_test_client"):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        if not rclpy.ok():
            rclpy.init()
        self.node = rclpy.create_node(name)
        self._cv = threading.Condition()
        self.received: dict[str, list] = defaultdict(list)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def subscribe(self, msg_type: Any, topic: str, qos: Any = 10, key: str | None = None) -> Any:
        key = key or topic

        def cb(msg, key=key):
            with self._cv:
                self.received[key].append(msg)
                self._cv.notify_all()
        return self.node.create_subscription(msg_type, topic, cb, qos)

    def wait_for(self, pred: Callable[[], bool], timeout: float) -> bool:
        """Wait until pred() (evaluated under the lock) holds; False on timeout."""
        end = time.monotonic() + timeout
        with self._cv:
            while not pred():
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(min(left, 0.1))
            return True

    def msgs(self, key: str) -> list:
        with self._cv:
            return list(self.received[key])

    def clear(self, key: str | None = None) -> None:
        with self._cv:
            if key is None:
                self.received.clear()
            else:
                self.received[key] = []

    def call(self, srv_type: Any, name: str, request: Any, timeout: float = 20.0) -> Any:
        cli = self.node.create_client(srv_type, name)
        try:
            if not cli.wait_for_service(timeout_sec=timeout):
                raise TimeoutError(f"service {name} not available after {timeout} s")
            fut = cli.call_async(request)
            end = time.monotonic() + timeout
            while not fut.done() and time.monotonic() < end:
                time.sleep(0.01)
            if not fut.done():
                raise TimeoutError(f"service {name} did not answer within {timeout} s")
            return fut.result()
        finally:
            self.node.destroy_client(cli)

    def close(self) -> None:
        import rclpy

        self._executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
