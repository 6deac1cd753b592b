"""`make bench`: every benchmark in turn; each writes its JSON (and plots) under bench/results/
(bench.layout), then `table` and `doc` rebuild bench/results/learn/table.md and docs/results.md from them.

    python -m bench.run_all [--skip-learn] [--only SECTION ...]

The learning sections train for a long time and are not part of CI. They run their seeds two at a
time, one process per core (`bench_learn --jobs 2`), so 3 seeds take the time of two: reach (10k steps,
about 5 min a seed) about 11 min, push (200k steps, about 95 min a seed, capped at the target's 2 h)
about 3 h 10 min; the rehearsed cells (`bench_cell`, 30 min of practice in real time and the goals
through the cell) about 45 min an arm. The baselines behind bench/results/learn/table.md (oracle, HER from pixels, RIG
without prior relabelling, per task) take hours more, so they run only when asked for:
`python -m bench.run_all --only baselines table doc`. `table` and `doc` rebuild the table and
docs/results.md from whatever results are there.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time

SECTIONS = [
    ('sim', 'bench.bench_sim', []),
    ('ros', 'bench.bench_ros', []),
    ('vae', 'bench.bench_vae', ['--task', 'push']),
    ('update', 'bench.bench_update', []),
    ('learn', 'bench.bench_learn', ['--task', 'reach', '--seeds', '0', '1', '2', '--steps', '10000', '--jobs', '2']),
    ('learn_push', 'bench.bench_learn', ['--task', 'push', '--seeds', '0', '1', '2', '--steps', '200000',
                                         '--max-minutes', '120', '--jobs', '2']),
    ('graph', 'bench.bench_graph', []),  # after learn: compares with its fresh results
    ('cell', 'bench.bench_cell', ['--arm', 'ur5e']),        # real time: about 45 min each
    ('cell_sawyer', 'bench.bench_cell', ['--arm', 'sawyer']),
    ('hosts', 'bench.bench_hosts', []),   # a learner host and two actor hosts (root: ip netns), about 10 min
    ('baselines', 'bench.bench_learn', []),  # opt-in: the runs in BASELINES, one after another
    ('table', 'bench.learn_table', []),
    ('doc', 'bench.results_doc', []),   # docs/results.md from every result
]
LEARNING = ('learn', 'learn_push', 'baselines', 'cell', 'cell_sawyer', 'hosts')
OPT_IN = ('baselines',)

# The same harness and budget as the RIG rows (reach: 10k steps; push: 200k steps or the target's 2 h,
# whichever comes first: HER from pixels needs about 3 h for 200k), one config switch each.
BASELINES = [
    [*task, '--config', f'config/learn_{name}_{variant}.yaml', '--tag', f'_{variant}']
    for name, task in (('reach', ['--task', 'reach', '--seeds', '0', '1', '2', '--steps', '10000']),
                       ('push', ['--task', 'push', '--seeds', '0', '--steps', '200000', '--max-minutes', '120']))
    for variant in ('no_prior', 'oracle', 'her_pixels')
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--skip-learn', action='store_true',
                        help='skip the long learning runs (learn section, and the graph learning part)')
    parser.add_argument('--only', nargs='*', help='run only these sections')
    args = parser.parse_args(argv)
    failed = []
    for name, module_name, section_args in SECTIONS:
        if (args.only and name not in args.only or (args.skip_learn and name in LEARNING)
                or (not args.only and name in OPT_IN)):
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            print(f'== {name}: not available ({exc.name})')
            continue
        print(f'== {name} ({module_name})', flush=True)
        t0 = time.time()
        if args.skip_learn and name == 'graph':
            section_args = section_args + ['--skip-learn']
        if name == 'baselines':
            rc = max(module.main(list(run_args)) for run_args in BASELINES)
        else:
            rc = module.main(section_args)
        print(f'== {name}: done in {time.time() - t0:.0f} s (rc={rc})', flush=True)
        if rc:
            failed.append(name)
    if failed:
        print('failed sections:', failed)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
