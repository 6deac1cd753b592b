"""`make bench` calls every benchmark's main(argv): each must accept its argument list. The benchmarks'
results: where they go, their schema, and the table and page (docs/results.md) written from them."""
import importlib
import inspect
import json

import numpy as np
import pytest

from bench.layout import REPO, SCHEMAS
from bench.run_all import SECTIONS

PUSH_TARGET = {'metric': 'puck_distance', 'max_m': 0.06, 'steps': 200000, 'wall_s': 7200}


def run_of(puck: float = 0.05, **fields) -> dict:
    """One seed's run as bench_learn records it (push), with `fields` changed."""
    return {'seed': 0, 'env_steps': 200000, 'stopped_by_wall_cap': False, 'puck_distance_median': puck,
            'hand_distance_median': 0.02, 'success': 0.5, 'wall_s': 5000, **fields}


def learn_result(**fields) -> dict:
    """A bench_learn result of the current schema, every method field written out (a push RIG run with
    the paper's relabelling and a uniform goal bank), with `fields` changed."""
    return {'schema': SCHEMAS['learn'], 'task': 'push', 'arm': 'sawyer', 'mode': 'rig', 'steps': 200000,
            'seeds': [0], 'smoke': False, 'max_minutes': None, 'threads': 1, 'device': 'cpu',
            'config': 'config/learn_push.yaml', 'overrides': {}, 'goal_prior': 'standard',
            'goal_bank': {'goal_bank_skew': 0.0}, 'relabel': {'own': 0.1, 'prior': 0.5, 'future': 0.4},
            'command': 'python -m bench.bench_learn --task push --seeds 0', 'target': PUSH_TARGET,
            'runs': [run_of()], 'machine': None, 'date': '2026-12-01 00:00:00',
            'median_env_steps_per_s': 35.0, 'median_grad_steps_per_s': 130.0, **fields}


def oracle_result(**fields) -> dict:
    """learn_result of the push oracle baseline (no VAE: no goal prior, no goal bank; HER's relabelling)."""
    return learn_result(**{'mode': 'oracle', 'config': 'config/learn_push_oracle.yaml', 'goal_prior': None,
                           'goal_bank': None, 'relabel': {'own': 0.2, 'prior': 0.0, 'future': 0.8}, **fields})


def write_learn(results_dir, variant: str, result: dict):
    """Store `result` as bench_learn would: results_dir/<task>/<variant>.json (results_dir: a learn/ folder)."""
    path = results_dir / result['task'] / f'{variant}.json'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return path


@pytest.mark.parametrize('name,module_name,args', SECTIONS)
def test_every_section_has_main_taking_argv(name, module_name, args):
    module = importlib.import_module(module_name)
    params = list(inspect.signature(module.main).parameters)
    assert params and params[0] == 'argv', f'{module_name}.main must take argv'


def test_vae_diagnostic_reports_probe_and_landscape(tmp_path, monkeypatch):
    """bench_vae on a tiny pretraining budget: a JSON with a finite probe R^2 per state part."""
    import math

    import bench.bench_vae as bench_vae
    monkeypatch.setattr(bench_vae, 'VAE', tmp_path)
    assert bench_vae.main(['--task', 'push', '--set', 'vae.pretrain_images=200', '--set', 'vae.pretrain_steps=5',
                           '--goals', '45', '--tag', '_t']) == 0
    result = json.loads((tmp_path / 'push_t.json').read_text())
    assert result['schema'] == SCHEMAS['vae']
    assert set(result['probe_r2']) == {'hand_xy', 'puck_xy'}
    assert all(math.isfinite(v) and v <= 1.0 for v in result['probe_r2'].values())
    assert 0.0 <= result['landscape']['argmin_hand_error_m'] < 0.5
    assert (tmp_path / 'push_t.png').stat().st_size > 0


