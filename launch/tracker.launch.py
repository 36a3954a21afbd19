"""Start the rts_tracker lifecycle node (autostart: configures and activates itself).

    ros2 launch rts_ros tracker.launch.py image_topic:=/camera/color/image_raw
    ros2 launch rts_ros tracker.launch.py namespace:=arm_cam weights:=/models/rts50 device:=cuda

Arguments: namespace (default none), params_file (default: this package's config/tracker.yaml),
image_topic (remapped onto the node's `image`), image_transport (raw, or compressed: subscribe
sensor_msgs/CompressedImage on image_topic + /compressed), weights (folder; empty = the shipped model), device
(auto/cpu/cuda). image_transport, weights and device override the params file only when given: left empty,
the params file's values stand.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    share = get_package_share_directory("rts_ros")
    args = [
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its topics"),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "tracker.yaml"),
                              description="ROS parameters file (every parameter is documented in it)"),
        DeclareLaunchArgument("image_topic", default_value="image", description="camera topic (sensor_msgs/Image)"),
        DeclareLaunchArgument("image_transport", default_value="",
                              description="raw (sensor_msgs/Image) or compressed (CompressedImage on "
                                          "image_topic/compressed); empty = the params file's (raw)"),
        DeclareLaunchArgument("weights", default_value="",
                              description="weights folder; empty = the params file's (the shipped default model)"),
        DeclareLaunchArgument("device", default_value="",
                              description="auto, cpu, cuda or cuda:N; empty = the params file's (auto)"),
    ]
    return LaunchDescription(args + [OpaqueFunction(function=_tracker_node)])


# the arguments that override a params-file entry, but only when the user gives them
OVERRIDABLE = ("image_transport", "weights", "device")


def _tracker_node(context):
    overrides = {}
    for name in OVERRIDABLE:
        value = LaunchConfiguration(name).perform(context)
        if value:
            # value_type=str keeps a path or a word a string (YAML would read some values as other types)
            overrides[name] = ParameterValue(value, value_type=str)
    node = LifecycleNode(
        package="rts_ros",
        executable="rts_tracker",
        name="rts_tracker",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[LaunchConfiguration("params_file")] + ([overrides] if overrides else []),
        remappings=[("image", LaunchConfiguration("image_topic"))],
    )
    return [node]
