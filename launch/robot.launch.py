"""Real cell: camera + encoder + policy + safety filter + arm adapter + recorder (no sim, no trainer).

    ros2 launch rig robot.launch.py arm:=ur5e task:=reach checkpoint:=/path/to/ckpt cmd_topic:=/servo_node/delta_twist_cmds

`cmd_topic` remaps the safety filter's `rig/cmd` to the arm's input: MoveIt Servo's
`/servo_node/delta_twist_cmds` on a UR with MoveIt; leave it empty to drive the arm through the arm
adapter (UR forward_velocity_controller, or Sawyer via ros1_bridge); with Servo the adapter still runs
(output none) to publish rig/ee_pose from joint_states. See docs/real_robot.md.
Node list and parameter files come from `rig.graph`, like `rig up robot`.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from rig import graph


def _nodes(context, *args, **kwargs):
    values = {name: LaunchConfiguration(name).perform(context) for name in graph.ARGUMENTS}
    cmd_topic = LaunchConfiguration('cmd_topic').perform(context)
    files = [str(p) for p in graph.parameter_files('robot', values['arm'], values['camera'])]
    nodes = []
    for spec in graph.ROBOT_NODES:
        params = graph.argument_parameters(spec, values)
        if spec.name == 'arm_adapter' and cmd_topic:
            # MoveIt Servo takes the twist; the adapter only turns joint_states into rig/ee_pose,
            # which the safety filter's workspace box needs.
            params['output'] = 'none'
        remappings = [('rig/cmd', cmd_topic)] if cmd_topic and spec.name == 'safety_filter' else []
        nodes.append(Node(
            package='rig', executable=spec.executable, name=spec.name, namespace=values['namespace'],
            parameters=files + [params], remappings=remappings,
            output='screen', emulate_tty=True,
        ))
    return nodes


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=f'rig.graph argument {name}')
         for name, default in graph.ARGUMENTS.items()]
        + [DeclareLaunchArgument('cmd_topic', default_value='',
                                 description='remap rig/cmd to this topic (e.g. /servo_node/delta_twist_cmds)'),
           OpaqueFunction(function=_nodes)])
