"""docs/results.md, written from the benchmark results.

    python -m bench.results_doc            # writes docs/results.md (`make bench` runs it last)
    python -m bench.results_doc --check    # exit 1 if docs/results.md is not what the results give

The words are bench/results_template.md; every figure in it is a placeholder naming the result it
comes from, so the page changes with the results and with nothing else (a test checks that the
committed page is what the committed results give). Placeholders are Python format fields over:

    learn.<task>.<variant>      bench/results/learn/<task>/<variant>.json, a Learned (below);
                                learn.<task>.do_nothing: learn_table's "do nothing" row
    superseded.<folder>.<stem>  bench/results/superseded/<folder>/<stem>.json (kept under their old
                                names, learn_* or vae_*: a Learned or a VAE result)
    graph.<section>             a section of bench/results/graph/figures.json
    sim, ros                    bench/results/sim/throughput.json, bench/results/ros/lockstep.json
    vae.<stem>, vae.<folder>.<stem>   bench/results/vae/...
    sim_cell.<arm>              bench/results/sim_cell/<arm>.json (bench_cell)

A JSON object's keys read as attributes (graph.learning.graph_wall_s). Values per seed (a Seq) print
as 'a / b / c', the format applied to each, and their `.range` as 'lo-hi'. Besides Python's formats:
`k` prints thousands (10000: 10k), `min` seconds as minutes (433 s: 7.2) and `about_min` seconds as
minutes said roughly (to the minute under 10 min, to 5 min above: 5957 s: 100).

Every result is read through bench.layout.read_result: one of another schema stops the page, naming
its file, rather than being read for fields that meant something else.
"""
from __future__ import annotations

import argparse
import string
import sys
from pathlib import Path

import numpy as np

from bench.layout import REPO, RESULTS, read_result
from bench.learn_results import GROUPS
from bench.learn_table import do_nothing_row

TEMPLATE = Path(__file__).resolve().parent / 'results_template.md'
DOC = REPO / 'docs' / 'results.md'


class Fields(dict):
    """A JSON object whose keys also read as attributes (the template's dotted names)."""

    def __getattr__(self, key: str):
        try:
            value = self[key]
        except KeyError:
            raise AttributeError(f'{key!r} is not among {sorted(self)}') from None
        return Fields(value) if type(value) is dict else value   # (a Learned stays one)


class Seq(list):
    """Values per seed (or per task and arm): printed 'a / b / c'."""

    @property
    def range(self) -> Range:
        return Range((min(self), max(self)))

    @property
    def median(self) -> float:
        return float(np.median(self))


class Range(tuple):
    """(lowest, highest): printed 'lo-hi'."""


class Learned(Fields):
    """A learner result (bench.learn_results) with its figures by name."""

    def _per_run(self, key: str) -> Seq:
        return Seq(run[key] for run in self['runs'])

    @property
    def median(self) -> float:
        """Median over seeds of the headline distance (bench_learn's across-seed figure)."""
        return self[f"median_final_{self['headline_metric']}"]

    @property
    def per_seed(self) -> Seq:
        return self._per_run(f"{self['headline_metric']}_median")

    @property
    def hand(self) -> Seq:
        return self._per_run('hand_distance_median')

    @property
    def success(self) -> Seq:
        return self._per_run('success')

    @property
    def wall_s(self) -> Seq:
        return self._per_run('wall_s')

    @property
    def n_seeds(self) -> int:
        return len(self['seeds'])

    @property
    def n_goals(self) -> int:
        return self['runs'][0]['n_goals']

    @property
    def steps_done(self) -> int:
        """Env steps the shortest run got to (below `steps` where a wall-time cap stopped it)."""
        return min(self._per_run('env_steps'))

    @property
    def relabel_split(self) -> str:
        """The relabelling fractions as own/prior/future percentages: '20/0/80'."""
        return '/'.join(f"{100 * self['relabel'][k]:.0f}" for k in ('own', 'prior', 'future'))

    @property
    def within(self) -> Seq:
        """Push: goals ending within the success distance, per seed (bench.per_goal)."""
        return Seq(run['per_goal_direction']['within'] for run in self['runs'])

    @property
    def towards(self) -> Seq:
        """Push: of the goals that pull the puck towards the robot, those ending within it, per seed."""
        return Seq(run['per_goal_direction']['groups'][GROUPS[0]]['within'] for run in self['runs'])

    @property
    def towards_n(self) -> int:
        return self['runs'][0]['per_goal_direction']['groups'][GROUPS[0]]['n_goals']


