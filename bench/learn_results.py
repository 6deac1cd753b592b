"""The learner benchmark's results: where they go, their across-seed figures and how they are written.

bench_learn writes them, merge_seeds joins seeds run apart, per_goal adds the push breakdown to them,
learn_table and results_doc read them; this module is what they share (so none imports another).

A result is bench/results/learn/<task>/<variant>.json (SCHEMAS['learn']). Its method is written out
in full, whatever the config file or the command set: `config`, `mode`, `goal_prior` (None without a
VAE), `goal_bank` (how imagined goals were drawn, GOAL_BANK_KEYS, plus a retired VAEConfig option the
run used; None without a VAE), `relabel` (own / prior / future fractions) and `overrides` (the
command's --set and harness options); then `command`, `target`, `machine` (None where the host was not
recorded), `date`, the per-seed `runs` and the across-seed medians of `aggregate`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.layout import RESULTS
from rig_learn.benchmarks import GOAL_BANK_KEYS, HEADLINE  # noqa: F401 - re-exported: bench_learn, learn_table

# Per task: the headline metric (median over seeds of the median final distance over the eval goals)
# and its target after `steps` env steps within `wall_s` seconds on this 2-core CPU.
# `each_seed`: a further target that every seed must meet at fewer steps (issue 21: reach at 5k).
TARGETS = {'reach': {'metric': 'hand_distance', 'max_m': 0.03, 'steps': 10000, 'wall_s': 900,
                     'each_seed': {'max_m': 0.03, 'steps': 5000}},
           'push': {'metric': 'puck_distance', 'max_m': 0.06, 'steps': 200000, 'wall_s': 7200}}

# The host's speed reference: one linear layer of HER from pixels' size (batch 128, 864 inputs, 400
# units) on one thread, timed by bench_learn.machine_info; its shape is named once for the timing and
# the texts.
REFERENCE_LAYER = (128, 864, 400)
REFERENCE_LAYER_TEXT = 'x'.join(map(str, REFERENCE_LAYER)) + ' linear layer on one thread'

# Push goals grouped by the direction they ask the puck to move (bench.per_goal).
GROUPS = ('towards the robot', 'sideways', 'away from the robot')


def variant_name(task: str, config: str | None, tag: str = '') -> str:
    """A result's file name within learn/<task>/: its tag, after the config's own name when the config
    is not the task's default (learn_push_oracle.yaml with --tag _x: 'oracle_x'). A tag that already
    starts with the config's name stands alone ('oracle', not 'oracle_oracle'); the default config
    without a tag is 'rig'."""
    stem = Path(config).stem if config else f'learn_{task}'
    own = stem[len(f'learn_{task}'):].lstrip('_') if stem.startswith(f'learn_{task}') else stem
    tag = tag.lstrip('_')
    if own and tag.startswith(own):
        return tag
    return '_'.join(part for part in (own, tag) if part) or 'rig'


def result_path(task: str, variant: str, results: Path = RESULTS) -> Path:
    """Where a learner result goes under a results tree (bench/results by default)."""
    return Path(results) / 'learn' / task / f'{variant}.json'


def aggregate(result: dict) -> dict:
    """Fill a result's across-seed fields (medians, throughput, target verdict) from its per-seed runs."""
    runs, task = result['runs'], result['task']
    headline = HEADLINE.get(task, 'hand_distance')
    hd = [r['hand_distance_median'] for r in runs if r.get('hand_distance_median') is not None]
    hv = [r[f'{headline}_median'] for r in runs if r.get(f'{headline}_median') is not None]
    result.update({
        'median_final_hand_distance_m': float(np.median(hd)) if hd else None,
        'headline_metric': headline,
        f'median_final_{headline}': float(np.median(hv)) if hv else None,
        'median_wall_s': float(np.median([r['wall_s'] for r in runs])),
        'median_env_steps_per_s': float(np.median([r['env_steps_per_s'] for r in runs])),
        'median_grad_steps_per_s': float(np.median([r['grad_steps_per_s'] for r in runs])),
    })
    tgt = TARGETS.get(task)
    result.pop('meets_target', None)
    if tgt and hv:
        steps_done = min(r['env_steps'] for r in runs)
        result['meets_target'] = bool(float(np.median(hv)) <= tgt['max_m']
                                      and steps_done >= tgt['steps'] and result['median_wall_s'] <= tgt['wall_s'])
    return result


