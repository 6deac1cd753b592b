"""`make bench` calls every benchmark's main(argv): each must accept its argument list."""
import importlib
import inspect

import numpy as np
import pytest

from bench.run_all import SECTIONS


@pytest.mark.parametrize('name,module_name,args', SECTIONS)
def test_every_section_has_main_taking_argv(name, module_name, args):
    module = importlib.import_module(module_name)
    params = list(inspect.signature(module.main).parameters)
    assert params and params[0] == 'argv', f'{module_name}.main must take argv'


def test_vae_diagnostic_reports_probe_and_landscape(tmp_path, monkeypatch):
    """bench_vae on a tiny pretraining budget: a JSON with a finite probe R^2 per state part."""
    import json
    import math

    import bench.bench_vae as bench_vae
    monkeypatch.setattr(bench_vae, 'RESULTS', tmp_path)
    assert bench_vae.main(['--task', 'push', '--set', 'vae.pretrain_images=200', '--set', 'vae.pretrain_steps=5',
                           '--goals', '45', '--tag', '_t']) == 0
    result = json.loads((tmp_path / 'vae_push_t.json').read_text())
    assert set(result['probe_r2']) == {'hand_xy', 'puck_xy'}
    assert all(math.isfinite(v) and v <= 1.0 for v in result['probe_r2'].values())
    assert 0.0 <= result['landscape']['argmin_hand_error_m'] < 0.5
    assert (tmp_path / 'vae_push_t.png').stat().st_size > 0


def test_vae_diagnostic_probes_a_trained_runs_checkpoint(tmp_path, monkeypatch, capsys):
    """bench_vae --checkpoint probes the VAE a run ended with (no pretraining) and refuses another task's."""
    import json

    import torch

    import bench.bench_vae as bench_vae
    from rig_learn import RIGAgent, make_task_env
    from rig_learn.testing import tiny_config
    torch.set_num_threads(1)
    agent = RIGAgent.from_config(tiny_config(task='push', **{'vae.pretrain_images': 60}), make_task_env('push', seed=0))
    agent.learn(60)
    agent.save(tmp_path / 'checkpoint')
    monkeypatch.setattr(bench_vae, 'RESULTS', tmp_path)
    assert bench_vae.main(['--task', 'push', '--checkpoint', str(tmp_path / 'checkpoint'), '--goals', '45',
                           '--tag', '_c']) == 0
    result = json.loads((tmp_path / 'vae_push_c.json').read_text())
    assert result['checkpoint'] == str(tmp_path / 'checkpoint') and result['pretrain_s'] is None
    assert result['vae']['latent_dim'] == 4 and len(result['latent_mean_std']) == 4   # the checkpoint's VAE
    with pytest.raises(SystemExit):
        bench_vae.main(['--task', 'reach', '--checkpoint', str(tmp_path / 'checkpoint')])
    assert "a 'push' checkpoint, not 'reach'" in capsys.readouterr().err


def test_probe_r2_is_one_for_a_linear_code_and_near_zero_for_noise():
    import numpy as np

    from bench.bench_vae import probe_r2
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 4))
    y = z[:, :2] @ np.array([[1.0, 2.0], [-0.5, 0.3]]) + 0.1
    assert probe_r2(z, y, 200) > 0.999
    assert probe_r2(z, rng.normal(size=(300, 2)), 200) < 0.1


def defaults_with(goal_prior):
    """Stand-in default configs with this goal prior and 10/50/40 relabelling (whatever the repo's YAML says)."""
    from rig_learn.config import LearnConfig, RelabelConfig, VAEConfig
    return lambda task: LearnConfig(task=task, vae=VAEConfig(goal_prior=goal_prior),
                                    relabel=RelabelConfig(own=0.1, prior=0.5, future=0.4))


