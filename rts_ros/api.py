"""Public API of rts_ros (ROS-free):

    from rts_ros.api import Tracker
    tracker = Tracker.from_weights("weights/default", device="auto")
    tracker.initialize(first_rgb, box=(x, y, w, h)); result = tracker.track(next_rgb)
"""
from rts_ros.tracker.config import TrackerConfig
from rts_ros.tracker.cpu_threads import set_cpu_threads
from rts_ros.tracker.thread_tuner import ThreadTuner
from rts_ros.tracker.tracker import Tracker
from rts_ros.tracker.types import TrackResult, TrackState

__all__ = ["ThreadTuner", "Tracker", "TrackResult", "TrackState", "TrackerConfig", "set_cpu_threads"]
