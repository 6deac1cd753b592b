"""Arm adapter: `rig/cmd` (end-effector velocity) -> joint velocities for a real arm without MoveIt Servo.

Subscribes `rig/cmd` (geometry_msgs/TwistStamped, linear m/s in `base_frame`) and `joint_states`
(matched by joint NAME: drivers publish them in their own order), and at `rate_hz` publishes joint
velocities solved with `rig_policy.kinematics` on the same MuJoCo arm model as the simulator:
  - `output: ur` -> std_msgs/Float64MultiArray on `/forward_velocity_controller/commands`, in the
    controller's `joints:` order (`controller_joints`);
  - `output: sawyer` -> sensor_msgs/JointState (name + velocity) for a ROS 1 relay to intera's
    `/robot/limb/right/joint_command` (JointCommand, VELOCITY mode), see docs/real_robot.md;
  - `output: none` -> no commands (a MoveIt Servo cell), only `rig/ee_pose`.
It also publishes `rig/ee_pose` (geometry_msgs/PoseStamped, hand pose from forward kinematics of the
joint states) at `rate_hz`: a real arm has no other source of it, and the safety filter's workspace
box needs it.

Own watchdog, because the forward controllers apply the last command forever (ros2_controllers#95):
a command older than `cmd_timeout_s`, or joint states older than `joint_state_timeout_s`, stops the
arm. Stopping sends `zero_burst` zero commands and then goes quiet (UR: the controller holds zero;
Sawyer: intera falls back to position hold 0.2 s after the last command, which holds better than a
zero-velocity command). NaN/inf commands are rejected and stop the arm. Nothing is published before
the first joint state. On SIGINT/SIGTERM a zero command is sent and acknowledged before exit.

Episode resets: the service `rig/home` (std_srvs/Trigger) moves the arm slowly to `home` (a
synchronised cosine joint profile, `rig_policy.home_pose.plan_home`, tracked on joint_states) and
answers when it is there, or failed. While homing, `rig/cmd` is ignored: one node owns the joint
velocity output, so the policy's watchdog zeros cannot fight the reset. The policy calls it between
practice episodes (`reset_service: rig/home`).

E-stop: `rig/estop` (std_msgs/Bool, latched or volatile publishers) is heard here as well as in the
safety filter, since the move home does not pass through the filter: true stops a move home (the
service answers failure), zeroes the output and refuses rig/cmd and rig/home until false.

Run: `python -m rig_policy.arm_adapter_node --ros-args --params-file config/arm_ur5e.yaml`
"""
from __future__ import annotations

import dataclasses
import math
import sys
import time

import mujoco
import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from rig_base.config import ConfigError
from rig_base.msgs import twist_velocity
from rig_base.node_main import run_node
from rig_base.qos import COMMAND_QOS, ESTOP_QOS, ESTOP_VOLATILE_QOS, STATE_PUBLISHER_QOS, STATE_SUBSCRIBER_QOS
from rig_base.ros_params import declare_dataclass_parameters
from rig_policy.home_pose import HOME_MOVE_DESCRIPTIONS, HomeMove, states_fresh
from rig_policy.joint_commands import VELOCITY_TYPES, velocity_message
from rig_policy.kinematics import ARMS, ArmKinematics, SolverConfig, rotation_error

NODE_NAME = 'arm_adapter'
OUTPUTS = ('ur', 'sawyer', 'none')
UR_JOINTS = ('shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint',
             'wrist_1_joint', 'wrist_2_joint', 'wrist_3_joint')
LOG_THROTTLE_S = 2.0
SHUTDOWN_ACK_TIMEOUT_S = 1.0


# Message type of each output: UR forward controllers take a bare array; the Sawyer relay needs names.