def test_learn_table_picks_the_run_with_most_seeds_and_reads_push_targets(tmp_path):
    import json
    from functools import partial

    import bench.learn_table
    render = bench.learn_table.render
    collect = partial(bench.learn_table.collect, defaults=defaults_with('standard'))
    base = {'task': 'push', 'mode': 'rig', 'steps': 200000, 'config': 'config/learn_push.yaml',
            'goal_prior': 'standard',
            'median_env_steps_per_s': 35.0, 'median_grad_steps_per_s': 130.0,
            'target': {'metric': 'puck_distance', 'max_m': 0.06, 'steps': 200000, 'wall_s': 7200}}
    run = lambda puck: {'puck_distance_median': puck, 'hand_distance_median': 0.02, 'success': 0.5, 'wall_s': 5000}
    (tmp_path / 'learn_push.json').write_text(json.dumps({**base, 'seeds': [0], 'runs': [run(0.05)],
                                                          'meets_target': True}))
    (tmp_path / 'learn_push_3.json').write_text(json.dumps({**base, 'seeds': [0, 1, 2], 'meets_target': False,
                                                             'runs': [run(0.05), run(0.09), run(0.07)]}))
    (tmp_path / 'learn_push_smoke.json').write_text(json.dumps({**base, 'seeds': [0, 1, 2, 3], 'smoke': True,
                                                                'runs': []}))
    rows, reference = collect(tmp_path)   # the run with most seeds, then the "do nothing" scale
    assert reference['file'] is None and reference['method'].startswith('do nothing')
    assert rows['per_seed'] == [0.05, 0.09, 0.07] and rows['median'] == 0.07
    text = render([rows, reference])
    assert 'final puck distance' in text and 'not met' in text and '--tag _3' in text
    assert rows['method'] == 'RIG, goal prior N(0, I)' and rows['default']
    (tmp_path / 'learn_push_fitted.json').write_text(json.dumps({**base, 'goal_prior': 'fitted', 'seeds': [0, 1, 2, 4],
                                                                  'runs': [run(0.1)] * 4}))
    (tmp_path / 'learn_push_20k.json').write_text(json.dumps({**base, 'steps': 20000, 'seeds': [0], 'date': '2099',
                                                               'runs': [run(0.2)]}))
    other = [r for r in collect(tmp_path) if r['method'] != 'RIG, goal prior N(0, I)' and r['file']]
    rig = [(r['steps'], r['median']) for r in collect(tmp_path) if r['method'] == 'RIG, goal prior N(0, I)']
    assert rig == [(20000, 0.2), (200000, 0.07)]   # a shorter, later run does not hide the 200k one
    assert 'not met' in render(collect(tmp_path))   # judged on the 200k row, not the 20k one
    (tmp_path / 'learn_push_3.json').unlink()
    (tmp_path / 'learn_push.json').unlink()
    assert 'no result with the current defaults yet' in render(collect(tmp_path))
    assert other[0]['method'] == 'RIG, goal prior fitted to the latents' and not other[0]['default']
    assert other[0]['command'].endswith('--set vae.goal_prior=fitted')
    # When the default changes, the target is judged on a run made with the new default.
    (tmp_path / 'learn_push_data.json').write_text(json.dumps(
        {**base, 'goal_prior': 'data', 'overrides': {'vae.goal_prior': 'data', 'arm': 'sawyer'}, 'seeds': [0],
         'runs': [run(0.05)], 'meets_target': True, 'relabel': {'own': 0.1, 'prior': 0.5, 'future': 0.4}}))
    rows = bench.learn_table.collect(tmp_path, defaults=defaults_with('data'))
    assert [r['method'] for r in rows if r.get('default')] == ['RIG, goal prior: latents of seen images']
    text = render(rows)
    assert 'latents of seen images **(default config)**' in text and ': met, over 1 seed.' in text
    # A run changing anything else is a row of its own, named by what it changed, and not the default.
    (tmp_path / 'learn_push_data_bank.json').write_text(json.dumps(
        {**base, 'goal_prior': 'data', 'overrides': {'vae.goal_prior': 'data', 'vae.goal_bank_pretrain_fraction': 0.5},
         'seeds': [0], 'runs': [run(0.04)], 'meets_target': True,
         'relabel': {'own': 0.1, 'prior': 0.5, 'future': 0.4}}))
    rows = bench.learn_table.collect(tmp_path, defaults=defaults_with('data'))
    variant = [r for r in rows if r['file'] == 'learn_push_data_bank.json']
    assert variant[0]['method'] == 'RIG, goal prior: latents of seen images, vae.goal_bank_pretrain_fraction=0.5'
    assert not variant[0]['default'] and [r['file'] for r in rows if r.get('default')] == ['learn_push_data.json']
    rows = bench.learn_table.collect(tmp_path, defaults=defaults_with('standard'))
    assert [r['file'] for r in rows if r.get('default')] == ['learn_push_20k.json']
    assert 'no result with the current defaults yet' in render(rows)


