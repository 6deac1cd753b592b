"""`rig train` ends with its run next to the benchmark table's results of the same method
(rig_learn.benchmarks): which results count as the same method, and what it prints."""
import json
import shutil

import pytest
from test_bench_entrypoints import learn_result, write_learn

from bench.layout import REPO, SCHEMAS
from rig_learn.benchmarks import LEARN_SCHEMA, comparison, matching
from rig_learn.runs import load_config


def reach_result(per_seed=(0.008, 0.010, 0.006), steps=10000, **fields) -> dict:
    """A reach RIG result of the shipped reach default (data goal bank, skew -0.5), one run per seed."""
    runs = [{'seed': s, 'env_steps': steps, 'stopped_by_wall_cap': False, 'hand_distance_median': d,
             'puck_distance_median': None, 'success': 1.0, 'wall_s': 300.0} for s, d in enumerate(per_seed)]
    return learn_result(**{'task': 'reach', 'steps': steps, 'seeds': list(range(len(per_seed))),
                           'config': 'config/learn_reach.yaml', 'goal_prior': 'data',
                           'goal_bank': {'goal_bank_skew': -0.5},
                           'overrides': {'arm': 'sawyer', 'device': 'cpu', 'num_threads': 1, 'eval.n_goals': 50},
                           'command': f'python -m bench.bench_learn --task reach --seeds 0 1 2 --steps {steps}',
                           'runs': runs, **fields})


@pytest.fixture
def checkout(tmp_path):
    """A checkout's bench/results/learn (returned) beside its config/learn_reach.yaml (the shipped one)."""
    (tmp_path / 'config').mkdir()
    shutil.copy(REPO / 'config' / 'learn_reach.yaml', tmp_path / 'config')
    learn = tmp_path / 'bench' / 'results' / 'learn'
    learn.mkdir(parents=True)
    return learn


def test_a_run_of_the_default_is_shown_next_to_its_seeds(checkout):
    write_learn(checkout, 'rig', reach_result())
    write_learn(checkout, 'rig_5k', reach_result(per_seed=(0.02, 0.03), steps=5000))
    cfg = load_config('reach', None, seed=4, num_threads=1, **{'eval.n_goals': 10})   # harness: still the same
    def compare(distance, steps=10000):
        return comparison({'eval/hand_distance_median': distance}, cfg, steps, checkout)
    lines = compare(0.009)
    assert lines[0].startswith('benchmark table, same config, 10,000 steps, 3 seeds '
                               '(bench/results/learn/reach/rig.json)')
    assert 'final hand distance 0.008 m (median over seeds), per seed 0.008 / 0.010 / 0.006' in lines[0]
    assert 'rerun: python -m bench.bench_learn --task reach --seeds 0 1 2 --steps 10000' in lines[0]
    assert lines[1] == 'this run (seed 4): final hand distance 0.009 m, within the range of its seeds'
    assert compare(0.05)[1].endswith('worse than every seed there')
    assert compare(0.001)[1].endswith('better than every seed there')
    five = compare(0.02, steps=5000)
    assert '5,000 steps, 2 seeds' in five[0] and 'per seed 0.020 / 0.030' in five[0]


def test_another_method_or_budget_is_not_compared(checkout):
    """A run that changed a setting the result did not (here the batch size), or a result that changed
    one the run did not, is another method; so is another step budget, which the line names instead."""
    write_learn(checkout, 'rig', reach_result())
    write_learn(checkout, 'smoke', reach_result(per_seed=(0.5,), smoke=True))
    batch = load_config('reach', None, **{'rl.batch_size': 256})
    assert matching(batch, 10000, checkout) == ([], [])
    assert comparison({}, batch, 10000, checkout)[0].startswith('benchmark table: no result for this config at 10,000')
    write_learn(checkout, 'batch', reach_result(overrides={'rl.batch_size': 256}))
    default = load_config('reach', None)
    assert [r['_file'] for r in matching(default, 10000, checkout)[0]] == ['bench/results/learn/reach/rig.json']
    assert [r['_file'] for r in matching(batch, 10000, checkout)[0]] == ['bench/results/learn/reach/batch.json']
    line = comparison({}, default, 20000, checkout)[0]
    assert line.startswith('benchmark table: no result for this config at 20,000 steps '
                           '(it has this config at 10,000 steps)')
    ur5e = load_config('reach', None, arm='ur5e')
    assert comparison({}, ur5e, 10000, checkout)[0].startswith('benchmark table: no result')


def test_a_result_of_another_schema_is_not_read(checkout):
    """`rig train` reads the layout bench_learn writes now (bench.layout.SCHEMAS) and no other."""
    assert LEARN_SCHEMA == SCHEMAS['learn']
    write_learn(checkout, 'rig', reach_result())
    default = load_config('reach', None)
    assert len(matching(default, 10000, checkout)[0]) == 1
    write_learn(checkout, 'rig', reach_result(schema=LEARN_SCHEMA + 1))
    assert matching(default, 10000, checkout) == ([], [])


def test_a_result_from_before_a_default_changed_keeps_its_recorded_method(checkout):
    """A result made when the config file said goal_prior standard (recorded as such) is the N(0, I)
    method, not today's default, although its config path and overrides are the default's."""
    write_learn(checkout, 'old', reach_result(goal_prior='standard', goal_bank={'goal_bank_skew': 0.0}))
    paper = load_config('reach', None, **{'vae.goal_prior': 'standard', 'vae.goal_bank_skew': 0.0})
    assert [r['_file'] for r in matching(paper, 10000, checkout)[0]] == ['bench/results/learn/reach/old.json']
    assert matching(load_config('reach', None), 10000, checkout)[0] == []


def test_no_table_or_no_results_for_the_task(checkout, tmp_path):
    cfg = load_config('toy_reach', None)
    assert comparison({}, cfg, 100, checkout) == ["benchmark table: no results for task 'toy_reach'"]
    (checkout / 'reach').mkdir()
    (checkout / 'reach' / 'broken.json').write_text('{"schema": ')   # not a result: skipped, not fatal
    assert matching(load_config('reach', None), 10000, checkout) == ([], [])


def test_the_shipped_table_has_the_reach_default():
    """This checkout's own results: the reach default at 10k steps is in the table (what `rig train`
    with no options compares itself with)."""
    same, _ = matching(load_config('reach', None), 10000)
    assert same and all(json.loads((REPO / r['_file']).read_text())['steps'] == 10000 for r in same)
