"""Bring-up: launch files and `rig up` are built from one graph definition and one set of config files."""
from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from rig import graph
from ros_util import REPO, node_env

RIG = [sys.executable, '-m', 'rig']


def _setup_nodes():
    tree = ast.parse((REPO / 'setup.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == 'NODES':
            return ast.literal_eval(node.value)


def test_graph_nodes_are_installed_executables_with_matching_factories():
    nodes = _setup_nodes()
    for spec in graph.SIM_NODES + graph.ROBOT_NODES:
        assert spec.executable in nodes, f'{spec.executable} is not installed to lib/rig'
        module = nodes[spec.executable].split(':')[0]
        assert spec.factory.split(':')[0] == module, f'{spec.name}: launch and rig up would run different code'


@pytest.mark.parametrize('name', ['sim.launch.py', 'robot.launch.py'])
def test_launch_files_are_thin_and_use_the_graph(name):
    """launch/launch_ros are not installable here: check the launch files statically."""
    src = (REPO / 'launch' / name).read_text()
    tree = ast.parse(src)
    funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert 'generate_launch_description' in funcs
    imports = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert {'graph', 'Node', 'DeclareLaunchArgument', 'LaunchConfiguration'} <= imports
    assert 'graph.parameter_files' in src and 'graph.argument_parameters' in src
    for arg in ('task', 'arm', 'data_dir', 'checkpoint', 'namespace'):
        assert arg in graph.ARGUMENTS


def run_rig(*args, timeout=120, cwd=None):
    return subprocess.run(RIG + list(args), env=node_env(), capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)


@pytest.mark.parametrize('argv', [['sim'], ['sim', '--namespaces', 'env0', 'env1'],
                                  ['robot', '--arm', 'ur5e'], ['robot', '--arm', 'sawyer', '--camera', 'uvc'],
                                  ['robot', '--arm', 'ur5e', '--camera', 'topic']])
def test_rig_up_dry_run_checks_the_configuration(argv):
    r = run_rig('up', *argv, '--dry-run')
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'configuration OK' in r.stdout
    if '--namespaces' in argv:
        assert '/env0/policy' in r.stdout and '/env1/sim_bridge' in r.stdout
        assert r.stdout.count('/trainer ') == 1 and '11 nodes' in r.stdout, 'several actors feed one trainer'


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
    params.write_text('/**/trainer:\n  ros__parameters:\n    pretrain_min_images: 200\n    pretrain_steps: 20\n'
                      '    updates_per_transition: 0.2\n    checkpoint_every_updates: 50\n')
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
