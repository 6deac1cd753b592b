"""Episode reset on a real arm: the arm adapter's rig/home service moves the arm home, then answers."""
from __future__ import annotations

import time

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import TwistStamped
from ros_util import rclpy_node, spawn_node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from rig_base import qos
from rig_policy.kinematics import ArmKinematics

pytestmark = pytest.mark.ros
HOME = np.array([-0.470, -1.735, 2.480, -2.275, -1.590, -1.991])


@pytest.fixture
def ros_node():
    with rclpy_node('fake_ur', '/homing') as node:
        yield node


def test_home_service_moves_the_arm_home_and_ignores_commands_meanwhile(ros_node, tmp_path):
    node = ros_node
    kin = ArmKinematics('ur5e')
    controller = list(reversed(kin.joint_names))          # a controller order unlike the model's
    received: list[np.ndarray] = []
    node.create_subscription(Float64MultiArray, 'forward_velocity_controller/commands',
                             lambda m: received.append(kin.order(controller, m.data)), qos.COMMAND_QOS)
    js = node.create_publisher(JointState, 'joint_states', qos.STATE_PUBLISHER_QOS)
    cmd = node.create_publisher(TwistStamped, 'rig/cmd', qos.COMMAND_QOS)
    home_cli = node.create_client(Trigger, 'rig/home')
    q = HOME + np.array([0.2, -0.15, 0.1, 0.05, -0.1, 0.2])
    params = {'arm': 'ur5e', 'output': 'ur', 'output_topic': 'forward_velocity_controller/commands',
              'controller_joints': '[' + ','.join(controller) + ']', 'rate_hz': 50.0,
              'home.pose': '[' + ','.join(map(str, HOME)) + ']', 'home.max_joint_velocity': 0.4,
              'home.max_joint_acceleration': 1.5, 'home.tolerance': 0.005, 'joint_state_timeout_s': 0.5}
    log = tmp_path / 'adapter.log'
    with spawn_node('rig_policy.arm_adapter_node', params, namespace='/homing', log_path=log) as proc:
        assert home_cli.wait_for_service(timeout_sec=30.0), log.read_text()
        last = time.monotonic()

        def step_arm():
            """The fake arm follows the last velocity command and reports its joints (model order)."""
            nonlocal q, last
            now = time.monotonic()
            if received:
                q = q + (now - last) * received[-1]
            last = now
            js.publish(JointState(name=list(kin.joint_names), position=[float(x) for x in q]))
            rclpy.spin_once(node, timeout_sec=0.01)

        for _ in range(30):
            step_arm()
        future = home_cli.call_async(Trigger.Request())
        deadline = time.monotonic() + 40
        while not future.done() and time.monotonic() < deadline:
            twist = TwistStamped()                        # a policy command that must not interfere
            twist.header.frame_id = 'base_link'
            twist.twist.linear.z = 0.1
            cmd.publish(twist)
            step_arm()
        assert future.done(), log.read_text()
        result, q_done, n_done = future.result(), q.copy(), len(received)
        for _ in range(60):                               # the last policy command times out; zeros follow
            step_arm()
        assert proc.poll() is None
    assert result.success, result.message
    assert np.max(np.abs(q_done - HOME)) < 0.01
    peaks = np.max(np.abs(np.array(received[:n_done])), axis=0)
    assert np.all(peaks <= 0.4 + 1e-9) and np.max(peaks) > 0.1, 'a slow but real move'
    assert not np.any(received[-1]), 'left at rest after the reset, not resuming the old command'
    assert 'home reached' in log.read_text()


def test_home_service_refuses_without_joint_states(ros_node, tmp_path):
    node = ros_node
    home_cli = node.create_client(Trigger, 'rig/home')
    with spawn_node('rig_policy.arm_adapter_node', {'arm': 'ur5e'}, namespace='/homing',
                    log_path=tmp_path / 'a.log'):
        assert home_cli.wait_for_service(timeout_sec=30.0)
        future = home_cli.call_async(Trigger.Request())
        rclpy.spin_until_future_complete(node, future, timeout_sec=10.0)
        assert future.done() and not future.result().success
        assert 'joint_states' in future.result().message
