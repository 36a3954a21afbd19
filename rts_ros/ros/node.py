"""The rts_tracker lifecycle node: ROS wiring around FrameProcessor (topics, QoS, services, parameters).

configure: validate parameters, load the weights and warm up (on the compute thread, which then runs the
frame loop: all torch work stays on one thread), create publishers and services. activate: subscribe to
`image` and `rts/init`. deactivate: unsubscribe and forget the target. cleanup: stop the frame loop, drop
publishers and free the model (GPU memory).
"""
from __future__ import annotations

import gc
import inspect
import logging
import math
import sys
import threading
import time
import traceback
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.task import Future as RclpyFuture
from sensor_msgs.msg import CompressedImage, Image
from std_srvs.srv import Trigger

from rts_ros.errors import ConfigError, RTSError
from rts_ros.msg import InitTarget, Track
from rts_ros.srv import StartTracking
from rts_ros.ros import messages
from rts_ros.ros.compute_thread import ComputeThread
from rts_ros.ros.frames import Frame, FrameStore, InitTicket
from rts_ros.ros.params import PTYPES, NodeSettings, all_param_specs, validate
from rts_ros.ros.processor import FrameProcessor, stamp_ns
from rts_ros.ros.stats import Stats

WEIGHTS_HELP = ("get a model: convert the official RTS checkpoint with `rts-convert` or train one with `rts-train` "
                "(README, section Weights), then set the parameter `weights` to the folder")
THROTTLE_S = 5.0   # the same bad-input message at most once per this many seconds
START_TIMEOUT_S = 10.0   # rts/start's wait for an image and the start when the request gives none
START_TIMEOUT_MAX_S = 3600.0   # longer waits are cut to this (a timer of 1e10 s overflows rclpy's int64 ns)
START_GRACE_S = 30.0     # ... and for a start the worker already began (a first start may load caches)


class _RosLogHandler(logging.Handler):
    """Forwards the library's Python log records (logger "rts_ros") to the node's ROS logger (/rosout)."""

    def __init__(self, node: "TrackerNode"):
        super().__init__(logging.WARNING)
        self.node = node

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            level = "error" if record.levelno >= logging.ERROR else "warn" if record.levelno >= logging.WARNING \
                else "info"
            self.node.log(level, f"lib-{text[:60]}", f"{record.name}: {text}")
        except Exception:  # logging must never break the caller
            self.handleError(record)