def test_baseline_runs_name_existing_configs_and_parse():
    """Every opt-in baseline run points at a config that exists and loads, with the mode its tag says."""
    from pathlib import Path

    from bench.run_all import BASELINES, OPT_IN, SECTIONS
    from rig_learn.runs import load_config
    assert 'baselines' in OPT_IN and 'baselines' in {name for name, _, _ in SECTIONS}
    modes = {'_no_prior': 'rig', '_oracle': 'oracle', '_her_pixels': 'her_pixels'}
    for run_args in BASELINES:
        config = Path(__file__).resolve().parents[1] / run_args[run_args.index('--config') + 1]
        cfg = load_config(path=config)
        tag = run_args[run_args.index('--tag') + 1]
        assert cfg.task == run_args[run_args.index('--task') + 1]
        assert cfg.mode == modes[tag], (config, cfg.mode)
        if tag == '_no_prior':
            assert cfg.relabel.prior == 0.0


def test_no_prior_baselines_differ_from_their_task_default_only_in_relabelling():
    """'RIG without VAE-prior relabelling' must be the default config minus prior relabelling; a default
    changed without its baseline (as the push goal-bank skew once was) would compare two things at once."""
    import dataclasses
    from pathlib import Path

    from bench.run_all import BASELINES
    from rig_learn.runs import load_config
    root = Path(__file__).resolve().parents[1]
    checked = []
    for run_args in BASELINES:
        if run_args[run_args.index('--tag') + 1] != '_no_prior':
            continue
        task = run_args[run_args.index('--task') + 1]
        baseline = load_config(path=root / run_args[run_args.index('--config') + 1])
        default = load_config(path=root / f'config/learn_{task}.yaml')
        assert baseline.relabel.prior == 0.0 < default.relabel.prior
        assert dataclasses.replace(baseline, relabel=default.relabel) == default, task
        checked.append(task)
    assert sorted(checked) == ['push', 'reach']


def test_learn_table_names_a_goal_bank_set_by_the_config_file_once():
    """Two runs of one config file, before and after its goal bank changed, get different names; a
    setting the command made shows once."""
    from bench.learn_table import method_of
    base = {'task': 'push', 'mode': 'rig', 'config': 'config/learn_push_no_prior.yaml', 'goal_prior': 'data'}
    uniform = {**base, 'goal_bank': {'goal_bank_skew': 0.0, 'goal_bank_pretrain_fraction': None,
                                     'skew_vae_training': False}}
    skewed = {**base, 'goal_bank': {**uniform['goal_bank'], 'goal_bank_skew': -0.5}}
    by_command = {**skewed, 'overrides': {'vae.goal_bank_skew': -0.5, 'arm': 'sawyer'}}
    assert method_of(base) == method_of(uniform)   # (results from before goal banks were recorded)
    assert method_of(skewed) != method_of(uniform)
    assert method_of(skewed)[1].endswith(', vae.goal_bank_skew=-0.5')
    assert method_of(by_command) == method_of(skewed)


def test_learn_table_keeps_a_relabelling_variant_apart_from_the_config_default(tmp_path):
    import json

    from bench.learn_table import collect, render
    base = {'task': 'push', 'mode': 'oracle', 'steps': 200000, 'config': 'config/learn_push_oracle.yaml',
            'median_env_steps_per_s': 41.0, 'median_grad_steps_per_s': 160.0, 'seeds': [0],
            'runs': [{'puck_distance_median': 0.09, 'hand_distance_median': 0.03, 'success': 0.3, 'wall_s': 4900}]}
    (tmp_path / 'learn_push_oracle_oracle.json').write_text(json.dumps(base))
    variant = {**base, 'overrides': {'relabel.own': 0.1, 'relabel.prior': 0.5, 'relabel.future': 0.4},
               'relabel': {'own': 0.1, 'prior': 0.5, 'future': 0.4}, 'date': '2026-11-30 00:00:00'}
    (tmp_path / 'learn_push_oracle_env_goals.json').write_text(json.dumps(variant))
    rows = [r for r in collect(tmp_path) if r['file']]
    assert [r['method'] for r in rows] == [
        'oracle: state observations, true-distance reward, HER',
        'oracle: state observations, true-distance reward, HER, relabel own/env goals/future 10 / 50 / 40 %']
    assert 'relabel own/env goals/future' in render(rows)