def test_vae_diagnostic_probes_a_trained_runs_checkpoint(tmp_path, monkeypatch, capsys):
    """bench_vae --checkpoint probes the VAE a run ended with (no pretraining) and refuses another task's."""

    import torch

    import bench.bench_vae as bench_vae
    from rig_learn import RIGAgent, make_task_env
    from rig_learn.testing import tiny_config
    torch.set_num_threads(1)
    agent = RIGAgent.from_config(tiny_config(task='push', **{'vae.pretrain_images': 60}), make_task_env('push', seed=0))
    agent.learn(60)
    agent.save(tmp_path / 'checkpoint')
    monkeypatch.setattr(bench_vae, 'VAE', tmp_path)
    assert bench_vae.main(['--task', 'push', '--checkpoint', str(tmp_path / 'checkpoint'), '--goals', '45',
                           '--tag', '_c']) == 0
    result = json.loads((tmp_path / 'push_c.json').read_text())
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
    from functools import partial

    import bench.learn_table
    render = bench.learn_table.render
    collect = partial(bench.learn_table.collect, defaults=defaults_with('standard'))
    write_learn(tmp_path, 'rig', learn_result(meets_target=True))
    three = ('python -m bench.bench_learn --task push --seeds 0 1 2 --steps 200000 --tag _3')
    write_learn(tmp_path, '3', learn_result(seeds=[0, 1, 2], meets_target=False, command=three,
                                            runs=[run_of(0.05), run_of(0.09), run_of(0.07)]))
    write_learn(tmp_path, 'smoke', learn_result(seeds=[0, 1, 2, 3], smoke=True, runs=[]))
    rows, reference = collect(tmp_path)   # the run with most seeds, then the "do nothing" scale
    assert reference['file'] is None and reference['method'].startswith('do nothing')
    assert rows['per_seed'] == [0.05, 0.09, 0.07] and rows['median'] == 0.07
    text = render([rows, reference])
    assert 'final puck distance' in text and 'not met' in text and f'`{three}`' in text
    assert rows['method'] == 'RIG, goal prior N(0, I)' and rows['default']
    fitted = 'python -m bench.bench_learn --task push --seeds 0 1 2 4 --set vae.goal_prior=fitted'
    write_learn(tmp_path, 'fitted', learn_result(goal_prior='fitted', seeds=[0, 1, 2, 4], command=fitted,
                                                 overrides={'vae.goal_prior': 'fitted'}, runs=[run_of(0.1)] * 4))
    write_learn(tmp_path, '20k', learn_result(steps=20000, date='2099', runs=[run_of(0.2, env_steps=20000)]))
    other = [r for r in collect(tmp_path) if r['method'] != 'RIG, goal prior N(0, I)' and r['file']]
    rig = [(r['steps'], r['median']) for r in collect(tmp_path) if r['method'] == 'RIG, goal prior N(0, I)']
    assert rig == [(20000, 0.2), (200000, 0.07)]   # a shorter, later run does not hide the 200k one
    assert 'not met' in render(collect(tmp_path))   # judged on the 200k row, not the 20k one
    (tmp_path / 'push' / '3.json').unlink()
    (tmp_path / 'push' / 'rig.json').unlink()
    assert 'no result with the current defaults yet' in render(collect(tmp_path))
    assert other[0]['method'] == 'RIG, goal prior fitted to the latents' and not other[0]['default']
    assert other[0]['command'] == fitted   # the command the result recorded
    # When the default changes, the target is judged on a run made with the new default.
    write_learn(tmp_path, 'data', learn_result(goal_prior='data', overrides={'vae.goal_prior': 'data', 'arm': 'sawyer'},
                                               meets_target=True))
    rows = bench.learn_table.collect(tmp_path, defaults=defaults_with('data'))
    assert [r['method'] for r in rows if r.get('default')] == ['RIG, goal prior: latents of seen images']
    text = render(rows)
    assert 'latents of seen images **(default config)**' in text and ': met, over 1 seed.' in text
    # A run changing anything else is a row of its own, named by what it changed, and not the default;
    # so is one that used an option since retired (its goal bank records it).
    write_learn(tmp_path, 'data_bank', learn_result(
        goal_prior='data', overrides={'vae.goal_prior': 'data', 'vae.goal_bank_pretrain_fraction': 0.5},
        goal_bank={'goal_bank_skew': 0.0, 'goal_bank_pretrain_fraction': 0.5}, runs=[run_of(0.04)], meets_target=True))
    rows = bench.learn_table.collect(tmp_path, defaults=defaults_with('data'))
    variant = [r for r in rows if r['file'] == 'push/data_bank.json']
    assert variant[0]['method'] == 'RIG, goal prior: latents of seen images, vae.goal_bank_pretrain_fraction=0.5'
    assert not variant[0]['default'] and [r['file'] for r in rows if r.get('default')] == ['push/data.json']
    rows = bench.learn_table.collect(tmp_path, defaults=defaults_with('standard'))
    assert [r['file'] for r in rows if r.get('default')] == ['push/20k.json']
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
    setting the command made shows once; a retired option a run used keeps its name."""
    from bench.learn_table import method_of
    uniform = learn_result(config='config/learn_push_no_prior.yaml', goal_prior='data',
                           relabel={'own': 0.2, 'prior': 0.0, 'future': 0.8})
    skewed = {**uniform, 'goal_bank': {'goal_bank_skew': -0.5}}
    by_command = {**skewed, 'overrides': {'vae.goal_bank_skew': -0.5, 'arm': 'sawyer'}}
    assert method_of(skewed) != method_of(uniform)
    assert method_of(skewed)[1].endswith(', vae.goal_bank_skew=-0.5')
    assert method_of(by_command) == method_of(skewed)
    retired = {**uniform, 'goal_bank': {'goal_bank_skew': 0.0, 'skew_vae_training': True}}
    assert method_of(retired)[1].endswith(', vae.skew_vae_training=True')


def test_learn_table_keeps_a_relabelling_variant_apart_from_the_config_default(tmp_path):
    from bench.learn_table import collect, render
    base = oracle_result(median_env_steps_per_s=41.0, median_grad_steps_per_s=160.0,
                         runs=[run_of(0.09, hand_distance_median=0.03, success=0.3, wall_s=4900)])
    write_learn(tmp_path, 'oracle', base)
    variant = {**base, 'overrides': {'relabel.own': 0.1, 'relabel.prior': 0.5, 'relabel.future': 0.4},
               'relabel': {'own': 0.1, 'prior': 0.5, 'future': 0.4}, 'date': '2026-11-30 00:00:00'}
    write_learn(tmp_path, 'oracle_env_goals', variant)
    rows = [r for r in collect(tmp_path) if r['file']]
    assert [r['method'] for r in rows] == [
        'oracle: state observations, true-distance reward, HER',
        'oracle: state observations, true-distance reward, HER, relabel own/env goals/future 10 / 50 / 40 %']
    assert 'relabel own/env goals/future' in render(rows)


def test_learn_table_shows_where_a_wall_capped_run_stopped(tmp_path):
    from bench.learn_table import collect, render
    run = run_of(0.1, hand_distance_median=0.05, success=0.2, wall_s=7260, env_steps=123456, stopped_by_wall_cap=True)
    capped = oracle_result(mode='her_pixels', config='config/learn_push_her_pixels.yaml', max_minutes=120,
                           median_env_steps_per_s=17.0, median_grad_steps_per_s=68.0, runs=[run],
                           machine={'reference_linear_ms': 2.04})
    write_learn(tmp_path, 'her_pixels', capped)
    write_learn(tmp_path, 'oracle', oracle_result(max_minutes=None, machine={},
                                                  runs=[{**run, 'env_steps': 200000, 'stopped_by_wall_cap': False}]))
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

    import bench.bench_learn as bench_learn
    import bench.merge_seeds as merge_seeds
    argv = ['--task', 'reach', '--seeds', '0', '1', '--steps', '200', '--smoke', '--eval-goals', '3', '--tag', '_m',
            '--jobs', '2', '--results-dir', str(tmp_path)]
    assert bench_learn.main(argv) == 0
    out_dir = tmp_path / 'learn' / 'reach'   # the results tree's learn/<task>/<variant>.*
    merged = json.loads((out_dir / 'm.json').read_text())
    assert merged['schema'] == SCHEMAS['learn']
    assert merged['seeds'] == [0, 1] and [r['seed'] for r in merged['runs']] == [0, 1] and merged['jobs'] == 2
    hands = [r['hand_distance_median'] for r in merged['runs']]
    assert merged['median_final_hand_distance'] == pytest.approx(sum(hands) / 2)
    assert merged['meets_target'] is False   # 200 of the target's 10000 steps
    assert merged['command'] == 'python -m bench.bench_learn ' + ' '.join(argv)
    for seed in (0, 1):
        assert (tmp_path / 'runs' / f'learn_reach_m_s{seed}' / 'metrics.jsonl').exists()
        assert (out_dir / f'm_goal_map_s{seed}.png').exists()
    assert 'one process each' in (out_dir / 'm.md').read_text()
    # Wall times depend on the host: the result names its CPU and a timed reference layer.
    assert merged['machine']['reference_linear_ms'] > 0 and merged['machine']['cpus'] >= 1
    assert 'speed reference' in (out_dir / 'm.md').read_text()
    assert (out_dir / 'm_curves.png').stat().st_size > 0
    assert not list(tmp_path.glob('.parts-*'))
    # Two single-seed results of one experiment merge; anything else is refused.
    a, b = copy.deepcopy(merged), copy.deepcopy(merged)
    a['runs'], a['seeds'], b['runs'], b['seeds'] = merged['runs'][:1], [0], merged['runs'][1:], [1]
    assert merge_seeds.merge([b, a])['seeds'] == [0, 1]
    (tmp_path / 'a.json').write_text(json.dumps(a))
    (tmp_path / 'b.json').write_text(json.dumps(b))
    out = tmp_path / 'merged' / 'm.json'
    assert merge_seeds.main([str(tmp_path / 'b.json'), str(tmp_path / 'a.json'), '--out', str(out)]) == 0
    again = json.loads(out.read_text())
    assert again['median_final_hand_distance'] == merged['median_final_hand_distance']
    assert len(again['merged_from']) == 2
    assert all(m['machine']['reference_linear_ms'] > 0 for m in again['merged_from'])   # each host kept
    assert '--seeds 0 1 ' in again['command'] and 'merge_seeds' in (out.parent / 'm.md').read_text()
    c = copy.deepcopy(b)
    c['overrides']['vae.goal_prior'] = 'data'
    (tmp_path / 'c.json').write_text(json.dumps(c))
    assert merge_seeds.main([str(tmp_path / 'a.json'), str(tmp_path / 'c.json'), '--out', str(out)]) == 2
    with pytest.raises(ValueError, match='overrides'):
        merge_seeds.merge([a, c])
    with pytest.raises(ValueError, match='twice'):
        merge_seeds.merge([a, copy.deepcopy(a)])
    # The goal bank must agree, and so must the schema; a file of another schema is not read at all.
    assert a['goal_bank'] is not None and merge_seeds.merge([a, b])['goal_bank'] == b['goal_bank']
    with pytest.raises(ValueError, match='schema'):
        merge_seeds.merge([{**a, 'schema': 0}, b])
    (tmp_path / 'old.json').write_text(json.dumps({k: v for k, v in a.items() if k != 'schema'}))
    assert merge_seeds.main([str(tmp_path / 'old.json'), str(tmp_path / 'b.json'), '--out', str(out)]) == 2
    skewed = copy.deepcopy(b)
    skewed['goal_bank']['goal_bank_skew'] = a['goal_bank']['goal_bank_skew'] + 0.25   # another skew
    with pytest.raises(ValueError, match='goal_bank'):
        merge_seeds.merge([a, skewed])
    assert json.loads(out.read_text())['seeds'] == [0, 1]   # a refused merge leaves the output alone
    # A seed process that fails makes the whole run fail, with nothing merged.
    bad = tmp_path / 'bad'
    assert bench_learn.main([*argv[:-1], str(bad), '--set', 'rl.algo=nope']) == 1
    assert not list(bad.rglob('*.json')) and not list(bad.glob('.parts-*'))


def test_learn_table_median_over_an_even_number_of_seeds_matches_bench_learn(tmp_path):
    """Two seeds: the table's median is their mean, as bench_learn's JSON has it (not the upper one)."""
    from bench.learn_table import collect
    run = lambda puck: run_of(puck, hand_distance_median=0.03, success=0.4, wall_s=6000)
    write_learn(tmp_path, 'x', oracle_result(seeds=[0, 2], runs=[run(0.068), run(0.074)]))
    (row,) = [r for r in collect(tmp_path) if r['file']]
    assert row['median'] == pytest.approx(0.071)


def test_push_results_break_final_distances_down_by_push_direction(tmp_path):
    """A push result says where the policy fails: per goal direction (towards the robot, sideways,
    away), goals within the success distance and their median, from the run's own eval goals; runs
    whose eval.json predates stored goal states get the same goals redrawn from the goal seed."""
    import bench.bench_learn as bench_learn
    from bench.per_goal import GROUPS, breakdown
    from bench.per_goal import main as per_goal_main
    from rig_sim.tasks import PUCK_SUCCESS_DISTANCE, REGION_CENTRE
    argv = ['--task', 'push', '--seeds', '0', '--steps', '200', '--smoke', '--eval-goals', '5', '--tag', '_d',
            '--results-dir', str(tmp_path)]
    assert bench_learn.main(argv) == 0
    result = json.loads((tmp_path / 'learn' / 'push' / 'd.json').read_text())
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
    assert 'towards the robot' in (tmp_path / 'learn' / 'push' / 'd.md').read_text()
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
    updated = json.loads((tmp_path / 'old.json').read_text())
    write_learn(table_dir, 'd', {**updated, 'smoke': False})
    text = render(collect(table_dir))
    assert 'Where it fails' in text
    fails = text[text.index('Where it fails'):].splitlines()
    line = next(row for row in fails if row.startswith('| RIG'))
    assert f"| 200 | {stored['within']} of 5 |" in line
    assert any(row.startswith('| do nothing') and ' of 50 |' in row for row in fails)


def test_learn_table_default_follows_how_the_goal_bank_was_drawn():
    """A result is the default only with the goal bank the config draws now: a uniform bank is not the
    default once the config skews it, a recorded skew is (from the config or the command line), and
    a retired option the run used (recorded in its goal bank) makes it a variant."""
    from bench.learn_table import is_default
    from rig_learn.config import LearnConfig, RelabelConfig, VAEConfig
    cfg = LearnConfig(task='push', vae=VAEConfig(goal_prior='data', goal_bank_skew=-0.5),
                      relabel=RelabelConfig(own=0.1, prior=0.5, future=0.4))
    base = learn_result(goal_prior='data')
    assert not is_default({**base, 'overrides': {'vae.goal_prior': 'data'}}, cfg)
    skewed = {**base, 'goal_bank': {'goal_bank_skew': -0.5}}
    assert is_default(skewed, cfg) and is_default({**skewed, 'overrides': {'vae.goal_bank_skew': -0.5}}, cfg)
    assert not is_default({**skewed, 'goal_bank': {'goal_bank_skew': -0.5, 'skew_vae_training': True}}, cfg)
    assert not is_default({**skewed, 'relabel': {'own': 0.2, 'prior': 0.0, 'future': 0.8}}, cfg)


def test_a_result_names_its_variant_once():
    """learn/<task>/<variant>.json: the tag after the config's own name, never the same word twice."""
    from bench.learn_results import result_path, variant_name
    assert variant_name('reach', None) == 'rig'
    assert variant_name('reach', 'config/learn_reach.yaml', '_data_prior') == 'data_prior'
    assert variant_name('push', 'config/learn_push_oracle.yaml', '_oracle') == 'oracle'
    assert variant_name('push', '/abs/config/learn_push_oracle.yaml') == 'oracle'
    no_prior = 'config/learn_reach_no_prior.yaml'
    assert variant_name('reach', no_prior, '_no_prior_fitted_prior') == 'no_prior_fitted_prior'
    assert variant_name('push', 'config/learn_push_no_prior.yaml', '_skew') == 'no_prior_skew'
    assert variant_name('push', 'my_push.yaml', '_x') == 'my_push_x'
    assert result_path('push', 'oracle').parts[-4:] == ('results', 'learn', 'push', 'oracle.json')


