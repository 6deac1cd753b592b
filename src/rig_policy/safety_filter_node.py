"""Safety filter node: `rig/cmd_raw` (policy) -> `rig/cmd` (arm), at a fixed control rate.

The timer publishes every period whether or not the policy spoke: the filtered newest command while
it is fresh, zero once it is stale, so the arm side (MoveIt Servo, forward controllers that hold the
last command forever) always gets a current, bounded command. Output is stamped with the current
time and `frame_id` (Servo drops stale stamps and misreads an empty frame). On SIGINT/SIGTERM the node
publishes a zero command and waits for it to be acknowledged before exiting.

Run: `python -m rig_policy.safety_filter_node --ros-args --params-file config/safety_filter.yaml`
"""
from __future__ import annotations

import sys
import time

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.duration import Duration
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from std_msgs.msg import Bool

from rig_base.msgs import stamp_seconds, twist_has_angular, twist_velocity, velocity_twist
from rig_base.node_main import run_node
from rig_base.qos import COMMAND_QOS, ESTOP_QOS, ESTOP_VOLATILE_QOS, STATE_SUBSCRIBER_QOS
from rig_base.ros_params import declare_dataclass_parameters
from rig_policy.safety import STOP_REASONS, Reason, SafetyConfig, SafetyFilter

NODE_NAME = 'safety_filter'

DESCRIPTIONS = {
    'control_rate_hz': 'Rate [Hz] at which rig/cmd is published (MoveIt Servo needs > 10 Hz).',
    'stale_after_periods': 'A command (by header.stamp, or arrival if unstamped) older than this many '
                           'control periods is replaced by zero.',
    'max_speed': 'Largest end-effector speed [m/s] sent to the arm (norm of the linear velocity).',
    'max_accel': 'Largest change of the output velocity per second [m/s^2]; stops are immediate.',
    'workspace_low': 'Lower corner [x, y, z] of the workspace box [m] in frame_id.',
    'workspace_high': 'Upper corner [x, y, z] of the workspace box [m] in frame_id.',
    'enforce_workspace': 'Zero motion that would leave the box; needs rig/ee_pose (no pose: zero).',
    'observation_timeout': 'rig/ee_pose older than this [s] counts as missing.',
    'frame_id': 'Frame of commands and poses; input in another frame is rejected, output is stamped with it.',
    'output_mode': 'rate: publish every period (arms, real-time sim); on_input: once per policy command '
                   'plus one zero when it goes stale (lockstep sim, where each rig/cmd is one sim step).',
}

LOG_THROTTLE_S = 2.0
SHUTDOWN_ACK_TIMEOUT_S = 1.0

_STOP_TEXT = {
    Reason.ESTOP: 'e-stop latched (or command predates its release)',
    Reason.NO_COMMAND: 'no valid command (none yet, or one in a wrong frame)',
    Reason.INVALID_COMMAND: 'command holds NaN/inf',
    Reason.STALE_COMMAND: 'command stale (policy stalled, or clocks/use_sim_time disagree)',
    Reason.NO_POSE: 'no valid rig/ee_pose (none yet, or one in a wrong frame)',
    Reason.INVALID_POSE: 'rig/ee_pose holds NaN/inf',
    Reason.STALE_POSE: 'rig/ee_pose stale',
}


