"""rts_ros: the RTS tracker (Robust Visual Tracking by Segmentation) as a library and a ROS 2 node.

The public API lives in :mod:`rts_ros.api` (imported lazily so that ``import rts_ros.msg`` does not
pull in torch).  The generated ROS interfaces ``rts_ros.msg`` are installed into another directory of
the same import package (site-packages or a colcon install space); ``extend_path`` merges them.
"""
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)  # noqa: F821 - lets rts_ros.msg come from the build
__version__ = "0.1.0"

_API = ("Tracker", "TrackResult", "TrackState", "TrackerConfig")


def __getattr__(name):
    if name in _API:
        from rts_ros import api

        return getattr(api, name)
    raise AttributeError(f"module 'rts_ros' has no attribute {name!r}")
