"""The RTS tracking algorithm (spec §3): crops, memories, both branches, box initialisation, config.

numpy + torch only, no ROS. The public names are re-exported by rts_ros.api.
"""
from rts_ros.tracker.config import TrackerConfig
from rts_ros.tracker.types import TrackResult, TrackState

__all__ = ["Tracker", "TrackResult", "TrackState", "TrackerConfig"]


def __getattr__(name):
    if name == "Tracker":
        from rts_ros.tracker.tracker import Tracker

        return Tracker
    raise AttributeError(name)
