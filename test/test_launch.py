"""The documented `ros2 launch` commands, run as a user runs them: a colcon build of the package, the
real Jazzy `ros2 launch` and `ros2` CLI as subprocesses, real DDS, Ctrl-C at the end.

Nothing here checks a configuration in isolation: each test starts a graph and asserts on what the
running nodes did (topics connected, bags written and ingested, parameters in effect, exit codes).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from launch_util import (
    FAST_TRAINER,
    VENV_BIN,
    assert_last_bag_ends_cleanly,
    bag_summary,
    build_workspace,
    echo_json,
    launch_exits,
    param_value,
    ros2,
    ros2_launch,
    running,
    tooling_missing,
    topic_counts,
)

pytestmark = [pytest.mark.ros, pytest.mark.slow]

_missing = tooling_missing()
if _missing:
    pytest.skip(_missing, allow_module_level=True)

@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp('colcon')
    env = build_workspace(root)
    fast = root / 'fast_trainer.yaml'
    fast.write_text(FAST_TRAINER)
    env['RIG_TEST_FAST_TRAINER'] = str(fast)
    yield env
    ros2(env, 'daemon', 'stop')   # the CLI's discovery daemon of this run's domain


def _wait_for_nodes(ws, run, names: set[str], timeout: float = 90) -> None:
    run.wait_for(lambda: names <= set(ros2(ws, 'node', 'list').stdout.split()), timeout, f'nodes {sorted(names)}')


def _closed_bags(data):
    from rig_trainer.bags import list_closed_bags
    return list_closed_bags(data)


def _assert_clean_stop(run, names: list[str]) -> None:
    rc = run.interrupt(timeout=40)
    log = run.text()
    exits = launch_exits(log)
    assert rc == 0, f'ros2 launch exited {rc}:\n{log[-4000:]}'
    for name in names:
        assert exits.get(name) == 'clean', f'{name}: {exits.get(name)}\n{log[-6000:]}'
    assert run.stopped_in < 6.0, f'Ctrl-C took {run.stopped_in:.1f} s'
    assert 'Traceback' not in log, log[-6000:]


def _process_names(log: str, executable: str) -> list[str]:
    return sorted(set(re.findall(rf'\[INFO\] \[({executable}-\d+)\]: process started', log)))


def test_two_actor_namespaces_feed_one_trainer_and_ctrl_c_is_clean(ws, tmp_path):
    """ros2 launch rig sim.launch.py namespace:='env0 env1' practice:=true: both actors get the one
    trainer's checkpoints, practise and are ingested, counted by actor; Ctrl-C stops all within 5 s."""
    from rig_learn import checkpoint as ck
    from rig_trainer.online import latest_checkpoint
    data = tmp_path / 'data'
    with ros2_launch(ws, 'sim.launch.py', 'namespace:=env0 env1', 'practice:=true', f'data_dir:={data}',
                     f'params_file:={ws["RIG_TEST_FAST_TRAINER"]}', log_path=tmp_path / 'launch.log') as run:
        run.wait_for_log(r'\[env0\.policy\]: policy using', 120)
        run.wait_for_log(r'\[env1\.policy\]: policy using', 60)
        run.wait_for(lambda: topic_counts(ws, '/rig/checkpoint') == (1, 4), 30,
                     '/rig/checkpoint: the trainer -> both encoders and both policies')
        assert topic_counts(ws, '/env0/rig/checkpoint') == (0, 0)

        def trained_on_both():
            ckpt = latest_checkpoint(data / 'checkpoints')
            if ckpt is None:
                return False
            ledger = ck.read_manifest(ckpt)['trainer']
            actors = {name.split('_ep')[0] for name in ledger['ingested']}
            return actors == {'env0', 'env1'} and ledger['counters']['updates'] > 0
        run.wait_for(trained_on_both, 180, 'a checkpoint trained on bags of both actors')
        status = echo_json(ws, '/rig/trainer_status')
        assert status['counters']['episodes'] > 0 and status['latest'].startswith(str(data)), status
        assert set(status) >= {'caught_up', 'pending_bags', 'vae_job', 'dropped_frames', 'error'}, status
        # A checkpoint trained with gradient steps reaches the actors of both namespaces.
        run.wait_for_log(r'\[env0\.policy\]: policy using \S+ \([1-9]\d* gradient steps\)', 120)
        run.wait_for_log(r'\[env1\.policy\]: policy using \S+ \([1-9]\d* gradient steps\)', 60)
        names = [n for exe in ('sim_bridge', 'encoder', 'policy', 'safety_filter', 'recorder', 'trainer')
                 for n in _process_names(run.text(), exe)]
        assert len(names) == 11, names
        _assert_clean_stop(run, names)
    for actor in ('env0', 'env1'):
        assert_last_bag_ends_cleanly(data, actor + '_ep')
    ledger = ck.read_manifest(latest_checkpoint(data / 'checkpoints'))['trainer']
    by_actor = {a: sum(1 for n in ledger['ingested'] if n.startswith(a + '_')) for a in ('env0', 'env1')}
    assert min(by_actor.values()) > 0, by_actor
    assert len(ledger['ingested']) == len(set(ledger['ingested'])), 'nothing ingested twice'