def committed_results():
    """Every result JSON kept in bench/results (the run directories under runs/ are scratch)."""
    from bench.layout import RESULTS
    return [p for p in sorted(RESULTS.rglob('*.json')) if 'runs' not in p.relative_to(RESULTS).parts]


def test_every_committed_result_has_a_schema():
    paths = committed_results()
    assert len(paths) > 40
    missing = [str(p) for p in paths if not isinstance(json.loads(p.read_text()).get('schema'), int)]
    assert not missing, f'results without a schema: {missing}'


def test_the_committed_learner_table_is_what_the_results_give():
    """bench/results/learn/table.md is learn_table's rendering of the committed results (regenerate:
    python -m bench.learn_table)."""
    from bench.layout import LEARN
    from bench.learn_table import collect, render
    assert render(collect()) == (LEARN / 'table.md').read_text()


def test_the_committed_results_page_is_what_the_results_give():
    """docs/results.md, and README.md's headline table, are written from the result JSONs (python -m
    bench.results_doc): they cannot drift from them."""
    from bench.results_doc import DOC, README, main, render, with_headline
    assert render() == DOC.read_text(), 'docs/results.md is stale: run python -m bench.results_doc'
    assert with_headline(README.read_text(), DOC.read_text()) == README.read_text(), 'README.md is stale'
    assert main(['--check']) == 0