def direction_markdown(rows: list[dict]) -> str:
    """A table of per_goal breakdowns, one row per run: goals within the success distance and the
    median final puck distance, overall and per direction group."""
    ok_m = rows[0]['success_distance_m']
    head = ['run', 'median puck (m)', f'within {ok_m} m']
    head += [f'{name}: within / goals (median m)' for name in GROUPS]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in rows:
        cells = [Path(r['run_dir']).name, f"{r['median_puck_distance_m']:.3f}",
                 f"{r['within']} / {r['n_goals']} (median needs >= {r['within_needed_for_median']})"]
        for name in GROUPS:
            g = r['groups'][name]
            med = '-' if g['median_puck_distance_m'] is None else f"{g['median_puck_distance_m']:.3f}"
            cells.append(f"{g['within']} / {g['n_goals']} ({med})")
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def write_result(result: dict, curves: dict, path: Path) -> None:
    """The result JSON at `path`, its per-seed table beside it (.md) and the learning-curve PNGs
    (_curves.png, and _hand_curves.png where the headline is not the hand; curves: label -> metrics rows)."""
    # deferred: rig_learn imports torch and matplotlib (the CLIs that import this answer --help at once)
    from rig_learn.plots import learning_curve  # noqa: PLC0415
    from rig_learn.runs import write_json  # noqa: PLC0415

    path = Path(path)
    task, runs, mode, steps = result['task'], result['runs'], result['mode'], result['steps']
    headline = result['headline_metric']
    median = result.get(f'median_final_{headline}')   # (aggregate's)
    tgt, max_minutes = result.get('target'), result.get('max_minutes')
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, result)
    lines = [f"# Learner benchmark: {task} ({result['arm']}, {mode}), {steps} env steps"
             + (f', capped at {max_minutes:g} min per seed' if max_minutes else '')
             + (' (SMOKE RUN: numbers not meaningful)' if result.get('smoke') else ''), '',
             '| seed | env steps done | final hand dist. median (m) | final puck dist. median (m) | success | wall (s) '
             '| env steps/s | grad steps/s |',
             '|---|---|---|---|---|---|---|---|']
    fmt = lambda v: '-' if v is None else f'{v:.4f}'
    for r in runs:
        lines.append(f"| {r['seed']} | {r['env_steps']} | {fmt(r['hand_distance_median'])} | "
                     f"{fmt(r['puck_distance_median'])} | {r['success']:.2f} | {r['wall_s']:.0f} | "
                     f"{r['env_steps_per_s']:.1f} | {r['grad_steps_per_s']:.1f} |")
    if median is not None:
        done = min(r['env_steps'] for r in runs)
        verdict = ('met' if result.get('meets_target') else 'NOT met') if done >= (tgt or {}).get('steps', 0) \
            else f'not judged at {done} steps'
        lines += ['', f"Median over seeds, final {headline.replace('_', ' ')}: {median:.4f}"
                  + (f" (target <= {tgt['max_m']} m in {tgt['steps']} steps, {tgt['wall_s']} s: {verdict})"
                     if tgt else '')]
    directions = [r for r in runs if r.get('per_goal_direction')]
    if directions:
        ok_m = directions[0]['per_goal_direction']['success_distance_m']
        lines += ['', 'Final puck distance per goal, by the direction the goal moves the puck '
                  f'(`python -m bench.per_goal`; '
                  f'goals within {ok_m} m / goals, median in brackets):', '',
                  direction_markdown([{**r['per_goal_direction'], 'run_dir': f"seed {r['seed']}"}
                                      for r in directions])]
    if result.get('jobs', 1) > 1:
        lines += ['', f"Seeds ran {result['jobs']} at a time, one process each (`--jobs`): wall times include "
                  'sharing the machine.']
    host = result.get('machine') or {}
    if host.get('reference_linear_ms'):
        lines += ['', f"Machine: {host.get('cpu_model') or 'unknown CPU'} "
                      f"({', '.join(host.get('simd', [])) or 'no SIMD flags read'}), {host.get('cpus')} cores; "
                      f"speed reference {host['reference_linear_ms']:.2f} ms per {REFERENCE_LAYER_TEXT} "
                      f"(wall times compare only between machines of the same reference)."]
    if result.get('merged_from'):
        lines += ['', 'Seeds run as separate processes (one per core), merged with `python -m bench.merge_seeds`:']
        lines += [f"- `{m['command']}` ({m['date']})" for m in result['merged_from']]
    path.with_suffix('.md').write_text('\n'.join(lines) + '\n')
    if curves:
        learning_curve(curves, path.with_name(f'{path.stem}_curves.png'), key=f'eval/{headline}_median',
                       title=f"{task} {mode}: eval {headline.replace('_', ' ')} (median)")
        if headline != 'hand_distance':
            learning_curve(curves, path.with_name(f'{path.stem}_hand_curves.png'),
                           title=f'{task} {mode}: eval hand distance (median)')
    print('\n'.join(lines))
    print(f'wrote {path}')