@pytest.mark.parametrize('task, horizon, action_dim', [('push', 100, 2), ('door', 100, 3)])
def test_task_argument_sets_horizon_and_action_dimension(ws, tmp_path, task, horizon, action_dim):
    """task:=push / task:=door practise episodes of the task's horizon, with its action dimension."""
    data = tmp_path / 'data'
    with ros2_launch(ws, 'sim.launch.py', f'task:={task}', 'practice:=true', f'data_dir:={data}',
                     f'params_file:={ws["RIG_TEST_FAST_TRAINER"]}', log_path=tmp_path / 'launch.log') as run:
        run.wait_for(lambda: len(_closed_bags(data)) >= 2, 180, 'two practice episodes')
        assert param_value(ws, '/policy', 'episode_length') == str(horizon)
        assert param_value(ws, '/policy', 'task') == task
        assert param_value(ws, '/encoder', 'task') == task
        assert param_value(ws, '/trainer', 'action_dim') == str(action_dim)
        names = [n for exe in ('sim_bridge', 'encoder', 'policy', 'safety_filter', 'recorder', 'trainer')
                 for n in _process_names(run.text(), exe)]
        _assert_clean_stop(run, names)
    first = bag_summary(_closed_bags(data)[0])
    assert first['events'][-1]['event'] == 'end' and first['events'][-1]['steps'] == horizon, first['events']
    moved_z = any(abs(c[2]) > 1e-6 for c in first['cmds'])
    assert moved_z == (action_dim == 3), f'{task}: z commands {moved_z}'


