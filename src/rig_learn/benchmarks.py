"""A run next to the benchmark table: the learner benchmark results made with the same method.

`bench.bench_learn` writes one JSON per benchmark (bench/results/learn/<task>/<variant>.json, in a
source checkout); each records its method in full (`config`, `mode`, `goal_prior`, `goal_bank`,
`relabel`, `overrides`, `arm`, `steps`). `same_method` says whether a result was made with a given
learner config: the table marks the task's default with it (bench.learn_table), and `rig train` ends
by printing its run's figure next to the matching results (`comparison`), so that a user sees at
once whether a run is typical.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np

from rig_base.config import ConfigError
from rig_base.resources import source_root

#: The layout version of a learner result JSON, bench.layout.SCHEMAS['learn'] (a test keeps the two
#: equal; bench.layout does not import this, as rig_learn loads torch); another version is not read.
LEARN_SCHEMA = 1

GOAL_BANK_KEYS = ('goal_bank_skew',)   # the VAEConfig fields that set how the goal bank is drawn
#: Options that change no method (harness, host, logging); a result records some of them as overrides.
HARNESS_KEYS = {'arm', 'device', 'num_threads', 'eval.n_goals', 'seed'}
#: Top-level LearnConfig fields, and sections, that two runs of one method may differ in.
HARNESS_FIELDS = {'seed', 'device', 'num_threads', 'eval'}
HEADLINE = {'reach': 'hand_distance', 'push': 'puck_distance', 'door': 'door_angle_error'}
UNITS = {'hand_distance': 'm', 'puck_distance': 'm', 'door_angle_error': 'rad'}


def results_dir() -> Path | None:
    """bench/results/learn of this source checkout (None in an installed package, which has none)."""
    path = source_root() / 'bench' / 'results' / 'learn'
    return path if path.is_dir() else None


def goal_bank_neutral() -> dict:
    """{VAEConfig field: the value at which it changes nothing}: the goal-bank options' defaults, and
    the retired options' off values (a result records a retired option only where its run used it)."""
    from rig_learn.config import VAEConfig  # noqa: PLC0415 - deferred: rig_learn.config imports torch
    defaults = VAEConfig()
    return {**{k: getattr(defaults, k) for k in GOAL_BANK_KEYS},
            **{k: off for k, (off, _) in VAEConfig.RETIRED.items()}}


def config_value(cfg, dotted: str):
    """cfg's value at 'a.b.c', tuples as lists (as a JSON result file has them); None if absent."""
    node = cfg
    for part in dotted.split('.'):
        node = getattr(node, part, None)
    return json.loads(json.dumps(node)) if isinstance(node, (tuple, list)) else node


def recorded_method_matches(result: dict, cfg) -> bool:
    """Does what the result recorded of its method (goal prior, goal bank, relabelling fractions,
    overrides) agree with cfg? (What a config file said when the run was made is not recorded
    otherwise: a result from before a default changed is judged by these.)"""
    if result['mode'] != cfg.mode:
        return False
    if result['mode'] == 'rig':
        if result['goal_prior'] != cfg.vae.goal_prior:
            return False
        neutral = goal_bank_neutral()   # (a retired option is never in cfg: its off value is what cfg does)
        if any(used != getattr(cfg.vae, k, neutral[k]) for k, used in (result['goal_bank'] or {}).items()):
            return False
    fr = result['relabel']
    if any(abs(fr[k] - getattr(cfg.relabel, k)) > 1e-9 for k in ('own', 'prior', 'future')):
        return False
    return all(config_value(cfg, k) == v for k, v in result['overrides'].items() if k not in HARNESS_KEYS)


def _method_fields(cfg) -> dict:
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in HARNESS_FIELDS}


@functools.lru_cache(maxsize=64)
def _recorded_method(task: str, path: str, mtime_ns: int, overrides: str) -> dict | None:
    """The method fields of `task`'s config at `path` (as it was at mtime_ns) with the JSON `overrides`
    applied, or None where they do not load; cached, as every result of a config loads the same."""
    from rig_learn.runs import load_config  # noqa: PLC0415 - deferred: torch
    try:
        return _method_fields(load_config(task, Path(path), **json.loads(overrides)))
    except (ConfigError, KeyError, TypeError, ValueError):
        return None


