"""Learner benchmark: train + evaluate RIG on a task over seeds; median final task distance.

    python -m bench.bench_learn --task reach --seeds 0 1 2 --steps 10000
    python -m bench.bench_learn --task reach --seeds 0 --steps 300 --smoke     # quick smoke run

Writes bench/results/learn_<task>.json, learn_<task>.md (a markdown table) and
learn_<task>_curves.png; per-seed run directories under bench/results/runs/. Reports the median
final distance over 50 image goals (env.sample_goal()) of the task's headline metric (reach: hand,
push: puck), wall time, env steps/s and gradient steps/s. Targets on a 2-core CPU (TARGETS): reach
<= 0.03 m after 10k env steps within 15 min; push <= 0.06 m after 200k env steps within 2 h.
`python -m bench.learn_table` collects every result into one table.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / 'results'
# Per task: the headline metric (median over seeds of the median final distance over the eval goals)
# and its target after `steps` env steps within `wall_s` seconds on this 2-core CPU.
TARGETS = {'reach': {'metric': 'hand_distance', 'max_m': 0.03, 'steps': 10000, 'wall_s': 900},
           'push': {'metric': 'puck_distance', 'max_m': 0.06, 'steps': 200000, 'wall_s': 7200}}
HEADLINE = {'reach': 'hand_distance', 'push': 'puck_distance', 'door': 'door_angle_error'}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--task', default='reach')
    p.add_argument('--arm', default='sawyer')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--steps', type=int, default=10000)
    p.add_argument('--config', default=None, help='learner YAML (default config/learn_<task>.yaml)')
    p.add_argument('--mode', default=None, choices=['rig', 'oracle', 'her_pixels'])
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=1, help='torch threads (see rig train --help)')
    p.add_argument('--eval-goals', type=int, default=50)
    p.add_argument('--smoke', action='store_true',
                   help='tiny VAE pretraining/refits and few eval goals: checks the pipeline, not the numbers')
    p.add_argument('--set', action='append', default=[], metavar='KEY=VALUE')
    p.add_argument('--tag', default='', help='suffix of the result files (e.g. _smoke)')
    p.add_argument('--progress', action='store_true')
    p.add_argument('--max-minutes', type=float, default=None,
                   help='wall-time cap per seed: stop training there and evaluate (a same-time-budget '
                        'comparison for methods too slow for --steps in the target time)')
    args = p.parse_args(argv)

    import torch

    from rig_learn.cli_train import parse_sets
    from rig_learn.plots import learning_curve
    from rig_learn.runs import config_path_for, load_config, train_run, write_json

    torch.set_num_threads(args.threads)
    config = args.config
    if config is None and args.mode and args.mode != 'rig':
        config = config_path_for(args.task, '_' + args.mode)     # config/learn_<task>_<mode>.yaml
    overrides = {'arm': args.arm, 'device': args.device, 'num_threads': args.threads,
                 'eval.n_goals': args.eval_goals}
    if args.smoke:
        overrides.update({'vae.pretrain_images': 500, 'vae.pretrain_steps': 50, 'vae.refit_steps': 10,
                          'rl.learning_starts': min(200, args.steps // 2), 'eval.every': max(args.steps // 2, 1),
                          'eval.n_goals_during_training': 3, 'eval.n_goals': min(args.eval_goals, 5)})
    overrides.update(parse_sets(args.set))
    tag = args.tag or ('_smoke' if args.smoke else '')
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs, curves = [], {}
    stem = (Path(config).stem if config else f'learn_{args.task}') + tag
    for seed in args.seeds:
        cfg = load_config(args.task, config, seed=seed, **overrides)
        out = RESULTS / 'runs' / f'{stem}_s{seed}'
        t0 = time.perf_counter()
        s = train_run(cfg, args.steps, out, progress=args.progress,
                      max_wall_s=None if args.max_minutes is None else 60.0 * args.max_minutes)
        wall = time.perf_counter() - t0
        from rig_learn.runs import read_metrics
        curves[f'seed {seed}'] = read_metrics(out / 'metrics.jsonl')
        if (out / 'goal_map.png').exists():   # where the policy fails, next to the curves (run dirs are not kept)
            shutil.copyfile(out / 'goal_map.png', RESULTS / f'{stem}_goal_map_s{seed}.png')
        runs.append({'seed': seed, 'run_dir': str(out.relative_to(RESULTS.parent.parent)) if out.is_relative_to(RESULTS.parent.parent) else str(out),
                     'wall_s': wall, 'pretrain_s': s.get('pretrain_s'), 'eval_s': s.get('eval_s'),
                     'env_steps': s['env_steps'], 'grad_steps': s['grad_steps'],
                     'stopped_by_wall_cap': bool(s.get('stopped_by_wall_cap')),
                     'env_steps_per_s': s['env_steps_per_s'], 'grad_steps_per_s': s['grad_steps_per_s'],
                     'hand_distance_median': s.get('eval/hand_distance_median'),
                     'puck_distance_median': s.get('eval/puck_distance_median'),
                     'door_angle_error_median': s.get('eval/door_angle_error_median'),
                     'success': s.get('eval/success'), 'n_goals': s.get('eval/n_goals'),
                     'per_goal_hand_distance': np.asarray(s['per_goal']['hand_distance']).tolist()})
        print(f"seed {seed}: hand {runs[-1]['hand_distance_median']:.4f} m, success {runs[-1]['success']:.2f}, "
              f"wall {wall:.0f} s, {runs[-1]['env_steps_per_s']:.1f} env steps/s, "
              f"{runs[-1]['grad_steps_per_s']:.1f} grad steps/s", flush=True)
    hd = [r['hand_distance_median'] for r in runs if r['hand_distance_median'] is not None]
    headline = HEADLINE.get(args.task, 'hand_distance')
    hv = [r[f'{headline}_median'] for r in runs if r.get(f'{headline}_median') is not None]
    result = {
        'task': args.task, 'arm': args.arm, 'mode': cfg.mode, 'steps': args.steps, 'seeds': args.seeds,
        'smoke': args.smoke, 'max_minutes': args.max_minutes, 'threads': args.threads, 'device': args.device, 'config': str(config or f'config/learn_{args.task}.yaml'),
        'overrides': {k: v for k, v in overrides.items() if v is not None},
        'median_final_hand_distance_m': float(np.median(hd)) if hd else None,
        'headline_metric': headline,
        f'median_final_{headline}': float(np.median(hv)) if hv else None,
        'median_wall_s': float(np.median([r['wall_s'] for r in runs])),
        'median_env_steps_per_s': float(np.median([r['env_steps_per_s'] for r in runs])),
        'median_grad_steps_per_s': float(np.median([r['grad_steps_per_s'] for r in runs])),
        'goal_prior': cfg.vae.goal_prior if cfg.uses_vae else None,
        'relabel': {'own': cfg.relabel.own, 'prior': cfg.relabel.prior, 'future': cfg.relabel.future},
        'command': 'python -m bench.bench_learn ' + ' '.join(argv if argv is not None else sys.argv[1:]),
        'target': TARGETS.get(args.task), 'runs': runs,
        'machine': {'python': sys.version.split()[0], 'platform': platform.platform(), 'torch': torch.__version__,
                    'cpus': __import__('os').cpu_count()},
        'date': time.strftime('%Y-%m-%d %H:%M:%S'),
    }
    tgt = TARGETS.get(args.task)
    if tgt and hv:
        steps_done = min(r['env_steps'] for r in runs)
        result['meets_target'] = bool(float(np.median(hv)) <= tgt['max_m']
                                      and steps_done >= tgt['steps'] and result['median_wall_s'] <= tgt['wall_s'])
    write_json(RESULTS / f'{stem}.json', result)
    lines = [f'# Learner benchmark: {args.task} ({args.arm}, {cfg.mode}), {args.steps} env steps'
             + (f', capped at {args.max_minutes:g} min per seed' if args.max_minutes else '')
             + (' (SMOKE RUN: numbers not meaningful)' if args.smoke else ''), '',
             '| seed | env steps done | final hand dist. median (m) | final puck dist. median (m) | success | wall (s) | env steps/s | grad steps/s |',
             '|---|---|---|---|---|---|---|---|']
    fmt = lambda v: '-' if v is None else f'{v:.4f}'
    for r in runs:
        lines.append(f"| {r['seed']} | {r['env_steps']} | {fmt(r['hand_distance_median'])} | {fmt(r['puck_distance_median'])} | "
                     f"{r['success']:.2f} | {r['wall_s']:.0f} | {r['env_steps_per_s']:.1f} | {r['grad_steps_per_s']:.1f} |")
    if hv:
        lines += ['', f"Median over seeds, final {headline.replace('_', ' ')}: {float(np.median(hv)):.4f}"
                  + (f" (target <= {tgt['max_m']} m in {tgt['steps']} steps, {tgt['wall_s']} s: "
                     f"{'met' if result.get('meets_target') else 'NOT met'})" if tgt else '')]
    (RESULTS / f'{stem}.md').write_text('\n'.join(lines) + '\n')
    learning_curve(curves, RESULTS / f'{stem}_curves.png', key=f'eval/{headline}_median',
                   title=f"{args.task} {cfg.mode}: eval {headline.replace('_', ' ')} (median)")
    if headline != 'hand_distance':
        learning_curve(curves, RESULTS / f'{stem}_hand_curves.png', title=f'{args.task} {cfg.mode}: eval hand distance (median)')
    print('\n'.join(lines))
    print(f'wrote {RESULTS / (stem + ".json")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
