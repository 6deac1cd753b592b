"""One table of every learner benchmark result: what each RIG ingredient buys, per task.

    python -m bench.learn_table            # reads bench/results/learn/<task>/*.json, writes learn/table.md

Each `bench.bench_learn` run writes one JSON; this collects them (smoke runs left out) into
bench/results/learn/table.md, one row per task and method, with the command that reproduces it. A
result's method is what it recorded (config, mode, goal prior, goal bank, relabelling, overrides:
bench.learn_results); a result of another schema is refused, not guessed at.
Where several results exist for one task, method and step budget, the one with the most seeds (then
the latest) is shown; rows are ordered by step budget, then method. Each task's table ends with a
"do nothing" row, the final distances of a policy that never moves, on the same evaluation goals:
the scale against which a result means anything (on push, a puck left at its start is already
within some goals' success radius).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from bench.layout import LEARN, read_result
from bench.learn_results import GROUPS, HEADLINE, REFERENCE_LAYER_TEXT, TARGETS
from bench.per_goal import direction_summary
from rig_base.resources import learner_config
from rig_learn.benchmarks import HARNESS_KEYS, goal_bank_neutral, recorded_method_matches

METHODS = [  # (config-stem suffix, mode) -> name, in table order
    ('', 'rig', 'RIG'),
    ('_no_prior', 'rig', 'RIG without VAE-prior relabelling'),
    ('_oracle', 'oracle', 'oracle: state observations, true-distance reward, HER'),
    ('_her_pixels', 'her_pixels', "HER from pixels, pixel-distance reward, HER's action penalty"),
]


PRIOR_NAMES = {'standard': ', goal prior N(0, I)', 'fitted': ', goal prior fitted to the latents',
               'data': ', goal prior: latents of seen images'}   # vae.goal_prior -> name suffix (RIG modes)


def goal_prior_of(result: dict) -> str | None:
    """Where imagined goals came from (vae.goal_prior); None for the modes without a VAE."""
    return result['goal_prior'] if result['mode'] == 'rig' else None


def relabel_override(result: dict) -> str:
    """', relabel own/prior/future 10/50/40 %' when the run's command changed the config's fractions."""
    if not any(k.startswith('relabel.') for k in result['overrides']):
        return ''
    fr = result['relabel']
    prior = 'env goals' if result['mode'] != 'rig' else 'prior'
    return f", relabel own/{prior}/future {' / '.join(f'{100 * fr[k]:.0f}' for k in ('own', 'prior', 'future'))} %"


def default_config(task: str):
    """The task's current default learner config (config/learn_<task>.yaml), or None."""
    from rig_learn.runs import load_config  # noqa: PLC0415 - deferred: rig_learn imports torch
    path = learner_config(task)
    return load_config(task, path) if path is not None else None


def is_default(result: dict, cfg) -> bool:
    """Was this RIG run made with what config/learn_<task>.yaml says now? (Its target verdict is the
    one that counts: a variant's verdict is about the variant.) Results from before a default
    changed are judged by what they recorded: goal prior, goal bank, relabelling fractions, overrides
    (rig_learn.benchmarks.recorded_method_matches)."""
    if cfg is None or result['mode'] != 'rig':
        return False
    if Path(result['config']).stem != f"learn_{result['task']}":
        return False
    return recorded_method_matches(result, cfg)


def method_of(result: dict) -> tuple[int, str]:
    """(sort key, name) of a result's method: the config's method, then whatever the run changed."""
    stem = Path(result['config']).stem
    suffix = stem[len(f"learn_{result['task']}"):]
    prior = goal_prior_of(result)   # None for the baselines without a VAE
    extra = ('' if prior is None else PRIOR_NAMES.get(prior, f', goal prior {prior}')) + relabel_override(result)
    over = result['overrides']
    shown = {k: v for k, v in over.items()   # any other change the command made
             if k not in HARNESS_KEYS and k != 'vae.goal_prior' and not k.startswith('relabel.')}
    # ... and how the goal bank was drawn when the config file (not the command) set it away from
    # the option's default, so that runs of one config before and after such a default changed differ
    neutral = goal_bank_neutral()
    shown.update({f'vae.{k}': v for k, v in (result['goal_bank'] or {}).items()
                  if v != neutral[k] and f'vae.{k}' not in over})
    extra += ''.join(f', {k}={v}' for k, v in sorted(shown.items()))
    prior = prior or 'standard'
    order = list(PRIOR_NAMES).index(prior) if prior in PRIOR_NAMES else len(PRIOR_NAMES)
    for i, (sfx, mode, name) in enumerate(METHODS):
        if suffix == sfx and result['mode'] == mode:
            return (len(PRIOR_NAMES) + 1) * i + order, name + extra
    return (len(PRIOR_NAMES) + 1) * len(METHODS), f"{result['mode']} ({stem}){extra}"


