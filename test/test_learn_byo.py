"""Bring your own simulator (issue 21): an env from outside rig_sim and rig_learn (test/byo_env.py)
trained through `env:` in a learner config; the one-line errors of `rig train` when it cannot be
built, breaks the protocol or gives a NaN; what the env declares for goal_map.png; the oracle's
grid and rendering."""
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.figure
import numpy as np
import pytest
import yaml
from byo_env import BEAD_U_V, STEP, BeadEnv, PlainBeadEnv

from rig_base.config import to_dict
from rig_learn import RIGAgent, ToyReachEnv, check_env
from rig_learn.envs import set_rendering
from rig_learn.evaluate import EvalResult
from rig_learn.learner import NonFiniteError
from rig_learn.model import env_spec
from rig_learn.plots import goal_map
from rig_learn.protocol import ProtocolError, declared
from rig_learn.runs import train_run
from rig_learn.testing import tiny_config

TEST_DIR = Path(__file__).resolve().parent
SRC = TEST_DIR.parent / 'src'


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


@pytest.fixture
def saved_figures(monkeypatch):
    """{file name: matplotlib Figure} of every PNG written in the test: its labels and legends as drawn."""
    figures = {}
    real = matplotlib.figure.Figure.savefig

    def savefig(fig, path, *args, **kwargs):
        figures[Path(path).name] = fig
        return real(fig, path, *args, **kwargs)
    monkeypatch.setattr(matplotlib.figure.Figure, 'savefig', savefig)
    return figures


def byo_config(tmp_path, factory: str, mode: str = 'rig', task: str = 'bead') -> Path:
    """A tiny learner config file training `factory` ('module:callable')."""
    c = to_dict(tiny_config(task, mode=mode))
    c['env'] = factory
    c['eval'].update({'n_goals': 3, 'grid_goals': 2})
    path = tmp_path / 'byo.yaml'
    path.write_text(yaml.safe_dump(c))
    return path


def labels(fig) -> tuple[str, str]:
    ax = fig.axes[0]
    return ax.get_xlabel(), ax.get_ylabel()


def legend_texts(fig) -> list[str]:
    legend = fig.axes[0].get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend is not None else []


def test_rig_train_on_an_env_from_outside_the_repo(tmp_path, saved_figures):
    """`rig train --config` with `env: byo_env:make_bead` (and no --task: the config's) trains RIG,
    checkpoints and draws the goal map on the bead env's own axes."""
    from rig.cli import main
    run = tmp_path / 'run'
    argv = ['train', '--config', str(byo_config(tmp_path, 'byo_env:make_bead')), '--steps', '60', '--out', str(run),
            '--threads', '1', '--no-progress']
    assert main(argv) == 0
    spec = json.loads((run / 'checkpoint' / 'manifest.json').read_text())['spec']
    assert spec['task'] == 'bead' and spec['env_action_scale'] == pytest.approx(STEP)
    assert (run / 'goal_map.png').stat().st_size > 0 and (run / 'eval_grid.png').is_file()
    assert labels(saved_figures['goal_map.png']) == BEAD_U_V
    assert [ax.get_title() for ax in saved_figures['eval_grid.png'].axes[:3]] == ['goal', 'VAE recon', 'reached']


@pytest.mark.parametrize('factory, says', [
    ('no_such_module:make', "env factory 'no_such_module:make': no module named 'no_such_module'"),
    ('byo_env:make_nothing', "env factory 'byo_env:make_nothing': module 'byo_env' has no attribute 'make_nothing'"),
    ('byo_env:make_raising', "env factory 'byo_env:make_raising' raised ValueError: bead plate not connected"),
    ('byo_env:make_bad_actions', 'action_space must be Box(-1, 1), got low=[0.0, 0.0] high=[1.0, 1.0]'),
    ('byo_env:make_bad_scale', f'action_scale must be a finite number > 0, got {-STEP}'),
    ('byo_env:make_nan_state', "env step 7: the env observation 'state' is not finite"),
])
def test_rig_train_env_errors_are_one_line(tmp_path, factory, says):
    """A factory that cannot be imported, lacks its callable or raises, an env that breaks the
    protocol (check_env at start) or gives a NaN: one `rig train:` line naming it, exit 2, no traceback."""
    run = tmp_path / 'run'
    env = {'PYTHONPATH': f'{SRC}{os.pathsep}{TEST_DIR}', 'PATH': '/usr/bin:/bin', 'OMP_NUM_THREADS': '1'}
    cfg = byo_config(tmp_path, factory, 'oracle')
    r = subprocess.run([sys.executable, '-m', 'rig.cli', 'train', '--config', str(cfg), '--steps', '20',
                        '--out', str(run), '--threads', '1', '--no-progress'],
                       capture_output=True, text=True, env=env, timeout=120)
    lines = r.stderr.splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith('rig train: '), r.stderr
    assert says in lines[0]
    if 'nan' not in factory:
        assert not run.exists()   # the env is built and checked before anything is written


