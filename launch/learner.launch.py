"""The learner host of a multi-host setup: the trainer and the episode receiver.

    ros2 launch rig learner.launch.py task:=reach data_dir:=$PWD/data     # on the GPU workstation
    ros2 launch rig sim.launch.py remote_learner:=true namespace:=env0     # on each actor host

The actors' learner links ship their closed episodes to the episode receiver, which writes them into
data_dir for the trainer; the trainer's checkpoints reach the actors over DDS (docs/interfaces.md,
"Across hosts"; docs/real_robot.md, "Train on a GPU machine"). Nodes, parameter files (the task's
values, then config/learner.yaml) and remappings come from `rig.graph.plan('learner', ...)`, the same
plan `rig up learner` runs.
"""
from rig.launch_graph import launch_description


def generate_launch_description():
    return launch_description('learner')