def test_the_readme_headline_table_follows_the_results(tmp_path, capsys):
    """A changed result changes the README's headline row as well as the page (the README's rows are the
    page's rows); text outside the markers is kept; a README without its markers is a clear error."""
    import shutil

    from bench.layout import RESULTS
    from bench.results_doc import README, README_BEGIN, main
    results = tmp_path / 'results'
    shutil.copytree(RESULTS, results, ignore=shutil.ignore_patterns('runs', '*.png', '*.md', '*.jsonl'))
    path = results / 'graph' / 'figures.json'
    figures = json.loads(path.read_text())
    figures['latency']['p50_ms'] = 123.4
    path.write_text(json.dumps(figures))
    readme, out = tmp_path / 'README.md', tmp_path / 'results.md'
    readme.write_text(README.read_text())
    assert main(['--results', str(results), '--out', str(out), '--readme', str(readme)]) == 0
    assert 'p50 123.4 ms' in out.read_text() and 'p50 123.4 ms' in readme.read_text()
    assert readme.read_text().split(README_BEGIN)[0] == README.read_text().split(README_BEGIN)[0]
    assert main(['--results', str(results), '--out', str(out), '--readme', str(readme), '--check']) == 0
    readme.write_text('# a README without the markers\n')
    assert main(['--results', str(results), '--out', str(out), '--readme', str(readme)]) == 2
    assert 'needs the lines' in capsys.readouterr().err


