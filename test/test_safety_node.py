"""Safety filter node over real DDS: the node runs in its own process; this process plays policy and arm.

A driver node publishes rig/cmd_raw and rig/ee_pose at the control rate (as the policy and the arm
would) and records what arrives on rig/cmd.
"""
from __future__ import annotations

import math
import signal
import time
from pathlib import Path

import pytest
import rclpy
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.executors import SingleThreadedExecutor
from ros_util import REPO, spawn_node, spin_until
from std_msgs.msg import Bool

from rig_base.qos import COMMAND_QOS, ESTOP_QOS, ESTOP_VOLATILE_QOS, STATE_PUBLISHER_QOS
from rig_base.ros_params import dataclass_from_yaml_params, parameter_specs, ros_params_section
from rig_policy.safety import SafetyConfig
from rig_policy.safety_filter_node import NODE_NAME, SafetyFilterNode

pytestmark = pytest.mark.ros

MODULE = 'rig_policy.safety_filter_node'
PARAMS = {'control_rate_hz': 20.0, 'max_speed': 0.1, 'max_accel': 1.0, 'stale_after_periods': 3.0}
CENTRE = (0.4, 0.0, 0.2)
STARTUP_TIMEOUT = 30.0   # process start + discovery on a loaded 2-core machine
REACTION_TIMEOUT = 5.0


