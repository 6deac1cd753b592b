"""Where a push policy fails: final puck distance per evaluation goal, grouped by the direction the
goal asks the puck to move (towards the robot, away from it, sideways).

    python -m bench.per_goal bench/results/runs/learn_push_data_prior_s0 [RUN_DIR ...] [--json out.json]
    python -m bench.per_goal --update bench/results/learn/push/data_prior.json   # store it in a result


A median over 50 goals hides that push goals differ in kind: the hand starts on the robot's side of
the puck, so pushing it away is one straight stroke, while pulling it towards the robot means getting
round and behind it. This splits the goals by the puck goal's x offset from the puck's start and
reports, per group, how many goals end within the success distance and their median final distance.
It reads a run directory's eval.json (its final 50-goal evaluation). Runs written before eval.json
recorded goal states get them redrawn exactly as the evaluation drew them (same goal seed).
bench_learn stores this breakdown in each push run of its result JSON (run directories are not kept
in the repository); --update adds it to a result written before that, from its run directories, and
rewrites the result's markdown table.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import yaml

from bench.layout import REPO, read_result
from bench.learn_results import GROUPS, direction_markdown, write_result

# A goal asks for a pull (push) when its puck x is this far nearer to (farther from) the robot than
# the puck's start; in between it is a sideways goal. 3 cm: less than the puck's radius, more than a
# nudge.
DIRECTION_MARGIN_M = 0.03


def goal_states_of(run_dir: Path, summary: dict) -> np.ndarray:
    """The run's evaluation goal states, from eval.json or redrawn with the evaluation's goal seed
    (rig_learn.evaluate passes that generator to env.sample_goal, which draws only the goal state)."""
    states = summary.get('per_goal', {}).get('goal_state')
    if states is not None:
        return np.asarray(states, dtype=float)
    # deferred: rig_learn imports torch, rig_sim mujoco (the CLI's --help stays fast)
    from rig_learn.config import EvalConfig  # noqa: PLC0415
    from rig_sim.tasks import sample_goal_state  # noqa: PLC0415

    cfg = yaml.safe_load((run_dir / 'config.yaml').read_text())
    rng = np.random.default_rng(cfg.get('eval', {}).get('seed', EvalConfig.seed))
    return np.stack([sample_goal_state(cfg['task'], rng) for _ in summary['per_goal']['puck_distance']])


def direction_summary(puck_distance, goal_puck_x, success_m: float) -> dict:
    """Goals within `success_m`, and the median final puck distance, overall and per direction group."""
    from rig_sim.tasks import REGION_CENTRE  # noqa: PLC0415 - deferred: rig_sim imports mujoco
    puck = np.asarray(puck_distance, dtype=float)
    dx = np.asarray(goal_puck_x, dtype=float) - REGION_CENTRE[0]   # the puck starts at the region centre
    group = np.where(dx < -DIRECTION_MARGIN_M, 0, np.where(dx > DIRECTION_MARGIN_M, 2, 1))
    n = len(puck)
    out = {'success_distance_m': success_m, 'direction_margin_m': DIRECTION_MARGIN_M,
           'n_goals': int(n), 'within': int((puck <= success_m).sum()),
           'median_puck_distance_m': float(np.median(puck)),
           # the overall median cannot be within success_m with fewer goals within it than this
           'within_needed_for_median': int(n // 2 + 1) if n % 2 else int(n // 2), 'groups': {}}
    for g, name in enumerate(GROUPS):
        d = puck[group == g]
        out['groups'][name] = {'n_goals': int(len(d)), 'within': int((d <= success_m).sum()),
                               'median_puck_distance_m': float(np.median(d)) if len(d) else None}
    return out


def breakdown(run_dir: Path, summary: dict | None = None) -> dict:
    """direction_summary of a push run directory's final evaluation: `summary`, the eval.json that
    train_run returns and writes, read from the run directory when not given."""
    # deferred: rig_learn imports torch, rig_sim mujoco
    from rig_sim.envs import PushEnv  # noqa: PLC0415
    from rig_sim.tasks import TASK_SPECS  # noqa: PLC0415

    run_dir = Path(run_dir)
    summary = summary if summary is not None else json.loads((run_dir / 'eval.json').read_text())
    puck = np.asarray(summary['per_goal']['puck_distance'], dtype=float)
    if not np.isfinite(puck).any():
        raise SystemExit(f'{run_dir}: eval.json has no puck distances (not a push run)')
    states = goal_states_of(run_dir, summary)
    return direction_summary(puck, states[:, TASK_SPECS['push'].state_names.index('puck_x')], PushEnv.success_threshold)


def update_result(path: Path) -> list[dict]:
    """Store each run's breakdown in a bench_learn result JSON (from its run directories) and rewrite
    its markdown table; the learning curves are left as they are."""
    result = read_result(path, 'learn')
    rows = []
    for run in result['runs']:
        run_dir = Path(run['run_dir'])
        run_dir = run_dir if run_dir.is_absolute() else REPO / run_dir
        if not (run_dir / 'eval.json').is_file():
            raise SystemExit(f"{path}: seed {run['seed']}'s run directory {run_dir} is not here")
        final = json.loads((run_dir / 'eval.json').read_text())
        if (final.get('env_steps') != run['env_steps']
                or final.get('eval/puck_distance_median') != run['puck_distance_median']):
            raise SystemExit(f"{path}: {run_dir} is not seed {run['seed']}'s run (its eval.json differs)")
        run['per_goal_direction'] = breakdown(run_dir, final)
        rows.append({**run['per_goal_direction'], 'run_dir': f"seed {run['seed']}"})
    write_result(result, {}, path)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('run_dirs', nargs='*', type=Path)
    p.add_argument('--json', type=Path, default=None, help='also write the breakdowns here')
    p.add_argument('--update', type=Path, action='append', default=[], metavar='RESULT_JSON',
                   help='store the breakdown of each run of this bench_learn result in it (repeatable)')
    args = p.parse_args(argv)
    if not args.run_dirs and not args.update:
        p.error('give run directories or --update RESULT_JSON')
    for path in args.update:
        update_result(path)
    if not args.run_dirs:
        return 0
    for d in args.run_dirs:
        if not (d / 'eval.json').is_file():
            p.error(f'{d}: no eval.json (not a finished run directory)')
    rows = [{**breakdown(d), 'run_dir': str(d)} for d in args.run_dirs]
    print(direction_markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + '\n')
        print(f'wrote {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
