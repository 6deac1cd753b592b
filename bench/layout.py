"""Where every benchmark writes its results, and the schema of each result JSON.

    bench/results/
        learn/<task>/<variant>.json   bench_learn: one method on one task (.md, _curves.png, _goal_map_sK.png
                                      beside it); learn/table.md: every method side by side (learn_table)
        graph/figures.json            bench_graph: the node graph's figures (figures.md, <run>_goals.png)
        sim/throughput.json           bench_sim: the task suite's env steps/s
        ros/lockstep.json             bench_ros: lockstep steps/s through ROS
        vae/<task><tag>.json          bench_vae: what the pretrained VAE encodes (.png beside it)
        sim_cell/<arm>.json           bench_cell: reach learned in real time on the simulated cell
        hosts/hosts.json              bench_hosts: a learner host and two actor hosts (network namespaces)
        update/<algo>.json            bench_update: ms per TD3 / SAC update, pair against fused critic
        refactor/, superseded/        results kept from earlier experiments, under the names they were
                                      written with; each folder says what it holds (README or .md)
        runs/                         scratch: the run directories behind the results (not in git)

docs/results.md is written from these by `python -m bench.results_doc`.

Every result JSON carries `schema`, the version of its kind's layout (SCHEMAS). Readers take only the
version this code writes (read_result): a layout change bumps the number and migrates the stored
results once, so no reader guesses what an older file meant.
"""
from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / 'bench' / 'results'
RUNS = RESULTS / 'runs'
LEARN = RESULTS / 'learn'
GRAPH = RESULTS / 'graph'
SIM = RESULTS / 'sim'
ROS = RESULTS / 'ros'
VAE = RESULTS / 'vae'
SIM_CELL = RESULTS / 'sim_cell'
HOSTS = RESULTS / 'hosts'
UPDATE = RESULTS / 'update'

# The layout version of each kind of result JSON, as written by its benchmark now. ('learn' is also
# rig_learn.benchmarks.LEARN_SCHEMA, what `rig train` reads; not imported here, as it loads torch.)
SCHEMAS = {'learn': 1, 'graph': 1, 'sim': 1, 'ros': 1, 'vae': 1, 'sim_cell': 1, 'hosts': 1, 'update': 1}


def read_result(path: Path, kind: str) -> dict:
    """A result JSON of this kind, refused (ValueError) unless it has the schema this code writes."""
    result = json.loads(Path(path).read_text())
    schema = result.get('schema') if isinstance(result, dict) else None
    if schema != SCHEMAS[kind]:
        raise ValueError(f'{path}: a {kind} result of schema {schema!r}, but this code reads schema '
                         f'{SCHEMAS[kind]}: rerun its benchmark or migrate the file')
    return result


def repo_relative(path: Path) -> str:
    """`path` relative to the repository when inside it (how results name files), else absolute."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