def test_the_results_page_refuses_a_result_of_an_unknown_schema(tmp_path, capsys):
    """A result of a schema this code does not write stops the page (and the table), naming the file,
    instead of being read for fields that may mean something else."""
    import shutil

    from bench.layout import RESULTS
    from bench.learn_table import collect
    from bench.results_doc import main, render
    results = tmp_path / 'results'
    shutil.copytree(RESULTS, results, ignore=shutil.ignore_patterns('runs', '*.png', '*.md', '*.jsonl'))
    out, readme = tmp_path / 'results.md', tmp_path / 'README.md'
    shutil.copy(REPO / 'README.md', readme)
    assert main(['--results', str(results), '--out', str(out), '--readme', str(readme)]) == 0 and out.exists()
    path = results / 'learn' / 'push' / 'oracle.json'
    path.write_text(json.dumps({**json.loads(path.read_text()), 'schema': 99}))
    with pytest.raises(ValueError, match=r'oracle\.json: a learn result of schema 99'):
        render(results)
    with pytest.raises(ValueError, match='schema 99'):
        collect(results / 'learn')
    out.unlink()
    assert main(['--results', str(results), '--out', str(out), '--readme', str(readme)]) == 2 and not out.exists()
    assert 'schema 99' in capsys.readouterr().err
    path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != 'schema'}))
    with pytest.raises(ValueError, match='schema None'):
        render(results)


