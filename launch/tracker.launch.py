"""Start the rts_tracker lifecycle node (autostart: configures and activates itself).

    ros2 launch rts_ros tracker.launch.py image_topic:=/camera/color/image_raw
    ros2 launch rts_ros tracker.launch.py namespace:=arm_cam weights:=/models/rts50 device:=cuda

Arguments: namespace (default none), params_file (default: this package's config/tracker.yaml),
image_topic (remapped onto the node's `image`), image_transport (raw, or compressed: subscribe
sensor_msgs/CompressedImage on image_topic + /compressed), weights (folder; empty = the shipped model), device
(auto/cpu/cuda). image_transport, weights and device given here override the params file.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
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
        DeclareLaunchArgument("image_transport", default_value="raw",
                              description="raw (sensor_msgs/Image) or compressed (CompressedImage on "
                                          "image_topic/compressed)"),
        DeclareLaunchArgument("weights", default_value="",
                              description="weights folder; empty = the shipped default model"),
        DeclareLaunchArgument("device", default_value="auto", description="auto, cpu, cuda or cuda:N"),
    ]
    node = LifecycleNode(
        package="rts_ros",
        executable="rts_tracker",
        name="rts_tracker",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[LaunchConfiguration("params_file"),
                    # value_type=str keeps an empty weights argument a string (YAML would read it as null)
                    {"image_transport": ParameterValue(LaunchConfiguration("image_transport"), value_type=str),
                     "weights": ParameterValue(LaunchConfiguration("weights"), value_type=str),
                     "device": ParameterValue(LaunchConfiguration("device"), value_type=str)}],
        remappings=[("image", LaunchConfiguration("image_topic"))],
    )
    return LaunchDescription(args + [node])