def test_learn_table_shows_where_a_wall_capped_run_stopped(tmp_path):
    import json

    from bench.learn_table import collect, render
    run = {'puck_distance_median': 0.1, 'hand_distance_median': 0.05, 'success': 0.2, 'wall_s': 7260,
           'env_steps': 123456, 'stopped_by_wall_cap': True}
    capped = {'task': 'push', 'mode': 'her_pixels', 'steps': 200000, 'config': 'config/learn_push_her_pixels.yaml',
              'max_minutes': 120, 'median_env_steps_per_s': 17.0, 'median_grad_steps_per_s': 68.0, 'seeds': [0],
              'runs': [run], 'machine': {'reference_linear_ms': 2.04}}
    (tmp_path / 'learn_push_her_pixels_her_pixels.json').write_text(json.dumps(capped))
    (tmp_path / 'learn_push_oracle_oracle.json').write_text(json.dumps(
        {**capped, 'mode': 'oracle', 'config': 'config/learn_push_oracle.yaml', 'max_minutes': None, 'machine': {},
         'runs': [{**run, 'env_steps': 200000, 'stopped_by_wall_cap': False}]}))
    text = render(collect(tmp_path))
    assert '| 123456 of 200000 (120-min cap) |' in text
    assert '| 200000 |' in text   # a run that finished its budget shows just the budget
    # The host's speed reference sits beside a wall time when the result recorded it, and only then.
    assert '| 121.0 min (host ref. 2.0 ms) |' in text and text.count('host ref.') == 1


@pytest.mark.parametrize('task', ['reach', 'push'])
def test_learn_table_do_nothing_row_matches_a_motionless_policy_on_the_eval_goals(task):
    """The table's scale row: what rig_learn.evaluate reports for a policy that never moves."""
    from bench.learn_table import do_nothing_row
    from rig_learn.config import EvalConfig
    from rig_learn.evaluate import evaluate
    from rig_sim import make_env
    n = 4
    env = make_env(task=task)
    try:
        res = evaluate(None, env, n_goals=n, seed=EvalConfig.seed,
                       policy=lambda obs, goal: np.zeros(2, np.float32))
    finally:
        env.close()
    row = do_nothing_row(task, n_goals=n)
    final = res.puck_distance if task == 'push' else res.hand_distance
    assert row['median'] == pytest.approx(float(np.median(final)), abs=2e-3)
    assert row['success'] == [pytest.approx(float(np.mean(res.success)))]
    if task == 'push':
        assert row['hand_per_seed'] == [pytest.approx(float(np.median(res.hand_distance)), abs=2e-3)]


