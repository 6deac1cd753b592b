"""Learner benchmark: train + evaluate RIG on a task over seeds; median final task distance.

    python -m bench.bench_learn --task reach --seeds 0 1 2 --steps 10000
    python -m bench.bench_learn --task reach --seeds 0 --steps 300 --smoke     # quick smoke run
    python -m bench.bench_learn --task push --seeds 0 1 --steps 200000 --jobs 2   # a seed per core

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
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / 'results'
REPO = Path(__file__).resolve().parents[1]
# Per task: the headline metric (median over seeds of the median final distance over the eval goals)
# and its target after `steps` env steps within `wall_s` seconds on this 2-core CPU.
TARGETS = {'reach': {'metric': 'hand_distance', 'max_m': 0.03, 'steps': 10000, 'wall_s': 900},
           'push': {'metric': 'puck_distance', 'max_m': 0.06, 'steps': 200000, 'wall_s': 7200}}
GOAL_BANK_KEYS = ('goal_bank_skew', 'goal_bank_pretrain_fraction', 'skew_vae_training')   # VAEConfig fields
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
    p.add_argument('--jobs', type=int, default=1,
                   help='run the seeds in this many processes side by side (one per core), then merge '
                        'their results into one (bench.merge_seeds); wall times then include the sharing')
    p.add_argument('--results-dir', type=Path, default=None, help=f'where results go (default {RESULTS})')
    args = p.parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    results = args.results_dir or RESULTS
    if args.jobs < 1:
        p.error('--jobs must be at least 1')
    if args.jobs > 1 and len(args.seeds) > 1:
        return run_in_parallel(args, argv, results)

    import torch

    from rig_learn.config import parse_overrides
    from rig_learn.runs import config_path_for, load_config, train_run

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
    overrides.update(parse_overrides(args.set))
    tag = args.tag or ('_smoke' if args.smoke else '')
    results.mkdir(parents=True, exist_ok=True)
    runs, curves = [], {}
    stem = (Path(config).stem if config else f'learn_{args.task}') + tag
    for seed in args.seeds:
        cfg = load_config(args.task, config, seed=seed, **overrides)
        out = results / 'runs' / f'{stem}_s{seed}'
        t0 = time.perf_counter()
        s = train_run(cfg, args.steps, out, progress=args.progress,
                      max_wall_s=None if args.max_minutes is None else 60.0 * args.max_minutes)
        wall = time.perf_counter() - t0
        from rig_learn.runs import read_metrics
        curves[f'seed {seed}'] = read_metrics(out / 'metrics.jsonl')
        if (out / 'goal_map.png').exists():   # where the policy fails, next to the curves (run dirs are not kept)
            shutil.copyfile(out / 'goal_map.png', results / f'{stem}_goal_map_s{seed}.png')
        runs.append({'seed': seed, 'run_dir': _repo_relative(out),
                     'wall_s': wall, 'pretrain_s': s.get('pretrain_s'), 'eval_s': s.get('eval_s'),
                     'env_steps': s['env_steps'], 'grad_steps': s['grad_steps'],
                     'stopped_by_wall_cap': bool(s.get('stopped_by_wall_cap')),
                     'env_steps_per_s': s['env_steps_per_s'], 'grad_steps_per_s': s['grad_steps_per_s'],
                     'hand_distance_median': s.get('eval/hand_distance_median'),
                     'puck_distance_median': s.get('eval/puck_distance_median'),
                     'door_angle_error_median': s.get('eval/door_angle_error_median'),
                     'success': s.get('eval/success'), 'n_goals': s.get('eval/n_goals'),
                     'per_goal_hand_distance': np.asarray(s['per_goal']['hand_distance']).tolist()})
        if args.task == 'push':   # where it fails: goals grouped by push direction (bench.per_goal)
            from bench.per_goal import breakdown
            runs[-1]['per_goal_direction'] = breakdown(out, s)
        print(f"seed {seed}: hand {runs[-1]['hand_distance_median']:.4f} m, success {runs[-1]['success']:.2f}, "
              f"wall {wall:.0f} s, {runs[-1]['env_steps_per_s']:.1f} env steps/s, "
              f"{runs[-1]['grad_steps_per_s']:.1f} grad steps/s", flush=True)
    result = {
        'task': args.task, 'arm': args.arm, 'mode': cfg.mode, 'steps': args.steps, 'seeds': args.seeds,
        'smoke': args.smoke, 'max_minutes': args.max_minutes, 'threads': args.threads, 'device': args.device,
        'config': str(config or f'config/learn_{args.task}.yaml'),
        'overrides': {k: v for k, v in overrides.items() if v is not None},
        'goal_prior': cfg.vae.goal_prior if cfg.uses_vae else None,
        # how imagined goals were drawn, whether set by the config or the command (learn_table's default check)
        'goal_bank': {k: getattr(cfg.vae, k) for k in GOAL_BANK_KEYS} if cfg.uses_vae else None,
        'relabel': {'own': cfg.relabel.own, 'prior': cfg.relabel.prior, 'future': cfg.relabel.future},
        'command': 'python -m bench.bench_learn ' + ' '.join(argv),
        'target': TARGETS.get(args.task), 'runs': runs,
        'machine': machine_info(),
        'date': time.strftime('%Y-%m-%d %H:%M:%S'),
    }
    write_result(aggregate(result), curves, stem, results)
    return 0


# The host's speed reference: one linear layer of HER from pixels' size (batch 128, 864 inputs, 400
# units) on one thread, timed by machine_info; its shape is named once for the timing and the texts.
REFERENCE_LAYER = (128, 864, 400)
REFERENCE_LAYER_TEXT = 'x'.join(map(str, REFERENCE_LAYER)) + ' linear layer on one thread'


def machine_info() -> dict:
    """What wall times depend on: the CPU model, its vector units and one timed matmul.

    Hosts differ between sessions (push HER from pixels ran at 15 env steps/s on one and 7 on another),
    so a result's wall time is only comparable next to the reference time of the machine that made it.
    The fastest of five timed blocks is kept, so a busy second core disturbs it little.
    """
    import torch
    cpu_model, flags = '', set()
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(':')
                if key.strip() == 'model name' and not cpu_model:
                    cpu_model = value.strip()
                elif key.strip() == 'flags' and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    batch, inputs, units = REFERENCE_LAYER
    x, layer = torch.randn(batch, inputs), torch.nn.Linear(inputs, units)
    with torch.no_grad():
        for _ in range(10):
            layer(x)
        blocks = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(20):
                layer(x)
            blocks.append((time.perf_counter() - t0) / 20 * 1e3)
        linear_ms = min(blocks)
    torch.set_num_threads(threads)
    return {'python': sys.version.split()[0], 'platform': platform.platform(), 'torch': torch.__version__,
            'cpus': os.cpu_count(), 'cpu_model': cpu_model,
            'simd': sorted(f for f in flags if f in ('avx', 'avx2', 'fma', 'avx512f', 'avx512_bf16', 'amx_tile')),
            'reference_linear_ms': round(linear_ms, 3)}


def _repo_relative(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _without(argv: list[str], options: tuple[str, ...]) -> list[str]:
    """argv less these options and their values (an option's values run to the next '--' word)."""
    kept, skipping = [], False
    for word in argv:
        if word.startswith('--'):
            skipping = word.split('=')[0] in options
        if not skipping:
            kept.append(word)
    return kept


def run_in_parallel(args, argv: list[str], results: Path) -> int:
    """Run args.seeds in args.jobs `bench_learn` processes at once (seeds dealt round-robin), each into
    its own part folder, then move their run directories and goal maps into `results` and merge their
    JSON files into the one result a single process would have written. If a process fails, the
    seeds that finished still get their run directories moved (nothing trained is lost), unmerged."""
    import subprocess
    import tempfile

    from bench.merge_seeds import merge
    from rig_learn.runs import read_metrics
    jobs = min(args.jobs, len(args.seeds))
    groups = [args.seeds[i::jobs] for i in range(jobs)]
    base = _without(argv, ('--jobs', '--seeds', '--results-dir'))
    results = Path(results).resolve()   # the processes run from the repository root
    results.mkdir(parents=True, exist_ok=True)
    part_results, curves = [], {}
    with tempfile.TemporaryDirectory(prefix='.parts-', dir=results) as parts_dir:
        parts = [Path(parts_dir) / f'part{i}' for i in range(jobs)]
        procs = [subprocess.Popen([sys.executable, '-m', 'bench.bench_learn', *base, '--seeds', *map(str, group),
                                   '--results-dir', str(part)], cwd=REPO)
                 for group, part in zip(groups, parts)]
        codes = [proc.wait() for proc in procs]
        for part in parts:
            for run_dir in sorted((part / 'runs').glob('*')):   # every finished (or failed) seed's run
                dst = results / 'runs' / run_dir.name
                if dst.exists():
                    shutil.rmtree(dst)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(run_dir), dst)
            for goal_map in part.glob('*_goal_map_s*.png'):
                shutil.move(str(goal_map), results / goal_map.name)
            for result_file in part.glob('*.json'):
                result = json.loads(result_file.read_text())
                stem = result_file.stem
                for run in result['runs']:
                    run['run_dir'] = _repo_relative(results / 'runs' / Path(run['run_dir']).name)
                    curves[f"seed {run['seed']}"] = read_metrics(Path(REPO, run['run_dir'], 'metrics.jsonl'))
                part_results.append(result)
    if any(codes):
        print(f'bench_learn: a seed process failed (exit codes {codes}); run directories are in '
              f"{results / 'runs'}, results not merged", file=sys.stderr)
        return 1
    merged = merge(part_results) if len(part_results) > 1 else part_results[0]
    merged.pop('merged_from', None)   # the parts' command lines only differ in where they wrote
    merged['command'] = 'python -m bench.bench_learn ' + ' '.join(argv)
    merged['jobs'] = jobs
    write_result(merged, dict(sorted(curves.items())), stem, results)
    return 0


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


