"""Entry point of the `rts_tracker` executable: `rts_tracker --ros-args -p weights:=... -r image:=/camera/image`."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from rts_ros.ros.node import TrackerNode

    rclpy.init(args=sys.argv if argv is None else argv)
    node = TrackerNode()
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