def do_nothing_row(task: str, n_goals: int = 50) -> dict | None:
    """Final distances if the hand stays home (and the puck at its start) on the evaluation goals.

    The goals are the ones rig_learn.evaluate draws: EvalConfig.seed's generator passed to
    sample_goal_state in turn (env.sample_goal draws nothing else from it).
    """
    # deferred: rig_learn imports torch, rig_sim mujoco
    from rig_learn.config import EvalConfig  # noqa: PLC0415
    from rig_sim.envs import ENV_CLASSES  # noqa: PLC0415
    from rig_sim.tasks import REGION_CENTRE, TASK_SPECS, sample_goal_state  # noqa: PLC0415
    if task not in ('reach', 'push'):
        return None
    rng = np.random.default_rng(EvalConfig.seed)
    goals = np.array([sample_goal_state(task, rng) for _ in range(n_goals)])
    hand = np.linalg.norm(goals[:, :3] - np.array(TASK_SPECS[task].hand_home), axis=1)
    final = hand if task == 'reach' else np.linalg.norm(goals[:, 3:5] - np.array(REGION_CENTRE), axis=1)
    success_m = ENV_CLASSES[task].success_threshold
    success = final < success_m
    median = float(np.median(final))
    directions = []
    if task == 'push':
        directions = [direction_summary(final, goals[:, 3], success_m)]
    still = 'hand stays home' + (', puck at its start' if task == 'push' else '')
    return {'task': task, 'method': f'do nothing ({still}): the scale',
            'steps': 0, 'seeds': [], 'headline': HEADLINE.get(task, 'hand_distance'), 'median': median,
            'per_seed': [median], 'hand_per_seed': [float(np.median(hand))] if task == 'push' else [],
            'success': [float(np.mean(success))], 'wall_s': [], 'env_steps_per_s': None, 'grad_steps_per_s': None,
            'target': None, 'meets_target': None, 'command': 'python -m bench.learn_table', 'file': None,
            'directions': directions}


def collect(results_dir: Path = LEARN, defaults=default_config) -> list[dict]:
    """Rows of the table, from results_dir/<task>/*.json (bench/results/learn). `defaults(task)`
    gives the config a run must match to be the task's RIG default (the one judged against the target)."""
    default_cfgs = {}
    best: dict[tuple[str, str, int], tuple[dict, Path]] = {}   # (task, method, steps) -> result
    for path in sorted(results_dir.glob('*/*.json')):
        result = read_result(path, 'learn')
        if result['smoke']:
            continue
        key = (result['task'], method_of(result)[1], result['steps'])   # budgets kept apart
        old = best.get(key)
        newer = (len(result['seeds']), result['date'])
        if old is None or newer > (len(old[0]['seeds']), old[0]['date']):
            best[key] = (result, path)
    rows = []
    for (task, _, _), (result, path) in sorted(best.items(), key=lambda kv: (kv[0][0], kv[0][2], method_of(kv[1][0]))):
        headline = HEADLINE.get(task, 'hand_distance')
        per_seed = [r.get(f'{headline}_median') for r in result['runs']]
        per_seed = [v for v in per_seed if v is not None]
        per_hand = [r.get('hand_distance_median') for r in result['runs'] if r.get('hand_distance_median') is not None]
        if task not in default_cfgs:
            default_cfgs[task] = defaults(task)
        capped = [r['env_steps'] for r in result['runs'] if r['stopped_by_wall_cap']]
        rows.append({
            'task': task, 'method': method_of(result)[1], 'steps': result['steps'], 'seeds': result['seeds'],
            'stopped_at': (min(capped), result['max_minutes']) if capped else None,
            'headline': headline, 'median': float(np.median(per_seed)) if per_seed else None,
            'per_seed': per_seed, 'hand_per_seed': per_hand if headline != 'hand_distance' else [],
            'success': [r['success'] for r in result['runs']],
            'wall_s': [r['wall_s'] for r in result['runs']],
            'speed_reference_ms': (result['machine'] or {}).get('reference_linear_ms'),
            'env_steps_per_s': result['median_env_steps_per_s'],
            'grad_steps_per_s': result['median_grad_steps_per_s'],
            'target': result['target'], 'meets_target': result.get('meets_target'),
            'default': is_default(result, default_cfgs[task]),
            'command': result['command'], 'file': str(path.relative_to(results_dir)),
            'directions': [r['per_goal_direction'] for r in result['runs'] if r.get('per_goal_direction')],
        })
    for task in sorted({r['task'] for r in rows}):
        reference = do_nothing_row(task)
        if reference is not None:
            rows.append(reference)
    return rows


def steps_cell(r: dict) -> str:
    """The steps budget, or, for a wall-time-capped run, where it got to in the time budget."""
    if r.get('stopped_at'):
        return f"{r['stopped_at'][0]} of {r['steps']} ({r['stopped_at'][1]:g}-min cap)"
    return str(r['steps'])


