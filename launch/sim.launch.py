"""Simulated RIG cell: per actor a sim bridge, encoder, policy, safety filter and recorder; one trainer.

    ros2 launch rig sim.launch.py task:=push arm:=sawyer data_dir:=$PWD/data practice:=true
    ros2 launch rig sim.launch.py namespace:='env0 env1' practice:=true    # two actors, one trainer
    ros2 launch rig sim.launch.py --show-args                              # every argument, described

Nodes, parameter files (the task's values, then config/sim.yaml) and remappings come from
`rig.graph.plan('sim', ...)`, the same plan `rig up sim` runs on a pip-only machine.
"""
from rig.launch_graph import launch_description


def generate_launch_description():
    return launch_description('sim')