def test_seeds_run_in_parallel_processes_merge_into_one_result(tmp_path):
    """bench_learn --jobs 2 runs each seed in its own process (one per core) and merges their results
    into the result one process would write: every seed's run directory, medians and verdict
    recomputed, curves. merge_seeds refuses results of different experiments or a seed given twice."""
    import copy
    import json

    import bench.bench_learn as bench_learn
    import bench.merge_seeds as merge_seeds
    argv = ['--task', 'reach', '--seeds', '0', '1', '--steps', '200', '--smoke', '--eval-goals', '3', '--tag', '_m',
            '--jobs', '2', '--results-dir', str(tmp_path)]
    assert bench_learn.main(argv) == 0
    merged = json.loads((tmp_path / 'learn_reach_m.json').read_text())
    assert merged['seeds'] == [0, 1] and [r['seed'] for r in merged['runs']] == [0, 1] and merged['jobs'] == 2
    hands = [r['hand_distance_median'] for r in merged['runs']]
    assert merged['median_final_hand_distance'] == pytest.approx(sum(hands) / 2)
    assert merged['meets_target'] is False   # 200 of the target's 10000 steps
    assert merged['command'] == 'python -m bench.bench_learn ' + ' '.join(argv)
    for seed in (0, 1):
        assert (tmp_path / 'runs' / f'learn_reach_m_s{seed}' / 'metrics.jsonl').exists()
        assert (tmp_path / f'learn_reach_m_goal_map_s{seed}.png').exists()
    assert 'one process each' in (tmp_path / 'learn_reach_m.md').read_text()
    # Wall times depend on the host: the result names its CPU and a timed reference layer.
    assert merged['machine']['reference_linear_ms'] > 0 and merged['machine']['cpus'] >= 1
    assert 'speed reference' in (tmp_path / 'learn_reach_m.md').read_text()
    assert (tmp_path / 'learn_reach_m_curves.png').stat().st_size > 0
    assert not list(tmp_path.glob('.parts-*'))
    # Two single-seed results of one experiment merge; anything else is refused.
    a, b = copy.deepcopy(merged), copy.deepcopy(merged)
    a['runs'], a['seeds'], b['runs'], b['seeds'] = merged['runs'][:1], [0], merged['runs'][1:], [1]
    assert merge_seeds.merge([b, a])['seeds'] == [0, 1]
    (tmp_path / 'a.json').write_text(json.dumps(a))
    (tmp_path / 'b.json').write_text(json.dumps(b))
    out = tmp_path / 'merged' / 'learn_reach_m.json'
    assert merge_seeds.main([str(tmp_path / 'b.json'), str(tmp_path / 'a.json'), '--out', str(out)]) == 0
    again = json.loads(out.read_text())
    assert again['median_final_hand_distance'] == merged['median_final_hand_distance']
    assert len(again['merged_from']) == 2
    assert all(m['machine']['reference_linear_ms'] > 0 for m in again['merged_from'])   # each host kept
    assert '--seeds 0 1 ' in again['command'] and 'merge_seeds' in (out.parent / 'learn_reach_m.md').read_text()
    c = copy.deepcopy(b)
    c['overrides']['vae.goal_prior'] = 'data'
    (tmp_path / 'c.json').write_text(json.dumps(c))
    assert merge_seeds.main([str(tmp_path / 'a.json'), str(tmp_path / 'c.json'), '--out', str(out)]) == 2
    with pytest.raises(ValueError, match='overrides'):
        merge_seeds.merge([a, c])
    with pytest.raises(ValueError, match='twice'):
        merge_seeds.merge([a, copy.deepcopy(a)])
    # The goal bank: a result from before it was recorded takes the other's record; two records must agree.
    old_a = {k: v for k, v in a.items() if k != 'goal_bank'}
    assert a['goal_bank'] is not None and merge_seeds.merge([old_a, b])['goal_bank'] == b['goal_bank']
    skewed = copy.deepcopy(b)
    skewed['goal_bank']['goal_bank_skew'] = -0.5
    with pytest.raises(ValueError, match='goal_bank'):
        merge_seeds.merge([a, skewed])
    assert json.loads(out.read_text())['seeds'] == [0, 1]   # a refused merge leaves the output alone
    # A seed process that fails makes the whole run fail, with nothing merged.
    bad = tmp_path / 'bad'
    assert bench_learn.main([*argv[:-1], str(bad), '--set', 'rl.algo=nope']) == 1
    assert not list(bad.glob('*.json')) and not list(bad.glob('.parts-*'))


def test_learn_table_median_over_an_even_number_of_seeds_matches_bench_learn(tmp_path):
    """Two seeds: the table's median is their mean, as bench_learn's JSON has it (not the upper one)."""
    import json

    from bench.learn_table import collect
    run = lambda puck: {'puck_distance_median': puck, 'hand_distance_median': 0.03, 'success': 0.4, 'wall_s': 6000}
    (tmp_path / 'learn_push_x.json').write_text(json.dumps(
        {'task': 'push', 'mode': 'oracle', 'steps': 200000, 'config': 'config/learn_push_oracle.yaml', 'seeds': [0, 2],
         'median_env_steps_per_s': 35.0, 'median_grad_steps_per_s': 140.0, 'runs': [run(0.068), run(0.074)]}))
    (row,) = [r for r in collect(tmp_path) if r['file']]
    assert row['median'] == pytest.approx(0.071)