def test_bench_cell_latency_follows_a_command_through_the_filter_to_the_controller():
    """A frame stamped at 0 answered by rig/cmd_raw at 30 ms: the filter's next rig/cmd (50 ms), the
    adapter's next controller message after that (55 ms) -> 55 ms; unstamped and unanswered ones are out."""
    from bench.bench_cell import frame_to_controller_ms, markdown, zeroed_by_filter
    ms = 1_000_000
    got = frame_to_controller_ms([(30 * ms, 1), (40 * ms, 0), (200 * ms, 150 * ms)],
                                 [10 * ms, 50 * ms, 100 * ms], [45 * ms, 55 * ms, 105 * ms])
    assert got.tolist() == [(55 * ms - 1) / 1e6]
    # a command the filter answered with a zero (box edge, stale): its next controller message is no answer
    raw, cmd, out = [(30 * ms, 1), (60 * ms, 58 * ms)], [50 * ms, 70 * ms], [55 * ms, 3000 * ms]
    assert frame_to_controller_ms(raw, cmd, out, [True, False]).tolist() == [(55 * ms - 1) / 1e6]
    assert zeroed_by_filter(raw, cmd, [True, False]) == 1
    r = {'arm': 'ur5e', 'date': 'd', 'host': 'h', 'command': 'c', 'practice_minutes': 30, 'transitions': 1,
         'updates': 2, 'episodes': 3, 'goals': [{}] * 50, 'median_final_distance_m': 0.02,
         'median_start_distance_m': 0.12, 'success': 0.9, 'target': {'median_final_distance_m': 0.03, 'wall_s': 1800},
         'wall_s': 1790, 'latency_p50_ms': 40, 'latency_p99_ms': 110, 'latency_samples': 9,
         'curve': [{'practice_min': 30, 'wall_min': 31, 'transitions': 1, 'goals': 50,
                    'median_final_distance_m': 0.02}]}
    text = markdown(r)
    assert '**0.020 m**' in text and 'met' in text and 'p99 110 ms' in text
    assert 'missed' in markdown({**r, 'median_final_distance_m': 0.05})
    assert 'missed' in markdown({**r, 'wall_s': 1900})   # evaluations along the curve count as wall clock
    assert '30 min of wall clock' in markdown({**r, 'budget_minutes': 30, 'practice_minutes': 27.5})