def test_protocol_validates_the_optional_attributes():
    check_env(BeadEnv(), 48)
    check_env(PlainBeadEnv(), 48)
    for name, value, says in [('action_scale', 0.0, 'action_scale must be a finite number > 0'),
                              ('action_scale', 'fast', 'action_scale must be'),
                              ('action_scale', float('nan'), 'action_scale must be'),
                              ('success_threshold', -1, 'success_threshold must be'),
                              ('goal_map_axes', ((0, 'v'),), 'goal_map_axes must be two'),
                              ('goal_map_axes', ((0, 'v'), (2, 'u')), 'index 2 is outside the goal state (2 values)'),
                              ('goal_map_axes', ((0, 'v'), ('1', 'u')), 'goal_map_axes must be two'),
                              ('render_observations', 1, 'render_observations must be a bool')]:
        env = BeadEnv()
        setattr(env, name, value)
        with pytest.raises(ProtocolError, match=says.replace('(', r'\(').replace(')', r'\)')):
            check_env(env, 48)


def test_action_scale_is_recorded_when_declared():
    cfg = tiny_config('bead')
    assert env_spec(BeadEnv(), cfg)['env_action_scale'] == pytest.approx(STEP)
    assert env_spec(PlainBeadEnv(), cfg)['env_action_scale'] is None
    toy = ToyReachEnv(max_step=0.03)
    assert env_spec(toy, tiny_config())['env_action_scale'] == pytest.approx(0.03) == declared(toy, 'action_scale')


def test_goal_map_takes_axes_and_threshold_from_the_env(tmp_path, saved_figures):
    n = 6
    nan = np.full(n, np.nan)
    dist = np.linspace(0, 0.1, n)
    states = np.c_[np.linspace(-0.1, 0.1, n), np.linspace(0.1, -0.1, n)]
    res = EvalResult(dist, nan, nan, dist < 0.01, nan, goal_states=states)
    assert goal_map(res, tmp_path / 'declared.png', success_threshold=0.05, axes=BeadEnv.goal_map_axes)
    fig = saved_figures['declared.png']
    assert labels(fig) == BEAD_U_V and legend_texts(fig) == ['final hand distance > 0.05 m']
    offsets = fig.axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(offsets, states[:, [1, 0]])   # u across, v up, as the env declares
    # declaring nothing: the first two goal-state dims, generic labels, failures from info['success']
    assert goal_map(res, tmp_path / 'plain.png')
    fig = saved_figures['plain.png']
    assert labels(fig) == ('goal state[0]', 'goal state[1]')
    assert legend_texts(fig) == ["not successful (final info['success'])"]
    np.testing.assert_allclose(fig.axes[0].collections[0].get_offsets(), states)
    # the task distance: puck before hand, in its units
    push = EvalResult(dist, dist / 2, nan, dist < 0.01, nan, goal_states=np.c_[states, states])
    assert goal_map(push, tmp_path / 'push.png', axes=((3, 'puck y (m)', True), (2, 'puck x (m)')))
    assert saved_figures['push.png'].axes[0].xaxis_inverted()


def test_an_env_that_declares_nothing_gets_no_rig_sim_values(tmp_path, saved_figures):
    """Named 'reach', a plain env still gets generic axes and its own success, never rig_sim's."""
    cfg = tiny_config('reach', mode='oracle', **{'eval.n_goals': 3, 'eval.grid_goals': 1})
    train_run(cfg, 20, tmp_path / 'run', progress=False, env=PlainBeadEnv(seed=0), eval_env=PlainBeadEnv(seed=1))
    fig = saved_figures['goal_map.png']
    assert labels(fig) == ('goal state[0]', 'goal state[1]')
    assert legend_texts(fig) in ([], ["not successful (final info['success'])"])


def test_the_toy_env_declares_the_optional_attributes():
    env = ToyReachEnv()
    assert declared(env, 'goal_map_axes') == ((0, 'hand goal x (m)'), (1, 'hand goal y (m)'))
    assert declared(env, 'success_threshold') == env.success_threshold
    assert declared(env, 'render_observations') is True


def test_oracle_grid_has_no_vae_column_and_its_env_skips_rendering(tmp_path, saved_figures):
    """The oracle never looks at obs['image']: rig train turns its envs' rendering off, the grid has
    goal and reached columns (no VAE recon), and the recorded episodes are still rendered."""
    env, eval_env = ToyReachEnv(seed=0), ToyReachEnv(seed=1)
    cfg = tiny_config('toy_reach', mode='oracle', **{'eval.n_goals': 2, 'eval.grid_goals': 2})
    train_run(cfg, 20, tmp_path / 'run', progress=False, env=env, eval_env=eval_env)
    assert env.render_observations is False and eval_env.render_observations is False
    assert not env.step(np.zeros(2, np.float32))[0]['image'].any()       # black: not rendered
    grid = saved_figures['eval_grid.png']
    assert len(grid.axes) == 2 * 2 and [ax.get_title() for ax in grid.axes[:2]] == ['goal', 'reached']
    agent = RIGAgent.from_config(cfg, env)
    res = agent.evaluate(eval_env, n_goals=2, record=1)
    assert res.recon_images == [] and res.final_images[0].any()         # the recorded episode was drawn
    assert eval_env.render_observations is False                         # and the setting restored
    assert set_rendering(env, True) is False and env.step(np.zeros(2, np.float32))[0]['image'].any()


def test_a_nan_reward_stops_training_naming_the_step():
    agent = RIGAgent.from_config(tiny_config('toy_reach', mode='oracle'), ToyReachEnv(seed=0))
    agent.learn(60)
    agent.buffer.ach_feat[:] = np.nan     # the features rewards are computed from
    with pytest.raises(NonFiniteError, match=r"grad step \d+ \(after env step 60\): the relabelled 'reward'"):
        agent.train_step()
