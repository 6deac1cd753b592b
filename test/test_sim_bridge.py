"""The sim bridge in its own process, driven over real DDS: commands move the hand, bad ones don't."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.node import Node
from ros_util import spawn_node, spin_until
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import Trigger

from rig_base import qos
from rig_base.image_msgs import image_to_numpy

pytestmark = pytest.mark.ros


class Client:
    """Test-side node: publishes commands, records what the bridge publishes."""

    def __init__(self, namespace: str):
        self.node = Node('bridge_test_client', namespace=namespace)
        self.images: list[Image] = []
        self.poses: list[PoseStamped] = []
        self.joints: list[JointState] = []
        self.goals: list[Image] = []
        self.cmd_pub = self.node.create_publisher(TwistStamped, 'rig/cmd', qos.COMMAND_QOS)
        self.node.create_subscription(Image, 'camera/image_raw', self.images.append, qos.CAMERA_SUBSCRIBER_QOS)
        self.node.create_subscription(PoseStamped, 'rig/ee_pose', self.poses.append, 10)
        self.node.create_subscription(JointState, 'joint_states', self.joints.append, 10)
        self.node.create_subscription(Image, 'rig/goal_image', self.goals.append, qos.LATCHED_QOS)
        self.reset_cli = self.node.create_client(Trigger, 'sim/reset')
        self.goal_cli = self.node.create_client(Trigger, 'sim/sample_goal')

    def send(self, vx=0.0, vy=0.0, vz=0.0, frame='base_link'):
        msg = TwistStamped()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.header.frame_id = frame
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = vx, vy, vz
        self.cmd_pub.publish(msg)

    def step(self, *v, frame='base_link', timeout=10.0):
        """Lockstep: send one command and wait for the frame that answers it."""
        n = len(self.poses)
        self.send(*v, frame=frame)
        assert spin_until(self.node, lambda: len(self.poses) > n, timeout), 'bridge did not answer'
        return self.poses[-1]

    def call(self, client, timeout=20.0):
        assert client.wait_for_service(timeout_sec=timeout)
        future = client.call_async(Trigger.Request())
        assert spin_until(self.node, future.done, timeout)
        return future.result()

    def ee(self):
        p = self.poses[-1].pose.position
        return np.array([p.x, p.y, p.z])


@pytest.fixture(scope='module')
def ros_context():
    rclpy.init()
    yield
    rclpy.try_shutdown()


@pytest.fixture
def lockstep_bridge(ros_context, tmp_path):
    ns = '/bridge_lockstep'
    with spawn_node('rig_sim.bridge_node', {'task': 'push', 'mode': 'lockstep', 'control_rate_hz': 20.0},
                    namespace=ns, log_path=tmp_path / 'bridge.log') as proc:
        client = Client(ns)
        # Discovery + the first frame: the bridge publishes one observation when it comes up, but a late
        # subscriber misses it; a zero command answers with a fresh one.
        ok = False
        for _ in range(60):
            client.send()
            if spin_until(client.node, lambda: len(client.poses) > 0 and len(client.images) > 0, 0.5):
                ok = True
                break
            assert proc.poll() is None, (tmp_path / 'bridge.log').read_text()
        assert ok, 'no frames from the bridge: ' + (tmp_path / 'bridge.log').read_text()
        yield client, proc, tmp_path / 'bridge.log'
        client.node.destroy_node()


def test_commands_move_the_hand_in_pose_and_image(lockstep_bridge):
    client, proc, log = lockstep_bridge
    client.step()
    start = client.ee()
    image_before = image_to_numpy(client.images[-1]).astype(int)
    for _ in range(10):   # sideways from push's home in front of the puck, clear of it
        client.step(0.0, 0.08, 0.0)  # 0.08 m/s at 20 Hz: 4 mm per step
    moved = client.ee() - start
    assert 0.03 < moved[1] < 0.045, moved
    assert abs(moved[0]) < 0.005
    image_after = image_to_numpy(client.images[-1]).astype(int)
    assert image_after.shape == (48, 48, 3)
    assert image_after.std() > 5, 'blank frame'
    assert np.abs(image_after - image_before).sum() > 500, 'the hand moved but the image did not change'
    assert client.poses[-1].header.frame_id == 'base_link'
    assert len(client.joints[-1].name) == len(client.joints[-1].position) >= 6


def test_bad_commands_are_rejected_not_fatal(lockstep_bridge):
    client, proc, log = lockstep_bridge
    client.step()
    start = client.ee()
    client.step(math.nan, 0.0, 0.0)
    client.step(math.inf, 1.0, 0.0)
    client.step(50.0, 0.0, 0.0)  # absurd
    client.step(0.2, 0.0, 0.0, frame='tool0')  # wrong frame
    assert np.linalg.norm(client.ee() - start) < 0.005
    assert proc.poll() is None
    # Over the limit but sane: clipped (0.6 m/s, and the scene's 2 cm per step), not rejected.
    before = client.ee()
    client.step(1.0, 0.0, 0.0)
    dx = client.ee()[0] - before[0]
    assert 0.01 < dx <= 0.0205, dx
    assert 'rejected' in log.read_text()


def test_reset_and_goal_image_services(lockstep_bridge):
    client, proc, log = lockstep_bridge
    for _ in range(5):
        client.step(0.3, 0.0, 0.0)
    moved = client.ee()
    result = client.call(client.reset_cli)
    assert result.success
    assert 'state' in json.loads(result.message)
    client.step()
    assert np.linalg.norm(client.ee() - moved) > 0.02, 'reset did not move the hand home'

    current = image_to_numpy(client.images[-1]).astype(int)
    result = client.call(client.goal_cli)
    assert result.success
    goal_state = json.loads(result.message)['goal_state']
    assert len(goal_state) >= 2
    assert spin_until(client.node, lambda: len(client.goals) > 0, 10.0)
    goal = image_to_numpy(client.goals[-1]).astype(int)
    assert goal.shape == current.shape and goal.std() > 5
    # Rendering the goal must not disturb the live scene: a zero step changes at most a few pixel
    # levels (the puck settles by micrometres), a scene left at the goal state thousands.
    client.step()
    assert np.abs(image_to_numpy(client.images[-1]).astype(int) - current).sum() < 100


def test_realtime_mode_holds_then_stops_when_commands_go_stale(ros_context, tmp_path):
    ns = '/bridge_realtime'
    with spawn_node('rig_sim.bridge_node', {'task': 'reach', 'mode': 'realtime', 'control_rate_hz': 20.0,
                                            'cmd_timeout_s': 0.3},
                    namespace=ns, log_path=tmp_path / 'bridge.log') as proc:
        client = Client(ns)
        assert spin_until(client.node, lambda: len(client.poses) > 3, 30.0), (tmp_path / 'bridge.log').read_text()
        # Without commands the arm stays put although frames keep coming at the control rate.
        n0, p0 = len(client.poses), client.ee()
        spin_until(client.node, lambda: False, 1.0)
        assert len(client.poses) - n0 >= 8, 'realtime mode should publish at ~20 Hz'
        assert np.linalg.norm(client.ee() - p0) < 0.003
        # A stream of commands moves the hand; when it stops, the hand stops within the timeout.
        for _ in range(10):
            client.send(0.0, 0.2, 0.0)
            spin_until(client.node, lambda: False, 0.05)
        assert client.ee()[1] - p0[1] > 0.02
        spin_until(client.node, lambda: False, 0.6)
        p1 = client.ee()
        spin_until(client.node, lambda: False, 1.0)
        assert np.linalg.norm(client.ee() - p1) < 0.003, 'arm kept moving on a stale command'
        assert proc.poll() is None
        client.node.destroy_node()