def same_method(result: dict, cfg, config_root: Path | None = None) -> bool:
    """Was this benchmark result made with cfg's method: the same task, arm and mode, and every config
    value, its config file (from `config_root`, the checkout its `config` path is relative to) loaded
    now with its overrides and what it recorded of its method, against cfg? Seed, device, threads and
    evaluation settings may differ."""
    if result.get('smoke') or result['task'] != cfg.task or result.get('arm', cfg.arm) != cfg.arm:
        return False
    if not recorded_method_matches(result, cfg):
        return False   # the early out: no config to load
    path = (config_root or source_root()) / result['config']
    if not path.is_file():
        return False
    overrides = {k: v for k, v in result['overrides'].items() if k.split('.')[0] not in HARNESS_FIELDS}
    # what the result recorded wins over what its config file says now (a default may have changed)
    overrides.update({f'relabel.{k}': result['relabel'][k] for k in ('own', 'prior', 'future')})
    if result['mode'] == 'rig':
        overrides['vae.goal_prior'] = result['goal_prior']
        overrides.update({f'vae.{k}': v for k, v in (result['goal_bank'] or {}).items() if k in GOAL_BANK_KEYS})
    theirs = _recorded_method(result['task'], str(path), path.stat().st_mtime_ns,
                              json.dumps(overrides, sort_keys=True))
    return theirs is not None and theirs == _method_fields(cfg)


def matching(cfg, steps: int, results: Path | None = None) -> tuple[list[dict], list[int]]:
    """(results of cfg's method at `steps` env steps, most seeds first; the other step budgets there
    are results of it for), from results/<task>/*.json."""
    results = results or results_dir()
    if results is None:
        return [], []
    same, budgets = [], set()
    for path in sorted((results / cfg.task).glob('*.json')):   # (none where the task has no folder)
        try:
            result = json.loads(path.read_text())
            if (not isinstance(result, dict) or result.get('schema') != LEARN_SCHEMA
                    or not same_method(result, cfg, config_root=results.parents[2])):
                continue
        except (OSError, ValueError, KeyError, TypeError):
            continue   # not a learner result of this schema: not ours to judge
        result['_file'] = str(path.relative_to(results.parents[2]))
        (same.append(result) if result['steps'] == steps else budgets.add(result['steps']))
    same.sort(key=lambda r: (len(r['runs']), r.get('date', '')), reverse=True)
    return same, sorted(budgets)


def comparison(summary: dict, cfg, steps: int, results: Path | None = None) -> list[str]:
    """The lines `rig train` ends with: this run's headline figure next to the benchmark table's for
    the same method and step budget, and where it lies among the benchmark's seeds."""
    metric = HEADLINE.get(cfg.task, 'hand_distance')
    unit, name = UNITS[metric], metric.replace('_', ' ')
    mine = summary.get(f'eval/{metric}_median')
    results = results or results_dir()
    if results is None:
        return ['benchmark table: not in this install (a source checkout has it in bench/results/learn)']
    if not (results / cfg.task).is_dir():
        return [f'benchmark table: no results for task {cfg.task!r}']
    same, budgets = matching(cfg, steps, results)
    if not same:
        other = f' (it has this config at {", ".join(f"{b:,}" for b in budgets)} steps)' if budgets else ''
        return [f'benchmark table: no result for this config at {steps:,} steps{other}; `python -m '
                f'bench.bench_learn --task {cfg.task} --steps {steps} --seeds 0 1 2` with the same --config and '
                '--set makes one']
    best = same[0]
    per_seed = [r[f'{metric}_median'] for r in best['runs'] if r.get(f'{metric}_median') is not None]
    if not per_seed:
        return [f'benchmark table: {best["_file"]} has no {metric} figure']
    lines = [f'benchmark table, same config, {steps:,} steps, {len(per_seed)} seeds ({best["_file"]}): final '
             f'{name} {np.median(per_seed):.3f} {unit} (median over seeds), per seed '
             + ' / '.join(f'{v:.3f}' for v in per_seed) + f'; rerun: {best["command"]}']
    if mine is not None and np.isfinite(mine):
        lo, hi = min(per_seed), max(per_seed)
        where = ('within the range of its seeds' if lo <= mine <= hi else
                 'better than every seed there' if mine < lo else 'worse than every seed there')
        lines.append(f'this run (seed {cfg.seed}): final {name} {mine:.3f} {unit}, {where}')
    return lines