@dataclasses.dataclass
class ArmAdapterConfig:
    """Parameters of the arm adapter (one ROS parameter each)."""
    arm: str = 'ur5e'
    output: str = 'ur'
    output_topic: str = '/forward_velocity_controller/commands'
    controller_joints: tuple[str, ...] = UR_JOINTS
    joint_prefix: str = ''
    base_frame: str = 'base_link'
    rate_hz: float = 100.0
    cmd_timeout_s: float = 0.2
    joint_state_timeout_s: float = 0.2
    zero_burst: int = 5
    max_linear_speed: float = 0.25
    max_joint_velocity: float = 0.5
    hold_orientation: bool = True
    orientation_gain: float = 1.0
    max_angular_speed: float = 0.3
    damping: float = 0.05
    sigma_slow: float = 0.05
    sigma_stop: float = 0.01
    limit_margin: float = 0.1
    home: HomeMove = dataclasses.field(default_factory=HomeMove)   # the rig/home episode reset

    def __post_init__(self):
        if self.arm not in ARMS:
            raise ConfigError(f'arm must be one of {ARMS}, got {self.arm!r}')
        if self.output not in OUTPUTS:
            raise ConfigError(f'output must be one of {OUTPUTS}, got {self.output!r}')
        if min(self.rate_hz, self.cmd_timeout_s, self.joint_state_timeout_s, self.max_linear_speed,
               self.max_joint_velocity) <= 0 or self.zero_burst < 1:
            raise ConfigError('rates, timeouts and speed limits must be > 0, zero_burst >= 1')
        if self.orientation_gain < 0 or self.max_angular_speed < 0:
            raise ConfigError('orientation_gain and max_angular_speed must be >= 0')

    def solver(self) -> SolverConfig:
        try:
            return SolverConfig(max_joint_velocity=self.max_joint_velocity, hold_orientation=self.hold_orientation,
                                damping=self.damping, sigma_slow=self.sigma_slow, sigma_stop=self.sigma_stop,
                                limit_margin=self.limit_margin)
        except ValueError as e:
            raise ConfigError(str(e)) from e


DESCRIPTIONS = {
    'arm': 'arm model for the kinematics: ur5e or sawyer',
    'output': 'ur: Float64MultiArray for forward_velocity_controller; sawyer: JointState velocities for '
              'the intera relay; none: no commands, only rig/ee_pose (MoveIt Servo cells)',
    'output_topic': 'topic of the joint velocity command',
    'controller_joints': 'joint names in the order the output must use (UR: the controller\'s joints: list)',
    'joint_prefix': 'prefix of joint names in joint_states (UR tf_prefix, e.g. "ur_")',
    'base_frame': 'frame of rig/cmd; commands in another frame are rejected (empty frame_id is accepted)',
    'rate_hz': 'rate of joint velocity commands (the Jacobian is re-evaluated each period)',
    'cmd_timeout_s': 'rig/cmd older than this (by arrival) stops the arm',
    'joint_state_timeout_s': 'joint_states older than this stops the arm',
    'zero_burst': 'zero commands sent when stopping before going quiet',
    'max_linear_speed': 'end-effector speed limit [m/s]; faster commands are scaled down',
    'max_joint_velocity': 'joint speed limit [rad/s] (whole vector scaled; also capped by the hardware limit)',
    'hold_orientation': 'keep the hand orientation fixed while moving (6-D solve) instead of letting the wrist turn',
    'orientation_gain': 'gain [1/s] pulling the hand back to the orientation it had when motion started',
    'max_angular_speed': 'cap [rad/s] of that orientation correction',
    'damping': 'largest damped-least-squares damping, reached at a singularity',
    'sigma_slow': 'below this smallest singular value, motion deeper into a singularity is slowed',
    'sigma_stop': 'at this smallest singular value such motion is stopped',
    'limit_margin': 'within this distance [rad] of a joint limit, no motion further into it',
    **HOME_MOVE_DESCRIPTIONS,
}


