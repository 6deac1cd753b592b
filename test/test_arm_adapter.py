"""The arm adapter in its own process over DDS: its joint velocities realise the commanded twist on the
MuJoCo arm model, in the controller's joint order; it stays quiet without joint states, stops on stale
or NaN commands, and sends zero on shutdown."""
from __future__ import annotations

import math
import signal
import time

import mujoco
import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import PoseStamped, TwistStamped
from ros_util import REPO, spawn_node, spin_until
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from rig_base import qos
from rig_base.ros_params import dataclass_from_yaml_params
from rig_policy.arm_adapter_node import ArmAdapterConfig
from rig_policy.home_pose import HomeConfig
from rig_policy.kinematics import ArmKinematics

pytestmark = pytest.mark.ros

Q_UR = np.array([-0.470, -1.735, 2.480, -2.275, -1.590, -1.991])
Q_SAWYER = np.array([0.0, -1.18, 0.0, 2.18, 0.0, 0.57, 3.3161])
V = np.array([0.03, -0.02, 0.01])


@pytest.fixture(scope='module')
def ros_context():
    rclpy.init()
    yield
    rclpy.try_shutdown()


class Cell:
    """Test side of a real cell: publishes joint_states and rig/cmd, records the joint commands."""

    def __init__(self, namespace: str, kin: ArmKinematics, q: np.ndarray, out_type, out_topic: str):
        self.node = rclpy.create_node('adapter_test_cell', namespace=namespace)
        self.kin, self.q = kin, q
        self.out: list[tuple[float, object]] = []
        self.cmd_pub = self.node.create_publisher(TwistStamped, 'rig/cmd', qos.COMMAND_QOS)
        self.js_pub = self.node.create_publisher(JointState, 'joint_states', qos.STATE_PUBLISHER_QOS)
        self.node.create_subscription(out_type, out_topic, lambda m: self.out.append((time.monotonic(), m)),
                                      qos.COMMAND_QOS)
        self.out_topic = out_topic
        self.poses: list[PoseStamped] = []
        self.node.create_subscription(PoseStamped, 'rig/ee_pose', self.poses.append, qos.STATE_SUBSCRIBER_QOS)
        rng = np.random.default_rng(3)
        # Driver order differs from the model's, and an extra joint (a gripper) is mixed in.
        names = list(kin.joint_names) + ['gripper_finger_joint']
        positions = list(q) + [0.01]
        perm = rng.permutation(len(names))
        self.js_names = [names[i] for i in perm]
        self.js_positions = [float(positions[i]) for i in perm]

    def send_joint_states(self):
        self.js_pub.publish(JointState(name=self.js_names, position=self.js_positions))

    def send_cmd(self, v, frame='base_link'):
        msg = TwistStamped()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.header.frame_id = frame
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(x) for x in v)
        self.cmd_pub.publish(msg)

    def run(self, seconds: float, v=None, joint_states=True, until=None) -> bool:
        """Spin for `seconds` publishing at ~50 Hz; stop early when `until()` holds."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if joint_states:
                self.send_joint_states()
            if v is not None:
                self.send_cmd(v)
            rclpy.spin_once(self.node, timeout_sec=0.02)
            if until is not None and until():
                return True
        return until() if until is not None else True

    def wait_connected(self, timeout=15.0):
        ok = spin_until(self.node, lambda: self.cmd_pub.get_subscription_count() > 0
                        and self.js_pub.get_subscription_count() > 0
                        and self.node.count_publishers(self.node.resolve_topic_name(self.out_topic)) > 0,
                        timeout)
        assert ok, 'adapter did not come up'

    def close(self):
        self.node.destroy_node()


def realised(kin: ArmKinematics, q, names, values):
    """End-effector twist (linear, angular) that joint velocities given in `names` order produce."""
    qdot = kin.order(names, values)
    return kin.jacobian6(q) @ qdot


def test_ur_adapter(ros_context, tmp_path):
    kin = ArmKinematics('ur5e')
    controller = ['wrist_3_joint', 'elbow_joint', 'shoulder_pan_joint',
                  'wrist_1_joint', 'shoulder_lift_joint', 'wrist_2_joint']
    ns = '/adapter_ur'
    cell = Cell(ns, kin, Q_UR, Float64MultiArray, 'forward_velocity_controller/commands')
    log = tmp_path / 'adapter.log'
    params = {'arm': 'ur5e', 'output': 'ur', 'output_topic': 'forward_velocity_controller/commands',
              'controller_joints': '[' + ','.join(controller) + ']', 'rate_hz': 50.0,
              'cmd_timeout_s': 0.2, 'zero_burst': 3}
    try:
        with spawn_node('rig_policy.arm_adapter_node', params, namespace=ns, log_path=log) as proc:
            cell.wait_connected()
            # 1. Commands but no joint states yet: silence.
            cell.run(0.5, v=V, joint_states=False)
            assert cell.out == [], 'output before any joint_states'

            # 2. Joint states (shuffled, extra joint) + twist: joint velocities in controller order realise it.
            assert cell.run(10.0, v=V, until=lambda: len(cell.out) >= 5), log.read_text()
            data = np.array(cell.out[-1][1].data)
            assert data.shape == (6,) and np.any(data)
            twist = realised(kin, Q_UR, controller, data)
            np.testing.assert_allclose(twist[:3], V, atol=1e-6)     # J . qdot = v
            np.testing.assert_allclose(twist[3:], 0.0, atol=1e-6)   # orientation held
            # rig/ee_pose (for the safety filter's box) is the forward kinematics of the joint states.
            assert cell.run(2.0, until=lambda: bool(cell.poses))
            pose = cell.poses[-1]
            p = pose.pose.position
            np.testing.assert_allclose([p.x, p.y, p.z], kin.fk(Q_UR), atol=1e-9)
            assert pose.header.frame_id == 'base_link'
            o = pose.pose.orientation
            rot = np.zeros(9)
            mujoco.mju_quat2Mat(rot, np.array([o.w, o.x, o.y, o.z]))
            np.testing.assert_allclose(rot.reshape(3, 3), kin.fk_pose(Q_UR)[1], atol=1e-9)

            # 3. NaN command: stops at once.
            n = len(cell.out)
            cell.send_cmd([math.nan, 0.0, 0.0])
            assert cell.run(2.0, until=lambda: len(cell.out) > n and not np.any(cell.out[-1][1].data))

            # 4. Stale: resume, then stop commanding -> zeros (zero_burst of them), then quiet.
            assert cell.run(3.0, v=V, until=lambda: np.any(cell.out[-1][1].data))
            t_last_cmd = time.monotonic()
            n = len(cell.out)
            cell.run(0.8)
            after = [(t, np.array(m.data)) for t, m in cell.out[n:]]
            zeros = [t for t, d in after if not np.any(d)]
            assert len(zeros) == 3, after
            assert zeros[0] - t_last_cmd < 0.2 + 0.1                 # within cmd_timeout + a period or two
            assert not np.any(after[-1][1])

            # 5. Shutdown while moving: the last word is zero.
            assert cell.run(3.0, v=V, until=lambda: np.any(cell.out[-1][1].data))
            proc.send_signal(signal.SIGINT)
            assert cell.run(5.0, v=None, until=lambda: proc.poll() is not None)
            cell.run(0.3)
            assert proc.returncode == 0, log.read_text()
            assert not np.any(cell.out[-1][1].data)
    finally:
        cell.close()


def test_sawyer_adapter_joint_state_output(ros_context, tmp_path):
    kin = ArmKinematics('sawyer')
    ns = '/adapter_sawyer'
    cell = Cell(ns, kin, Q_SAWYER, JointState, 'sawyer/joint_velocity_command')
    params = {'arm': 'sawyer', 'output': 'sawyer', 'output_topic': 'sawyer/joint_velocity_command',
              'controller_joints': '[' + ','.join(kin.joint_names) + ']', 'rate_hz': 50.0}
    log = tmp_path / 'adapter.log'
    try:
        with spawn_node('rig_policy.arm_adapter_node', params, namespace=ns, log_path=log):
            cell.wait_connected()
            assert cell.run(10.0, v=V, until=lambda: len(cell.out) >= 3), log.read_text()
    finally:
        cell.close()
    msg = cell.out[-1][1]
    assert list(msg.name) == list(kin.joint_names) and not list(msg.position)
    twist = realised(kin, Q_SAWYER, list(msg.name), list(msg.velocity))
    np.testing.assert_allclose(twist, np.r_[V, 0, 0, 0], atol=1e-6)
    assert msg.header.stamp.sec > 0


@pytest.mark.parametrize('name', ['arm_ur5e.yaml', 'arm_sawyer.yaml'])
def test_arm_config_files_match_parameters(name):
    cfg = dataclass_from_yaml_params(ArmAdapterConfig, REPO / 'config' / name, 'arm_adapter')
    kin = ArmKinematics(cfg.arm, joint_prefix=cfg.joint_prefix)
    assert sorted(cfg.controller_joints) == sorted(kin.joint_names)
    cfg.solver()
    home = dataclass_from_yaml_params(HomeConfig, REPO / 'config' / name, 'home_pose')
    assert home.arm == cfg.arm and len(home.home.pose) == kin.n
    assert sorted(home.controller_joints) == sorted(kin.joint_names)
    assert np.all((kin.lower < home.home.pose) & (np.array(home.home.pose) < kin.upper))
    # The episode reset (the adapter's rig/home) and the home tool move the same way to the same pose.
    assert home.home == cfg.home
