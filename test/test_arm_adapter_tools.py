"""Arm bring-up helpers: the home move (plan + closed-loop execution against a joint-integrating arm
over DDS) and the MoveIt Servo start-up helper (Humble Trigger path against a real service)."""
from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from ros_util import node_env, ros_args, spawn_node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from rig_base import qos
from rig_policy.home_pose import plan_home, states_fresh, tracking_velocity, trajectory_message
from rig_policy.kinematics import ArmKinematics

HOME = np.array([-0.470, -1.735, 2.480, -2.275, -1.590, -1.991])


@pytest.fixture(scope='module')
def ros_context():
    rclpy.init()
    yield
    rclpy.try_shutdown()


def test_home_plan_respects_caps_and_ends_at_rest():
    start = HOME + np.array([0.6, -0.3, 0.2, 0.0, 0.1, -0.4])
    plan = plan_home(start, HOME, max_velocity=0.2, max_acceleration=0.5)
    times = np.linspace(0, plan.duration, 2001)
    q = np.array([plan.at(t)[0] for t in times])
    qdot = np.array([plan.at(t)[1] for t in times])
    np.testing.assert_allclose(q[0], start)
    np.testing.assert_allclose(q[-1], HOME, atol=1e-12)
    np.testing.assert_allclose(qdot[[0, -1]], 0.0, atol=1e-12)
    assert np.max(np.abs(qdot)) <= 0.2 + 1e-9
    assert np.max(np.abs(np.diff(qdot, axis=0) / np.diff(times)[:, None])) <= 0.5 + 1e-3
    np.testing.assert_allclose(np.gradient(q, times, axis=0)[5:-5], qdot[5:-5], atol=1e-4)  # consistent
    samples = plan.samples(0.1)
    assert samples[-1][0] == pytest.approx(plan.duration) and np.allclose(samples[-1][1], HOME)
    # Tracking pulls a lagging arm towards the plan, within the cap.
    v = tracking_velocity(plan, 1.0, plan.at(1.0)[0] + 0.05, gain=2.0, max_velocity=0.2)
    assert np.all(v <= plan.at(1.0)[1] + 1e-12)
    kin = ArmKinematics('ur5e')
    with pytest.raises(ValueError, match='outside the joint limits'):
        plan_home(HOME, HOME + [0, 0, 4.0, 0, 0, 0], lower=kin.lower, upper=kin.upper)


def test_joint_states_are_stale_only_when_none_came_while_this_process_ran():
    timeout = 0.2
    assert states_fresh(10.0, received_at=9.9, last_tick=9.99, timeout_s=timeout)
    assert not states_fresh(10.0, received_at=9.7, last_tick=9.99, timeout_s=timeout), 'the driver went silent'
    # this process itself was held up for 0.5 s: the states that came meanwhile are still queued
    assert states_fresh(10.0, received_at=9.5, last_tick=9.5, timeout_s=timeout)
    # ... and the next tick judges: still nothing read means stale
    assert not states_fresh(10.01, received_at=9.5, last_tick=10.0, timeout_s=timeout)
    assert not states_fresh(10.0, received_at=9.5, last_tick=None, timeout_s=timeout), 'the first tick judges'


def test_trajectory_message_or_clear_error():
    plan = plan_home(HOME + 0.1, HOME)
    if importlib.util.find_spec('trajectory_msgs') is None:
        with pytest.raises(RuntimeError, match='ros-jazzy-trajectory-msgs'):
            trajectory_message(plan, ['j'] * 6)
    else:
        msg = trajectory_message(plan, [f'j{i}' for i in range(6)])
        assert np.allclose(msg.points[-1].positions, HOME)


@pytest.mark.ros
@pytest.mark.parametrize('driver_silent_after_s', [None, 0.3])
def test_home_pose_velocity_mode_drives_an_arm_home(ros_context, tmp_path, driver_silent_after_s):
    """home_pose in its own process tracks its plan on an arm that integrates the velocities it gets;
    a driver that falls silent mid-move (no joint_states) gets a zero command and the tool exits 1."""
    controller = ['wrist_3_joint', 'wrist_2_joint', 'wrist_1_joint', 'elbow_joint',
                  'shoulder_lift_joint', 'shoulder_pan_joint']
    kin = ArmKinematics('ur5e')
    node = rclpy.create_node('fake_arm', namespace='/home_test')
    q = HOME + np.array([0.15, -0.1, 0.05, 0.0, 0.1, -0.2])
    received: list[np.ndarray] = []
    node.create_subscription(Float64MultiArray, 'forward_velocity_controller/commands',
                             lambda m: received.append(kin.order(controller, m.data)), qos.COMMAND_QOS)
    js = node.create_publisher(JointState, 'joint_states', qos.STATE_PUBLISHER_QOS)
    params = {'arm': 'ur5e', 'mode': 'velocity', 'home.pose': '[' + ','.join(map(str, HOME)) + ']',
              'output': 'ur', 'output_topic': 'forward_velocity_controller/commands',
              'controller_joints': '[' + ','.join(controller) + ']', 'home.max_joint_velocity': 0.3,
              'home.max_joint_acceleration': 1.0, 'rate_hz': 50.0, 'home.tolerance': 0.005,
              'joint_state_timeout_s': 0.5}
    log = tmp_path / 'home.log'
    try:
        with spawn_node('rig_policy.home_pose', params, namespace='/home_test', log_path=log) as proc:
            last = time.monotonic()
            deadline = last + 30.0
            moving_since = None
            while proc.poll() is None and time.monotonic() < deadline:
                now = time.monotonic()
                if received:
                    q = q + (now - last) * received[-1]        # the arm follows the last command
                    moving_since = moving_since or now
                last = now
                if driver_silent_after_s is None or moving_since is None or now - moving_since < driver_silent_after_s:
                    js.publish(JointState(name=list(kin.joint_names), position=[float(x) for x in q]))
                rclpy.spin_once(node, timeout_sec=0.01)
            for _ in range(20):
                rclpy.spin_once(node, timeout_sec=0.01)
    finally:
        node.destroy_node()
    text = log.read_text()
    if driver_silent_after_s is not None:
        assert proc.returncode == 1, text
        assert 'joint_states stale while moving home: stopped' in text, text
        assert not np.any(received[-1]) and np.max(np.abs(q - HOME)) > 0.01, 'stopped on the way'
        return
    assert proc.returncode == 0, text
    assert np.max(np.abs(q - HOME)) < 0.01
    peaks = np.max(np.abs(np.array(received)), axis=0)
    assert np.all(peaks <= 0.3 + 1e-9) and np.max(peaks) > 0.1
    assert not np.any(received[-1])                             # left at rest
    assert 'home reached' in log.read_text()


