"""`ros2 launch` side of `rig.graph`: one LaunchDescription builder for both launch files.

Arguments, nodes, parameter files and remappings all come from `rig.graph.plan()`, the same plan
`rig up` runs, so a launch file holds nothing but the graph's name.
"""
from __future__ import annotations

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from rig import graph


def _nodes(context, graph_name: str):
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in graph.arguments(graph_name)}
    # A bad argument (task:=bogus) raises here, before any node starts, and launch reports it.
    files = [str(p) for p in graph.parameter_files(graph_name, values)]
    nodes = graph.plan(graph_name, values)
    return [Node(package='rig', executable=n.spec.executable, name=n.spec.name, namespace=n.namespace,
                 parameters=files + [n.parameters], remappings=list(n.remappings),
                 output='screen', emulate_tty=True)
            for n in nodes]


def launch_description(graph_name: str) -> LaunchDescription:
    return LaunchDescription(
        [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description,
                               **({'choices': list(a.choices)} if a.choices else {}))
         for a in graph.arguments(graph_name)]
        + [OpaqueFunction(function=_nodes, args=[graph_name])])
