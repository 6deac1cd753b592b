"""rig_policy: acting on latents, and keeping the arm safe.

`safety` (pure safety-filter logic, no ROS), `safety_filter_node` (the node between policy and arm).
Submodules are imported explicitly so that ROS-free users never load rclpy.
"""
