"""Merge learner-benchmark results of one method run as separate processes, one seed set each.

    python -m bench.merge_seeds bench/results/learn_push_data_prior.json /tmp/s1/learn_push_data_prior.json ...

A 200k-step push run takes about 95 minutes on one core, so its seeds run side by side, one
`bench.bench_learn --seeds K` process per core (each in its own checkout or results folder). This
joins their JSON files into one result, as if one process had run every seed: the runs are
concatenated, the across-seed medians and the target verdict recomputed, and the markdown table and
learning curves rewritten (curves from each run's metrics.jsonl where its run directory is found).
The files must describe the same experiment (task, arm, mode, steps, config, overrides, cap, goal
prior, relabelling, goal bank, harness): anything else is refused, as is a seed given twice. A result
from before goal banks were recorded takes the other files' record. The result goes to
bench/results/<stem>.json (the stem of the first file) unless --out says otherwise.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from bench.bench_learn import REPO, RESULTS, aggregate, write_result

# Fields that must agree for two result files to be seeds of one experiment.
SAME = ('task', 'arm', 'mode', 'steps', 'smoke', 'max_minutes', 'threads', 'device', 'config',
        'overrides', 'goal_prior', 'relabel', 'target')


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
    # How the goal bank was drawn: recorded by results since it could be set; older ones recorded
    # nothing (their overrides, compared above, say what was set), so they take the recorded one.
    banks = [r['goal_bank'] for r in results if r.get('goal_bank') is not None]
    if any(bank != banks[0] for bank in banks[1:]):
        raise ValueError(f'not the same experiment: goal_bank {banks[0]!r} vs ' +
                         ' vs '.join(repr(b) for b in banks[1:] if b != banks[0]))
    runs = [run for r in results for run in r['runs']]
    seeds = [run['seed'] for run in runs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f'a seed appears twice: {sorted(seeds)}')
    order = sorted(range(len(runs)), key=lambda i: seeds[i])
    merged = {k: v for k, v in first.items() if k not in ('runs', 'seeds', 'command', 'date', 'merged_from')}
    if banks:
        merged['goal_bank'] = banks[0]
    merged['runs'] = [runs[i] for i in order]
    merged['seeds'] = sorted(seeds)
    merged['command'] = _with_seeds(first['command'], merged['seeds'])
    merged['merged_from'] = [m for r in results for m in (r.get('merged_from') or
                                                          [{'command': r['command'], 'date': r.get('date', ''),
                                                            'machine': r.get('machine')}])]
    merged['date'] = max(r.get('date', '') for r in results)
    return aggregate(merged)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('files', nargs='+', type=Path, help='bench_learn result JSONs (two or more)')
    p.add_argument('--out', type=Path, default=None,
                   help='output JSON (default bench/results/<stem of the first>.json)')
    args = p.parse_args(argv)
    try:
        results = [json.loads(f.read_text()) for f in args.files]
        merged = merge(results)
    except (OSError, json.JSONDecodeError, ValueError, KeyError) as exc:
        print(f'merge_seeds: {exc}', file=sys.stderr)
        return 2
    out = args.out or RESULTS / args.files[0].name
    from rig_learn.runs import read_metrics
    curves = {}
    for run in merged['runs']:
        metrics = Path(run['run_dir'])
        metrics = (metrics if metrics.is_absolute() else REPO / metrics) / 'metrics.jsonl'
        if metrics.exists():
            curves[f"seed {run['seed']}"] = read_metrics(metrics)
        else:
            print(f"merge_seeds: no {metrics}: seed {run['seed']} left out of the curves", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_result(merged, curves, out.stem, out.parent)
    return 0


if __name__ == '__main__':
    sys.exit(main())