def test_push_results_break_final_distances_down_by_push_direction(tmp_path):
    """A push result says where the policy fails: per goal direction (towards the robot, sideways,
    away), goals within the success distance and their median, from the run's own eval goals; runs
    whose eval.json predates stored goal states get the same goals redrawn from the goal seed."""
    import json

    import bench.bench_learn as bench_learn
    from bench.per_goal import GROUPS, breakdown
    from bench.per_goal import main as per_goal_main
    from rig_sim.tasks import PUCK_SUCCESS_DISTANCE, REGION_CENTRE
    argv = ['--task', 'push', '--seeds', '0', '--steps', '200', '--smoke', '--eval-goals', '5', '--tag', '_d',
            '--results-dir', str(tmp_path)]
    assert bench_learn.main(argv) == 0
    result = json.loads((tmp_path / 'learn_push_d.json').read_text())
    stored = result['runs'][0]['per_goal_direction']
    run_dir = tmp_path / 'runs' / 'learn_push_d_s0'
    final = json.loads((run_dir / 'eval.json').read_text())
    puck = np.asarray(final['per_goal']['puck_distance'])
    goals = np.asarray(final['per_goal']['goal_state'])
    assert goals.shape == (5, 5)
    dx = goals[:, 3] - REGION_CENTRE[0]
    expect = [dx < -0.03, np.abs(dx) <= 0.03, dx > 0.03]
    assert [stored['groups'][g]['n_goals'] for g in GROUPS] == [int(m.sum()) for m in expect]
    within = [int((puck[m] <= PUCK_SUCCESS_DISTANCE).sum()) for m in expect]
    assert [stored['groups'][g]['within'] for g in GROUPS] == within
    assert stored['within'] == int((puck <= PUCK_SUCCESS_DISTANCE).sum()) and stored['n_goals'] == 5
    assert 'towards the robot' in (tmp_path / 'learn_push_d.md').read_text()
    # An eval.json without goal states: the goals are redrawn exactly.
    del final['per_goal']['goal_state']
    (run_dir / 'eval.json').write_text(json.dumps(final))
    assert breakdown(run_dir) == stored
    # --update stores it in a result written without it, and refuses a run directory of another run.
    del result['runs'][0]['per_goal_direction']
    result['runs'][0]['run_dir'] = str(run_dir)
    (tmp_path / 'old.json').write_text(json.dumps(result))
    assert per_goal_main(['--update', str(tmp_path / 'old.json')]) == 0
    assert json.loads((tmp_path / 'old.json').read_text())['runs'][0]['per_goal_direction'] == stored
    assert 'towards the robot' in (tmp_path / 'old.md').read_text()
    result['runs'][0]['puck_distance_median'] += 0.01
    (tmp_path / 'other.json').write_text(json.dumps(result))
    with pytest.raises(SystemExit, match='differs'):
        per_goal_main(['--update', str(tmp_path / 'other.json')])
    # learn_table shows it per method, next to doing nothing on the same goals.
    from bench.learn_table import collect, render
    table_dir = tmp_path / 'table'
    table_dir.mkdir()
    updated = json.loads((tmp_path / 'old.json').read_text())
    (table_dir / 'learn_push_d.json').write_text(json.dumps({**updated, 'smoke': False}))
    text = render(collect(table_dir))
    assert 'Where it fails' in text
    fails = text[text.index('Where it fails'):].splitlines()
    line = next(row for row in fails if row.startswith('| RIG'))
    assert f"| 200 | {stored['within']} of 5 |" in line
    assert any(row.startswith('| do nothing') and ' of 50 |' in row for row in fails)


def test_learn_table_default_follows_how_the_goal_bank_was_drawn(tmp_path):
    """A result from before the default's goal-bank skew existed (nothing recorded, no override) is
    not the default once the config skews the bank; one recorded with the skew, or made with it on
    the command line, is."""

    from bench.learn_table import is_default
    from rig_learn.config import LearnConfig, RelabelConfig, VAEConfig
    cfg = LearnConfig(task='push', vae=VAEConfig(goal_prior='data', goal_bank_skew=-0.5),
                      relabel=RelabelConfig(own=0.1, prior=0.5, future=0.4))
    base = {'task': 'push', 'mode': 'rig', 'config': 'config/learn_push.yaml', 'goal_prior': 'data',
            'relabel': {'own': 0.1, 'prior': 0.5, 'future': 0.4}}
    assert not is_default({**base, 'overrides': {'vae.goal_prior': 'data'}}, cfg)
    assert is_default({**base, 'overrides': {'vae.goal_bank_skew': -0.5}}, cfg)
    recorded = {'goal_bank_skew': -0.5, 'goal_bank_pretrain_fraction': None, 'skew_vae_training': False}
    assert is_default({**base, 'overrides': {}, 'goal_bank': recorded}, cfg)
    assert not is_default({**base, 'overrides': {}, 'goal_bank': {**recorded, 'skew_vae_training': True}}, cfg)
