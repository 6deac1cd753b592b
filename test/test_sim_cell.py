"""The simulated real cell: drivers that speak what UR's, intera's and realsense-ros's speak, and the robot
graph run against them unchanged (its own config files, the simulated cell's values layered on top)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from geometry_msgs.msg import PoseStamped, TwistStamped
from ros_util import REPO, node_env, rclpy_node, spin_until
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from rig import graph
from rig_base import qos
from rig_base.image_msgs import image_to_numpy
from rig_policy.home_pose import DEFAULT_HOME
from rig_policy.kinematics import ArmKinematics
from rig_sim.cell import DRIVERS, CommandError, SimulatedArm, cell_parameters
from rig_sim.config import SimConfig
from rig_sim.scene import RigScene
from rig_sim.tasks import TASK_SPECS

RIG = [sys.executable, '-m', 'rig']


# -- the physics (no ROS) ------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def ur():
    arm = SimulatedArm('reach', 'ur5e')
    yield arm
    arm.close()


def _run(arm, seconds, start=0.0, rate=100.0, command=None):
    t = start
    for _ in range(int(round(seconds * rate))):
        t += 1.0 / rate
        if command is not None:
            command(t)
        arm.advance(t)
    return t


def test_a_velocity_command_is_integrated_held_and_capped_at_the_joint_speed_limit():
    arm = SimulatedArm('reach', 'ur5e')
    q0 = arm.q.copy()
    arm.advance(0.0)
    arm.command_velocity(None, [0.1, 0, 0, 0, 0, 0], 0.0)     # controller order: shoulder_pan first
    _run(arm, 1.0)                                             # UR: held without new commands
    assert arm.q[0] - q0[0] == pytest.approx(0.1, abs=2e-3)
    assert np.allclose(arm.q[1:], q0[1:])
    arm.command_velocity(None, [10.0, 0, 0, 0, 0, 0], 1.0)    # above UR's 3.14 rad/s
    _run(arm, 0.1, start=1.0)
    assert arm.qdot[0] == pytest.approx(3.14, abs=1e-6)
    arm.close()


def test_sawyer_holds_position_when_commands_stop_for_its_timeout():
    arm = SimulatedArm('reach', 'sawyer')
    names = list(arm.joint_names)
    arm.advance(0.0)
    arm.command_velocity(names, [0.2] + [0.0] * 6, 0.0)
    t = _run(arm, 0.15)
    assert arm.qdot[0] == pytest.approx(0.2)
    q = arm.q.copy()
    _run(arm, 0.5, start=t)                   # no command for > 0.2 s: position hold
    assert arm.qdot[0] == 0.0 and arm.q[0] - q[0] < 0.2 * 0.06
    arm.close()


def test_joints_stop_at_their_limits(ur):
    arm = SimulatedArm('reach', 'ur5e')
    arm.advance(0.0)
    arm.command_velocity(None, [0, 0, 3.0, 0, 0, 0], 0.0)     # the elbow, +-pi on a UR5e
    _run(arm, 2.0)
    assert arm.q[2] == pytest.approx(arm.upper[2]) and arm.qdot[2] == 0.0
    arm.close()


@pytest.mark.parametrize('bad, why', [
    (dict(names=None, velocities=[0.1] * 5), 'does not match'),
    (dict(names=None, velocities=[0.1, np.nan, 0, 0, 0, 0]), 'non-finite'),
    (dict(names=['elbow_joint', 'no_such_joint'], velocities=[0.1, 0.1]), 'do not match'),
])
def test_a_bad_command_is_refused_and_moves_nothing(ur, bad, why):
    q = ur.q.copy()
    with pytest.raises(CommandError, match=why):
        ur.command_velocity(bad['names'], bad['velocities'], 0.0)
    assert np.array_equal(ur.q, q)


def test_a_trajectory_is_followed_to_its_last_point_and_held():
    arm = SimulatedArm('reach', 'ur5e')
    target = arm.q + np.array([0.2, -0.1, 0.1, 0.0, 0.05, -0.2])
    names = list(reversed(arm.joint_names))                # any joint order, matched by name
    times = [1.0, 2.0]
    mid = (arm.q + target) / 2
    arm.advance(0.0)
    arm.command_trajectory(names, times, [mid[::-1], target[::-1]], None, 0.0)
    _run(arm, 2.5)
    assert np.allclose(arm.q, target, atol=1e-6) and np.allclose(arm.qdot, 0)
    with pytest.raises(CommandError, match='exactly'):
        arm.command_trajectory(names[:3], times, [mid[:3], target[:3]], None, 3.0)
    arm.close()


def test_joint_states_come_in_the_drivers_own_order():
    ur, sawyer = SimulatedArm('reach', 'ur5e'), SimulatedArm('reach', 'sawyer')
    names, q, _ = ur.joint_state()
    assert names == sorted(names) and names != list(DRIVERS['ur5e'].controller_joints)
    assert dict(zip(names, q))['shoulder_pan_joint'] == ur.q[0]
    names, q, _ = sawyer.joint_state()
    assert names[0] == 'head_pan' and names[-1] == 'torso_t0' and q[0] == 0.0
    ur.close()
    sawyer.close()


@pytest.mark.parametrize('arm', ['ur5e', 'sawyer'])
@pytest.mark.parametrize('task', ['reach', 'push'])
def test_the_cell_values_put_home_over_the_task_start_inside_the_workspace_box(arm, task):
    params = cell_parameters(task, arm)
    home = np.array(params['/**/arm_adapter']['ros__parameters']['home']['pose'])
    box = params['/**/safety_filter']['ros__parameters']
    flange = ArmKinematics(arm).fk(home)           # what the arm adapter publishes on rig/ee_pose
    assert np.all(flange > np.array(box['workspace_low'])) and np.all(flange < np.array(box['workspace_high']))
    hand = np.array(TASK_SPECS[task].hand_home)
    assert flange[:2] == pytest.approx(hand[:2], abs=1e-3)   # the tool points down: x, y as the tip's


# -- the drivers over DDS, with the robot graph's own nodes -------------------------------------------

def _start(argv, log: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, env=node_env(), stdout=open(log, 'w'), stderr=subprocess.STDOUT)


def _stop(*procs) -> list[int]:
    for p in procs:
        if p.poll() is None:
            p.send_signal(2)
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=15))
        except subprocess.TimeoutExpired:
            p.kill()
            codes.append(p.wait())
    return codes


def _node_argv(module: str, files=(), params=None, remaps=None) -> list[str]:
    argv = [sys.executable, '-m', module, '--ros-args']
    argv += [a for f in files for a in ('--params-file', str(f))]
    argv += [a for k, v in (params or {}).items() for a in ('-p', f'{k}:={v}')]
    argv += [a for k, v in (remaps or {}).items() for a in ('-r', f'{k}:={v}')]
    return argv


@pytest.mark.ros
@pytest.mark.parametrize('arm', ['ur5e', 'sawyer'])
def test_the_arm_adapter_drives_the_simulated_arm_with_its_own_config(arm, tmp_path):
    """config/arm_<arm>.yaml unchanged (plus the cell's home pose): rig/home brings the arm home through
    the simulated driver, then rig/cmd moves the hand the commanded way."""
    cell_file = graph.cell_parameter_file('reach', arm)
    cell = _start(_node_argv('rig_sim.cell_node', params={'arm': arm, 'task': 'reach', 'camera_rate_hz': 2.0}),
                  tmp_path / 'cell.log')
    adapter = _start(_node_argv('rig_policy.arm_adapter_node', [REPO / 'config' / f'arm_{arm}.yaml', cell_file],
                                remaps={'joint_states': graph.ARM_JOINT_STATES[arm]}), tmp_path / 'adapter.log')
    home = np.array(yaml.safe_load(cell_file.read_text())['/**/arm_adapter']['ros__parameters']['home']['pose'])
    kin = ArmKinematics(arm)
    try:
        with rclpy_node('cell_probe', '/') as node:
            pose = []
            node.create_subscription(PoseStamped, '/rig/ee_pose', lambda m: pose.append(
                np.array([m.pose.position.x, m.pose.position.y, m.pose.position.z])), qos.STATE_SUBSCRIBER_QOS)
            cmd = node.create_publisher(TwistStamped, '/rig/cmd', qos.COMMAND_QOS)
            assert spin_until(node, lambda: len(pose) > 5, 60), (tmp_path / 'adapter.log').read_text()
            start = pose[-1]
            # The cell starts at the task's start pose; send the arm away, then home.
            v = np.array([0.05, 0.03, 0.0])
            t_end = time.monotonic() + 1.0
            while time.monotonic() < t_end:
                msg = TwistStamped()
                msg.header.frame_id = 'base_link'
                msg.header.stamp = node.get_clock().now().to_msg()
                msg.twist.linear.x, msg.twist.linear.y = float(v[0]), float(v[1])
                cmd.publish(msg)
                spin_until(node, lambda: False, 0.05)
            spin_until(node, lambda: False, 0.5)        # the adapter's command timeout: stopped
            moved = pose[-1] - start
            assert moved[:2] == pytest.approx(v[:2], abs=0.02), f'moved {moved}'
            assert abs(moved[2]) < 0.005 and np.linalg.norm(pose[-1] - pose[-3]) < 1e-3, 'then it stops'
            client = node.create_client(Trigger, '/rig/home')
            assert client.wait_for_service(timeout_sec=30)
            future = client.call_async(Trigger.Request())
            assert spin_until(node, future.done, 60), (tmp_path / 'adapter.log').read_text()
            assert future.result().success, future.result().message
            spin_until(node, lambda: False, 0.3)
            assert pose[-1] == pytest.approx(kin.fk(home), abs=0.005)
    finally:
        codes = _stop(adapter, cell)
    assert codes == [0, 0], (tmp_path / 'cell.log').read_text()
    assert 'refused' not in (tmp_path / 'cell.log').read_text()


@pytest.mark.ros
def test_rig_home_in_trajectory_mode_drives_the_simulated_ur_trajectory_controller(tmp_path):
    """`ros2 run rig home` with config/arm_ur5e.yaml and mode trajectory: one JointTrajectory to the
    (simulated) scaled_joint_trajectory_controller, and the arm ends at home."""
    cell = _start(_node_argv('rig_sim.cell_node', params={'arm': 'ur5e', 'camera_rate_hz': 2.0}), tmp_path / 'cell.log')
    try:
        with rclpy_node('home_probe', '/') as node:
            q = {}
            node.create_subscription(JointState, '/joint_states', lambda m: q.update(zip(m.name, m.position)),
                                     qos.STATE_SUBSCRIBER_QOS)
            assert spin_until(node, lambda: q, 60)
            home = subprocess.run(_node_argv('rig_policy.home_pose', [REPO / 'config' / 'arm_ur5e.yaml'],
                                             params={'mode': 'trajectory'}),
                                  env=node_env(), capture_output=True, text=True, timeout=120)
            assert home.returncode == 0, home.stdout + home.stderr
            spin_until(node, lambda: False, 0.3)
            kin = ArmKinematics('ur5e')
            assert kin.order(list(q), list(q.values())) == pytest.approx(np.array(DEFAULT_HOME['ur5e']), abs=0.02)
    finally:
        _stop(cell)
    assert 'executing a trajectory' in (tmp_path / 'cell.log').read_text()


@pytest.mark.ros
def test_a_malformed_command_is_refused_and_the_arm_stays_put(tmp_path):
    cell = _start(_node_argv('rig_sim.cell_node', params={'arm': 'ur5e', 'camera_rate_hz': 2.0}), tmp_path / 'cell.log')
    try:
        with rclpy_node('bad_probe', '/') as node:
            q = []
            node.create_subscription(JointState, '/joint_states', lambda m: q.append(np.array(m.position)),
                                     qos.STATE_SUBSCRIBER_QOS)
            pub = node.create_publisher(Float64MultiArray, '/forward_velocity_controller/commands', qos.COMMAND_QOS)
            assert spin_until(node, lambda: len(q) > 3 and pub.get_subscription_count() > 0, 60)
            before = q[-1]
            for data in ([0.5] * 5, [0.5, float('nan'), 0, 0, 0, 0]):
                pub.publish(Float64MultiArray(data=data))
                spin_until(node, lambda: False, 0.5)
            assert np.allclose(q[-1], before), 'a refused command moved the arm'
            pub.publish(Float64MultiArray(data=[0.2, 0, 0, 0, 0, 0]))   # ... and a good one still works
            spin_until(node, lambda: False, 0.5)
            assert not np.allclose(q[-1], before)
            pub.publish(Float64MultiArray(data=[0.0] * 6))
            spin_until(node, lambda: False, 0.2)
    finally:
        codes = _stop(cell)
    log = (tmp_path / 'cell.log').read_text()
    assert codes == [0] and 'command refused' in log and 'does not match' in log


@pytest.mark.ros
def test_the_camera_node_turns_the_simulated_realsense_topic_into_what_the_sim_env_sees(tmp_path):
    """640x480 rgb8 on /camera/camera/color/image_raw; the camera node with config/camera_topic.yaml
    (its centre crop, resized to 48) gives the image the task env itself renders at 48 x 48."""
    cell = _start(_node_argv('rig_sim.cell_node', params={'arm': 'ur5e', 'camera_rate_hz': 10.0}),
                  tmp_path / 'cell.log')
    camera = _start(_node_argv('rig_perception.camera_node', [REPO / 'config' / 'camera_topic.yaml']),
                    tmp_path / 'camera.log')
    try:
        with rclpy_node('camera_probe', '/') as node:
            raw, small = [], []
            node.create_subscription(Image, '/camera/camera/color/image_raw', raw.append, qos.CAMERA_SUBSCRIBER_QOS)
            node.create_subscription(Image, '/camera/image_raw', small.append, qos.CAMERA_SUBSCRIBER_QOS)
            assert spin_until(node, lambda: raw and len(small) > 2, 60), (tmp_path / 'camera.log').read_text()
    finally:
        codes = _stop(camera, cell)
    assert (raw[-1].width, raw[-1].height, raw[-1].encoding) == (640, 480, 'rgb8')
    assert raw[-1].header.frame_id == 'camera_color_optical_frame'
    with RigScene(SimConfig(task='reach', arm='ur5e')) as scene:    # the same start pose, at 48 x 48
        expected = scene.render()
    got = image_to_numpy(small[-1])
    assert got.shape == (48, 48, 3)
    assert np.abs(got.astype(int) - expected.astype(int)).mean() < 3.0
    assert codes == [0, 0]


# -- the robot graph's closed loop on the simulated cell ------------------------------------------------

def _call(node, srv_type, name, request, timeout=30.0):
    client = node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=timeout), f'no service {name}'
    future = client.call_async(request)
    assert spin_until(node, future.done, timeout), f'{name} did not answer'
    return future.result()


@pytest.mark.ros
@pytest.mark.parametrize('arm', ['ur5e', 'sawyer'])
def test_the_robot_graph_closes_the_loop_on_the_simulated_cell(arm, tmp_path):
    """`rig up robot --sim-cell --practice --checkpoint CKPT` (no trainer): commands flow from the
    simulated camera to the simulated driver; the hand moves and stays in the safety box; rig/home
    brings it home between episodes; a stopped camera stops the arm within 3 control periods of its
    last command; a driver that stops publishing joint states stops the adapter's output; the e-stop
    latches; Ctrl-C ends with a zero command on the controller topic."""
    from launch_util import running
    from std_msgs.msg import Bool
    from std_srvs.srv import SetBool

    from rig_policy.safety import SafetyConfig
    from rig_trainer.online import OnlineTrainer, TrainerConfig
    ckpt = OnlineTrainer(TrainerConfig(data_dir=str(tmp_path / 'learner'), task='reach', arm=arm, action_dim=2,
                                       action_scale=0.01, control_rate_hz=10.0)).save_checkpoint()
    short = tmp_path / 'short.yaml'
    short.write_text('/**/policy:\n  ros__parameters:\n    episode_length: 60\n')
    box = cell_parameters('reach', arm)['/**/safety_filter']['ros__parameters']
    period = 1.0 / SafetyConfig().control_rate_hz
    driver = DRIVERS[arm]
    with running(RIG + ['up', 'robot', '--arm', arm, '--sim-cell', '--practice', '--checkpoint', str(ckpt),
                        '--data-dir', str(tmp_path / 'data'), '--params-file', str(short)],
                 node_env(), tmp_path / 'rig_up.log', cwd=tmp_path) as run, rclpy_node('loop_probe', '/') as node:
        now = time.monotonic
        out, cmd, raw, frames, pose = [], [], [], [], []    # (arrival time, value)
        if driver.velocity_type == 'array':
            node.create_subscription(Float64MultiArray, driver.velocity_topic,
                                     lambda m: out.append((now(), float(np.max(np.abs(m.data))))), qos.COMMAND_QOS)
        else:
            node.create_subscription(JointState, driver.velocity_topic,
                                     lambda m: out.append((now(), float(np.max(np.abs(m.velocity))))), qos.COMMAND_QOS)
        speed = lambda m: float(np.linalg.norm([m.twist.linear.x, m.twist.linear.y, m.twist.linear.z]))
        node.create_subscription(TwistStamped, '/rig/cmd', lambda m: cmd.append((now(), speed(m))), qos.COMMAND_QOS)
        node.create_subscription(TwistStamped, '/rig/cmd_raw', lambda m: raw.append((now(), speed(m))),
                                 qos.COMMAND_QOS)
        node.create_subscription(Image, '/camera/image_raw', lambda m: frames.append((now(), m)),
                                 qos.CAMERA_SUBSCRIBER_QOS)
        node.create_subscription(PoseStamped, '/rig/ee_pose', lambda m: pose.append((now(), np.array(
            [m.pose.position.x, m.pose.position.y, m.pose.position.z]))), qos.STATE_SUBSCRIBER_QOS)
        estop = node.create_publisher(Bool, '/rig/estop', qos.ESTOP_QOS)
        moving = lambda since: any(v > 1e-4 for t, v in out if t > since)

        # 1. The loop is closed: the policy's commands reach the simulated arm, which moves.
        assert spin_until(node, lambda: moving(0.0), 120), run.text()[-3000:]
        t0 = now()
        spin_until(node, lambda: False, 8.0)
        seen = np.array([p for t, p in pose if t > t0])
        assert np.ptp(seen[:, :2], axis=0).max() > 0.005, 'the hand moved'
        assert np.all(seen > np.array(box['workspace_low']) - 0.01), 'inside the safety box'
        assert np.all(seen < np.array(box['workspace_high']) + 0.01), 'inside the safety box'
        run.wait_for_log(r'moving home over', 60)              # 2. home between episodes
        run.wait_for_log(r'home reached', 60)

        # 3. A stopped camera stops the arm: no frame -> no policy command -> zero 3 periods later.
        # (Right after a move home, so the policy, not the reset, is driving.)
        homes = len(re.findall(r'home reached', run.text()))
        run.wait_for_log(r'home reached', 60, count=homes + 1)
        spin_until(node, lambda: moving(now() - 0.1), 10)
        assert _call(node, SetBool, '/sim/camera_enabled', SetBool.Request(data=False)).success
        t_off = now()
        spin_until(node, lambda: False, 2.0)
        last_raw = max(t for t, v in raw if v > 0)
        last_cmd = max(t for t, v in cmd if v > 0)
        last_out = max(t for t, v in out if v > 1e-4)
        assert max(t for t, _ in frames) < t_off + 0.2
        assert last_cmd <= last_raw + 3 * period + 0.08, f'rig/cmd went on {last_cmd - last_raw:.3f} s'
        assert last_out <= last_cmd + 0.1, f'the controller moved {last_out - last_cmd:.3f} s after rig/cmd'
        assert not moving(t_off + 1.0)
        assert _call(node, SetBool, '/sim/camera_enabled', SetBool.Request(data=True)).success
        assert spin_until(node, lambda: moving(now() - 0.1), 30), 'the loop resumes with frames'

        # 4. The e-stop latches: zero at the controller while frames and policy commands still flow.
        estop.publish(Bool(data=True))
        t_stop = now()
        spin_until(node, lambda: False, 2.5)
        assert not moving(t_stop + 0.3), 'moving after the e-stop'
        assert any(v > 0 for t, v in raw if t > t_stop + 0.5), 'the policy still commands: the filter holds'
        estop.publish(Bool(data=False))
        assert spin_until(node, lambda: moving(now() - 0.1), 30), 'released: the loop resumes'

        # 5. Joint states stop: the adapter stops its output (zeros, then silence).
        assert _call(node, SetBool, '/sim/joint_states_enabled', SetBool.Request(data=False)).success
        t_js = now()
        spin_until(node, lambda: False, 2.0)
        assert not moving(t_js + 0.5), 'the adapter went on without joint states'
        assert _call(node, SetBool, '/sim/joint_states_enabled', SetBool.Request(data=True)).success
        assert spin_until(node, lambda: moving(now() - 0.1), 30), 'joint states back: the loop resumes'

        # 6. An operator goal from the task's goal distribution (`rig goal --from-sim`), and the true
        # distance to it (`sim/state`), as with the sim bridge.
        goal = subprocess.run(RIG + ['goal', '--from-sim'], env=node_env(), capture_output=True, text=True,
                              timeout=60)
        assert goal.returncode == 0 and 'goal from sim' in goal.stdout, goal.stdout + goal.stderr
        state = json.loads(_call(node, Trigger, '/sim/state', Trigger.Request()).message)
        assert state['distance'] is not None and len(state['state']) == 3

        # 7. Ctrl-C: the last word on the controller topic is zero.
        code = run.interrupt()
        spin_until(node, lambda: False, 0.5)
        log = run.text()
    assert code == 0, log[-4000:]
    assert out and out[-1][1] == 0.0, f'last controller command {out[-1]}'
    assert 'Traceback' not in log and 'FAILED' not in log, log[-4000:]


# -- the whole robot graph, rehearsed ------------------------------------------------------------------

FAST_ROBOT_TRAINER = """/**/trainer:
  ros__parameters:
    learn_set: ['vae.pretrain_images=100', 'vae.pretrain_steps=20', 'rl.updates_per_step=0.2',
                'rl.learning_starts=0']
    checkpoint_every_updates: 50
/**/policy:
  ros__parameters:
    episode_length: 20
"""


@pytest.mark.slow
@pytest.mark.ros
def test_rig_up_robot_sim_cell_practises_homes_records_trains_and_stops_cleanly(tmp_path):
    """`rig up robot --arm ur5e --sim-cell --trainer --practice`: the robot graph with its own config
    files practises on the simulated UR5e in real time: the trainer learns from its bags, the policy
    acts on the trainer's checkpoints, the arm adapter homes the arm between episodes, Ctrl-C is clean."""
    from launch_util import running

    from rig_trainer.bags import list_closed_bags, read_episodes
    fast = tmp_path / 'fast.yaml'
    fast.write_text(FAST_ROBOT_TRAINER)
    data = tmp_path / 'data'
    with running(RIG + ['up', 'robot', '--arm', 'ur5e', '--sim-cell', '--trainer', '--practice',
                        '--data-dir', str(data), '--params-file', str(fast)],
                 node_env(), tmp_path / 'rig_up.log', cwd=tmp_path) as run:
        run.wait_for(lambda: len(list_closed_bags(data)) >= 4, 400, 'four practice episodes recorded after '
                     'the trainer published a checkpoint')
        code = run.interrupt()
        log = run.text()
    assert code == 0, log
    assert 'Traceback' not in log and 'FAILED' not in log, log
    assert len(re.findall(r'moving home over', log)) >= 2, 'the arm adapter homes between episodes'
    assert 'home reached' in log
    episodes = [e for b in list_closed_bags(data) for e in read_episodes(b)]
    moved = [e for e in episodes if e.num_transitions and np.abs(e.velocities).max() > 1e-3]
    assert moved, 'the policy acted on the trainer\'s checkpoint: the recorded commands move the arm'
    assert (data / 'checkpoints').is_dir()
    assert 'stopping: zero command sent' in log
