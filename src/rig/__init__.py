"""rig: RIG (Visual Reinforcement Learning with Imagined Goals) for ROS 2 robot arms.

Packages: `rig_sim` (MuJoCo task suite + sim bridge node), `rig_learn` (VAE, replay with
relabelling, TD3/SAC; no ROS), `rig_perception` (cameras, preprocessing, encoder node),
`rig_policy` (policy node, safety filter, arm adapters), `rig_trainer` (bag recorder, online trainer).
"""
__version__ = '0.1.0'