@pytest.mark.ros
def test_servo_start_humble_trigger_and_jazzy_without_moveit_msgs(ros_context):
    node = rclpy.create_node('servo_node', namespace='/servo_test')
    calls = []

    def on_start(request, response):
        calls.append(time.monotonic())
        response.success, response.message = True, 'servo started'
        return response

    node.create_service(Trigger, '~/start_servo', on_start)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        cmd = [sys.executable, '-m', 'rig_policy.servo_bridge', '--distro', 'humble',
               '--servo-node', '/servo_test/servo_node', '--timeout', '15'] + ros_args()
        done = subprocess.run(cmd, env=node_env(), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert calls and 'started' in done.stdout
        if importlib.util.find_spec('moveit_msgs') is None:
            cmd = [sys.executable, '-m', 'rig_policy.servo_bridge', '--distro', 'jazzy', '--timeout', '1']
            done = subprocess.run(cmd, env=node_env(), capture_output=True, text=True, timeout=60)
            assert done.returncode == 2 and 'moveit_msgs' in done.stderr and 'source' in done.stderr
    finally:
        executor.shutdown()
        node.destroy_node()


def test_home_pose_without_joint_states_says_which_topic_and_gives_up():
    """`ros2 run rig home` with no driver publishing: a clear error naming the topic, exit 1, not a
    silent wait forever."""
    import sys
    cmd = [sys.executable, '-m', 'rig_policy.home_pose'] + ros_args(
        {'mode': 'velocity', 'wait_for_joint_states_s': 1.5}, namespace='/no_driver_test',
        remaps={'joint_states': '/robot/joint_states_nobody'})
    done = subprocess.run(cmd, env=node_env(), capture_output=True, text=True, timeout=60)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert 'no joint_states on /robot/joint_states_nobody after 1.5 s' in out, out


@pytest.mark.ros
@pytest.mark.parametrize('controller_after_s', [1.0, None])
def test_home_pose_in_trajectory_mode_waits_for_the_controller_then_names_it(ros_context, tmp_path,
                                                                             controller_after_s):
    """Trajectory mode: the driver's joint_states may be discovered before its controller's subscription
    (seen under load). A controller that subscribes within wait_for_joint_states_s gets the trajectory;
    none at all is a clear error naming the topic, and nothing is sent. A 1 s gap in the joint states
    while the controller runs the trajectory only delays the check (the tool stops nothing)."""
    from trajectory_msgs.msg import JointTrajectory
    kin = ArmKinematics('ur5e')
    node = rclpy.create_node('fake_ur_driver', namespace='/traj_test')
    js = node.create_publisher(JointState, 'joint_states', qos.STATE_PUBLISHER_QOS)
    received = []
    params = {'arm': 'ur5e', 'mode': 'trajectory', 'home.pose': '[' + ','.join(map(str, HOME)) + ']',
              'trajectory_topic': 'scaled_joint_trajectory_controller/joint_trajectory',
              'wait_for_joint_states_s': 8.0}   # discovery under the suite's load has taken over 3 s
    log = tmp_path / 'home.log'
    q, sent_at = HOME + 0.1, math.inf
    try:
        with spawn_node('rig_policy.home_pose', params, namespace='/traj_test', log_path=log) as proc:
            t0 = time.monotonic()
            while proc.poll() is None and time.monotonic() < t0 + 30:
                if controller_after_s is not None and not received and time.monotonic() > t0 + controller_after_s:
                    received.append('subscribed')
                    node.create_subscription(JointTrajectory, 'scaled_joint_trajectory_controller/joint_trajectory',
                                             received.append, qos.COMMAND_QOS)
                gap = len(received) > 1 and time.monotonic() - sent_at < 1.0
                if not gap:
                    js.publish(JointState(name=list(kin.joint_names), position=[float(x) for x in q]))
                rclpy.spin_once(node, timeout_sec=0.02)
                if len(received) > 1 and sent_at == math.inf:
                    q, sent_at = HOME, time.monotonic()   # the controller runs the trajectory; states pause
    finally:
        node.destroy_node()
    text = log.read_text()
    if controller_after_s is None:
        assert proc.returncode == 1, text
        assert 'no controller listens on /traj_test/scaled_joint_trajectory_controller/joint_trajectory' in text, text
        assert 'moving home' not in text
    else:
        assert len(received) > 1 and isinstance(received[1], JointTrajectory), text
        assert proc.returncode == 0, text
        assert 'the controller goes on with the trajectory' in text and 'home reached' in text, text