class Sim(Fields):
    """bench_sim's result, its figures over every task and arm."""

    @property
    def single_steps_per_s(self) -> Seq:
        """One process's env steps/s per task and arm, to the nearest 10 (a few seconds of timing)."""
        return Seq(round(row['single_steps_per_s'], -1) for row in self['rows'])

    @property
    def speedup(self) -> Seq:
        """A 2-process batch's env steps/s over one process's, per task and arm."""
        return Seq(row['speedup'] for row in self['rows'])


class _Formatter(string.Formatter):
    """Python's str.format, with Seq and Range printed whole and the formats `k`, `min`, `about_min`."""

    def format_field(self, value, spec: str) -> str:
        if isinstance(value, Seq):
            return ' / '.join(self.format_field(v, spec) for v in value)
        if isinstance(value, Range):
            return '-'.join(self.format_field(v, spec) for v in value)
        if spec == 'k':
            return f'{value / 1000:.0f}k'
        if spec == 'min':
            return f'{value / 60:.1f}'
        if spec == 'about_min':
            minutes = value / 60
            return f'{round(minutes) if minutes < 10 else 5 * round(minutes / 5)}'
        return format(value, spec)


def _folder(folder: Path, read) -> Fields:
    """{stem: read(path)} for the JSONs of a folder, and {name: _folder(sub)} for its sub-folders
    (nothing for a folder no benchmark has written yet)."""
    if not folder.is_dir():
        return Fields()
    out = Fields({p.stem: read(p) for p in sorted(folder.glob('*.json'))})
    out.update({sub.name: _folder(sub, read) for sub in sorted(folder.iterdir()) if sub.is_dir()})
    return out


def load(results: Path = RESULTS) -> dict:
    """Every name the template can use (the module docstring), from the results tree `results`."""
    learn = _folder(results / 'learn', lambda p: Learned(read_result(p, 'learn')))
    for task, variants in learn.items():
        row = do_nothing_row(task)
        if row is not None:
            variants['do_nothing'] = Fields(row)
    superseded = _folder(results / 'superseded', lambda p: Learned(read_result(p, 'learn'))
                         if p.name.startswith('learn_') else Fields(read_result(p, 'vae')))
    return {'learn': learn, 'superseded': superseded,
            'graph': Fields(read_result(results / 'graph' / 'figures.json', 'graph')),
            'sim': Sim(read_result(results / 'sim' / 'throughput.json', 'sim')),
            'ros': Fields(read_result(results / 'ros' / 'lockstep.json', 'ros')),
            'vae': _folder(results / 'vae', lambda p: Fields(read_result(p, 'vae'))),
            'sim_cell': _folder(results / 'sim_cell', lambda p: Fields(read_result(p, 'sim_cell')))}


def render(results: Path = RESULTS, template: Path = TEMPLATE) -> str:
    """The page: the template with every placeholder filled in from the results."""
    return _Formatter().vformat(Path(template).read_text(), (), load(results))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--results', type=Path, default=RESULTS, help=f'the results tree (default {RESULTS})')
    p.add_argument('--out', type=Path, default=DOC, help=f'the page to write (default {DOC})')
    p.add_argument('--check', action='store_true', help='write nothing; exit 1 if the page differs')
    args = p.parse_args(argv)
    try:
        text = render(args.results)
    except (ValueError, KeyError, AttributeError, IndexError) as exc:   # a result or a placeholder is wrong
        print(f'results_doc: {exc}', file=sys.stderr)
        return 2
    if args.check:
        same = args.out.exists() and args.out.read_text() == text
        print(f"{args.out}: {'up to date' if same else 'differs from what the results give'}")
        return 0 if same else 1
    args.out.write_text(text)
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