def render(rows: list[dict]) -> str:
    f = lambda v: f'{v:.3f}'
    lines = ['# Learner benchmarks: every method in the same harness', '',
             'Final distances are medians over the evaluation image goals (50 unless the JSON says '
             'otherwise); "per seed" lists each seed\'s median. Regenerate: `python -m bench.learn_table`.', '',
             'Wall times depend on the host, which can change between sessions. A result that recorded its host '
             f'shows the host\'s speed reference next to its wall time: milliseconds for one {REFERENCE_LAYER_TEXT} '
             '(`machine` in its JSON; larger is slower). Results without one predate that record.', '']
    for task in sorted({r['task'] for r in rows}):
        trs = [r for r in rows if r['task'] == task]
        headline = trs[0]['headline'].replace('_', ' ')
        lines += [f'## {task}', '',
                  f'| method | env steps | seeds | final {headline} (m), median over seeds | per seed | success '
                  '| wall per seed | env / grad steps/s | command |',
                  '|---|---|---|---|---|---|---|---|---|']
        for r in trs:
            per = ' / '.join(map(f, r['per_seed']))
            if r['hand_per_seed']:
                per += ' (hand ' + ' / '.join(map(f, r['hand_per_seed'])) + ')'
            succ = ' / '.join(f'{s:.2f}' for s in r['success'] if s is not None)
            wall = ' / '.join(f'{w / 60:.1f} min' for w in r['wall_s']) or '-'
            if r.get('speed_reference_ms'):
                wall += f" (host ref. {r['speed_reference_ms']:.1f} ms)"
            speed = (f"{r['env_steps_per_s']:.0f} / {r['grad_steps_per_s']:.0f}"
                     if r['env_steps_per_s'] is not None else '-')
            steps = steps_cell(r)
            method = r['method'] + (' **(default config)**' if r.get('default') else '')
            lines.append(f"| {method} | {steps} | {len(r['seeds']) or '-'} | "
                         f"{f(r['median']) if r['median'] is not None else '-'} | {per} | {succ} | {wall} | "
                         f"{speed} | `{r['command']}` |")
        tgt = TARGETS.get(task) or next((r['target'] for r in trs if r['target']), None)
        if tgt:
            judged = next((r for r in trs if r.get('default') and r['steps'] >= tgt['steps']), None)
            if judged is None:   # no result with the current defaults yet: say so rather than guess
                verdict = 'no result with the current defaults yet'
            else:   # over how many seeds: one seed's verdict is not three seeds'
                n = len(judged['seeds'])
                verdict = f"{'met' if judged['meets_target'] else 'not met'}, over {n} seed{'s' if n != 1 else ''}"
            metric = tgt['metric'].replace('_', ' ')
            lines += ['', f"Target for RIG with the default config: final {metric} "
                          f"<= {tgt['max_m']} m after {tgt['steps']} steps within "
                          f"{tgt['wall_s'] / 60:.0f} min: {verdict}."]
            each = tgt.get('each_seed')
            if each:
                early = next((r for r in trs if r.get('default') and r['steps'] == each['steps']), None)
                verdict = ('no result with the current defaults yet' if early is None else
                           f"{'met' if all(v <= each['max_m'] for v in early['per_seed']) else 'not met'} "
                           f"({' / '.join(f'{v:.3f}' for v in early['per_seed'])} m)")
                lines += ['', f"And on each seed: final {metric} <= {each['max_m']} m after {each['steps']} "
                              f"steps: {verdict}."]
        lines += where_it_fails(trs)
        lines.append('')
    return '\n'.join(lines)


def where_it_fails(rows: list[dict]) -> list[str]:
    """Push: per method, goals ending within the success distance, split by the direction the goal
    moves the puck (bench.per_goal), per seed: which kind of goal a method fails on."""
    rows = [r for r in rows if r.get('directions')]
    if not rows:
        return []
    first = rows[0]['directions'][0]
    lines = ['', f"Where it fails: goals whose final puck distance is within {first['success_distance_m']} m, "
                 f"per seed, by where the goal puts the puck (x more than {100 * first['direction_margin_m']:.0f} cm "
                 f"nearer the robot than its start, within that, or farther); `python -m bench.per_goal RUN_DIR`. "
                 f"A median within {first['success_distance_m']} m needs at least "
                 f"{first['within_needed_for_median']} of {first['n_goals']}.", '',
             '| method | env steps | all goals | ' + ' | '.join(GROUPS) + ' |', '|---|---|---|' + '---|' * len(GROUPS)]
    for r in rows:
        per = lambda get: ' / '.join(get(d) for d in r['directions'])
        cells = [r['method'] + (' **(default config)**' if r.get('default') else ''), steps_cell(r),
                 per(lambda d: f"{d['within']} of {d['n_goals']}")]
        cells += [per(lambda d, g=g: f"{d['groups'][g]['within']} of {d['groups'][g]['n_goals']}") for g in GROUPS]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--results', type=Path, default=LEARN, help=f'the learner results (default {LEARN})')
    args = p.parse_args(argv)
    rows = collect(args.results)
    text = render(rows)
    (args.results / 'table.md').write_text(text)
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
