"""Reset a real arm to its home joint configuration, slowly.

Episodes on a real arm start from a known pose, reached without the policy: a smooth joint-space move
(cosine velocity profile: zero velocity at both ends, peak velocity and acceleration capped) from
wherever the arm is to `home`. The plan is plain functions (`plan_home`, `HomePlan.at`), executed in
one of two ways:

  - `mode: trajectory` (UR): the whole plan as one trajectory_msgs/JointTrajectory on
    `/scaled_joint_trajectory_controller/joint_trajectory`; that controller respects the pendant's
    speed slider and is the UR driver's default. Needs the trajectory_msgs Python package
    (`ros-jazzy-trajectory-msgs` on PyPI, or a sourced ROS install).
  - `mode: velocity` (Sawyer through the intera relay, or UR's forward_velocity_controller): the plan
    is tracked in closed loop on `joint_states` with the arm adapter's velocity messages,
    qdot = qdot_plan(t) + gain * (q_plan(t) - q), capped.

Exits non-zero if home is not reached in time; in velocity mode also when joint states go stale, after
a zero command (in trajectory mode the controller runs the move on its own, and a gap only delays the
check). Run: `python -m rig_policy.home_pose --ros-args --params-file config/arm_ur5e.yaml`
(the `home_pose` section), or `ros2 run rig home --ros-args ...`.
"""
from __future__ import annotations

import dataclasses
import math
import signal
import sys
import time

import numpy as np
import rclpy
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from rig_base.config import ConfigError
from rig_base.msgs import duration_from_seconds
from rig_base.qos import COMMAND_QOS, STATE_SUBSCRIBER_QOS
from rig_base.ros_params import declare_dataclass_parameters
from rig_policy.joint_commands import VELOCITY_TYPES, velocity_message
from rig_policy.kinematics import ArmKinematics

MODES = ('trajectory', 'velocity')