class TrackerNode(LifecycleNode):
    def __init__(self, node_name: str = "rts_tracker", **kwargs: Any):
        super().__init__(node_name, **kwargs)
        self._specs = {s.name: s for s in all_param_specs()}
        for spec in self._specs.values():
            self.declare_parameter(spec.name, spec.default, ParameterDescriptor(
                type=PTYPES[spec.ptype], description=spec.description))
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._log_handler = _RosLogHandler(self)
        lib_logger = logging.getLogger("rts_ros")
        self._lib_logger_state = (lib_logger.level, lib_logger.propagate)   # restored by release()
        lib_logger.addHandler(self._log_handler)
        lib_logger.setLevel(logging.WARNING)
        lib_logger.propagate = False   # printed once, by ROS
        self.settings: NodeSettings | None = None
        self.tracker = None
        self.stats = Stats()
        self._store: FrameStore | None = None
        self._processor: FrameProcessor | None = None
        self._stop = threading.Event()
        self._compute = ComputeThread("rts_worker")   # loads, warms up and tracks: one thread for all torch work
        self._worker: Future | None = None             # the frame loop running on it while configured
        self._subs: list = []
        self._pubs: dict[str, Any] = {}
        self._reset_srv = None
        self._start_srv = None
        # rts/start awaits the worker as a coroutine; its timeout timer must run while the service holds its group
        self._start_group = MutuallyExclusiveCallbackGroup()
        self._start_timer_group = ReentrantCallbackGroup()
        self._last_error = ""
        self._throttle: dict[str, tuple[float, int]] = {}
        self._throttle_lock = threading.Lock()
        self._active = False
        self._last_image = 0.0
        self._image_topic = ""   # resolved name of the image subscription (set on activate)
        # /diagnostics reports in every lifecycle state (an unconfigured node says why)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self.create_timer(self._param("diagnostics_period"), self._publish_diagnostics)

    def _param(self, name: str) -> Any:
        return self.get_parameter(name).value

    # --- parameters --------------------------------------------------------------------------------------
    def _on_set_parameters(self, params) -> SetParametersResult:
        if not any(p.name in self._specs for p in params):
            return SetParametersResult(successful=True)   # e.g. use_sim_time: not ours to judge
        values = {name: self._param(name) for name in self._specs}
        for p in params:
            if p.name not in self._specs:
                continue
            values[p.name] = p.value
        try:
            validate(values)
        except ConfigError as e:
            return SetParametersResult(successful=False, reason=str(e))
        except Exception as e:  # noqa: BLE001 - a validation bug must refuse the value, not end the node
            return SetParametersResult(successful=False, reason=f"could not validate the value ({e!r})")
        if self.settings is not None:
            self.get_logger().info(
                f"parameter(s) {[p.name for p in params]} changed: they apply at the next configure "
                "(lifecycle cleanup, then configure)")
        return SetParametersResult(successful=True)

    # --- logging -------------------------------------------------------------------------------------------
    def log(self, level: str, key: str, text: str) -> None:
        """Log `text`; the same key again within THROTTLE_S is counted and reported with the next line."""
        now = time.monotonic()
        with self._throttle_lock:
            last, suppressed = self._throttle.get(key, (-1e9, 0))
            if now - last < THROTTLE_S and level != "info":
                self._throttle[key] = (last, suppressed + 1)
                return
            self._throttle[key] = (now, 0)
        if suppressed:
            text += f" (and {suppressed} more like this in the last {THROTTLE_S:.0f} s)"
        logger = self.get_logger()
        # one call site per severity: rclpy refuses a call site whose severity changes between calls
        if level == "info":
            logger.info(text)
        elif level == "warn":
            logger.warning(text)
        else:
            logger.error(text)

    # --- lifecycle -----------------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            return self._configure()
        except Exception as e:  # never leave the node in ErrorProcessing over a bug: say what happened
            self._teardown()
            return self._fail(f"configure failed unexpectedly: {e!r}\n{traceback.format_exc()}")

    def _configure(self) -> TransitionCallbackReturn:
        try:
            self.settings = validate({name: self._param(name) for name in self._specs})
        except ConfigError as e:
            return self._fail(f"configure failed: invalid parameters: {e}")
        s = self.settings
        if self._diag_timer.timer_period_ns != round(s.diagnostics_period * 1e9):
            self.destroy_timer(self._diag_timer)   # the timer was made at start, from the value of that time
            self._diag_timer = self.create_timer(s.diagnostics_period, self._publish_diagnostics)
        t0 = time.perf_counter()
        try:
            threads, tuner = self._compute.call(_cpu_threads, s.cpu_threads)   # OpenMP's count is per thread
            self.tracker = self._compute.call(self._load_tracker, s)
        except RTSError as e:
            return self._fail(f"configure failed: cannot load the tracker weights: {e}. To fix: {WEIGHTS_HELP}")
        except Exception as e:  # torch/OS errors of a broken install or file: still one clear line, no crash
            return self._fail(f"configure failed: loading the weights from {s.weights or 'the default folder'!r} "
                              f"raised {e!r}. To fix: {WEIGHTS_HELP}")
        load_s = time.perf_counter() - t0
        if s.fp16 and not _supports_fp16():
            self.get_logger().warning(
                "fp16 requested but this tracker library has no half-precision mode: running fp32")
        if s.warmup:
            self._compute.call(self._warmup)
        self._pubs = {
            "mask": self.create_publisher(Image, "rts/mask", 10),
            "bbox": self.create_publisher(Track, "rts/bbox", 10),
            "debug": self.create_publisher(Image, "rts/debug_image", 2),
            # what image_transport's compressed plugin would publish; encoded only while someone subscribes
            "mask_compressed": self.create_publisher(CompressedImage, "rts/mask/compressed", 10),
            "debug_compressed": self.create_publisher(CompressedImage, "rts/debug_image/compressed", 2),
        }
        self._reset_srv = self.create_service(Trigger, "rts/reset", self._on_reset)
        self._start_srv = self.create_service(StartTracking, "rts/start", self._on_start,
                                              callback_group=self._start_group)
        self._store = FrameStore(s.frame_buffer)
        self._processor = FrameProcessor(self.tracker, self._store, self.stats, self._publish, self.log,
                                         s.publish_idle, tuner)
        self._stop.clear()
        self._worker = self._compute.submit(self._processor.run, self._stop)
        self._last_error = ""
        self.get_logger().info(
            f"configured: model from {s.weights or _default_folder()} on {self.tracker.device}, CPU threads: "
            f"{threads} (load {load_s:.1f} s{', warmed up' if s.warmup else ''})")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        s = self.settings
        # sensor-data QoS (best effort, volatile) unless reliable is asked for; depth from the parameters
        image_qos = QoSProfile(
            depth=s.image_depth, history=HistoryPolicy.KEEP_LAST, durability=qos_profile_sensor_data.durability,
            reliability=ReliabilityPolicy.RELIABLE if s.image_reliable else ReliabilityPolicy.BEST_EFFORT)
        # image_transport's naming: the compressed stream of base topic T is T/compressed (after remapping T)
        self._image_topic = self.resolve_topic_name("image")
        if s.image_compressed:
            self._image_topic = self._image_topic.rstrip("/") + "/compressed"
        self._subs = [
            self.create_subscription(CompressedImage if s.image_compressed else Image, self._image_topic,
                                     self._on_image, image_qos),
            self.create_subscription(InitTarget, "rts/init", self._on_init, QoSProfile(
                depth=10, reliability=ReliabilityPolicy.RELIABLE)),
        ]
        self._active = True
        kind = "compressed images" if s.image_compressed else "images"
        self.get_logger().info(f"active: tracking {kind} from {self._image_topic}; send a box on "
                               f"{self.resolve_topic_name('rts/init')} to start")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        if self._store is not None:
            self._store.clear()
        if self._processor is not None:
            self._processor.reset()
        self.get_logger().info("inactive: unsubscribed, target forgotten")
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        self.get_logger().info("cleaned up: model released")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        """Unsubscribe, stop the worker and free the model, whatever the lifecycle state."""
        lib_logger = logging.getLogger("rts_ros")
        if self._log_handler in lib_logger.handlers:
            lib_logger.removeHandler(self._log_handler)
            level, lib_logger.propagate = self._lib_logger_state
            lib_logger.setLevel(level)
        self._active = False
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        self._teardown()
        self._compute.close()

    def _fail(self, text: str) -> TransitionCallbackReturn:
        self._last_error = text
        self.get_logger().error(text)
        self.tracker = None
        return TransitionCallbackReturn.FAILURE

    def _teardown(self) -> None:
        self._stop.set()
        if self._store is not None:
            self._store.close()
        if self._worker is not None:
            try:
                self._worker.result(timeout=30.0)
            except FutureTimeout:
                self.get_logger().error("the tracking worker did not stop within 30 s (a frame still running?)")
        self._worker = None
        for pub in self._pubs.values():
            self.destroy_publisher(pub)
        self._pubs = {}
        for srv in (self._reset_srv, self._start_srv):
            if srv is not None:
                self.destroy_service(srv)
        self._reset_srv = self._start_srv = None
        self._store = self._processor = None
        self.tracker = None
        self.settings = None
        _release_memory()

    # --- model ---------------------------------------------------------------------------------------------
    @staticmethod
    def _load_tracker(s: NodeSettings):
        from rts_ros.api import Tracker  # torch is imported here, not at node construction

        # model_tracker_settings: tracker.* values equal to the rts50 defaults defer to the model's recommended
        # settings (rts.json `tracker`, e.g. the small default model's crop size); any other value is applied
        # on top. Without it the parameters are the whole configuration.
        from rts_ros.api import TrackerConfig

        kwargs: dict[str, Any] = {"device": s.device}
        if s.model_tracker_settings:
            defaults = TrackerConfig().to_dict()
            kwargs["overrides"] = {k: v for k, v in s.tracker.to_dict().items() if v != defaults[k]}
        else:
            kwargs["config"] = s.tracker
        if _supports_fp16():
            kwargs["fp16"] = s.fp16
        return Tracker.from_weights(s.weights or None, **kwargs)

    def _warmup(self) -> None:
        """One init and one track on a synthetic image, so the first real frame does not pay for lazy setup."""
        warm = getattr(self.tracker, "warmup", None)
        t0 = time.perf_counter()
        if callable(warm):
            warm()
        else:
            rng = np.random.default_rng(0)
            img = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
            mask = np.zeros((240, 320), bool)
            mask[90:150, 130:190] = True
            # with STA, warm it up too (box-only init); without, a mask skips GrabCut on noise
            has_sta = getattr(self.tracker, "sta", None) is not None
            self.tracker.initialize(img, box=(130, 90, 60, 60), mask=None if has_sta else mask)
            self.tracker.track(img)
            self.tracker.reset()
        self.get_logger().info(f"warm-up took {time.perf_counter() - t0:.1f} s")

    # --- callbacks (executor thread: keep them short) -----------------------------------------------------
    def _on_image(self, msg: Image | CompressedImage) -> None:
        self._last_image = time.monotonic()
        self._store.put_frame(msg, stamp_ns(msg.header))

    def _on_init(self, msg: InitTarget) -> None:
        self._store.put_init(msg)

    def _on_reset(self, request, response):
        idle = self.tracker is None or int(self.tracker.state) == 0
        if idle and not self._store.init_waiting():
            self.log("info", "reset-idle", "reset requested while idle: nothing to reset")
            response.success, response.message = True, "already idle: nothing to reset"
        else:
            self._store.request_reset()
            response.success, response.message = True, "tracking stopped; send a new init to start again"
        return response

    async def _on_start(self, request, response):
        """rts/start: hand the init to the worker like rts/init, then await its answer (bounded). A coroutine:
        the executor keeps taking images while it waits."""
        store = self._store
        if not self._active or store is None:
            response.success = False
            response.message = "the node is not active: configure and activate it first (autostart does both)"
            return response
        timeout = float(request.timeout) if request.timeout > 0 else START_TIMEOUT_S
        if not math.isfinite(timeout):
            timeout = START_TIMEOUT_S
        timeout = min(timeout, START_TIMEOUT_MAX_S)
        ticket = InitTicket()
        store.put_init(request.target, ticket)
        await self._answer_of(ticket, timeout)
        if not ticket.answered:
            no_image = "no image has arrived yet" if not store.has_frames else "the start did not finish"
            if not store.withdraw_init(ticket, f"{no_image} within {timeout:.1f} s: request withdrawn (is the camera "
                                               f"publishing on {self._image_topic}?)"):
                await self._answer_of(ticket, START_GRACE_S)   # the worker has it: its answer is on the way
        if not ticket.answered:
            ticket.answer(False, f"no answer from the tracking worker within {timeout + START_GRACE_S:.0f} s")
        response.success, response.message = ticket.success, ticket.message
        if ticket.success and ticket.frame is not None:
            w, h = ticket.image_wh
            response.track = messages.track_message(ticket.frame.msg.header, ticket.result, w, h, 0)
        return response

    async def _answer_of(self, ticket: InitTicket, timeout: float) -> None:
        """Wait, without blocking the executor, until the ticket is answered or `timeout` s have passed."""
        executor = self.executor
        settled = RclpyFuture(executor=executor)

        def settle() -> None:   # from the worker thread (answer) or the executor (timer)
            if not settled.done():
                settled.set_result(None)
                executor.wake()   # the awaiting coroutine runs again on the executor's next turn

        timer = self.create_timer(timeout, settle, callback_group=self._start_timer_group)
        ticket.on_answer(settle)
        try:
            await settled
        finally:
            self.destroy_timer(timer)

    # --- outputs (worker thread) ---------------------------------------------------------------------------
    def _publish(self, frame: Frame, result, rgb: np.ndarray, tracker_s: float, skipped: int) -> None:
        header = frame.msg.header
        h, w = rgb.shape[:2]
        track = messages.track_message(header, result, w, h, skipped)
        try:
            pubs = self._pubs
            if result is not None:
                pubs["mask"].publish(messages.mask_message(header, result.mask))
                if pubs["mask_compressed"].get_subscription_count() > 0:
                    pubs["mask_compressed"].publish(messages.mask_compressed_message(header, result.mask))
            want_raw = pubs["debug"].get_subscription_count() > 0
            want_jpeg = pubs["debug_compressed"].get_subscription_count() > 0
            if want_raw or want_jpeg:  # the overlay costs time: only when someone looks
                overlay = messages.debug_overlay(rgb, result, track)
                if want_raw:
                    pubs["debug"].publish(messages.debug_message(header, overlay))
                if want_jpeg:
                    pubs["debug_compressed"].publish(messages.debug_compressed_message(header, overlay))
            pubs["bbox"].publish(track)
        except Exception as e:  # e.g. RCLError "cannot publish data" under load: report, keep going
            self.log("error", "publish", f"publishing failed: {e!r}")
            return
        if result is not None and result.frame_index > 0:  # tracked frames only: an init may use an old frame
            now_ns = self.get_clock().now().nanoseconds
            self.stats.frame_done((now_ns - frame.stamp_ns) / 1e9, tracker_s)

    # --- diagnostics -----------------------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        tracker = self.tracker
        lvl, summary = DiagnosticStatus.OK, ""
        state = "IDLE"
        if tracker is None:
            lvl, summary = DiagnosticStatus.ERROR, self._last_error or "not configured"
        else:
            state = messages.STATE_NAMES.get(int(tracker.state), "?")
            if not self._active:
                lvl, summary = DiagnosticStatus.WARN, "inactive"
            elif time.monotonic() - self._last_image > 2.0:
                topic = self._image_topic or self.resolve_topic_name("image")
                lvl, summary = DiagnosticStatus.WARN, f"no image for 2 s on {topic}"
            elif state == "LOST":
                lvl, summary = DiagnosticStatus.WARN, "target lost"
            else:
                summary = state.lower()
        extra = {"state": state, "device": tracker.device if tracker is not None else "none",
                 "lifecycle": "active" if self._active else ("inactive" if tracker is not None else "unconfigured")}
        msg = messages.diagnostics_message(
            self.get_clock().now().to_msg(), f"{self.get_fully_qualified_name()}: tracker", extra["device"], lvl,
            summary, self.stats.snapshot(), extra)
        try:
            self._diag_pub.publish(msg)
        except Exception as e:
            self.log("error", "publish-diag", f"publishing /diagnostics failed: {e!r}")


def _default_folder() -> str:
    from rts_ros.weights import default_weights_dir

    return f"{default_weights_dir()} (the default model)"


def _cpu_threads(n: int) -> tuple[str, Any]:
    """Apply the cpu_threads parameter on the calling (compute) thread: its label for the log, and the
    ThreadTuner the frame loop feeds when it is -1 (auto), else None."""
    from rts_ros.api import ThreadTuner, set_cpu_threads

    if n == -1:
        return "auto (2 or 1)", ThreadTuner()
    return str(set_cpu_threads(n)), None


def _supports_fp16() -> bool:
    from rts_ros.api import Tracker

    return "fp16" in inspect.signature(Tracker.from_weights).parameters


def _release_memory() -> None:
    """Drop the model's memory now (cleanup): collect, then return cached CUDA blocks if torch used CUDA."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
