"""A simulated real cell (no ROS): an arm as its driver presents it, in a task scene, in wall-clock time.

The robot graph talks to a physical arm through its driver: joint states out, joint velocity commands
(or a joint trajectory) in, and a camera driver beside it. `SimulatedArm` is the physics behind
simulated drivers that speak exactly those interfaces (`rig_sim.cell_node`), so the robot graph can
be rehearsed unchanged:

- the arm is velocity controlled: a joint velocity command is clipped to the arm's joint speed limits
  and integrated at the physics timestep, stopping at the joint limits; the scene's hand (and so the
  puck or the door) follows the joints, and the camera sees it;
- UR's forward_velocity_controller holds the last command until a new one comes (`command_timeout_s`
  0); intera (Sawyer) drops to position hold when no command came for 0.2 s;
- a joint trajectory (UR's scaled_joint_trajectory_controller) is executed from the moment it arrives,
  cubic between the points' positions and velocities, its last point held; a velocity command ends it,
  as a controller switch would.

`DRIVERS` holds what each arm's driver publishes: topics, joint names in its own order (which is not
the controller's order: UR's joint_state_broadcaster publishes alphabetically), the joints it adds
(Sawyer's head_pan and torso_t0) and its timeout.
"""
from __future__ import annotations

import dataclasses
import functools

import mujoco
import numpy as np

from rig_sim.arms import ARM_SPECS
from rig_sim.config import SimConfig
from rig_sim.envs import ENV_CLASSES
from rig_sim.scene import ARM_PREFIX, RigScene
from rig_sim.tasks import TASK_SPECS


@dataclasses.dataclass(frozen=True)
class DriverSpec:
    """The interfaces of one arm's real driver, as rig's robot graph meets them."""
    joint_states_topic: str
    joint_state_order: tuple[str, ...]     # names in the order the driver publishes them
    velocity_topic: str                     # joint velocity commands
    velocity_type: str                      # 'array': Float64MultiArray (controller order); 'joint_state'
    controller_joints: tuple[str, ...]      # order of an 'array' command
    trajectory_topic: str                   # '' = none
    command_timeout_s: float                # 0: hold the last command until a new one (UR)
    joint_state_rate_hz: float              # what the simulated driver publishes (a Python node at the real
                                            # UR's 500 Hz would take a core; the adapter reads at 100 Hz)


UR_JOINTS = ('shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint', 'wrist_1_joint', 'wrist_2_joint',
             'wrist_3_joint')
SAWYER_JOINTS = tuple(f'right_j{i}' for i in range(7))

DRIVERS: dict[str, DriverSpec] = {
    # Universal_Robots_ROS2_Driver: joint_state_broadcaster on /joint_states (alphabetical order is
    # what it is commonly seen to publish), forward_velocity_controller, scaled_joint_trajectory_controller.
    'ur5e': DriverSpec('/joint_states', tuple(sorted(UR_JOINTS)), '/forward_velocity_controller/commands',
                       'array', UR_JOINTS, '/scaled_joint_trajectory_controller/joint_trajectory', 0.0,
                       100.0),   # the real driver: 500 Hz
    # intera through ros1_bridge: /robot/joint_states (head_pan, right_j0..6, torso_t0); the relay of
    # docs/real_robot.md takes JointState velocities on /sawyer/joint_velocity_command.
    'sawyer': DriverSpec('/robot/joint_states', ('head_pan',) + SAWYER_JOINTS + ('torso_t0',),
                         '/sawyer/joint_velocity_command', 'joint_state', SAWYER_JOINTS, '', 0.2,
                         100.0),   # intera's default
}


class CommandError(ValueError):
    """A command the simulated controller refuses, as the real one would (wrong size, unknown joint, NaN)."""


