"""Simulated RIG cell: sim bridge + encoder + policy + safety filter + recorder, and the trainer.

    ros2 launch rig sim.launch.py task:=reach arm:=sawyer data_dir:=data checkpoint:='' namespace:=env0

The node list and parameter files come from `rig.graph`, the same source `rig up sim` composes from on
a pip-only machine.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from rig import graph


def _nodes(context, *args, **kwargs):
    values = {name: LaunchConfiguration(name).perform(context) for name in graph.ARGUMENTS}
    files = [str(p) for p in graph.parameter_files('sim')]
    nodes = []
    for spec in graph.SIM_NODES:
        nodes.append(Node(
            package='rig', executable=spec.executable, name=spec.name,
            namespace=values['namespace'] if spec.per_actor else '',
            parameters=files + [graph.argument_parameters(spec, values)],
            output='screen', emulate_tty=True,
        ))
    return nodes


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=f'rig.graph argument {name}')
         for name, default in graph.ARGUMENTS.items()]
        + [OpaqueFunction(function=_nodes)])
