"""Entry point of the `rts_tracker` executable: `rts_tracker --ros-args -p weights:=... -r image:=/camera/image`."""
from __future__ import annotations

import sys


USAGE = """usage: rts_tracker [--ros-args -p NAME:=VALUE ... --params-file FILE -r image:=TOPIC]

The RTS tracker as a ROS 2 lifecycle node. Subscribes `image` (sensor_msgs/Image) and `rts/init`
(rts_ros/InitTarget); publishes `rts/mask`, `rts/bbox` (rts_ros/Track), `rts/debug_image` (each mask and
debug image also as `/compressed`), /diagnostics; services `rts/start` (rts_ros/StartTracking: an init that
answers) and `rts/reset`. Every parameter is documented in config/tracker.yaml (python -m rts_ros.ros.params).
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv if argv is None else argv
    own = args[1:args.index("--ros-args")] if "--ros-args" in args else args[1:]
    if "-h" in own or "--help" in own:
        print(USAGE, end="")
        return 0
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from rts_ros.ros.node import TrackerNode

    rclpy.init(args=args)
    node = TrackerNode()
    # one thread: rclpy's MultiThreadedExecutor delayed images by 0.1-3 s at times on a 2-core CPU (make demo);
    # rts/start awaits the worker as a coroutine instead of blocking a thread
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        _autostart(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.release()
        node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
    return 0


def _autostart(node) -> None:
    """autostart: configure then activate; a failed configure leaves the node running, unconfigured."""
    from rclpy.lifecycle import TransitionCallbackReturn

    if not node.get_parameter("autostart").value:
        node.get_logger().info("autostart is false: waiting for lifecycle transitions (configure, activate)")
        return
    if node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
        node.trigger_activate()


if __name__ == "__main__":
    sys.exit(main())
