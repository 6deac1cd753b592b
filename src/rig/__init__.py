"""rig: RIG (Visual Reinforcement Learning with Imagined Goals) for ROS 2 robot arms.

Packages, in layers that import only downwards: `rig_base` (configs, data files, QoS, message
conversion, node main); `rig_learn` (VAE, replay with relabelling, TD3/SAC; no ROS) and `rig_sim`
(MuJoCo task suite + sim bridge node); `rig_perception` (cameras, preprocessing, encoder node),
`rig_policy` (policy node, safety filter, arm adapters) and `rig_trainer` (bag recorder, online
trainer); `rig` itself: the command line, graph definition and bring-up.
"""
__version__ = '0.1.0'
