"""Real cell: camera, encoder, policy, safety filter, arm adapter and recorder (the trainer runs apart).

    ros2 launch rig robot.launch.py arm:=ur5e task:=reach checkpoint:=/path/to/ckpt
    ros2 launch rig robot.launch.py arm:=ur5e cmd_topic:=/servo_node/delta_twist_cmds reset_service:=none
    ros2 launch rig robot.launch.py arm:=sawyer camera:=uvc      # joint_states from /robot/joint_states
    ros2 launch rig robot.launch.py --show-args                  # every argument, described

`cmd_topic` sends the safety filter's `rig/cmd` to MoveIt Servo instead of the arm adapter (which then
only turns joint_states into rig/ee_pose for the filter's workspace box). See docs/real_robot.md.
Nodes, parameter files and remappings come from `rig.graph.plan('robot', ...)`, like `rig up robot`.
"""
from rig.launch_graph import launch_description


def generate_launch_description():
    return launch_description('robot')
