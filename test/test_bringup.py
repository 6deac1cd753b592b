"""Bring-up: launch files and `rig up` are built from one graph definition and one set of config files."""
from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ros_util import REPO, node_env

from rig import graph

RIG = [sys.executable, '-m', 'rig']


def _setup_nodes():
    tree = ast.parse((REPO / 'setup.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == 'NODES':
            return ast.literal_eval(node.value)


def test_graph_nodes_are_installed_executables_with_matching_factories():
    nodes = _setup_nodes()
    for spec in {s for specs in graph.GRAPHS.values() for s in specs}:
        assert spec.executable in nodes, f'{spec.executable} is not installed to lib/rig'
        module = nodes[spec.executable].split(':')[0]
        assert spec.factory.split(':')[0] == module, f'{spec.name}: launch and rig up would run different code'


def test_launch_files_hold_nothing_but_the_graph_name():
    """Both bring-up paths run rig.graph.plan: a launch file adds no node, parameter or remapping."""
    for name, graph_name in (('sim.launch.py', 'sim'), ('robot.launch.py', 'robot'), ('learner.launch.py', 'learner')):
        src = (REPO / 'launch' / name).read_text()
        assert f"return launch_description('{graph_name}')" in src, name
        code = ast.unparse([n for n in ast.parse(src).body if not isinstance(n, ast.Expr)])
        assert 'Node(' not in code and 'remappings' not in code and 'launch_ros' not in code, name


def test_plan_connects_every_actor_to_the_one_trainer():
    nodes = graph.plan('sim', {'namespace': 'env0, env1', 'practice': 'true'})
    by_name = {n.full_name: n for n in nodes}
    assert sorted(by_name) == sorted([f'/{ns}/{s.name}' for ns in ('env0', 'env1') for s in graph.SIM_NODES
                                      if s.per_actor and s is not graph.LINK] + ['/trainer'])
    for ns in ('env0', 'env1'):
        for node in ('encoder', 'policy'):
            assert ('rig/checkpoint', '/rig/checkpoint') in by_name[f'/{ns}/{node}'].remappings
        assert by_name[f'/{ns}/recorder'].parameters['actor'] == ns, 'bags are named after their actor'
        assert by_name[f'/{ns}/policy'].parameters['practice_on_start'] is True
        assert by_name[f'/{ns}/policy'].parameters['task'] == 'reach'
    assert '/trainer' not in {n.full_name for n in graph.plan('sim', {'trainer': 'false'})}


def test_plan_across_hosts_puts_the_trainer_on_the_learner_host_and_a_link_in_each_actor():
    """rig up learner: trainer and episode receiver. rig up sim/robot --remote-learner: no trainer; per
    actor a learner link named as its recorder, and encoder and policy load what their link announces."""
    learner = {n.full_name: n for n in graph.plan('learner', {'task': 'push', 'data_dir': '/d'})}
    assert sorted(learner) == ['/episode_receiver', '/trainer']
    assert learner['/trainer'].parameters['data_dir'] == learner['/episode_receiver'].parameters['data_dir'] == '/d'
    assert learner['/trainer'].parameters['task'] == 'push'
    files = graph.parameter_files('learner', {'task': 'push'})
    assert [f.name for f in files] == ['learner_push.yaml', 'learner.yaml']
    assert 'policy' not in files[0].read_text()   # only the learner graph's nodes get sections
    for g in ('sim', 'robot'):
        nodes = {n.full_name: n for n in graph.plan(g, {'namespace': 'env0 env1', 'remote_learner': 'true'})}
        assert '/trainer' not in nodes
        for ns in ('env0', 'env1'):
            link, recorder = nodes[f'/{ns}/learner_link'], nodes[f'/{ns}/recorder']
            assert link.parameters['actor'] == recorder.parameters['actor'] == ns
            for node in ('encoder', 'policy'):
                assert ('rig/checkpoint', 'rig/checkpoint_received') in nodes[f'/{ns}/{node}'].remappings
    assert not any(n.spec is graph.LINK for n in graph.plan('sim', {'namespace': 'env0'}))   # one host: no link
    with pytest.raises(ValueError, match='trainer:=true contradicts'):
        graph.plan('sim', {'remote_learner': 'true', 'trainer': 'true'})


def test_plan_sets_up_the_documented_cells():
    sawyer = {n.spec.name: n for n in graph.plan('robot', {'arm': 'sawyer'})}
    assert ('joint_states', '/robot/joint_states') in sawyer['arm_adapter'].remappings
    ur = {n.spec.name: n for n in graph.plan('robot', {'arm': 'ur5e', 'cmd_topic': '/servo_node/delta_twist_cmds',
                                                      'reset_service': 'none', 'namespace': 'cell1'})}
    assert ('joint_states', '/joint_states') in ur['arm_adapter'].remappings
    assert ur['arm_adapter'].parameters['output'] == 'none'
    assert ('rig/cmd', '/servo_node/delta_twist_cmds') in ur['safety_filter'].remappings
    assert ('rig/cmd', '/servo_node/delta_twist_cmds') in ur['recorder'].remappings, 'bags hold what Servo got'
    assert ur['policy'].parameters['reset_service'] == ''


@pytest.mark.parametrize('values, why', [({'task': 'bogus'}, 'task'), ({'arm': 'kuka'}, 'arm'),
                                         ({'practice': 'maybe'}, 'practice'), ({'namespace': 'env-0'}, 'namespace'),
                                         ({'namespace': 'a a'}, 'twice'), ({'camera': 'uvc'}, 'unknown')])
def test_plan_refuses_bad_arguments_before_anything_starts(values, why):
    with pytest.raises(ValueError, match=why):
        graph.plan('sim', values)


@pytest.mark.parametrize('task', ['reach', 'push', 'door'])
def test_per_task_values_come_from_the_task_suite(task):
    from rig_sim.envs import make_env
    env = make_env(task=task)
    try:
        sections = graph.task_parameters('sim', task)
        assert sections['/**/policy']['ros__parameters']['episode_length'] == env.horizon
        assert sections['/**/trainer']['ros__parameters']['action_dim'] == env.action_dim
    finally:
        env.close()
    files = graph.parameter_files('sim', {'task': task})
    assert files[0] == graph.task_parameter_file('sim', task) and files[1].name == 'sim.yaml', \
        'the task layer comes first: config/ and user files still override it'


def test_argument_choices_match_what_exists():
    from rig_sim import ARMS, TASKS
    choices = {a.name: set(a.choices) for a in graph.ARGUMENTS}
    assert choices['task'] == set(TASKS) and choices['arm'] == set(ARMS) == set(graph.ARM_JOINT_STATES)
    assert choices['arm'] == {p.stem[4:] for p in (REPO / 'config').glob('arm_*.yaml')}
    assert choices['camera'] - {''} == {p.stem[7:] for p in (REPO / 'config').glob('camera_*.yaml')}   # '': by sim_cell


def run_rig(*args, timeout=120, cwd=None):
    return subprocess.run(RIG + list(args), env=node_env(), capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)


@pytest.mark.parametrize('argv', [['sim'], ['sim', '--namespaces', 'env0', 'env1'],
                                  ['robot', '--arm', 'ur5e'], ['robot', '--arm', 'sawyer', '--camera', 'uvc'],
                                  ['robot', '--arm', 'ur5e', '--camera', 'topic'], ['learner', '--task', 'push'],
                                  ['sim', '--remote-learner', '--namespaces', 'env0'],
                                  ['robot', '--arm', 'ur5e', '--remote-learner', '--namespaces', 'cell1']])
def test_rig_up_dry_run_checks_the_configuration(argv):
    r = run_rig('up', *argv, '--dry-run')
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'configuration OK' in r.stdout
    if 'env1' in argv:
        assert '/env0/policy' in r.stdout and '/env1/sim_bridge' in r.stdout
        assert r.stdout.count('/trainer ') == 1 and '11 nodes' in r.stdout, 'several actors feed one trainer'


@pytest.mark.parametrize('argv, why', [
    (['learner', '--namespaces', 'env0'], '--namespaces: not an option of the learner'),
                                       (['learner', '--practice'], '--practice: not an option'),
                                       (['sim', '--camera', 'uvc'], '--camera: not an option of the sim graph'),
                                       (['sim', '--remote-learner', '--trainer'], 'trainer:=true contradicts')])
def test_rig_up_refuses_an_option_its_graph_does_not_take(argv, why):
    r = run_rig('up', *argv, '--dry-run')
    assert r.returncode == 2 and why in r.stderr, r.stdout + r.stderr


def test_rig_up_dry_run_rejects_a_bad_parameter_file(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('/**/policy:\n  ros__parameters:\n    episode_lenght: 50\n'
                   '/**/polcy:\n  ros__parameters:\n    seed: 1\n'
                   '/**/safety_filter:\n  ros__parameters:\n    max_speed: 1\n')
    r = run_rig('up', 'sim', '--params-file', str(bad), '--dry-run')
    assert r.returncode == 2
    assert 'episode_lenght' in r.stderr and 'polcy' in r.stderr and 'max_speed' in r.stderr


def test_rig_goal_reports_a_missing_image(tmp_path):
    r = run_rig('goal', str(tmp_path / 'nope.png'))
    assert r.returncode == 2 and 'cannot read an image' in r.stderr


@pytest.mark.slow
def test_rig_up_sim_practises_records_trains_and_stops_cleanly(tmp_path):
    """The whole sim graph in one process for a while: bags, checkpoints, a clean exit."""
    from rig_learn import checkpoint as ck
    from rig_trainer.bags import list_closed_bags
    from rig_trainer.online import latest_checkpoint
    params = tmp_path / 'fast.yaml'
    params.write_text("/**/trainer:\n  ros__parameters:\n    learn_set: ['vae.pretrain_images=200', "
                      "'vae.pretrain_steps=20', 'rl.updates_per_step=0.2', 'rl.learning_starts=0']\n"
                      "    checkpoint_every_updates: 50\n")
    data = tmp_path / 'data'
    r = run_rig('up', 'sim', '--practice', '--duration', '40', '--data-dir', str(data),
                '--params-file', str(params), timeout=240, cwd=tmp_path)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log
    assert 'Traceback' not in log, log
    bags = list_closed_bags(data)
    assert len(bags) >= 5, log
    assert not any((data / '.partial').iterdir()), 'the open episode must be closed on the way out'
    latest = latest_checkpoint(data / 'checkpoints')
    assert latest is not None
    ledger = ck.read_manifest(latest)['trainer']
    assert len(ledger['ingested']) >= 3 and ledger['counters']['updates'] > 0, ledger['counters']
    assert ledger['counters']['vae_fits'] >= 1
    assert 'stopping: zero command sent' in log


def test_cli_reports_bad_configuration_without_a_traceback(tmp_path):
    r = run_rig('train', '--task', 'nope', '--steps', '10', '--out', str(tmp_path / 'run'))
    assert r.returncode == 2 and 'task must be one of' in r.stderr and 'Traceback' not in r.stderr
    assert not (tmp_path / 'run').exists(), 'a failed start leaves no run directory behind'
    r = run_rig('eval', str(tmp_path / 'missing_run'))
    assert r.returncode != 0 and 'does not exist' in (r.stdout + r.stderr) and 'Traceback' not in r.stderr


@pytest.mark.slow
@pytest.mark.ros
def test_rig_up_two_actors_feed_one_trainer_and_ctrl_c_is_clean(tmp_path):
    """rig up sim --namespaces env0 env1 --practice, then Ctrl-C: as the launch test, through rig up."""
    from launch_util import FAST_TRAINER, assert_last_bag_ends_cleanly, running, stop_report

    from rig_learn import checkpoint as ck
    from rig_trainer.online import latest_checkpoint
    fast = tmp_path / 'fast.yaml'
    fast.write_text(FAST_TRAINER)
    data = tmp_path / 'data'

    def actors_trained_on():
        ckpt = latest_checkpoint(data / 'checkpoints')
        ledger = ck.read_manifest(ckpt)['trainer'] if ckpt else {'ingested': [], 'counters': {'updates': 0}}
        return {n.split('_ep')[0] for n in ledger['ingested']}, ledger['counters']['updates']
    with running(RIG + ['up', 'sim', '--namespaces', 'env0', 'env1', '--practice', '--data-dir', str(data),
                        '--params-file', str(fast)], node_env(), tmp_path / 'rig_up.log', cwd=tmp_path) as run:
        run.wait_for(lambda: actors_trained_on()[0] == {'env0', 'env1'} and actors_trained_on()[1] > 0, 240,
                     'a checkpoint trained on bags of both actors')
        run.wait_for_log(r'env0.policy\]: policy using \S+ \([1-9]\d* gradient steps\)', 120)
        run.wait_for_log(r'env1.policy\]: policy using \S+ \([1-9]\d* gradient steps\)', 60)
        rc = run.interrupt(timeout=30)
        log = run.text()
    assert rc == 0, log[-4000:]
    assert run.stopped_in < 5.0, f'Ctrl-C took {run.stopped_in:.1f} s: {stop_report(log)}'
    assert 'Traceback' not in log and 'FAILED' not in log, log[-4000:]
    assert re.search(r'rig up: /env1 runs as process \d+', log), 'the second actor is a process of its own'
    for actor in ('env0', 'env1'):
        assert_last_bag_ends_cleanly(data, actor + '_ep')


@pytest.mark.slow
@pytest.mark.ros
def test_rig_up_actors_without_a_trainer_practise_from_a_given_checkpoint(tmp_path):
    """rig up sim --no-trainer --practice --checkpoint CKPT: the actors practise and record; no trainer
    runs (the learner is elsewhere)."""
    from rig_trainer.bags import list_closed_bags
    from rig_trainer.online import OnlineTrainer, TrainerConfig
    ckpt = OnlineTrainer(TrainerConfig(data_dir=str(tmp_path / 'learner'))).save_checkpoint()
    data = tmp_path / 'data'
    r = run_rig('up', 'sim', '--no-trainer', '--practice', '--checkpoint', str(ckpt), '--data-dir', str(data),
                '--duration', '20', timeout=180, cwd=tmp_path)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log
    assert '/trainer' not in log.split('configuration')[0], 'the plan holds no trainer'
    assert len(list_closed_bags(data)) >= 3, log
    assert not (data / 'checkpoints').exists(), 'no trainer wrote checkpoints'


def _trainer_pid(run) -> int:
    run.wait_for_log(r'rig up: /trainer runs as process \d+', 60)
    return int(re.search(r'rig up: /trainer runs as process (\d+)', run.text()).group(1))


def _rig_up_practising(tmp_path, data):
    """`rig up sim --practice` with a fast trainer, as a terminal starts it."""
    from launch_util import FAST_TRAINER, running
    fast = tmp_path / 'fast.yaml'
    fast.write_text(FAST_TRAINER)
    return running(RIG + ['up', 'sim', '--practice', '--data-dir', str(data), '--params-file', str(fast)],
                   node_env(), tmp_path / 'rig_up.log', cwd=tmp_path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f'/proc/{pid}/stat').read_text().split(') ')[-1][0] != 'Z'   # a zombie has ended


@pytest.mark.slow
@pytest.mark.ros
def test_rig_up_reports_a_dead_trainer_process_and_the_actors_go_on(tmp_path):
    """The trainer process killed (as the OOM killer would): rig up says so loudly, the actors keep
    practising and recording, Ctrl-C still stops them cleanly, and the exit code is 1."""
    from launch_util import assert_last_bag_ends_cleanly, stop_report

    from rig_trainer.bags import list_closed_bags
    data = tmp_path / 'data'
    with _rig_up_practising(tmp_path, data) as run:
        pid = _trainer_pid(run)
        run.wait_for_log(r'\[policy\]: policy using', 120)
        os.kill(pid, signal.SIGKILL)
        run.wait_for_log(r'/trainer FAILED \(its process exited with code -9\); the other nodes go on', 20)
        n = len(list_closed_bags(data))
        run.wait_for(lambda: len(list_closed_bags(data)) >= n + 3, 60, 'actors practising on without a trainer')
        rc = run.interrupt(timeout=30)
        log = run.text()
    assert rc == 1 and 'failed nodes: /trainer' in log, log[-3000:]
    assert run.stopped_in < 5.0, f'Ctrl-C took {run.stopped_in:.1f} s: {stop_report(log)}'
    assert 'Traceback' not in log, log[-3000:]
    assert_last_bag_ends_cleanly(data, 'actor0_ep')


@pytest.mark.slow
@pytest.mark.ros
def test_the_trainer_process_does_not_outlive_a_killed_rig_up(tmp_path):
    """rig up SIGKILLed (no chance to stop anything): its trainer process gets SIGINT from the kernel
    and stops by itself, leaving an intact checkpoint; no orphan trains on."""
    from rig_learn import checkpoint as ck
    from rig_trainer.online import latest_checkpoint
    data = tmp_path / 'data'
    with _rig_up_practising(tmp_path, data) as run:
        pid = _trainer_pid(run)
        run.wait_for_log(r'\[trainer\]: ingested', 120)
        run.proc.kill()   # rig up only, not its process group: the trainer must notice by itself
        run.proc.wait()
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(pid), 'the trainer process outlived rig up'
    ck.read_manifest(latest_checkpoint(data / 'checkpoints'))   # the newest checkpoint is whole


@pytest.mark.slow
@pytest.mark.ros
def test_make_demo_runs_end_to_end_on_a_short_budget(tmp_path):
    """`make demo`'s program as a user runs it (a subprocess), on a budget a test can afford: it
    practises, waits for the trainer, plays two operator goals and writes its report."""
    import json

    from launch_util import FAST_TRAINER
    out = tmp_path / 'demo'
    fast = tmp_path / 'fast.yaml'
    fast.write_text(FAST_TRAINER)    # VAE pretraining on the first 200 frames, 20 Adam steps
    r = subprocess.run([sys.executable, '-m', 'rig.demo', '--practice-steps', '300', '--goals', '2', '--out', str(out),
                        '--params-file', str(fast)],
                       env=node_env(), capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    summary = json.loads((out / 'summary.json').read_text())
    assert len(summary['goals']) == 2 and summary['trainer']['episodes'] >= 5, summary
    assert summary['trainer']['vae_fits'] >= 1 and summary['trainer']['updates'] >= 0.2 * 300, summary
    assert all(g['final_distance'] >= 0 for g in summary['goals'])
    assert summary['times_s']['practice_env_steps_per_s'] > 0
    assert (out / 'goals.png').stat().st_size > 0 and 'Median final distance' in (out / 'summary.md').read_text()
    r = subprocess.run([sys.executable, '-m', 'rig.demo', '--out', str(out)], env=node_env(), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and 'already holds a run' in r.stderr, 'a second run never resumes the first'


def test_graph_bench_markdown_names_every_figure_with_its_command():
    sys.path.insert(0, str(REPO))
    from bench import bench_graph
    run = {'practice_steps': 10000, 'goals': 50, 'actors': ['/'], 'env_steps_per_s': 150.0, 'graph_wall_s': 370.0,
           'graph_median_final_distance_m': 0.013, 'direct_wall_s': 309.0, 'direct_median_final_distance_m': 0.024,
           'host': 'h', 'command': 'python -m bench.bench_graph --only learning', 'wall_vs_direct': 1.2,
           'target': 't', 'meets_target': True}
    text = bench_graph.markdown({'learning': run, 'launch': {'skipped': 'no tooling'},
                                 'actors': {**run, 'actors': ['/env0', '/env1'],
                                            'command': 'python -m x --only actors'}})
    assert '| learning | 1 x 10000 | 150 | 370 | 0.013 | 309, 0.024 | h |' in text
    assert '| actors | 2 x 10000 |' in text and '--only actors' in text and 'launch |' not in text


@pytest.mark.parametrize('argv, expect, absent', [
    (['sim', '--namespaces', 'env0', 'env1', '--practice', '--task', 'push', '--params-file', 'x.yaml'],
     ['--no-trainer', '--practice', '--task', 'push', '--params-file', 'x.yaml'], []),
    (['robot', '--namespaces', 'cell1', 'cell2', '--arm', 'ur5e', '--no-practice', '--cmd-topic', '/servo'],
     ['--no-trainer', '--arm', 'ur5e', '--no-practice', '--cmd-topic', '/servo'], ['--sim-cell']),
])
def test_every_further_actor_is_rig_up_for_its_namespace_with_the_same_arguments(argv, expect, absent):
    import argparse

    from rig import bringup
    parser = argparse.ArgumentParser()
    bringup.add_arguments(parser)
    args = parser.parse_args(argv)
    child = bringup.actor_argv(args, '/' + argv[2 + 1])
    assert child[1:5] == ['-m', 'rig', 'up', argv[0]] and child[5:7] == ['--namespaces', '/' + argv[3]]
    assert all(a in child for a in expect) and not any(a in child for a in absent), child
    again = parser.parse_args(child[4:])   # the child's own rig up accepts them: one actor, the same values
    assert graph.namespaces(again.namespace) == ['/' + argv[3]]
    assert {k: v for k, v in bringup.values(again).items() if k not in ('namespace', 'trainer')} == \
        {k: v for k, v in bringup.values(args).items() if k != 'namespace'}