def test_bad_task_fails_before_any_node_starts(ws, tmp_path):
    r = ros2(ws, 'launch', 'rig', 'sim.launch.py', 'task:=bogus', f'data_dir:={tmp_path}', timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "task" in out and 'bogus' in out and 'process started' not in out, out
    assert not (tmp_path / 'checkpoints').exists(), 'no trainer ran for task "bogus"'


@pytest.mark.parametrize('arm, joint_states', [('ur5e', '/joint_states'), ('sawyer', '/robot/joint_states')])
def test_robot_launch_brings_up_every_node_waiting_for_its_driver(ws, tmp_path, arm, joint_states):
    """ros2 launch rig robot.launch.py arm:=... camera:=topic: all six nodes up, listening on the
    driver's joint state topic and camera topic, and a clean Ctrl-C while they wait."""
    with ros2_launch(ws, 'robot.launch.py', f'arm:={arm}', 'camera:=topic', f'data_dir:={tmp_path / "data"}',
                     log_path=tmp_path / 'launch.log') as run:
        run.wait_for_log(r'waiting for joint_states', 60)
        run.wait_for(lambda: topic_counts(ws, joint_states)[1] == 1, 30, f'a subscriber on {joint_states}')
        _wait_for_nodes(ws, run, {'/camera', '/encoder', '/policy', '/safety_filter', '/arm_adapter', '/recorder'})
        assert param_value(ws, '/policy', 'reset_service') == 'rig/home'
        names = [n for exe in ('camera', 'encoder', 'policy', 'safety_filter', 'arm_adapter', 'recorder')
                 for n in _process_names(run.text(), exe)]
        assert len(names) == 6, names
        _assert_clean_stop(run, names)


@pytest.mark.slow
def test_robot_launch_rehearses_the_cell_in_simulation(ws, tmp_path):
    """ros2 launch rig robot.launch.py arm:=sawyer sim_cell:=true trainer:=true practice:=true: the robot
    graph against the simulated Sawyer and camera drivers, with its own config files: the trainer learns
    from its bags, the policy acts on its checkpoints, the adapter homes the arm between episodes, and
    Ctrl-C stops every process cleanly."""
    from rig_learn import checkpoint as ck
    from rig_trainer.online import latest_checkpoint
    data = tmp_path / 'data'
    with ros2_launch(ws, 'robot.launch.py', 'arm:=sawyer', 'sim_cell:=true', 'trainer:=true', 'practice:=true',
                     f'data_dir:={data}', f'params_file:={ws["RIG_TEST_FAST_TRAINER"]}',
                     log_path=tmp_path / 'launch.log') as run:
        run.wait_for(lambda: topic_counts(ws, '/robot/joint_states') == (1, 1), 60,
                     '/robot/joint_states: the simulated driver -> the arm adapter')
        run.wait_for_log(r'\[policy\]: policy using \S+ \([1-9]\d* gradient steps\)', 240)
        run.wait_for_log(r'moving home over', 120, count=2)
        run.wait_for(lambda: len(_closed_bags(data)) >= 3, 120, 'three practice episodes recorded')
        names = [n for exe in ('camera', 'encoder', 'policy', 'safety_filter', 'arm_adapter', 'recorder',
                               'trainer', 'sim_cell') for n in _process_names(run.text(), exe)]
        assert len(names) == 8, names
        _assert_clean_stop(run, names)
    assert_last_bag_ends_cleanly(data, 'actor0_ep')
    ledger = ck.read_manifest(latest_checkpoint(data / 'checkpoints'))['trainer']
    assert ledger['counters']['updates'] > 0 and len(ledger['ingested']) >= 1


def test_learner_launch_and_a_remote_learner_cell_exchange_episodes_and_checkpoints(ws, tmp_path):
    """The GPU-learner commands of docs/real_robot.md under the real `ros2 launch` (one host here; across
    hosts: test_hosts.py): `learner.launch.py` and `robot.launch.py arm:=ur5e remote_learner:=true
    namespace:=cell1` (the cell simulated): the cell's bags reach the learner's data directory, its policy
    drives the learner's checkpoints from its own copy, and Ctrl-C stops both launches cleanly."""
    from rig_trainer.bags import list_closed_bags
    learner, cell = tmp_path / 'learner', tmp_path / 'cell'
    with ros2_launch(ws, 'learner.launch.py', 'arm:=ur5e', f'data_dir:={learner}',
                     f'params_file:={ws["RIG_TEST_FAST_TRAINER"]}', log_path=tmp_path / 'learner.log') as gpu:
        with ros2_launch(ws, 'robot.launch.py', 'arm:=ur5e', 'sim_cell:=true', 'remote_learner:=true',
                         'namespace:=cell1', 'practice:=true', f'data_dir:={cell}',
                         log_path=tmp_path / 'cell.log') as run:
            run.wait_for_log(r'\[cell1\.policy\]: policy using \S+/received_checkpoints_cell1/ckpt_\d+ '
                             r'\([1-9]\d* gradient steps\)', 300)
            run.wait_for(lambda: any(b.name.startswith('cell1_ep') for b in list_closed_bags(learner)), 60,
                         "the cell's episodes in the learner's data directory")
            names = [n for exe in ('camera', 'encoder', 'policy', 'safety_filter', 'arm_adapter', 'recorder',
                                   'learner_link', 'sim_cell') for n in _process_names(run.text(), exe)]
            assert len(names) == 8 and not _process_names(run.text(), 'trainer'), names
            _assert_clean_stop(run, names)
        assert not (cell / 'checkpoints').exists(), 'no trainer on the cell'
        _assert_clean_stop(gpu, _process_names(gpu.text(), 'trainer') + _process_names(gpu.text(), 'episode_receiver'))
    shipped = {b.name for b in list_closed_bags(cell)}
    assert shipped and shipped <= {b.name for b in list_closed_bags(learner)}, 'every closed bag shipped'


def test_robot_launch_for_a_servo_cell(ws, tmp_path):
    """cmd_topic:=/servo_node/delta_twist_cmds reset_service:=none: the filter feeds Servo, no reset."""
    with ros2_launch(ws, 'robot.launch.py', 'arm:=ur5e', 'camera:=topic', 'cmd_topic:=/servo_node/delta_twist_cmds',
                     'reset_service:=none', 'namespace:=cell1', f'data_dir:={tmp_path / "data"}',
                     log_path=tmp_path / 'launch.log') as run:
        _wait_for_nodes(ws, run, {f'/cell1/{n}' for n in ('camera', 'encoder', 'policy', 'safety_filter',
                                                           'arm_adapter', 'recorder')})
        run.wait_for(lambda: topic_counts(ws, '/servo_node/delta_twist_cmds') == (1, 1), 30,
                     'the filter feeding Servo, the recorder recording what it is sent')
        run.wait_for(lambda: topic_counts(ws, '/joint_states')[1] == 1, 30,
                     'the namespaced cell hearing the root driver on /joint_states')
        assert param_value(ws, '/cell1/policy', 'reset_service') == '', 'no reset between practice episodes'
        assert param_value(ws, '/cell1/arm_adapter', 'output') == 'none'
        run.interrupt(timeout=40)
        assert all(v == 'clean' for v in launch_exits(run.text()).values()), run.text()[-4000:]


def test_launch_arguments_are_described(ws):
    r = ros2(ws, 'launch', 'rig', 'sim.launch.py', '--show-args')
    assert r.returncode == 0, r.stderr
    for arg in ('task', 'arm', 'data_dir', 'checkpoint', 'namespace', 'practice', 'trainer', 'params_file'):
        assert f"'{arg}':" in r.stdout, arg
    assert 'rig.graph argument' not in r.stdout and "'camera':" not in r.stdout, r.stdout
    r = ros2(ws, 'launch', 'rig', 'robot.launch.py', '--show-args')
    for arg in ('camera', 'cmd_topic', 'joint_states', 'reset_service', 'remote_learner'):
        assert f"'{arg}':" in r.stdout, arg
    r = ros2(ws, 'launch', 'rig', 'learner.launch.py', '--show-args')
    for arg in ('task', 'arm', 'data_dir', 'params_file'):
        assert f"'{arg}':" in r.stdout, arg
    assert "'namespace':" not in r.stdout and "'practice':" not in r.stdout, r.stdout


def test_ros2_run_rig_is_the_cli_in_a_colcon_install(ws):
    r = ros2(ws, 'run', 'rig', 'rig', '--help')
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'COMMAND' in r.stdout and 'bring up the node graph' in r.stdout, r.stdout
    assert os.path.basename(ws['AMENT_PREFIX_PATH'].split(os.pathsep)[0]) == 'rig'


def test_ros2_run_sim_cell_and_rig_home_in_trajectory_mode(ws, tmp_path):
    """docs/real_robot.md, rehearsal: `ros2 run rig sim_cell` (the drivers alone) and `ros2 run rig home`
    with the installed config/arm_ur5e.yaml in trajectory mode, which brings the simulated UR5e home."""
    share = Path(ws['AMENT_PREFIX_PATH'].split(os.pathsep)[0]) / 'share' / 'rig' / 'config'
    argv = [str(VENV_BIN / 'ros2'), 'run', 'rig', 'sim_cell', '--ros-args', '-p', 'arm:=ur5e', '-p', 'task:=reach']
    with running(argv, ws, tmp_path / 'cell.log') as cell:
        cell.wait_for_log(r'simulated ur5e driver', 60)
        r = ros2(ws, 'run', 'rig', 'home', '--ros-args', '--params-file', str(share / 'arm_ur5e.yaml'),
                 '-p', 'mode:=trajectory', timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert 'home reached' in r.stdout + r.stderr
        assert cell.interrupt() == 0
        assert 'executing a trajectory' in cell.text()


def test_ctrl_c_in_the_middle_of_vae_pretraining_keeps_its_progress(ws, tmp_path):
    """SIGINT while the trainer pretrains its VAE: every process finishes cleanly within launch's 5 s,
    and the trainer's final checkpoint records how far pretraining got (a restart continues it)."""
    from rig_learn import checkpoint as ck
    from rig_trainer.online import latest_checkpoint
    slow = tmp_path / 'slow_pretrain.yaml'
    slow.write_text("/**/trainer:\n  ros__parameters:\n    learn_set: ['vae.pretrain_images=200', "
                    "'vae.pretrain_steps=1000000']\n")
    data = tmp_path / 'data'
    with ros2_launch(ws, 'sim.launch.py', 'practice:=true', f'data_dir:={data}', f'params_file:={slow}',
                     log_path=tmp_path / 'launch.log') as run:
        run.wait_for_log(r'\[trainer\]: ingested', 120, count=6)   # > 200 frames: pretraining runs
        import time
        time.sleep(3.0)
        names = [n for exe in ('sim_bridge', 'encoder', 'policy', 'safety_filter', 'recorder', 'trainer')
                 for n in _process_names(run.text(), exe)]
        _assert_clean_stop(run, names)
        assert re.search(r'final checkpoint ckpt_\d+: .*VAE pretrain at step [1-9]\d*/1000000', run.text()), \
            run.text()[-3000:]
    assert_last_bag_ends_cleanly(data, 'actor0_ep')
    ledger = ck.read_manifest(latest_checkpoint(data / 'checkpoints'))['trainer']
    assert ledger['vae_job']['kind'] == 'pretrain' and ledger['vae_job']['done'] > 0, ledger['vae_job']


def test_a_dead_actor_node_takes_nothing_else_down(ws, tmp_path):
    """kill -9 of one actor's sim bridge: launch reports it, the other actor keeps practising and the
    trainer keeps ingesting; Ctrl-C still stops everything else cleanly."""
    import signal
    import time
    data = tmp_path / 'data'
    with ros2_launch(ws, 'sim.launch.py', 'namespace:=env0 env1', 'practice:=true', f'data_dir:={data}',
                     f'params_file:={ws["RIG_TEST_FAST_TRAINER"]}', log_path=tmp_path / 'launch.log') as run:
        run.wait_for(lambda: {b.name[:4] for b in _closed_bags(data)} >= {'env0', 'env1'}, 150, 'bags of both actors')
        pid = int(re.search(r'\[INFO\] \[sim_bridge-\d+\]: process started with pid \[(\d+)\]', run.text()).group(1))
        os.kill(pid, signal.SIGKILL)
        run.wait_for_log(r'\[ERROR\] \[sim_bridge-\d+\]: process has died', 30)
        time.sleep(2.0)
        env1_before = sum(b.name.startswith('env1') for b in _closed_bags(data))
        run.wait_for(lambda: sum(b.name.startswith('env1') for b in _closed_bags(data)) >= env1_before + 3, 120,
                     'env1 practising on after env0 lost its sim')
        ingested = len(re.findall(r'\[trainer\]: ingested env1', run.text()))
        run.wait_for(lambda: len(re.findall(r'\[trainer\]: ingested env1', run.text())) > ingested, 60,
                     'the trainer ingesting on')
        dead = [m for m in re.findall(r'\[ERROR\] \[([\w-]+)\]: process has died', run.text())]
        assert len(dead) == 1, dead
        names = [n for exe in ('sim_bridge', 'encoder', 'policy', 'safety_filter', 'recorder', 'trainer')
                 for n in _process_names(run.text(), exe) if n not in dead]
        _assert_clean_stop(run, names)


def test_readme_operator_commands_against_a_running_sim_launch(ws, tmp_path):
    """The README's service calls and `ros2 run rig rig goal` against `ros2 launch rig sim.launch.py`."""
    data = tmp_path / 'data'
    with ros2_launch(ws, 'sim.launch.py', f'data_dir:={data}', f'params_file:={ws["RIG_TEST_FAST_TRAINER"]}',
                     log_path=tmp_path / 'launch.log') as run:
        run.wait_for_log(r'\[policy\]: policy using', 120)
        assert not _closed_bags(data), 'operator mode (the default) practises nothing'
        r = ros2(ws, 'service', 'call', '/rig/practice', 'std_srvs/srv/SetBool', '{data: true}', timeout=60)
        assert "message='practice'" in r.stdout, r.stdout + r.stderr
        run.wait_for(lambda: len(_closed_bags(data)) >= 2, 120, 'practice episodes')
        r = ros2(ws, 'service', 'call', '/rig/practice', 'std_srvs/srv/SetBool', '{data: false}', timeout=60)
        assert "message='operator'" in r.stdout, r.stdout + r.stderr
        r = ros2(ws, 'service', 'call', '/sim/sample_goal', 'std_srvs/srv/Trigger', timeout=60)
        assert 'success=True' in r.stdout and 'goal_state' in r.stdout, r.stdout + r.stderr
        run.wait_for_log(r'\[encoder\]: new goal image 48x48', 30)
        r = ros2(ws, 'run', 'rig', 'rig', 'goal', '--from-sim', timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        run.wait_for_log(r'\[encoder\]: new goal image 48x48', 30, count=2)
        run.wait_for_log(r'\[policy\]: new operator goal', 30)
        r = ros2(ws, 'service', 'call', '/sim/state', 'std_srvs/srv/Trigger', timeout=60)
        m = re.search(r'message=\'(.*)\'\)', r.stdout)
        assert m, r.stdout + r.stderr
        state = json.loads(m.group(1))
        assert state['distance'] >= 0 and len(state['goal_state']) == len(state['state']), state
        r = ros2(ws, 'topic', 'echo', '--once', '--qos-durability', 'transient_local', '--qos-reliability',
                 'reliable', '/policy/checkpoint', 'std_msgs/msg/String', timeout=60)
        assert re.search(r"data: .*ckpt_\d+", r.stdout), r.stdout + r.stderr
        names = [n for exe in ('sim_bridge', 'encoder', 'policy', 'safety_filter', 'recorder', 'trainer')
                 for n in _process_names(run.text(), exe)]
        _assert_clean_stop(run, names)


def test_odd_camera_frames_during_practice_are_dropped_and_training_goes_on(ws, tmp_path):
    """Item 9's fuzz case: frames of other sizes, encodings and a bad step published on camera/image_raw
    while the graph practises are recorded into its bags; the trainer drops or converts them with a
    counted reason, keeps every good frame, and goes on training; no process dies."""
    import time

    import numpy as np
    from ros_util import rclpy_node
    from sensor_msgs.msg import Image

    from rig_base import qos
    from rig_base.image_msgs import numpy_to_image
    from rig_learn import checkpoint as ck
    from rig_trainer.online import latest_checkpoint
    data = tmp_path / 'data'
    rng = np.random.default_rng(0)
    with ros2_launch(ws, 'sim.launch.py', 'practice:=true', f'data_dir:={data}',
                     f'params_file:={ws["RIG_TEST_FAST_TRAINER"]}', log_path=tmp_path / 'launch.log') as run, \
            rclpy_node('fuzz_camera', '/') as node:
        import rclpy
        pub = node.create_publisher(Image, '/camera/image_raw', qos.CAMERA_PUBLISHER_QOS)
        run.wait_for(lambda: len(_closed_bags(data)) >= 1, 120, 'practice under way')
        odd = []
        for k in range(60):
            kind = k % 3
            if kind == 0:
                msg = numpy_to_image(rng.integers(0, 255, (37, 91, 3), dtype=np.uint8), 'bgr8')
            elif kind == 1:
                msg = numpy_to_image(rng.integers(0, 255, (48, 48), dtype=np.uint8), 'mono8')
            else:
                msg = numpy_to_image(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8), 'rgb8')
                msg.step = 7   # rows shorter than the width: malformed
            msg.header.stamp = node.get_clock().now().to_msg()
            odd.append(kind)
            pub.publish(msg)
            rclpy.spin_once(node, timeout_sec=0.05)
        time.sleep(1.0)
        n_bags = len(_closed_bags(data))

        def dropped_and_trained():
            ckpt = latest_checkpoint(data / 'checkpoints')
            if ckpt is None:
                return False
            ledger = ck.read_manifest(ckpt)['trainer']
            return (ledger.get('dropped_frames', {}).get('malformed', 0) > 0 and len(ledger['ingested']) > n_bags
                    and ledger['counters']['updates'] > 0)
        run.wait_for(dropped_and_trained, 180, 'a checkpoint past the odd frames, with the drops counted')
        ledger = ck.read_manifest(latest_checkpoint(data / 'checkpoints'))['trainer']
        assert not ledger['bad_bags'], ledger['bad_bags']
        assert 'process has died' not in run.text() and 'training stopped' not in run.text()
        names = [n for exe in ('sim_bridge', 'encoder', 'policy', 'safety_filter', 'recorder', 'trainer')
                 for n in _process_names(run.text(), exe)]
        _assert_clean_stop(run, names)
