"""Geometry and goal definitions of the three tasks, modelled on the RIG paper's Sawyer tasks.

All positions are metres in the world frame: the table top is z=0, the arm base is at the origin
facing +x. The goal region of reach is 0.4 m wide (y) x 0.2 m deep (x), as in the paper, centred
0.55 m in front of the arm base (close enough for the UR5e's shorter reach). Push follows
multiworld's SawyerPushNIPSEasy (the environment of the paper's and Skew-Fit's pusher results): a
hand box around the puck's start with the hand starting on the robot's side of the puck, puck goals
0.3 m x 0.2 m.

The scene objects themselves (table, puck, door, cameras) live in the MJCF files under sim/; the
numbers here that refer to them (puck size, door handle gap) must agree with those files.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Goal region of reach and push (hand and puck goals): x in [0.45, 0.65], y in [-0.2, 0.2].
GOAL_REGION_LOW = (0.45, -0.20)
GOAL_REGION_HIGH = (0.65, 0.20)
REGION_CENTRE = (0.55, 0.0)

# Height of the hand tool's tip centre for the planar tasks: its 2.5 cm sphere clears the table by
# 5 mm and meets the 4 cm tall puck at mid-height.
PLANAR_HAND_Z = 0.03
# Push (after SawyerPushNIPSEasy): the hand moves in a box centred on the puck's start, its goals lie
# in that box, and puck goals lie in a 0.3 m x 0.2 m region around it. The hand starts on the robot's
# side of the puck, as NIPSEasy's hand does (its reset target (0, 0.4) is clipped to the near edge
# of its box, in front of the puck). A small hand box is what makes push learnable in a 200k-step
# budget: with the hand free over the whole 0.4 x 0.2 m region (plus margins), an exploring hand
# rarely met the puck and even the state-based oracle left the puck untouched for its first ~85k
# steps (issue 3's notes). The box is 0.2 m wide like NIPSEasy's, and 0.16 m deep instead of 0.1 m
# because our puck and hand tip are larger (contact at 7.5 cm centre to centre, NIPSEasy 5.5 cm): the
# hand can pass the puck on either side and get behind it without touching it, so every push
# direction is open from the start. In the first version of this geometry (0.1 m deep, hand home
# beside the puck) the hand could not pass the puck, and goals on the hand's side failed even for
# the oracle.
PUSH_HAND_LOW = (0.47, -0.10)
PUSH_HAND_HIGH = (0.63, 0.10)
PUSH_PUCK_GOAL_LOW = (0.45, -0.15)
PUSH_PUCK_GOAL_HIGH = (0.65, 0.15)

PUCK_RADIUS = 0.05         # sim/push.xml geom "puck"
PUCK_Z = 0.02              # puck centre height when resting on the table
HAND_TIP_RADIUS = 0.025    # sphere at the end of the hand tool (scene.py)

# Door (sim/door.xml): hinge line and the centre of the gap between door face and handle grip, in
# the door body's frame (before rotation by the door angle about the hinge's -z axis).
DOOR_HINGE_XY = (0.71, 0.20)
DOOR_HANDLE_GAP_LOCAL_XY = (-0.05, -0.25)
DOOR_HAND_GOAL_Z = 0.14    # hand tip height inside the handle gap in goal states
DOOR_MAX_ANGLE = 1.0       # hinge range upper limit (rad), sim/door.xml
DOOR_GOAL_ANGLE_RANGE = (0.0, 0.8)

# Success thresholds reported in info['success'].
HAND_SUCCESS_DISTANCE = 0.05   # m
PUCK_SUCCESS_DISTANCE = 0.06   # m
DOOR_SUCCESS_ANGLE = 0.1       # rad


@dataclass(frozen=True)
class TaskSpec:
    """What distinguishes one task: its scene file, hand workspace, home pose and state layout."""
    name: str
    scene_xml: str                       # file under sim/
    planar: bool                         # hand moves in x-y at PLANAR_HAND_Z (actions are 2-D)
    workspace_low: tuple[float, float, float]
    workspace_high: tuple[float, float, float]
    hand_home: tuple[float, float, float]
    default_horizon: int
    state_names: tuple[str, ...]         # layout of RigScene.state()


TASK_SPECS: dict[str, TaskSpec] = {
    'reach': TaskSpec(
        name='reach', scene_xml='reach.xml', planar=True,
        workspace_low=(*GOAL_REGION_LOW, PLANAR_HAND_Z),
        workspace_high=(*GOAL_REGION_HIGH, PLANAR_HAND_Z),
        hand_home=(*REGION_CENTRE, PLANAR_HAND_Z),
        default_horizon=50,
        state_names=('hand_x', 'hand_y', 'hand_z'),
    ),
    'push': TaskSpec(
        name='push', scene_xml='push.xml', planar=True,
        workspace_low=(*PUSH_HAND_LOW, PLANAR_HAND_Z),
        workspace_high=(*PUSH_HAND_HIGH, PLANAR_HAND_Z),
        # The puck starts at the region centre; the hand starts on the robot's side of it (as in
        # NIPSEasy), at the near edge of the box, clear of it by 5 mm.
        hand_home=(PUSH_HAND_LOW[0], REGION_CENTRE[1], PLANAR_HAND_Z),
        default_horizon=100,
        state_names=('hand_x', 'hand_y', 'hand_z', 'puck_x', 'puck_y'),
    ),
    'door': TaskSpec(
        name='door', scene_xml='door.xml', planar=False,
        workspace_low=(0.40, -0.20, 0.05),
        # x stops 2 cm short of the closed door's face (x=0.70) minus the tip radius.
        workspace_high=(0.68, 0.20, 0.30),
        hand_home=(0.55, 0.0, 0.25),
        default_horizon=100,
        state_names=('hand_x', 'hand_y', 'hand_z', 'door_angle'),
    ),
}

TASKS: tuple[str, ...] = tuple(TASK_SPECS)


def door_handle_gap_xy(angle: float) -> np.ndarray:
    """World x-y of the handle gap's centre when the door is open by `angle` radians.

    The hinge axis is -z, so a positive angle swings the door's free edge towards the robot (-x).
    """
    local_x, local_y = DOOR_HANDLE_GAP_LOCAL_XY
    cos_a, sin_a = np.cos(angle), np.sin(angle)
    return np.array([DOOR_HINGE_XY[0] + cos_a * local_x + sin_a * local_y,
                     DOOR_HINGE_XY[1] - sin_a * local_x + cos_a * local_y])


def sample_goal_state(task: str, rng: np.random.Generator) -> np.ndarray:
    """A goal state (same layout as the task's state) from the task's goal distribution.

    reach: hand x-y uniform in the goal region.
    push: hand x-y uniform in the hand box, puck x-y uniform in the puck goal region, independent
        and redrawn while they would overlap (goal images must be physically possible).
    door: angle uniform in DOOR_GOAL_ANGLE_RANGE; the hand sits in the handle gap at that angle,
        where a hand that opened the door there would be.
    """
    if task == 'reach':
        return np.array([*rng.uniform(GOAL_REGION_LOW, GOAL_REGION_HIGH), PLANAR_HAND_Z])
    if task == 'push':
        while True:
            hand = rng.uniform(PUSH_HAND_LOW, PUSH_HAND_HIGH)
            puck = rng.uniform(PUSH_PUCK_GOAL_LOW, PUSH_PUCK_GOAL_HIGH)
            if np.linalg.norm(hand - puck) > PUCK_RADIUS + HAND_TIP_RADIUS:
                return np.array([*hand, PLANAR_HAND_Z, *puck])
    if task == 'door':
        angle = rng.uniform(*DOOR_GOAL_ANGLE_RANGE)
        return np.array([*door_handle_gap_xy(angle), DOOR_HAND_GOAL_Z, angle])
    raise ValueError(f'unknown task {task!r}; tasks: {list(TASKS)}')
