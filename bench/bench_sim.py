"""Throughput of the MuJoCo task suite: `python -m bench.bench_sim` (or `make bench-sim`).

Measures, for every task and arm with 48x48 observations:
  * env steps/s of one environment pinned to one CPU core (target >= 500 for reach and push);
  * env steps/s of a 2-process batch (make_vector_env) and its speed-up over one process
    (target >= 1.6x), and the CPU time per env step of both, whose ratio estimates the speed-up on
    idle cores (the wall-clock speed-up needs two cores nobody else is using);
  * the cost of one learner frame (render only) and one control step (physics only);
and, for reference, the frame cost of the other mesh fidelities. Prints a table and writes
bench/results/sim/throughput.json. Each figure is a few seconds of wall time; on a shared machine
the load average (recorded in the JSON) tells how much of the CPUs other processes took meanwhile.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

from bench.layout import SCHEMAS, SIM

# The single-process figure is for one core: keep Mesa's software renderer on one thread too
# (read when the first OpenGL context is created, so set before rendering starts).
os.environ.setdefault('LP_NUM_THREADS', '1')
os.environ.setdefault('MUJOCO_GL', 'egl')   # before mujoco is imported (headless rendering)

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from rig_sim import ARMS, TASKS, RigScene, SimConfig, make_env, make_vector_env  # noqa: E402

RESULTS_PATH = SIM / 'throughput.json'
MEASURE_SECONDS = 4.0
TARGET_STEPS_PER_S = 500
TARGET_SPEEDUP = 1.6


def timed_loop(step, seconds: float = MEASURE_SECONDS, warmup: int = 20) -> tuple[float, int]:
    """(calls of `step` per second of wall time, number of timed calls) over about `seconds`."""
    for _ in range(warmup):
        step()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(50):
            step()
        count += 50
    return count / (time.perf_counter() - start), count


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def single_env_steps_per_s(task: str, arm: str) -> tuple[float, float]:
    """(env steps per second, CPU milliseconds per env step) of one environment in this process."""
    env = make_env(task=task, arm=arm)
    env.reset(seed=0)
    rng = np.random.default_rng(0)

    def step():
        truncated = env.step(rng.uniform(-1, 1, env.action_space.shape))[3]
        if truncated:
            env.reset()

    cpu_start = time.process_time()
    rate, count = timed_loop(step)
    cpu_ms = (time.process_time() - cpu_start) * 1e3 / count
    env.close()
    return rate, cpu_ms


def vector_env_steps_per_s(task: str, arm: str, num_envs: int = 2) -> tuple[float, float]:
    """(env steps per second, CPU ms per env step over parent + workers) of a process batch.

    The CPU figure does not depend on how busy the machine is: with num_envs idle cores the
    speed-up approaches num_envs * (single CPU ms) / (batch CPU ms).
    """
    env = make_vector_env(task=task, arm=arm, num_envs=num_envs)
    env.reset(seed=0)
    rng = np.random.default_rng(0)

    def step():
        env.step(rng.uniform(-1, 1, env.action_space.shape))

    pids = [process.pid for process in env.processes]
    cpu_start = time.process_time() + sum(map(process_cpu_seconds, pids))
    rate, count = timed_loop(step)
    cpu_seconds = time.process_time() + sum(map(process_cpu_seconds, pids)) - cpu_start
    env.close()
    # the batch advances num_envs environments per call
    return rate * num_envs, cpu_seconds * 1e3 / (count * num_envs)


def scene_costs_ms(task: str, arm: str, mesh_fidelity: str = 'simple') -> dict[str, float]:
    """Milliseconds per 48x48 learner frame and per control step (physics only)."""
    with RigScene(SimConfig(task=task, arm=arm, mesh_fidelity=mesh_fidelity)) as scene:
        render_ms = 1e3 / timed_loop(scene.render, seconds=MEASURE_SECONDS / 2)[0]
        rng = np.random.default_rng(0)

        def move():
            scene.move_ee(rng.uniform(-0.02, 0.02, 3))

        physics_ms = 1e3 / timed_loop(move, seconds=MEASURE_SECONDS / 2)[0]
    return {'render_ms': render_ms, 'physics_ms': physics_ms}


def main(argv=None) -> int:
    all_cores = os.sched_getaffinity(0)
    one_core = {max(all_cores)}
    rows = []
    for task in TASKS:
        for arm in ARMS:
            os.sched_setaffinity(0, one_core)
            single, single_cpu_ms = single_env_steps_per_s(task, arm)
            costs = scene_costs_ms(task, arm)
            # Workers inherit the affinity of the process that starts them: give back all cores.
            os.sched_setaffinity(0, all_cores)
            batch, batch_cpu_ms = vector_env_steps_per_s(task, arm)
            rows.append({'task': task, 'arm': arm, 'single_steps_per_s': single,
                         'batch2_steps_per_s': batch, 'speedup': batch / single,
                         'single_cpu_ms_per_step': single_cpu_ms,
                         'batch2_cpu_ms_per_step': batch_cpu_ms,
                         'speedup_on_idle_cores': 2 * single_cpu_ms / batch_cpu_ms, **costs})

    os.sched_setaffinity(0, one_core)
    fidelity_rows = [{'arm': arm, 'mesh_fidelity': fidelity,
                      'render_ms': scene_costs_ms('push', arm, fidelity)['render_ms']}
                     for arm in ARMS for fidelity in ('collision', 'visual')]
    os.sched_setaffinity(0, all_cores)

    print(f'rig_sim throughput, 48x48 images, mesh_fidelity=simple (cores available: {len(all_cores)}, '
          f'load average {os.getloadavg()[0]:.2f})')
    print(f'{"task":6} {"arm":7} {"1 core steps/s":>15} {"2 procs steps/s":>16} {"speed-up":>9} '
          f'{"CPU ms/step 1|2":>16} {"idle-core speed-up":>19} {"render ms":>10} {"physics ms":>11}')
    for r in rows:
        cpu = f'{r["single_cpu_ms_per_step"]:.2f} | {r["batch2_cpu_ms_per_step"]:.2f}'
        print(f'{r["task"]:6} {r["arm"]:7} {r["single_steps_per_s"]:15.0f} {r["batch2_steps_per_s"]:16.0f} '
              f'{r["speedup"]:8.2f}x {cpu:>16} {r["speedup_on_idle_cores"]:18.2f}x '
              f'{r["render_ms"]:10.2f} {r["physics_ms"]:11.2f}')
    print('frame cost of the other mesh fidelities (push, 48x48, one core):')
    for r in fidelity_rows:
        print(f'  {r["arm"]:7} {r["mesh_fidelity"]:9} {r["render_ms"]:6.2f} ms')
    planar = [r for r in rows if r['task'] in ('reach', 'push')]
    steps_ok = all(r['single_steps_per_s'] >= TARGET_STEPS_PER_S for r in planar)
    speedup_ok = all(r['speedup'] >= TARGET_SPEEDUP for r in planar)
    print(f'target >= {TARGET_STEPS_PER_S} steps/s on one core (reach, push): '
          f'{"met" if steps_ok else "NOT met"}; target >= {TARGET_SPEEDUP}x with 2 processes (reach, push): '
          f'{"met" if speedup_ok else "NOT met"}')

    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(json.dumps({
        'schema': SCHEMAS['sim'], 'benchmark': 'rig_sim', 'image_size': 48, 'mesh_fidelity': 'simple',
        'measure_seconds': MEASURE_SECONDS, 'cores_available': len(all_cores),
        'load_average_1min_after': os.getloadavg()[0], 'mujoco': mujoco.__version__,
        'python': platform.python_version(), 'machine': platform.machine(),
        'targets': {'single_steps_per_s_reach_push': TARGET_STEPS_PER_S,
                    'speedup_2_processes': TARGET_SPEEDUP},
        'targets_met': {'single_steps_per_s': steps_ok, 'speedup': speedup_ok},
        'rows': rows, 'mesh_fidelity_render_ms': fidelity_rows,
    }, indent=2) + '\n')
    print(f'wrote {RESULTS_PATH}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