class ArmAdapterNode(Node):
    """Twist -> joint velocity adapter; see the module docstring."""

    def __init__(self, cfg: ArmAdapterConfig | None = None, **node_kwargs):
        super().__init__(NODE_NAME, **node_kwargs)
        self.cfg: ArmAdapterConfig = declare_dataclass_parameters(
            self, cfg or ArmAdapterConfig(), DESCRIPTIONS, read_only=True)
        self.solver = self.cfg.solver()
        self.kin = ArmKinematics(self.cfg.arm, joint_prefix=self.cfg.joint_prefix)
        try:
            self.kin.reorder(np.zeros(self.kin.n), self.cfg.controller_joints)
        except KeyError as e:
            raise ConfigError(f'controller_joints {list(self.cfg.controller_joints)} must name each joint of '
                              f'{self.cfg.arm} once: {list(self.kin.joint_names)}') from e
        self.q: np.ndarray | None = None
        self.q_time = -math.inf
        self.v = np.zeros(3)
        self.v_time = -math.inf
        self.r_ref: np.ndarray | None = None
        self.zeros_sent = self.cfg.zero_burst       # idle at start: nothing to stop
        self.published = 0
        self.rejected = 0
        self.last_reasons: set[str] = set()

        self.pub = None
        if self.cfg.output != 'none':
            self.pub = self.create_publisher(VELOCITY_TYPES[self.cfg.output], self.cfg.output_topic, COMMAND_QOS)
            self.create_subscription(TwistStamped, 'rig/cmd', self._on_cmd, COMMAND_QOS)
        self.pose_pub = self.create_publisher(PoseStamped, 'rig/ee_pose', STATE_PUBLISHER_QOS)
        self._pose_time = -math.inf
        self.create_subscription(JointState, 'joint_states', self._on_joint_states, STATE_SUBSCRIBER_QOS)
        # The e-stop, heard here too: the move home does not pass through the safety filter. As there,
        # the latched publisher and volatile ones (`ros2 topic pub`) both count; true holds until false.
        self.estopped = False
        self.stopped = False      # stop_arm() sent the last zero
        self.create_subscription(Bool, 'rig/estop', self._on_estop, ESTOP_QOS)
        self.create_subscription(Bool, 'rig/estop', self._on_estop, ESTOP_VOLATILE_QOS)
        self.create_timer(1.0 / self.cfg.rate_hz, self._on_tick)
        self.home = self.cfg.home.pose_of(self.cfg.arm, self.kin.n)
        self._homing = None   # (plan, start time, future) while moving home
        self._homing_tick: float | None = None   # its last control tick (home_pose.states_fresh)
        # Its own callback group: the service coroutine waits for the control timer to bring the arm
        # home, and a coroutine holds its group until it returns.
        self.create_service(Trigger, 'rig/home', self._on_home, callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(
            f'{self.cfg.arm} -> {self.cfg.output} on {self.cfg.output_topic} '
            f'(joints {list(self.cfg.controller_joints)}); waiting for joint_states')

    # -- inputs ---------------------------------------------------------------------------------
    def _on_joint_states(self, msg: JointState) -> None:
        try:
            q = self.kin.order(list(msg.name), list(msg.position))
        except (KeyError, ValueError) as e:
            # e.g. a gripper's separate joint_states: not ours, ignore without stopping.
            self.get_logger().warning(f'ignoring joint_states: {e}', throttle_duration_sec=LOG_THROTTLE_S)
            return
        if not np.all(np.isfinite(q)):
            self.get_logger().warning('joint_states with NaN/inf ignored', throttle_duration_sec=LOG_THROTTLE_S)
            return
        if self.q is None:
            self.get_logger().info('joint_states received; ready')
        self.q, self.q_time = q, time.monotonic()

    def _on_estop(self, msg: Bool) -> None:
        if bool(msg.data) == self.estopped:
            return
        self.estopped = bool(msg.data)
        if self.estopped:
            self.v, self.v_time = np.zeros(3), -math.inf
            if self._homing is not None:
                self._end_homing((False, 'e-stop: the move home was stopped'))
            self.get_logger().warning('e-stop: zero joint velocities until it is released')
        else:
            self.get_logger().info('e-stop released')

    def _on_cmd(self, msg: TwistStamped) -> None:
        if self.estopped:
            return
        if self._homing is not None:
            return  # the reset owns the arm until it is home
        now = time.monotonic()
        if msg.header.frame_id not in ('', self.cfg.base_frame):
            self._reject(f'command in frame {msg.header.frame_id!r}, expected {self.cfg.base_frame!r}')
            return
        v = twist_velocity(msg)
        if not np.all(np.isfinite(v)):
            self._reject('command holds NaN/inf; stopping')
            self.v, self.v_time = np.zeros(3), now
            return
        speed = float(np.linalg.norm(v))
        if speed > self.cfg.max_linear_speed:
            v *= self.cfg.max_linear_speed / speed
        self.v, self.v_time = v, now

    def _reject(self, why: str) -> None:
        self.rejected += 1
        self.get_logger().warning(f'rejected: {why}', throttle_duration_sec=LOG_THROTTLE_S)

    # -- output ---------------------------------------------------------------------------------
    def _publish(self, qdot_model_order: np.ndarray) -> None:
        values = self.kin.reorder(qdot_model_order, self.cfg.controller_joints)
        self.pub.publish(velocity_message(self.cfg.output, self.cfg.controller_joints, values,
                                          self.get_clock().now().to_msg()))
        self.published += 1

    def joint_velocities(self) -> np.ndarray | None:
        """What to send now: joint velocities while commanded, zeros while stopping, None when quiet."""
        now = time.monotonic()
        if self.q is None:
            return None                                 # never speak before knowing where the arm is
        if self.estopped:
            return self._stopping()
        if self._homing is not None:
            return self._homing_velocities(now)
        cmd_fresh = now - self.v_time <= self.cfg.cmd_timeout_s
        # Plain age, without home_pose.states_fresh's grace for a tick after this process was held up:
        # here such a tick stops the arm for one period, the safe side at no cost; in a home move it
        # would abort the move and fail the episode's reset.
        state_fresh = now - self.q_time <= self.cfg.joint_state_timeout_s
        if cmd_fresh and not state_fresh and np.any(self.v):
            self.get_logger().warning('joint_states stale: stopping', throttle_duration_sec=LOG_THROTTLE_S)
        if not (cmd_fresh and state_fresh and np.any(self.v)):
            return self._stopping()
        _, rot = self.kin.fk_pose(self.q)
        if self.r_ref is None:
            self.r_ref = rot
        omega = self.cfg.orientation_gain * rotation_error(self.r_ref, rot)
        norm = float(np.linalg.norm(omega))
        if norm > self.cfg.max_angular_speed:
            omega *= self.cfg.max_angular_speed / norm
        sol = self.kin.twist_to_joint_velocities(self.q, self.v, omega, cfg=self.solver)
        if sol.reasons != self.last_reasons and sol.reasons:
            self.get_logger().warning(f'command limited: {sorted(sol.reasons)} (sigma_min {sol.sigma_min:.3f}, '
                                      f'scale {sol.scale:.2f})', throttle_duration_sec=LOG_THROTTLE_S)
        self.last_reasons = sol.reasons
        self.zeros_sent = 0
        return sol.qdot

    def _stopping(self) -> np.ndarray | None:
        """A burst of zeros, then quiet (the controller holds the last one)."""
        self.r_ref = None                           # next motion keeps the orientation it starts with
        if self.zeros_sent >= self.cfg.zero_burst:
            return None
        self.zeros_sent += 1
        return np.zeros(self.kin.n)

    # -- episode reset: move home -------------------------------------------------------------------
    async def _on_home(self, request, response):
        """Trigger: move home, answer when there (success) or stopped (failure). Async: the executor
        keeps running the control timer meanwhile."""
        if self.pub is None:
            response.success, response.message = False, 'output none: homing needs a velocity output'
            return response
        if self.q is None or time.monotonic() - self.q_time > self.cfg.joint_state_timeout_s:
            response.success, response.message = False, 'no fresh joint_states: cannot plan a move home'
            return response
        if self._homing is not None:
            response.success, response.message = False, 'already moving home'
            return response
        if self.estopped:
            response.success, response.message = False, 'e-stop active: not moving home'
            return response
        plan = self.cfg.home.plan(self.q, self.home, lower=self.kin.lower, upper=self.kin.upper)
        done = Future()
        self._homing, self._homing_tick = (plan, time.monotonic(), done), None
        self.get_logger().info(f'moving home over {plan.duration:.1f} s')
        ok, why = await done
        response.success, response.message = ok, why
        if ok:   # rclpy binds one severity to each call site: one call per level
            self.get_logger().info(why)
        else:
            self.get_logger().error(why)
        return response

    def _homing_velocities(self, now: float) -> np.ndarray:
        plan, t0, done = self._homing
        t = now - t0
        fresh = states_fresh(now, self.q_time, self._homing_tick, self.cfg.joint_state_timeout_s)
        self._homing_tick = now
        outcome = self.cfg.home.outcome(plan, t, self.q, fresh)
        if outcome is not None:
            self._end_homing(outcome)
            self.zeros_sent = 1
            return np.zeros(self.kin.n)
        self.zeros_sent = 0
        return self.cfg.home.velocity(plan, t, self.q)

    def _end_homing(self, outcome: tuple[bool, str]) -> None:
        _, _, done = self._homing
        self._homing = None
        self.v, self.v_time = np.zeros(3), -math.inf   # no stale policy command resumes after the reset
        self.zeros_sent = 0                             # the zero burst follows
        done.set_result(outcome)

    def _publish_pose(self) -> None:
        """rig/ee_pose from the newest fresh joint state (none while joint states are stale)."""
        if self.q is None or self.q_time == self._pose_time or \
                time.monotonic() - self.q_time > self.cfg.joint_state_timeout_s:
            return
        self._pose_time = self.q_time
        pos, rot = self.kin.fk_pose(self.q)
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, rot.reshape(-1))      # w, x, y, z
        msg = PoseStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.cfg.base_frame
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(x) for x in pos)
        msg.pose.orientation.w, msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z = \
            (float(x) for x in quat)
        self.pose_pub.publish(msg)

    def _on_tick(self) -> None:
        self._publish_pose()
        if self.pub is None:
            return
        if self.stopped:
            return      # after stop_arm's zero nothing else: the executor still spins for last words
        qdot = self.joint_velocities()
        if qdot is not None:
            self._publish(qdot)

    def stop_arm(self) -> None:
        """Send a zero command and wait until it is acknowledged (shutdown path); the last word."""
        self.stopped = True
        if self.pub is None or self.published == 0:
            return
        self._publish(np.zeros(self.kin.n))
        self.pub.wait_for_all_acked(Duration(seconds=SHUTDOWN_ACK_TIMEOUT_S))


def main(args=None) -> int:
    return run_node(ArmAdapterNode, NODE_NAME, args)


if __name__ == '__main__':
    sys.exit(main())