@dataclasses.dataclass
class _Trajectory:
    start_time: float
    times: np.ndarray        # (K,) seconds from start, increasing, > 0
    positions: np.ndarray    # (K, n) model order
    velocities: np.ndarray   # (K, n)
    start_q: np.ndarray

    def at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Cubic Hermite between the points (the first segment starts at rest at start_q)."""
        times = np.concatenate([[0.0], self.times])
        q = np.vstack([self.start_q, self.positions])
        v = np.vstack([np.zeros_like(self.start_q), self.velocities])
        if t >= times[-1]:
            return q[-1].copy(), np.zeros_like(q[-1])
        k = int(np.searchsorted(times, t, side='right')) - 1
        h = times[k + 1] - times[k]
        s = (t - times[k]) / h
        h00, h10, h01, h11 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s, -2 * s**3 + 3 * s**2, s**3 - s**2
        pos = h00 * q[k] + h10 * h * v[k] + h01 * q[k + 1] + h11 * h * v[k + 1]
        d00, d10, d01, d11 = 6 * s**2 - 6 * s, 3 * s**2 - 4 * s + 1, -6 * s**2 + 6 * s, 3 * s**2 - 2 * s
        vel = (d00 * q[k] + d01 * q[k + 1]) / h + d10 * v[k] + d11 * v[k + 1]
        return pos, vel


class SimulatedArm:
    """The arm of a task scene driven by joint commands, advanced to wall-clock times."""

    def __init__(self, task: str = 'reach', arm: str = 'ur5e', start_qpos=None, command_timeout_s: float | None = None,
                 mesh_fidelity: str = 'simple'):
        if arm not in DRIVERS:
            raise ValueError(f'arm must be one of {sorted(DRIVERS)}, got {arm!r}')
        self.driver = DRIVERS[arm]
        self.scene = RigScene(SimConfig(task=task, arm=arm, mesh_fidelity=mesh_fidelity))
        self.joint_names = tuple(self.scene.joint_names)          # model order
        self.n = len(self.joint_names)
        self._index = {name: i for i, name in enumerate(self.joint_names)}
        self.lower, self.upper = self.scene._arm_joint_range[:, 0].copy(), self.scene._arm_joint_range[:, 1].copy()
        self.max_velocity = np.array(ARM_SPECS[arm].max_joint_velocity, dtype=float)
        self.timeout = self.driver.command_timeout_s if command_timeout_s is None else float(command_timeout_s)
        self.dt = float(self.scene.model.opt.timestep)
        self.q = np.array(self.scene.home_qpos if start_qpos is None else start_qpos, dtype=float)
        if self.q.shape != (self.n,):
            raise ValueError(f'start_qpos needs {self.n} values for {arm}, got {self.q.shape}')
        self.qdot = np.zeros(self.n)
        self.command = np.zeros(self.n)
        self.command_time = -np.inf
        self.trajectory: _Trajectory | None = None
        self.time: float | None = None        # simulated time = the wall clock it was advanced to
        self._mocap = self.scene._mocap
        self._ee = self.scene._ee_body
        self._apply()

    @staticmethod
    def task_home(task: str, arm: str) -> tuple[np.ndarray, np.ndarray]:
        """The joint angles that put the hand tool at the task's start position (what a lab sets as
        `home`), and the offset from the tool tip to the flange (the arm adapter's rig/ee_pose point)."""
        with RigScene(SimConfig(task=task, arm=arm)) as scene:
            flange = scene.model.body(ARM_PREFIX + ARM_SPECS[arm].hand_body).id
            return scene.home_qpos.copy(), scene.data.xpos[flange] - scene.ee_pos()

    # -- commands -----------------------------------------------------------------------------------
    def command_velocity(self, names, velocities, now: float) -> None:
        """A joint velocity command (rad/s): `names` None = controller order (a Float64MultiArray)."""
        velocities = np.asarray(velocities, dtype=float).reshape(-1)
        if names is None or len(names) == 0:
            if velocities.shape != (self.n,):
                raise CommandError(f'command size ({velocities.size}) does not match number of joints ({self.n})')
            order = [self._index[j] for j in self.driver.controller_joints]
        else:
            unknown = [n for n in names if n not in self._index]
            if unknown or len(names) != velocities.size:
                raise CommandError(f'command names {list(names)} do not match its {velocities.size} velocities '
                                   f'or the joints {list(self.joint_names)}')
            order = [self._index[n] for n in names]
        if not np.all(np.isfinite(velocities)):
            raise CommandError('non-finite value in the command')
        qdot = np.zeros(self.n)
        qdot[order] = velocities
        self.command, self.command_time = qdot, now
        self.trajectory = None    # a velocity command takes the joints from a running trajectory

    def command_trajectory(self, names, times, positions, velocities, now: float) -> None:
        """A joint trajectory, executed from `now` (header stamp zero: start at once)."""
        unknown = [n for n in names if n not in self._index]
        if unknown or sorted(names) != sorted(self.joint_names):
            raise CommandError(f'trajectory joints {list(names)} must be exactly {list(self.joint_names)}')
        times = np.asarray(times, dtype=float)
        order = np.argsort([self._index[n] for n in names])
        positions = np.asarray(positions, dtype=float).reshape(len(times), -1)[:, order]
        velocities = (np.zeros_like(positions) if velocities is None or np.size(velocities) == 0
                      else np.asarray(velocities, dtype=float).reshape(len(times), -1)[:, order])
        if len(times) == 0 or np.any(np.diff(times) <= 0) or times[0] <= 0:
            raise CommandError('trajectory points need increasing time_from_start > 0')
        if not (np.all(np.isfinite(positions)) and np.all(np.isfinite(velocities))):
            raise CommandError('non-finite value in the trajectory')
        self.trajectory = _Trajectory(now, times, positions, velocities, self.q.copy())
        self.command = np.zeros(self.n)

    # -- physics ------------------------------------------------------------------------------------
    def advance(self, now: float) -> None:
        """Run the physics up to wall-clock time `now` (one timestep at a time; at most 0.5 s of lag
        is caught up, more is dropped so a stalled process does not replay seconds at once)."""
        if self.time is None:
            self.time = now
            return
        if now - self.time > 0.5:
            self.time = now - 0.5
        while self.time + self.dt <= now:
            self.time += self.dt
            self._step(self.time)

    def _step(self, t: float) -> None:
        if self.trajectory is not None:
            q, qdot = self.trajectory.at(t - self.trajectory.start_time)
            q = np.clip(q, self.lower, self.upper)
        else:
            stale = self.timeout > 0 and t - self.command_time > self.timeout
            qdot = np.zeros(self.n) if stale else self.command
            top = np.max(np.abs(qdot) / self.max_velocity)
            if top > 1.0:
                qdot = qdot / top             # the drive's speed limit, direction kept
            q = np.clip(self.q + qdot * self.dt, self.lower, self.upper)
            qdot = (q - self.q) / self.dt     # zero into a joint limit
        self.q, self.qdot = q, qdot
        self._apply()
        mujoco.mj_step(self.scene.model, self.scene.data)

    def _apply(self) -> None:
        """Joints to q, and the hand's weld target onto the hand, so the scene's hand follows the joints
        and pushes what it touches with the joints' velocity."""
        model, data = self.scene.model, self.scene.data
        data.qpos[self.scene._arm_qpos_ids] = self.q
        data.qvel[self.scene._arm_dof_ids] = self.qdot
        mujoco.mj_kinematics(model, data)
        data.mocap_pos[self._mocap] = data.xpos[self._ee]
        data.mocap_quat[self._mocap] = data.xquat[self._ee]

    # -- what the driver publishes -------------------------------------------------------------------
    def joint_state(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(names, positions, velocities) in the driver's own order (its extra joints at 0)."""
        order = self.driver.joint_state_order
        q = np.array([self.q[self._index[n]] if n in self._index else 0.0 for n in order])
        v = np.array([self.qdot[self._index[n]] if n in self._index else 0.0 for n in order])
        return list(order), q, v

    def render(self, width: int = 640, height: int = 480) -> np.ndarray:
        mujoco.mj_kinematics(self.scene.model, self.scene.data)
        mujoco.mj_camlight(self.scene.model, self.scene.data)
        return self.scene.render(width, height)

    def task_state(self) -> np.ndarray:
        """The true task state (hand xyz, puck xy or door angle), for tests and benchmarks."""
        return self.scene.state()

    def task_distance(self, goal_state: np.ndarray) -> float:
        """The task's distance from now to `goal_state` (hand, puck or door angle: rig_sim.envs)."""
        return float(ENV_CLASSES[self.scene.task.name].task_distance(None, self.scene.state(), goal_state))

    def goal(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(image, state) of a goal from the task's goal distribution: the scene posed at it and seen
        by the learner camera as a `size` square (the centre of the camera frame, as config/camera_topic.yaml
        crops it), then put back exactly as it was."""
        state = self.scene.sample_goal_state(rng)
        snapshot = self.scene.snapshot()
        self.scene.set_state(state)
        image = self.scene.render(size, size)
        self.scene.restore(snapshot)
        self._apply()
        return image, state

    def close(self) -> None:
        self.scene.close()


@functools.lru_cache(maxsize=None)   # an IK solve on a compiled scene: once per (task, arm)
def _cell_values(task: str, arm: str) -> tuple:
    q, offset = SimulatedArm.task_home(task, arm)
    return tuple(float(x) for x in q), tuple(float(x) for x in offset)


def cell_parameters(task: str, arm: str) -> dict:
    """The simulated cell's own values for the robot graph, as a parameter file's content: what a lab
    sets for its cell (`home.pose` over its table, the safety filter's workspace box around its task
    region). The graph's nodes and files stay as they are; this layers on top of them."""
    spec = TASK_SPECS[task]
    q, offset = _cell_values(task, arm)
    offset = np.array(offset)
    home = [round(x, 4) for x in q]
    # The box bounds rig/ee_pose, the flange: the task region of the tool tip, shifted by the tool, with
    # 2 cm to spare sideways and from just under the tip's lowest height (it clears the table) up.
    low = np.array(spec.workspace_low) + offset + (-0.02, -0.02, -0.01)
    high = np.array(spec.workspace_high) + offset + (0.02, 0.02, 0.1)
    return {'/**/arm_adapter': {'ros__parameters': {'home': {'pose': home}}},
            '/**/home_pose': {'ros__parameters': {'home': {'pose': list(home)}}},   # (a copy: no YAML alias)
            '/**/safety_filter': {'ros__parameters': {'workspace_low': [round(float(x), 3) for x in low],
                                                      'workspace_high': [round(float(x), 3) for x in high]}}}
