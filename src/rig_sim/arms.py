"""The arms rig_sim can attach to a task scene, taken from robosuite's MIT-licensed MJCF assets.

Only robosuite's asset files are used (it is installed with --no-deps; importing it would fail), so
the package is located with `importlib.util.find_spec` instead of `import robosuite`.

Each arm is described by what rig_sim needs on top of robosuite's robot.xml: which bodies form the
kinematic chain (for the cheap capsule figure drawn at mesh_fidelity='simple'), which body the hand
tool is mounted on, the joint configuration the home-pose IK starts from, and extra joint damping
and armature that keep the mocap-welded arm stable at the physics timestep.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ArmSpec:
    """Static description of one arm model."""
    name: str
    robot_xml: str                  # relative to robosuite/models/assets/robots/
    chain: tuple[str, ...]          # base-to-hand body names; consecutive origins get a capsule
    capsule_radii: tuple[float, ...]  # one per capsule (len(chain) - 1)
    hand_body: str                  # flange body the hand tool is attached to (its +z points out)
    ik_seed_qpos: tuple[float, ...]  # roughly "hand down in front of the robot"; IK starts here
    joint_damping: float            # N*m*s/rad added to every arm joint
    joint_armature: float           # kg*m^2 added to every arm joint
    max_joint_velocity: tuple[float, ...]  # rad/s, the real arm's limits (the models carry none)


ARM_SPECS: dict[str, ArmSpec] = {
    'sawyer': ArmSpec(
        name='sawyer',
        robot_xml='sawyer/robot.xml',
        chain=('right_arm_base_link', 'right_l0', 'right_l1', 'right_l2', 'right_l3', 'right_l4',
               'right_l5', 'right_l6', 'right_hand'),
        capsule_radii=(0.075, 0.07, 0.065, 0.06, 0.055, 0.05, 0.045, 0.04),
        hand_body='right_hand',
        # robosuite's Sawyer init_qpos, with the last wrist joint one turn lower (3.3161 - 2*pi):
        # the hand-down pose then has j6 near -2.1 rad instead of 4.2, far from its 4.71 limit.
        ik_seed_qpos=(0.0, -1.18, 0.0, 2.18, 0.0, 0.57, -2.9671),
        joint_damping=2.0,
        joint_armature=0.05,
        max_joint_velocity=(1.74, 1.328, 1.957, 1.957, 3.485, 3.485, 4.545),   # sawyer_description URDF
    ),
    'ur5e': ArmSpec(
        name='ur5e',
        robot_xml='ur5e/robot.xml',
        chain=('fixed_base_link', 'shoulder_link', 'upper_arm_link', 'forearm_link', 'wrist_1_link',
               'wrist_2_link', 'wrist_3_link', 'right_hand'),
        capsule_radii=(0.065, 0.06, 0.055, 0.045, 0.04, 0.04, 0.035),
        hand_body='right_hand',
        # robosuite's UR5e init_qpos.
        ik_seed_qpos=(-0.470, -1.735, 2.480, -2.275, -1.590, -1.991),
        joint_damping=2.0,
        joint_armature=0.05,
        max_joint_velocity=(3.14,) * 6,   # UR5e datasheet: 180 deg/s on every joint
    ),
}

ARMS: tuple[str, ...] = tuple(ARM_SPECS)


def robosuite_robots_dir() -> Path:
    """Directory holding robosuite's robot MJCF folders (sawyer/, ur5e/, ...)."""
    spec = importlib.util.find_spec('robosuite')
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            'robosuite is not installed; rig_sim needs its arm assets '
            '(pip install --no-deps -r requirements-assets.txt)')
    return Path(spec.submodule_search_locations[0]) / 'models' / 'assets' / 'robots'


def robot_xml_path(arm: str) -> Path:
    """Absolute path of the arm's robosuite robot.xml."""
    return robosuite_robots_dir() / ARM_SPECS[arm].robot_xml