class SafetyFilterNode(Node):
    """Subscribes rig/cmd_raw, rig/ee_pose, rig/estop; publishes rig/cmd from a timer."""

    def __init__(self, cfg: SafetyConfig | None = None, **node_kwargs):
        super().__init__(NODE_NAME, **node_kwargs)
        # Read-only: changing safety limits at runtime would bypass review; restart to change them.
        self.cfg = declare_dataclass_parameters(self, cfg or SafetyConfig(), DESCRIPTIONS,
                                                read_only=True)
        self.safety = SafetyFilter(self.cfg)
        self._cmd = None
        self._cmd_time: float | None = None
        self._pose = None
        self._pose_time: float | None = None
        self._estop_source_ns = -1
        self._last_output_nonzero = False
        self._last_log: dict[str, float] = {}

        self._cmd_pub = self.create_publisher(TwistStamped, 'rig/cmd', COMMAND_QOS)
        self.create_subscription(TwistStamped, 'rig/cmd_raw', self._on_command, COMMAND_QOS)
        self.create_subscription(PoseStamped, 'rig/ee_pose', self._on_pose, STATE_SUBSCRIBER_QOS)
        # Latched publishers reach the transient-local subscription (even if they spoke before we
        # started); volatile ones (`ros2 topic pub`) only the volatile one. Both feed one callback.
        # The latched one's "incompatible QoS" warning for volatile publishers is expected: silenced.
        self.create_subscription(Bool, 'rig/estop', self._on_estop, ESTOP_QOS,
                                 event_callbacks=SubscriptionEventCallbacks(incompatible_qos=lambda _: None))
        self.create_subscription(Bool, 'rig/estop', self._on_estop, ESTOP_VOLATILE_QOS)
        self._timer = self.create_timer(self.cfg.period, self._on_timer)
        self._stopped = False   # stop_arm() sent the final zero
        self.get_logger().info(
            f'safety filter: {self.cfg.control_rate_hz:g} Hz, max {self.cfg.max_speed:g} m/s, '
            f'{self.cfg.max_accel:g} m/s^2, box {self.cfg.workspace_low}..{self.cfg.workspace_high} '
            f'in {self.cfg.frame_id} ({"enforced" if self.cfg.enforce_workspace else "NOT enforced"})')

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _log_throttled(self, key: str, level: str, text: str) -> None:
        """One log line per `key` every LOG_THROTTLE_S, so a 20 Hz fault does not flood the log."""
        now = time.monotonic()
        if now - self._last_log.get(key, -LOG_THROTTLE_S) >= LOG_THROTTLE_S:
            self._last_log[key] = now
            # rclpy ties a severity to each call site, hence one call per level.
            if level == 'warning':
                self.get_logger().warning(text)
            else:
                self.get_logger().info(text)

    def _frame_ok(self, frame_id: str, topic: str) -> bool:
        if frame_id in ('', self.cfg.frame_id):
            return True
        self._log_throttled(f'frame:{topic}', 'warning',
                            f'{topic} in frame {frame_id!r} rejected: expected {self.cfg.frame_id!r}')
        return False

    def _on_command(self, msg: TwistStamped) -> None:
        if not self._frame_ok(msg.header.frame_id, 'rig/cmd_raw'):
            self._cmd = None    # stop now rather than hold the previous command until it goes stale
            return
        stamp = stamp_seconds(msg.header.stamp)
        # DESIGN: the stamp is that of the frame the command answers, so age covers the whole pipeline.
        self._cmd_time = stamp if stamp > 0 else self._now()
        self._cmd = tuple(twist_velocity(msg))
        if twist_has_angular(msg):
            self._log_throttled('angular', 'warning', 'rig/cmd_raw angular velocity ignored (translation only)')
        if self.cfg.output_mode == 'on_input':
            self._filter_and_publish()

    def _on_pose(self, msg: PoseStamped) -> None:
        if not self._frame_ok(msg.header.frame_id, 'rig/ee_pose'):
            self._pose = None   # a pose in an unknown frame says nothing about the box: stop
            return
        stamp = stamp_seconds(msg.header.stamp)
        self._pose_time = stamp if stamp > 0 else self._now()
        self._pose = (msg.pose.position.x, msg.pose.position.y, msg.pose.position.z)

    def _on_estop(self, msg: Bool, info: dict) -> None:
        # The same sample may arrive on both subscriptions, in either order: the newest published wins.
        source_ns = int(info.get('source_timestamp', 0))
        if source_ns and source_ns <= self._estop_source_ns:
            return
        self._estop_source_ns = max(self._estop_source_ns, source_ns)
        if msg.data and not self.safety.estopped:
            self.get_logger().warning('e-stop LATCHED: commanding zero')
        elif not msg.data and self.safety.estopped:
            self.get_logger().info('e-stop released')
        self.safety.set_estop(bool(msg.data), self._now())

    def _on_timer(self) -> None:
        if self.cfg.output_mode == 'on_input':
            # Lockstep: every rig/cmd is a simulation step, so the timer only says 'stop' once when
            # the policy falls silent, instead of stepping the simulation on its own.
            if self._last_output_nonzero and self._cmd_time is not None and \
                    self._now() - self._cmd_time > self.cfg.stale_after:
                self._filter_and_publish()
            return
        self._filter_and_publish()

    def _filter_and_publish(self) -> None:
        if self._stopped:
            return   # after the final zero nothing else goes out (a late policy command included)
        now = self._now()
        velocity, reasons = self.safety.filter(self._cmd, self._cmd_time, now, self._pose, self._pose_time)
        self.publish(velocity)
        self._last_output_nonzero = bool(np.any(np.asarray(velocity) != 0))
        for reason in reasons:
            if reason in STOP_REASONS:
                level = 'info' if reason is Reason.NO_COMMAND else 'warning'
                self._log_throttled(reason.name, level, f'zero command: {_STOP_TEXT[reason]}')
            elif reason is Reason.WORKSPACE:
                self._log_throttled(reason.name, 'warning',
                                    f'motion out of the workspace box zeroed at ee {self._pose}')
            else:
                self._log_throttled(reason.name, 'info', f'command limited: {reason.name.lower()}')

    def publish(self, velocity) -> None:
        """Publish a linear velocity (angular always zero), stamped now, in the configured frame."""
        self._cmd_pub.publish(velocity_twist(velocity, self.get_clock().now().to_msg(), self.cfg.frame_id))

    def stop_arm(self) -> None:
        """Send zero and wait (bounded) until reliable subscribers have it: the last word is 'stop'."""
        self._timer.cancel()
        self._stopped = True
        self.publish(self.safety.stop())
        acked = self._cmd_pub.wait_for_all_acked(Duration(seconds=SHUTDOWN_ACK_TIMEOUT_S))
        self.get_logger().info('stopping: zero command sent' + ('' if acked else ' (not acknowledged by all)'))


def main(args=None) -> int:
    return run_node(SafetyFilterNode, 'safety_filter', args)


if __name__ == '__main__':
    sys.exit(main())
