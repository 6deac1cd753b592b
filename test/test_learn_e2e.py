"""End-to-end: a short RIG run on reach beats a random policy; determinism; CLI train/eval."""
import json
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from rig_learn import RIGAgent, evaluate, make_task_env, random_policy, sim_available
from rig_learn.testing import tiny_config

# The real MuJoCo reach task once rig_sim is importable, the toy env otherwise.
TASK = 'reach' if sim_available() else 'toy_reach'


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def e2e_config(seed=0):
    return tiny_config(TASK, seed=seed, **{
        'vae.latent_dim': 8, 'vae.beta': 20.0, 'vae.batch_size': 32, 'vae.pretrain_images': 1000,
        'vae.pretrain_steps': 500, 'vae.refit_schedule': [[0, 500]], 'vae.refit_steps': 50,
        'rl.hidden': [64, 64], 'rl.batch_size': 64, 'rl.updates_per_step': 4.0, 'rl.learning_starts': 300,
        'rl.buffer_size': 10000,
        # the toy env's reset + random walk covers little of its workspace: add goal images
        'vae.pretrain_dataset': 'random' if TASK == 'reach' else 'mixed'})


@pytest.mark.slow
def test_short_run_beats_random_policy():
    env = make_task_env(TASK, seed=0)
    agent = RIGAgent.from_config(e2e_config(), env)
    agent.learn(2000)
    eval_env = make_task_env(TASK, seed=1)
    ours = agent.evaluate(eval_env, n_goals=20)
    rand = evaluate(agent, eval_env, n_goals=20, policy=random_policy(2, seed=0))
    ours_d, rand_d = np.median(ours.hand_distance), np.median(rand.hand_distance)
    print(f'{TASK}: RIG {ours_d:.4f} m vs random {rand_d:.4f} m')
    assert ours_d < 0.6 * rand_d, (ours_d, rand_d)
    # refits due after steps 500, 1000, 1500 run as the next step begins; the one due after the last
    # step (2000) waits for the next learn() call
    assert agent.counters['vae_refits'] == 3 and agent.counters['grad_steps'] == 4 * (2000 - 300 + 1)


def _run(seed):
    env = make_task_env('toy_reach', seed=seed)
    agent = RIGAgent.from_config(tiny_config('toy_reach', seed=seed), env)
    agent.learn(150)
    res = agent.evaluate(make_task_env('toy_reach', seed=5), n_goals=2)
    return agent, res


def test_same_seed_same_metrics():
    a1, r1 = _run(0)
    a2, r2 = _run(0)
    a3, r3 = _run(1)
    np.testing.assert_array_equal(r1.hand_distance, r2.hand_distance)
    np.testing.assert_array_equal(r1.latent_distance, r2.latent_distance)
    assert a1.last_metrics == a2.last_metrics
    assert a1.counters['grad_steps'] == a2.counters['grad_steps'] > 0
    for p, q in zip(a1.model.actor.parameters(), a2.model.actor.parameters()):
        assert torch.equal(p, q)
    # a different seed gives a different run (the check above can fail)
    assert not all(torch.equal(p, q) for p, q in zip(a1.model.actor.parameters(), a3.model.actor.parameters()))


@pytest.mark.parametrize('mode', ['oracle', 'her_pixels'])
def test_baselines_run(mode):
    env = make_task_env('toy_reach', seed=0)
    agent = RIGAgent.from_config(tiny_config('toy_reach', mode=mode), env)
    agent.learn(120)
    assert agent.vae is None and agent.counters['grad_steps'] > 0
    b = agent.buffer.sample(64)
    assert set(np.unique(b.goal_source)) <= {0, 2}
    res = agent.evaluate(make_task_env('toy_reach', seed=1), n_goals=2)
    assert np.isfinite(res.hand_distance).all()