def test_bench_hosts_measures_propagation_from_the_log_stamps_and_bandwidth_from_the_bags(tmp_path):
    """Propagation: each policy's load of ckpt_N minus the trainer's write of ckpt_N (other checkpoints
    and other lines are out). Bandwidth: bag bytes over the episodes' recorded seconds, and with raw
    640x480 frames in place of the 48x48 ones."""
    from bench.bench_hosts import RAW_FRAME_BYTES, bandwidth, markdown, propagation
    learner = ('[INFO] [100.000000000] [trainer]: checkpoint ckpt_00000001: 3 episodes\n'
               '[INFO] [110.500000000] [trainer]: final checkpoint ckpt_00000002: 4 episodes\n')
    def using(t, ns, path):
        return f'[INFO] [{t}] [{ns}.policy]: policy using {path} (5 gradient steps)\n'
    env0 = (using('100.250000000', 'env0', '/a/received_checkpoints_env0/ckpt_00000001')
            + using('111.000000000', 'env0', '/a/received_checkpoints_env0/ckpt_00000002')
            + using('120.000000000', 'env0', '/a/elsewhere/ckpt_00000009'))
    env1 = using('101.000000000', 'env1', '/b/received_checkpoints_env1/ckpt_00000001')
    assert propagation(learner, {'env0': env0, 'env1': env1}) == pytest.approx([0.25, 0.5, 1.0])
    bags = []
    for i in range(2):
        bag = tmp_path / f'env0_ep{i:06d}_x'
        bag.mkdir()
        (bag / 'ep.mcap').write_bytes(b'x' * 9000)
        (bag / 'metadata.yaml').write_text(
            'rosbag2_bagfile_information:\n  duration: {nanoseconds: 2000000000}\n  topics_with_message_count:\n'
            '  - {message_count: 20, topic_metadata: {name: /env0/camera/image_raw}}\n'
            '  - {message_count: 19, topic_metadata: {name: /env0/rig/cmd}}\n')
        bags.append(bag)
    b = bandwidth(bags)
    total = sum(p.stat().st_size for bag in bags for p in bag.iterdir())
    assert b['bytes'] == total and b['practice_s'] == 4.0 and b['frames'] == 40
    assert b['bytes_per_s'] == pytest.approx(total / 4.0) and b['steps_per_s'] == 10.0
    assert b['raw_bytes_per_s'] == pytest.approx((total / 40 + RAW_FRAME_BYTES - 48 * 48 * 3) * 10)
    r = {'command': 'c', 'host': 'h', 'date': 'd', 'checkpoint_bytes': 860_000, 'propagation_p50_s': 0.4,
         'propagation_max_s': 1.2, 'propagation_samples': 30, 'bandwidth': {'env0': b}, 'practice_steps': 5000,
         'goals': 50, 'median_final_distance_m': 0.012, 'median_start_distance_m': 0.13, 'within_5cm': 0.9,
         'wall_s': 600, 'episodes_on_learner': 10, 'episodes_closed': 10}
    text = markdown(r)
    assert '0.86 MB' in text and 'p50 0.40 s' in text and '10 of 10 closed' in text and 'not measured' in text


def test_bench_cell_variant_needs_a_tag_and_names_a_file_that_exists(capsys):
    """A --params-file changes what is measured: without --tag it would overwrite the default's result."""
    from bench.bench_cell import main
    with pytest.raises(SystemExit):
        main(['--params-file', 'bench/variants/cell_pretrain5000.yaml'])
    assert 'name the variant with --tag' in capsys.readouterr().err
    assert (REPO / 'bench' / 'variants' / 'cell_pretrain5000.yaml').is_file()
