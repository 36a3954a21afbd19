"""The ROS 2 layer: the rts_tracker lifecycle node and its helpers. The only package that imports rclpy."""