# -- planning (no ROS) --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class HomePlan:
    """Synchronised joint move q(t) = start + (home - start) * (1 - cos(pi t / T)) / 2, 0 <= t <= T."""
    start: np.ndarray
    home: np.ndarray
    duration: float

    def at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(position, velocity) at time t (clamped to the plan: before 0 at start, after T at home)."""
        tau = min(max(t / self.duration, 0.0), 1.0)
        delta = self.home - self.start
        q = self.start + delta * (1.0 - math.cos(math.pi * tau)) / 2.0
        qdot = delta * (math.pi / (2.0 * self.duration)) * math.sin(math.pi * tau)
        return q, qdot

    def samples(self, dt: float) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """(t, q, qdot) every dt seconds, ending exactly at the home pose at t = T."""
        n = max(1, int(math.ceil(self.duration / dt)))
        return [(t, *self.at(t)) for t in np.linspace(self.duration / n, self.duration, n)]


def plan_home(start, home, max_velocity: float = 0.2, max_acceleration: float = 0.5,
              min_duration: float = 1.0, lower=None, upper=None) -> HomePlan:
    """Slowest-joint-limited plan from `start` to `home`: peak |qdot| <= max_velocity, |qddot| <= max_acceleration.

    For the cosine profile the peak velocity is (pi/2) |d| / T and the peak acceleration
    (pi^2/2) |d| / T^2, so T is the larger of the two bounds (and at least `min_duration`).
    """
    start = np.asarray(start, dtype=float)
    home = np.asarray(home, dtype=float)
    if start.shape != home.shape:
        raise ValueError(f'start has {start.size} joints, home {home.size}')
    if not (np.all(np.isfinite(start)) and np.all(np.isfinite(home))):
        raise ValueError('start/home hold NaN or inf')
    if max_velocity <= 0 or max_acceleration <= 0:
        raise ValueError('max_velocity and max_acceleration must be > 0')
    if lower is not None and upper is not None:
        outside = np.nonzero((home < np.asarray(lower)) | (home > np.asarray(upper)))[0]
        if outside.size:
            raise ValueError(f'home outside the joint limits at joint index(es) {outside.tolist()}')
    span = float(np.max(np.abs(home - start))) if start.size else 0.0
    duration = max(min_duration, math.pi * span / (2.0 * max_velocity),
                   math.pi * math.sqrt(span / (2.0 * max_acceleration)))
    return HomePlan(start, home, duration)


def tracking_velocity(plan: HomePlan, t: float, q: np.ndarray, gain: float, max_velocity: float) -> np.ndarray:
    """Closed-loop velocity along the plan: feed-forward plus position correction, capped per joint."""
    q_ref, qdot_ref = plan.at(t)
    qdot = qdot_ref + gain * (q_ref - np.asarray(q, dtype=float))
    return np.clip(qdot, -max_velocity, max_velocity)


def home_outcome(plan: HomePlan, t: float, q: np.ndarray, home: np.ndarray, tolerance: float,
                 settle_timeout_s: float, joint_states_fresh: bool) -> tuple[bool, str] | None:
    """How a move home ends at time t into the plan: (True, why) home, (False, why) stop, None going on.

    Shared by the one-shot `home` executable and the arm adapter's `rig/home` service.
    """
    error = float(np.max(np.abs(np.asarray(q, dtype=float) - home)))
    if not joint_states_fresh:
        return False, 'joint_states stale while moving home: stopped'
    if t >= plan.duration and error <= tolerance:
        return True, f'home reached (error {error:.4f} rad)'
    if t > plan.duration + settle_timeout_s:
        return False, (f'home not reached within {plan.duration + settle_timeout_s:.1f} s '
                       f'(error {error:.3f} rad): stopped')
    return None


def states_fresh(now: float, received_at: float, last_tick: float | None, timeout_s: float) -> bool:
    """Are the joint states fresh at this control tick (monotonic seconds)? Stale means none came for
    `timeout_s` while this process ran. A tick more than `timeout_s` after the one before means the
    process itself was held up (CPU load): the states that came meanwhile still wait in its queue and
    are read next, so that tick is not taken for a silent driver; the next one judges."""
    held_up = last_tick is not None and now - last_tick > timeout_s
    return held_up or now - received_at <= timeout_s


def trajectory_message(plan: HomePlan, joint_names, dt: float = 0.1):
    """trajectory_msgs/JointTrajectory of the plan (positions + velocities), to be executed from now."""
    msg = JointTrajectory(joint_names=list(joint_names))
    for t, q, qdot in plan.samples(dt):
        msg.points.append(JointTrajectoryPoint(
            positions=[float(x) for x in q], velocities=[float(x) for x in qdot],
            time_from_start=duration_from_seconds(t)))
    return msg


#: Home poses when none is set: hand above the table, pointing down, clear of singularities
#: (robosuite's start poses), in the model joint order.
DEFAULT_HOME = {'ur5e': (-0.470, -1.735, 2.480, -2.275, -1.590, -1.991),
                'sawyer': (0.0, -1.18, 0.0, 2.18, 0.0, 0.57, 3.3161)}


@dataclasses.dataclass
class HomeMove:
    """Where home is and how the arm gets there: one definition for the arm adapter's `rig/home` (the
    episode reset) and the `home` tool, so both move alike. ROS parameters `home.<field>`."""
    pose: tuple[float, ...] = ()        # empty: the arm's DEFAULT_HOME
    max_joint_velocity: float = 0.2
    max_joint_acceleration: float = 0.5
    gain: float = 2.0
    tolerance: float = 0.01
    settle_timeout_s: float = 5.0

    def __post_init__(self):
        self.pose = tuple(float(x) for x in (self.pose or ()))
        if min(self.max_joint_velocity, self.max_joint_acceleration, self.tolerance, self.settle_timeout_s) <= 0 \
                or self.gain < 0:
            raise ConfigError('home: speeds, tolerance and settle_timeout_s must be > 0, gain >= 0')

    def pose_of(self, arm: str, n_joints: int) -> np.ndarray:
        """The home pose for `arm` (its default when `pose` is empty), checked against its joint count."""
        pose = np.array(self.pose or DEFAULT_HOME[arm], dtype=float)
        if len(pose) != n_joints:
            raise ConfigError(f'home.pose needs {n_joints} joint values for {arm}, got {len(pose)}')
        return pose

    def plan(self, start, home, lower=None, upper=None) -> HomePlan:
        return plan_home(start, home, self.max_joint_velocity, self.max_joint_acceleration, lower=lower, upper=upper)

    def velocity(self, plan: HomePlan, t: float, q: np.ndarray) -> np.ndarray:
        return tracking_velocity(plan, t, q, self.gain, self.max_joint_velocity)

    def outcome(self, plan: HomePlan, t: float, q: np.ndarray, fresh: bool) -> tuple[bool, str] | None:
        return home_outcome(plan, t, q, plan.home, self.tolerance, self.settle_timeout_s, fresh)


HOME_MOVE_DESCRIPTIONS = {
    'home.pose': 'home joint positions [rad] in the model joint order (ur5e: shoulder_pan..wrist_3; sawyer: '
                 'right_j0..j6); empty = the arm\'s default',
    'home.max_joint_velocity': 'peak joint speed of the move home [rad/s]',
    'home.max_joint_acceleration': 'peak joint acceleration of the move home [rad/s^2]',
    'home.gain': 'feedback gain [1/s] tracking the home plan on joint_states (velocity mode)',
    'home.tolerance': 'done when every joint is within this of home [rad]',
    'home.settle_timeout_s': 'give up (zero, fail) this long after the planned duration',
}


# -- node ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class HomeConfig:
    """Parameters of the home_pose node."""
    arm: str = 'ur5e'
    mode: str = 'trajectory'
    home: HomeMove = dataclasses.field(default_factory=HomeMove)
    joint_prefix: str = ''
    controller_joints: tuple[str, ...] = ('shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint',
                                          'wrist_1_joint', 'wrist_2_joint', 'wrist_3_joint')
    trajectory_topic: str = '/scaled_joint_trajectory_controller/joint_trajectory'
    output: str = 'ur'
    output_topic: str = '/forward_velocity_controller/commands'
    rate_hz: float = 100.0
    joint_state_timeout_s: float = 0.2
    max_start_distance: float = 3.2
    wait_for_joint_states_s: float = 10.0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError(f'mode must be one of {MODES}, got {self.mode!r}')
        if min(self.rate_hz, self.joint_state_timeout_s, self.max_start_distance, self.wait_for_joint_states_s) <= 0:
            raise ConfigError('rate, timeouts and max_start_distance must be > 0')


DESCRIPTIONS = {
    'arm': 'arm model (joint names and limits): ur5e or sawyer',
    'mode': 'trajectory: one JointTrajectory to a trajectory controller (UR); '
            'velocity: closed-loop joint velocities like the arm adapter '
            '(Sawyer relay, UR forward_velocity_controller)',
    'joint_prefix': 'prefix of joint names in joint_states and commands (UR tf_prefix)',
    'controller_joints': 'joint order of velocity commands (velocity mode), as the controller expects',
    'trajectory_topic': 'trajectory mode: the controller\'s joint_trajectory topic',
    'output': 'velocity mode: ur (Float64MultiArray) or sawyer (JointState velocities)',
    'output_topic': 'velocity mode: topic of the velocity commands',
    'rate_hz': 'velocity mode: command rate',
    'joint_state_timeout_s': 'stale joint_states abort the move (zero, exit 1)',
    'wait_for_joint_states_s': 'give up (exit 1, saying which topic) when no joint_states arrive this long after '
                               'start (trajectory mode: or no controller subscribes to trajectory_topic)',
    'max_start_distance': 'refuse to move when a joint is further than this from home [rad] (wrapped UR joints)',
    **HOME_MOVE_DESCRIPTIONS,
}


class HomePoseNode(Node):
    """Moves to home once, then reports `result` (0 done, 1 failed) and is finished."""

    def __init__(self, cfg: HomeConfig | None = None, **node_kwargs):
        super().__init__('home_pose', **node_kwargs)
        self.cfg: HomeConfig = declare_dataclass_parameters(self, cfg or HomeConfig(), DESCRIPTIONS,
                                                            read_only=True)
        self.kin = ArmKinematics(self.cfg.arm, joint_prefix=self.cfg.joint_prefix)
        self.home = self.cfg.home.pose_of(self.cfg.arm, self.kin.n)
        self.q = None
        self.q_time = -math.inf
        self.plan: HomePlan | None = None
        self.t0 = 0.0
        self.result: int | None = None
        self.sent_any = False
        self._last_tick: float | None = None
        sub = self.create_subscription(JointState, 'joint_states', self._on_joint_states, STATE_SUBSCRIBER_QOS)
        self.started = time.monotonic()
        self.get_logger().info(f'waiting for joint states on {sub.topic_name}')
        if self.cfg.mode == 'velocity':
            self.kin.reorder(self.home, self.cfg.controller_joints)   # names checked before moving
            self.pub = self.create_publisher(VELOCITY_TYPES[self.cfg.output], self.cfg.output_topic,
                                             COMMAND_QOS)
        else:
            self.pub = self.create_publisher(JointTrajectory, self.cfg.trajectory_topic, COMMAND_QOS)
        self.create_timer(1.0 / self.cfg.rate_hz, self._on_tick)

    def _on_joint_states(self, msg) -> None:
        try:
            self.q = self.kin.order(list(msg.name), list(msg.position))
            self.q_time = time.monotonic()
        except (KeyError, ValueError):
            pass

    def _finish(self, code: int, why: str) -> None:
        if self.cfg.mode == 'velocity':
            self.send_zero()
        if code == 0:   # rclpy binds one severity to each call site: one call per level
            self.get_logger().info(why)
        else:
            self.get_logger().error(why)
        self.result = code

    def send_zero(self) -> None:
        """Zero velocity, acknowledged before returning (the process may exit right after)."""
        if self.cfg.mode == 'velocity' and self.sent_any:
            self.pub.publish(velocity_message(self.cfg.output, self.cfg.controller_joints,
                                              np.zeros(self.kin.n), self.get_clock().now().to_msg()))
            self.pub.wait_for_all_acked(Duration(seconds=1.0))

    def _start(self) -> None:
        distance = np.abs(self.home - self.q)
        if np.max(distance) > self.cfg.max_start_distance:
            self._finish(1, f'refusing: joint(s) {np.nonzero(distance > self.cfg.max_start_distance)[0].tolist()} '
                            f'are more than {self.cfg.max_start_distance} rad from home; move closer by hand')
            return
        if self.cfg.mode == 'trajectory' and self.pub.get_subscription_count() == 0:
            # Discovery may have brought the driver's joint_states before its controller's subscription:
            # wait for it as for the joint states, then say what is missing.
            if time.monotonic() - self.started < self.cfg.wait_for_joint_states_s:
                return
            self._finish(1, f'no controller listens on {self.pub.topic_name}: is '
                            'scaled_joint_trajectory_controller active?')
            return
        self.plan = self.cfg.home.plan(self.q, self.home, lower=self.kin.lower, upper=self.kin.upper)
        self.t0 = time.monotonic()
        self.get_logger().info(f'moving home over {self.plan.duration:.1f} s '
                               f'(largest joint move {np.max(distance):.2f} rad)')
        if self.cfg.mode == 'trajectory':
            self.pub.publish(trajectory_message(self.plan, self.kin.joint_names))

    def _on_tick(self) -> None:
        if self.result is None and self.q is None and \
                time.monotonic() - self.started > self.cfg.wait_for_joint_states_s:
            self._finish(1, f'no joint_states on {self.resolve_topic_name("joint_states")} after '
                            f'{self.cfg.wait_for_joint_states_s:g} s: is the arm driver up? Sawyer through '
                            'ros1_bridge publishes /robot/joint_states: add -r joint_states:=/robot/joint_states')
        if self.result is not None or self.q is None:
            return
        now = time.monotonic()
        if self.plan is None:
            self._start()
            return
        t = now - self.t0
        fresh = states_fresh(now, self.q_time, self._last_tick, self.cfg.joint_state_timeout_s)
        self._last_tick = now
        if not fresh and self.cfg.mode == 'trajectory':
            # The controller runs the trajectory on its own: a gap in the states this tool watches
            # stops nothing, so it waits for them (home is judged on the newest; the deadline holds).
            self.get_logger().warning(f'joint_states {now - self.q_time:.2f} s old; the controller goes on '
                                      'with the trajectory', throttle_duration_sec=1.0)
            fresh = True
        outcome = self.cfg.home.outcome(self.plan, t, self.q, fresh)
        if outcome is not None:
            self._finish(0 if outcome[0] else 1, outcome[1])
            return
        if self.cfg.mode == 'velocity':
            qdot = self.cfg.home.velocity(self.plan, t, self.q)
            values = self.kin.reorder(qdot, self.cfg.controller_joints)
            self.pub.publish(velocity_message(self.cfg.output, self.cfg.controller_joints, values,
                                              self.get_clock().now().to_msg()))
            self.sent_any = True


def main(args=None) -> int:
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stopped = []
    signal.signal(signal.SIGINT, lambda *_: stopped.append(1))
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(1))
    node = None
    try:
        node = HomePoseNode()
        while not stopped and node.result is None and rclpy.ok():
            rclpy.spin_once(node, timeout_sec=0.1)
        if node.result is None:
            node.send_zero()
            node.get_logger().warning('interrupted: stopped')
            return 1
        return node.result
    except (ConfigError, ImportError, RuntimeError, ValueError, KeyError) as e:
        print(f'home_pose: {e}', file=sys.stderr)
        return 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
