"""docs/results.md and README.md's headline figures, written from the benchmark results.

    python -m bench.results_doc            # writes both (`make bench` runs it last)
    python -m bench.results_doc --check    # exit 1 if either is not what the results give

README.md's table between the markers README_BEGIN and README_END is the header and the rows of the
page's first table named in HEADLINE, copied from the rendered page: one text for each figure.

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
    hosts.hosts                 bench/results/hosts/hosts.json (bench_hosts), a Hosts (below)

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
README = REPO / 'README.md'
README_BEGIN = '<!-- headline figures: written by python -m bench.results_doc from docs/results.md -->'
README_END = '<!-- end of headline figures -->'
HEADLINE = ('reach through the graph and bags', 'reach with the direct learner',
            'push with the direct learner', 'frame -> `rig/cmd`')   # rows of the page's first table


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


class Hosts(Fields):
    """bench_hosts's result, its per-actor figures as the mean over the actors."""

    def _mean(self, key: str) -> float:
        return float(np.mean([b[key] for b in self['bandwidth'].values()]))

    @property
    def checkpoint_bytes_mb(self) -> float:
        return self['checkpoint_bytes'] / 1e6

    @property
    def bandwidth_per_step_kb(self) -> float:
        return self._mean('bytes_per_step') / 1e3

    @property
    def cell_rate_kb_per_s(self) -> float:
        return self._mean('bytes_per_s_at_cell_rate') / 1e3

    @property
    def raw_cell_rate_mb_per_s(self) -> float:
        return self._mean('raw_bytes_per_s_at_cell_rate') / 1e6


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
            'sim_cell': _folder(results / 'sim_cell', lambda p: Fields(read_result(p, 'sim_cell'))),
            'hosts': _folder(results / 'hosts', lambda p: Hosts(read_result(p, 'hosts')))}


def render(results: Path = RESULTS, template: Path = TEMPLATE) -> str:
    """The page: the template with every placeholder filled in from the results."""
    return _Formatter().vformat(Path(template).read_text(), (), load(results))


def headline(page: str) -> str:
    """The README's table: the page's first table header and its rows named in HEADLINE, in order."""
    lines = page.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('| '))
    table = lines[start:start + next(i for i, line in enumerate(lines[start:]) if not line.startswith('|'))]
    rows = []
    for name in HEADLINE:
        found = [line for line in table[2:] if line.startswith(f'| {name}')]
        if len(found) != 1:
            raise ValueError(f'the results page\'s first table has {len(found)} rows named {name!r}, not 1')
        rows += found
    return '\n'.join(table[:2] + rows)


def with_headline(readme: str, page: str) -> str:
    """README text with the table between its markers replaced by headline(page)."""
    if readme.count(README_BEGIN) != 1 or readme.count(README_END) != 1:
        raise ValueError(f'README.md needs the lines {README_BEGIN!r} and {README_END!r} once each')
    before, rest = readme.split(README_BEGIN)
    _, after = rest.split(README_END)
    return f'{before}{README_BEGIN}\n{headline(page)}\n{README_END}{after}'


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--results', type=Path, default=RESULTS, help=f'the results tree (default {RESULTS})')
    p.add_argument('--out', type=Path, default=DOC, help=f'the page to write (default {DOC})')
    p.add_argument('--readme', type=Path, default=README,
                   help=f'the README whose headline table to write (default {README})')
    p.add_argument('--check', action='store_true', help='write nothing; exit 1 if either differs')
    args = p.parse_args(argv)
    try:
        text = render(args.results)
        readme = with_headline(args.readme.read_text(), text)
    except (ValueError, KeyError, AttributeError, IndexError, OSError) as exc:   # a bad result, placeholder or file
        print(f'results_doc: {exc}', file=sys.stderr)
        return 2
    stale = 0
    for path, wanted in ((args.out, text), (args.readme, readme)):
        if args.check:
            same = path.exists() and path.read_text() == wanted
            print(f"{path}: {'up to date' if same else 'differs from what the results give'}")
            stale += not same
        elif not path.exists() or path.read_text() != wanted:
            path.write_text(wanted)
            print(f'wrote {path}')
    return 1 if stale else 0


if __name__ == '__main__':
    sys.exit(main())