def write_result(result: dict, curves: dict, stem: str, results_dir: Path = RESULTS) -> None:
    """<stem>.json, <stem>.md (per-seed table) and the learning-curve PNGs (curves: label -> metrics rows)."""
    from rig_learn.plots import learning_curve
    from rig_learn.runs import write_json

    task, runs, mode, steps = result['task'], result['runs'], result['mode'], result['steps']
    headline = result['headline_metric']
    median = result.get(f'median_final_{headline}')   # (aggregate's)
    tgt, max_minutes = result.get('target'), result.get('max_minutes')
    write_json(results_dir / f'{stem}.json', result)
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
        lines += ['', f"Median over seeds, final {headline.replace('_', ' ')}: {median:.4f}"
                  + (f" (target <= {tgt['max_m']} m in {tgt['steps']} steps, {tgt['wall_s']} s: "
                     f"{'met' if result.get('meets_target') else 'NOT met'})" if tgt else '')]
    directions = [r for r in runs if r.get('per_goal_direction')]
    if directions:
        from bench.per_goal import markdown
        ok_m = directions[0]['per_goal_direction']['success_distance_m']
        lines += ['', 'Final puck distance per goal, by the direction the goal moves the puck '
                  f'(`python -m bench.per_goal`; '
                  f'goals within {ok_m} m / goals, median in brackets):', '',
                  markdown([{**r['per_goal_direction'], 'run_dir': f"seed {r['seed']}"} for r in directions])]
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
    (results_dir / f'{stem}.md').write_text('\n'.join(lines) + '\n')
    if curves:
        learning_curve(curves, results_dir / f'{stem}_curves.png', key=f'eval/{headline}_median',
                       title=f"{task} {mode}: eval {headline.replace('_', ' ')} (median)")
        if headline != 'hand_distance':
            learning_curve(curves, results_dir / f'{stem}_hand_curves.png',
                           title=f'{task} {mode}: eval hand distance (median)')
    print('\n'.join(lines))
    print(f"wrote {results_dir / (stem + '.json')}")


if __name__ == '__main__':
    sys.exit(main())
