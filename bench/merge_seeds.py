"""Merge learner-benchmark results of one method run as separate processes, one seed set each.

    python -m bench.merge_seeds bench/results/learn/push/data_prior.json /tmp/s1/learn/push/data_prior.json ...

A 200k-step push run takes about 95 minutes on one core, so its seeds run side by side, one
`bench.bench_learn --seeds K` process per core (each in its own checkout or results folder). This
joins their JSON files into one result, as if one process had run every seed: the runs are
concatenated, the across-seed medians and the target verdict recomputed, and the markdown table and
learning curves rewritten (curves from each run's metrics.jsonl where its run directory is found).
The files must describe the same experiment (schema, task, arm, mode, steps, config, overrides, cap,
goal prior, goal bank, relabelling, harness): anything else is refused, as is a seed given twice. The
result goes to bench/results/learn/<task>/<name of the first file> unless --out says otherwise.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from bench.layout import REPO, read_result
from bench.learn_results import aggregate, result_path, write_result

# Fields that must agree for two result files to be seeds of one experiment.
SAME = ('schema', 'task', 'arm', 'mode', 'steps', 'smoke', 'max_minutes', 'threads', 'device', 'config',
        'overrides', 'goal_prior', 'goal_bank', 'relabel', 'target')


def _with_seeds(command: str, seeds: list[int]) -> str:
    """The bench_learn command line with its --seeds list replaced (what one process would have run)."""
    listed = ' '.join(map(str, seeds))
    if re.search(r'--seeds(\s+\d+)+', command):
        return re.sub(r'--seeds(\s+\d+)+', f'--seeds {listed}', command, count=1)
    return f'{command} --seeds {listed}'


def merge(results: list[dict]) -> dict:
    """One result holding every run of `results`, whose experiment fields must match exactly."""
    if len(results) < 2:
        raise ValueError('merging needs at least two result files')
    first = results[0]
    for other in results[1:]:
        diff = [k for k in SAME if first.get(k) != other.get(k)]
        if diff:
            raise ValueError('not the same experiment: ' + ', '.join(
                f'{k} {first.get(k)!r} vs {other.get(k)!r}' for k in diff))
    runs = [run for r in results for run in r['runs']]
    seeds = [run['seed'] for run in runs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f'a seed appears twice: {sorted(seeds)}')
    order = sorted(range(len(runs)), key=lambda i: seeds[i])
    merged = {k: v for k, v in first.items() if k not in ('runs', 'seeds', 'command', 'date', 'merged_from')}
    merged['runs'] = [runs[i] for i in order]
    merged['seeds'] = sorted(seeds)
    merged['command'] = _with_seeds(first['command'], merged['seeds'])
    merged['merged_from'] = [m for r in results for m in (r.get('merged_from') or
                                                          [{'command': r['command'], 'date': r['date'],
                                                            'machine': r['machine']}])]
    merged['date'] = max(r['date'] for r in results)
    return aggregate(merged)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('files', nargs='+', type=Path, help='bench_learn result JSONs (two or more)')
    p.add_argument('--out', type=Path, default=None,
                   help='output JSON (default bench/results/learn/<task>/<name of the first>)')
    args = p.parse_args(argv)
    try:
        results = [read_result(f, 'learn') for f in args.files]
        merged = merge(results)
    except (OSError, json.JSONDecodeError, ValueError, KeyError) as exc:
        print(f'merge_seeds: {exc}', file=sys.stderr)
        return 2
    out = args.out or result_path(merged['task'], args.files[0].stem)
    # deferred: rig_learn imports torch, which merging needs only for the curves
    from rig_learn.runs import read_metrics  # noqa: PLC0415

    curves = {}
    for run in merged['runs']:
        metrics = Path(run['run_dir'])
        metrics = (metrics if metrics.is_absolute() else REPO / metrics) / 'metrics.jsonl'
        if metrics.exists():
            curves[f"seed {run['seed']}"] = read_metrics(metrics)
        else:
            print(f"merge_seeds: no {metrics}: seed {run['seed']} left out of the curves", file=sys.stderr)
    write_result(merged, curves, out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