class Driver:
    """Stands in for the policy (rig/cmd_raw), the arm state (rig/ee_pose) and the operator (rig/estop)."""

    def __init__(self, context, namespace: str = ''):
        self.node = rclpy.create_node('safety_test_driver', namespace=namespace, context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.cmd_pub = self.node.create_publisher(TwistStamped, 'rig/cmd_raw', COMMAND_QOS)
        self.pose_pub = self.node.create_publisher(PoseStamped, 'rig/ee_pose', STATE_PUBLISHER_QOS)
        self.estop_latched_pub = self.node.create_publisher(Bool, 'rig/estop', ESTOP_QOS)
        self.estop_volatile_pub = self.node.create_publisher(Bool, 'rig/estop', ESTOP_VOLATILE_QOS)
        self.received: list[tuple[float, TwistStamped]] = []   # (arrival, ROS seconds), message
        self.node.create_subscription(TwistStamped, 'rig/cmd', self._on_cmd, COMMAND_QOS)
        self.command: tuple | None = None
        self.command_frame = 'base_link'
        self.pose: tuple | None = CENTRE
        self.node.create_timer(0.05, self._publish)

    def now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def _on_cmd(self, msg: TwistStamped) -> None:
        self.received.append((self.now(), msg))

    def _publish(self) -> None:
        stamp = self.node.get_clock().now().to_msg()
        if self.pose is not None:
            pose = PoseStamped()
            pose.header.stamp, pose.header.frame_id = stamp, 'base_link'
            pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = self.pose
            self.pose_pub.publish(pose)
        if self.command is not None:
            cmd = TwistStamped()
            cmd.header.stamp, cmd.header.frame_id = stamp, self.command_frame
            cmd.twist.linear.x, cmd.twist.linear.y, cmd.twist.linear.z = self.command
            self.cmd_pub.publish(cmd)

    def spin_for(self, seconds: float) -> None:
        spin_until(self.node, lambda: False, seconds, executor=self.executor)

    def wait_output(self, predicate, timeout=REACTION_TIMEOUT) -> float:
        """Spin until a rig/cmd arriving from now on satisfies predicate(linear xyz); return the wait."""
        start, first = time.monotonic(), len(self.received)

        def seen():
            return any(predicate(linear(m)) for _, m in self.received[first:])
        assert spin_until(self.node, seen, timeout, executor=self.executor), (
            f'no rig/cmd satisfying the condition in {timeout} s; last: '
            f'{[linear(m) for _, m in self.received[-3:]]}')
        return time.monotonic() - start

    def latest(self) -> tuple:
        return linear(self.received[-1][1])

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def linear(msg: TwistStamped) -> tuple:
    return (msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z)


def is_zero(v) -> bool:
    return v == (0.0, 0.0, 0.0)


def moving(v) -> bool:
    return math.hypot(*v) > 0.0


@pytest.fixture(scope='module')
def context():
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


@pytest.fixture(scope='module')
def filter_process(tmp_path_factory):
    log = tmp_path_factory.mktemp('safety') / 'safety_filter.log'
    with spawn_node(MODULE, PARAMS, log_path=log) as proc:
        yield proc, log


@pytest.fixture(scope='module')
def module_driver(context, filter_process):
    drv = Driver(context)
    yield drv
    drv.close()


@pytest.fixture
def driver(module_driver, filter_process):
    """The driver against the running filter, starting from rest (no command, arm in the box centre)."""
    proc, log = filter_process
    assert proc.poll() is None, f'safety filter died:\n{Path(log).read_text()}'
    module_driver.command, module_driver.command_frame, module_driver.pose = None, 'base_link', CENTRE
    module_driver.wait_output(is_zero, timeout=STARTUP_TIMEOUT)
    return module_driver


def test_fresh_command_passes_clipped_stamped_in_base_link(driver):
    driver.command = (0.5, 0.0, 0.0)
    driver.wait_output(lambda v: v[0] == pytest.approx(0.1))
    first = len(driver.received)
    driver.spin_for(0.5)
    held = driver.received[first:]
    assert len(held) >= 3, 'rig/cmd must keep coming at the control rate'
    for arrival, msg in held:
        assert linear(msg) == pytest.approx((0.1, 0.0, 0.0))
        assert (msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z) == (0.0, 0.0, 0.0)
        assert msg.header.frame_id == 'base_link'
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        assert abs(arrival - stamp) < 1.0, 'rig/cmd must be stamped with the current time'
    assert all(math.hypot(*linear(m)) <= 0.1 + 1e-9 for _, m in driver.received)


def test_stale_command_is_zeroed_within_a_few_periods(driver):
    driver.command = (0.05, 0.0, 0.0)
    driver.wait_output(moving)
    driver.command = None                               # the policy stalls
    waited = driver.wait_output(is_zero)
    assert waited < 1.5, f'zero came {waited:.2f} s after the last command (3 periods = 0.15 s)'
    driver.spin_for(0.3)
    assert is_zero(driver.latest())


def test_stale_pose_gives_zero(driver):
    driver.command = (0.05, 0.0, 0.0)
    driver.wait_output(moving)
    driver.pose = None
    driver.wait_output(is_zero)
    driver.pose = CENTRE
    driver.wait_output(moving)


def test_wrong_frame_command_is_rejected(driver):
    driver.command = (0.05, 0.0, 0.0)
    driver.wait_output(moving)
    driver.command_frame = 'tool0'
    driver.wait_output(is_zero)
    driver.spin_for(0.5)
    assert is_zero(driver.latest())
    driver.command_frame = ''                            # empty: taken as base_link
    driver.wait_output(moving)


def test_motion_out_of_the_box_is_zeroed(driver):
    driver.pose = (0.599, 0.0, 0.2)                     # 1 mm inside the +x face
    driver.spin_for(0.3)
    first = len(driver.received)
    driver.command = (0.05, 0.05, 0.0)
    driver.wait_output(lambda v: v[1] == pytest.approx(0.05))
    assert all(linear(m)[0] == 0.0 for _, m in driver.received[first:]), '+x motion left the box'
    driver.command = (-0.05, 0.0, 0.0)                  # back into the box is allowed
    driver.wait_output(lambda v: v[0] == pytest.approx(-0.05))


def test_estop_latches_zero_until_cleared(driver):
    driver.command = (0.05, 0.0, 0.0)
    driver.wait_output(moving)
    driver.estop_latched_pub.publish(Bool(data=True))
    driver.wait_output(is_zero)
    first = len(driver.received)
    driver.spin_for(1.0)                                # fresh commands keep coming: still zero
    assert len(driver.received) > first and all(is_zero(linear(m)) for _, m in driver.received[first:])
    driver.estop_volatile_pub.publish(Bool(data=False))  # a plain `ros2 topic pub` clears it too
    driver.wait_output(moving)
    driver.estop_volatile_pub.publish(Bool(data=True))   # ... and sets it
    driver.wait_output(is_zero)
    driver.estop_latched_pub.publish(Bool(data=False))
    driver.wait_output(moving)


def test_nan_command_is_rejected(driver):
    driver.command = (0.05, 0.0, 0.0)
    driver.wait_output(moving)
    driver.command = (math.nan, 0.0, 0.0)
    driver.wait_output(is_zero)
    driver.spin_for(0.3)
    assert is_zero(driver.latest())
    assert all(all(math.isfinite(x) for x in linear(m)) for _, m in driver.received)


def test_zero_command_is_the_last_word_after_sigint(context, tmp_path):
    """Own process, in its own namespace, so stopping it does not disturb the other tests' filter."""
    drv = Driver(context, namespace='/sigint')
    log = tmp_path / 'safety_filter.log'
    try:
        with spawn_node(MODULE, PARAMS, namespace='/sigint', log_path=log) as proc:
            drv.command = (0.05, 0.0, 0.0)
            assert spin_until(drv.node, lambda: proc.poll() is not None or any(
                moving(linear(m)) for _, m in drv.received), STARTUP_TIMEOUT, executor=drv.executor)
            assert proc.poll() is None, log.read_text()
            sent_at = drv.now()
            proc.send_signal(signal.SIGINT)             # commands keep coming while it shuts down
            assert spin_until(drv.node, lambda: proc.poll() is not None, 10.0, executor=drv.executor)
            drv.spin_for(0.3)
            assert proc.returncode == 0, log.read_text()
            arrival, last = drv.received[-1]
            assert is_zero(linear(last)) and arrival >= sent_at, log.read_text()
    finally:
        drv.close()


def test_parameter_file_matches_the_declared_parameters():
    path = REPO / 'config' / 'safety_filter.yaml'
    from_file = dataclass_from_yaml_params(SafetyConfig, path, NODE_NAME)
    assert set(ros_params_section(path, NODE_NAME)) == {s.name for s in parameter_specs(SafetyConfig)}, \
        'the parameter file should list every parameter'
    # And rclpy itself accepts it, under a namespace as in a multi-robot launch.
    context = rclpy.Context()
    rclpy.init(args=['--ros-args', '--params-file', str(path)], context=context)
    try:
        node = SafetyFilterNode(context=context, namespace='env7')
        assert node.cfg == from_file
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_on_input_mode_publishes_once_per_command_then_one_zero(context, tmp_path):
    """Lockstep sim: one rig/cmd per policy command (each is a sim step), one zero when it falls silent."""
    drv = Driver(context, namespace='/oninput')
    drv.command, drv.pose = None, None                  # its timer publishes nothing: commands by hand
    log = tmp_path / 'safety_filter.log'
    try:
        with spawn_node(MODULE, dict(PARAMS, output_mode='on_input', enforce_workspace=False),
                        namespace="/oninput", log_path=log):
            def send():
                cmd = TwistStamped()
                cmd.header.stamp, cmd.header.frame_id = drv.node.get_clock().now().to_msg(), 'base_link'
                cmd.twist.linear.x = 0.05
                drv.cmd_pub.publish(cmd)
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while not drv.received and time.monotonic() < deadline:   # discovery
                send()
                drv.spin_for(0.2)
            assert drv.received, log.read_text()
            drv.spin_for(1.0)                                         # the one zero after silence
            assert is_zero(drv.latest())
            first = len(drv.received)
            drv.spin_for(1.0)
            assert len(drv.received) == first, 'on_input mode must not publish on its own while silent'
            for _ in range(5):
                send()
                drv.spin_for(0.02)
            drv.spin_for(0.5)
            out = [linear(m) for _, m in drv.received[first:]]
            assert sum(moving(v) for v in out) == 5, out
            assert is_zero(out[-1]) and len(out) == 6, out
    finally:
        drv.close()