def test_sac_option_runs():
    env = make_task_env('toy_reach', seed=0)
    agent = RIGAgent.from_config(tiny_config('toy_reach', **{'rl.algo': 'sac'}), env)
    agent.learn(100)
    assert agent.counters['grad_steps'] > 0
    assert agent.act(env.sample_goal()['image'], env.sample_goal()['image']).shape == (2,)


def test_cli_train_and_eval(tmp_path):
    cfg = tmp_path / 'tiny.yaml'
    import yaml

    from rig_base.config import to_dict
    c = to_dict(tiny_config('toy_reach'))
    c['eval'].update({'every': 60, 'n_goals': 3})
    cfg.write_text(yaml.safe_dump(c))
    run = tmp_path / 'run'
    env = {'PYTHONPATH': 'src', 'PATH': '/usr/bin:/bin', 'OMP_NUM_THREADS': '1'}
    r = subprocess.run([sys.executable, '-m', 'rig.cli', 'train', '--task', 'toy_reach', '--steps', '120',
                        '--config', str(cfg), '--out', str(run), '--threads', '1', '--no-progress'],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    for name in ('metrics.jsonl', 'learning_curve.png', 'eval_grid.png', 'eval.json', 'config.yaml',
                 'checkpoint/manifest.json', 'checkpoint/vae.pt', 'checkpoint/policy.pt'):
        assert (run / name).is_file(), name
    rows = [json.loads(x) for x in (run / 'metrics.jsonl').read_text().splitlines()]
    assert [r_['env_steps'] for r_ in rows] == [60, 120] and rows[-1]['final']
    assert 'eval/hand_distance_median' in rows[-1] and rows[-1]['grad_steps_per_s'] > 0
    assert "benchmark table: no results for task 'toy_reach'" in r.stdout   # rig_learn.benchmarks
    r = subprocess.run([sys.executable, '-m', 'rig.cli', 'eval', str(run), '--goals', '3', '--threads', '1'],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert 'eval/hand_distance_median' in r.stdout
    reeval = json.loads((run / 'reeval.json').read_text())
    assert reeval['eval/hand_distance_median'] == pytest.approx(rows[-1]['eval/hand_distance_median'])
    # clear failures: CUDA requested where it is missing, unknown config key
    if not torch.cuda.is_available():
        r = subprocess.run([sys.executable, '-m', 'rig.cli', 'train', '--task', 'toy_reach', '--steps', '10',
                            '--device', 'cuda', '--out', str(tmp_path / 'x'), '--no-progress'],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 2 and 'CUDA is not available' in r.stderr
    r = subprocess.run([sys.executable, '-m', 'rig.cli', 'train', '--task', 'toy_reach', '--steps', '10',
                        '--set', 'vae.nope=1', '--out', str(tmp_path / 'y'), '--no-progress'],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and 'nope' in r.stderr


def test_wall_time_cap_stops_training_and_still_evaluates(tmp_path):
    from rig_learn.runs import train_run
    cfg = tiny_config('toy_reach', **{'eval.n_goals': 2})
    t0 = time.perf_counter()
    s = train_run(cfg, 1_000_000, tmp_path / 'run', progress=False, max_wall_s=2.0)
    assert time.perf_counter() - t0 < 60
    assert s['stopped_by_wall_cap'] and 0 < s['env_steps'] < 1_000_000
    assert s['wall_s'] >= 2.0
    final = json.loads((tmp_path / 'run' / 'metrics.jsonl').read_text().splitlines()[-1])
    assert final['final'] and final['stopped_by_wall_cap'] and final['env_steps'] == s['env_steps']
    assert (tmp_path / 'run' / 'eval.json').is_file() and (tmp_path / 'run' / 'checkpoint' / 'manifest.json').is_file()
    uncapped = train_run(cfg, 60, tmp_path / 'run2', progress=False)
    assert not uncapped['stopped_by_wall_cap'] and uncapped['env_steps'] == 60
    with pytest.raises(ValueError, match='max_wall_s'):
        train_run(cfg, 60, tmp_path / 'run3', progress=False, max_wall_s=0)
