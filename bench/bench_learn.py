"""Learner benchmark: train + evaluate RIG on a task over seeds; median final task distance.

    python -m bench.bench_learn --task reach --seeds 0 1 2 --steps 10000
    python -m bench.bench_learn --task reach --seeds 0 --steps 300 --smoke     # quick smoke run
    python -m bench.bench_learn --task push --seeds 0 1 --steps 200000 --jobs 2   # a seed per core

Writes bench/results/learn/<task>/<variant>.json, <variant>.md (a markdown table) and
<variant>_curves.png, the variant named by the config and --tag (learn_results.variant_name: the
default config untagged is `rig`); per-seed run directories under bench/results/runs/. Reports the
median final distance over 50 image goals (env.sample_goal()) of the task's headline metric (reach:
hand, push: puck), wall time, env steps/s and gradient steps/s. Targets on a 2-core CPU (TARGETS):
reach <= 0.03 m after 10k env steps within 15 min; push <= 0.06 m after 200k env steps within 2 h.
`python -m bench.learn_table` collects every result into one table.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.layout import REPO, RESULTS, SCHEMAS, read_result, repo_relative
from bench.learn_results import (
    GOAL_BANK_KEYS,
    REFERENCE_LAYER,
    TARGETS,
    aggregate,
    result_path,
    variant_name,
    write_result,
)
from bench.merge_seeds import merge
from bench.per_goal import breakdown
from rig_base.resources import learner_config


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
    p.add_argument('--tag', default='', help='names the result, after the config (learn/<task>/<variant>.json; '
                                             'default: none, _smoke for --smoke)')
    p.add_argument('--progress', action='store_true')
    p.add_argument('--max-minutes', type=float, default=None,
                   help='wall-time cap per seed: stop training there and evaluate (a same-time-budget '
                        'comparison for methods too slow for --steps in the target time)')
    p.add_argument('--jobs', type=int, default=1,
                   help='run the seeds in this many processes side by side (one per core), then merge '
                        'their results into one (bench.merge_seeds); wall times then include the sharing')
    p.add_argument('--results-dir', type=Path, default=None,
                   help=f'the results tree to write into: learn/<task>/, runs/ (default {RESULTS})')
    args = p.parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    results = args.results_dir or RESULTS
    if args.jobs < 1:
        p.error('--jobs must be at least 1')
    config = args.config
    if config is None and args.mode and args.mode != 'rig':
        config = learner_config(args.task, '_' + args.mode)     # config/learn_<task>_<mode>.yaml
    variant = variant_name(args.task, config, args.tag or ('_smoke' if args.smoke else ''))
    if args.jobs > 1 and len(args.seeds) > 1:
        return run_in_parallel(args, argv, results, variant)

    # deferred: torch (rig_learn imports it too), so that --help and --jobs answer at once
    import torch  # noqa: PLC0415

    from rig_learn.config import parse_overrides  # noqa: PLC0415
    from rig_learn.runs import load_config, read_metrics, train_run  # noqa: PLC0415

    torch.set_num_threads(args.threads)
    overrides = {'arm': args.arm, 'device': args.device, 'num_threads': args.threads,
                 'eval.n_goals': args.eval_goals}
    if args.smoke:
        overrides.update({'vae.pretrain_images': 500, 'vae.pretrain_steps': 50, 'vae.refit_steps': 10,
                          'rl.learning_starts': min(200, args.steps // 2), 'eval.every': max(args.steps // 2, 1),
                          'eval.n_goals_during_training': 3, 'eval.n_goals': min(args.eval_goals, 5)})
    overrides.update(parse_overrides(args.set))
    path = result_path(args.task, variant, results)
    path.parent.mkdir(parents=True, exist_ok=True)
    runs, curves = [], {}
    for seed in args.seeds:
        cfg = load_config(args.task, config, seed=seed, **overrides)
        out = results / 'runs' / f'learn_{args.task}_{variant}_s{seed}'
        t0 = time.perf_counter()
        s = train_run(cfg, args.steps, out, progress=args.progress,
                      max_wall_s=None if args.max_minutes is None else 60.0 * args.max_minutes)
        wall = time.perf_counter() - t0
        curves[f'seed {seed}'] = read_metrics(out / 'metrics.jsonl')
        if (out / 'goal_map.png').exists():   # where the policy fails, next to the curves (run dirs are not kept)
            shutil.copyfile(out / 'goal_map.png', path.with_name(f'{variant}_goal_map_s{seed}.png'))
        runs.append({'seed': seed, 'run_dir': repo_relative(out),
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
            runs[-1]['per_goal_direction'] = breakdown(out, s)
        print(f"seed {seed}: hand {runs[-1]['hand_distance_median']:.4f} m, success {runs[-1]['success']:.2f}, "
              f"wall {wall:.0f} s, {runs[-1]['env_steps_per_s']:.1f} env steps/s, "
              f"{runs[-1]['grad_steps_per_s']:.1f} grad steps/s", flush=True)
    result = {
        'schema': SCHEMAS['learn'],
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
    write_result(aggregate(result), curves, path)
    return 0


def machine_info() -> dict:
    """What wall times depend on: the CPU model, its vector units and one timed matmul.

    Hosts differ between sessions (push HER from pixels ran at 15 env steps/s on one and 7 on another),
    so a result's wall time is only comparable next to the reference time of the machine that made it.
    The fastest of five timed blocks is kept, so a busy second core disturbs it little.
    """
    import torch  # noqa: PLC0415 - deferred with main's (heavy; --help stays fast)
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


def _without(argv: list[str], options: tuple[str, ...]) -> list[str]:
    """argv less these options and their values (an option's values run to the next '--' word)."""
    kept, skipping = [], False
    for word in argv:
        if word.startswith('--'):
            skipping = word.split('=')[0] in options
        if not skipping:
            kept.append(word)
    return kept


def run_in_parallel(args, argv: list[str], results: Path, variant: str) -> int:
    """Run args.seeds in args.jobs `bench_learn` processes at once (seeds dealt round-robin), each into
    its own part folder, then move their run directories and goal maps into `results` and merge their
    JSON files into the one result a single process would have written. If a process fails, the
    seeds that finished still get their run directories moved (nothing trained is lost), unmerged."""
    # deferred: rig_learn imports torch (the seed processes do the training)
    from rig_learn.runs import read_metrics  # noqa: PLC0415

    jobs = min(args.jobs, len(args.seeds))
    groups = [args.seeds[i::jobs] for i in range(jobs)]
    base = _without(argv, ('--jobs', '--seeds', '--results-dir'))
    results = Path(results).resolve()   # the processes run from the repository root
    path = result_path(args.task, variant, results)
    path.parent.mkdir(parents=True, exist_ok=True)
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
            part_path = result_path(args.task, variant, part)
            for goal_map in part_path.parent.glob(f'{variant}_goal_map_s*.png'):
                shutil.move(str(goal_map), path.parent / goal_map.name)
            if part_path.exists():
                result = read_result(part_path, 'learn')
                for run in result['runs']:
                    run['run_dir'] = repo_relative(results / 'runs' / Path(run['run_dir']).name)
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
    write_result(merged, dict(sorted(curves.items())), path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
