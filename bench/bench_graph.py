"""The node graph's figures: frame -> rig/cmd latency, lockstep throughput, and learning through bags.

    python -m bench.bench_graph [--skip-learn] [--only SECTION] [--practice-steps 10000] [--goals 50]

1. latency: encoder, policy and safety filter each in their own process (as `ros2 launch` runs them);
   this process publishes 48x48 frames on camera/image_raw at 20 Hz and times the rig/cmd each one
   causes (safety filter in on_input mode, so a command is the answer to one frame; in rate mode add
   up to one control period). Targets: p50 <= 5 ms, p99 <= 20 ms.
2. throughput: the sim graph practising (`rig up sim --practice`): env steps/s through ROS and the
   trainer's gradient steps/s.
3. learning: `make demo`'s pipeline (`rig up`, trainer in its own process) with --practice-steps and
   --goals image goals: median final hand distance and wall time next to the direct learner's: its
   wall from a run right after this one on the same host (`--direct back-to-back`, the default; this
   VM's speed varies by up to 1.8x between days) or stored, its distance the stored 3-seed median
   (bench/results/learn/reach/rig.json). Target: wall within 1.2x, distance no worse.
4. actors: two actors (env0, env1: one process each) with half the steps each, against 3.
   Target: >= 1.6x the env steps/s of one actor, the same distance.
5. launch: 3 with the graph started by the real `ros2 launch` from a colcon build (where the
   tooling is installed), ended with Ctrl-C; its direct learner's wall as in 3.

Writes bench/results/graph/figures.json and figures.md (with the host and command of every figure),
and each learning run's goals.png as graph/<run>_goals.png; run directories under bench/results/runs/.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.layout import GRAPH, LEARN, REPO, RUNS, SCHEMAS, read_result

sys.path.insert(0, str(REPO / 'test'))   # ros_util, launch_util: the tests' ROS helpers
FIGURES = GRAPH / 'figures.json'
DIRECT = LEARN / 'reach' / 'rig.json'   # the direct learner's reach result (bench_learn, the default config)


def latency(n_frames: int = 600, rate_hz: float = 20.0) -> dict:
    """Frame -> rig/cmd latency through encoder, policy and safety filter, one process each."""
    # deferred: rclpy and the ROS messages, torch (rig_learn): --help and the other sections need none
    import rclpy  # noqa: PLC0415
    from geometry_msgs.msg import PoseStamped, TwistStamped  # noqa: PLC0415
    from ros_util import spawn_node, spin_until  # noqa: PLC0415
    from sensor_msgs.msg import Image  # noqa: PLC0415

    from rig_base import qos  # noqa: PLC0415
    from rig_base.image_msgs import numpy_to_image  # noqa: PLC0415
    from rig_learn.agent import RIGAgent  # noqa: PLC0415
    from rig_learn.config import LearnConfig  # noqa: PLC0415
    from rig_trainer.online import TrainerConfig, agent_spec  # noqa: PLC0415

    work = RUNS / 'latency'
    work.mkdir(parents=True, exist_ok=True)
    cfg = LearnConfig(task='reach')  # the full-size reach networks: latent 16, [400, 300]
    ckpt = RIGAgent(cfg, spec=agent_spec(TrainerConfig(), cfg)).save(work / 'ckpt')
    ns = '/lat'
    rclpy.init()
    node = rclpy.create_node('bench_latency', namespace=ns)
    cmds: list[float] = []
    node.create_subscription(TwistStamped, 'rig/cmd', lambda m: cmds.append(time.perf_counter()), qos.COMMAND_QOS)
    cam = node.create_publisher(Image, 'camera/image_raw', qos.CAMERA_PUBLISHER_QOS)
    goal = node.create_publisher(Image, 'rig/goal_image', qos.GOAL_IMAGE_QOS)
    pose = node.create_publisher(PoseStamped, 'rig/ee_pose', 10)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 48, 3), dtype=np.uint8) for _ in range(16)]
    ee = PoseStamped()
    ee.header.frame_id = 'base_link'
    ee.pose.position.x, ee.pose.position.z = 0.55, 0.03
    safety = {'output_mode': 'on_input', 'max_speed': 0.6, 'max_accel': 1000.0,
              'workspace_low': '[0.3, -0.35, 0.0]', 'workspace_high': '[0.8, 0.35, 0.4]'}
    lat = []
    try:
        with spawn_node('rig_perception.encoder_node', {'checkpoint': str(ckpt), 'reconstruction_period_s': 0.0},
                        namespace=ns), \
                spawn_node('rig_policy.policy_node', {'checkpoint': str(ckpt), 'operator_steps': 10**6},
                           namespace=ns), \
                spawn_node('rig_policy.safety_filter_node', safety, namespace=ns):
            goal.publish(numpy_to_image(frames[0], 'rgb8'))

            def frame(i):
                ee.header.stamp = node.get_clock().now().to_msg()
                pose.publish(ee)
                cam.publish(numpy_to_image(frames[i % len(frames)], 'rgb8',
                                           stamp=node.get_clock().now().to_msg(), frame_id='cam'))
            deadline = time.monotonic() + 60  # discovery and checkpoint loading
            i = 0
            while not cmds and time.monotonic() < deadline:
                frame(i)
                i += 1
                spin_until(node, lambda: bool(cmds), 0.2)
            if not cmds:
                raise RuntimeError('no rig/cmd from the encoder -> policy -> safety filter chain')
            for i in range(n_frames):
                n = len(cmds)
                ee.header.stamp = node.get_clock().now().to_msg()
                pose.publish(ee)
                spin_until(node, lambda: False, 0.002)
                t0 = time.perf_counter()
                cam.publish(numpy_to_image(frames[i % len(frames)], 'rgb8',
                                           stamp=node.get_clock().now().to_msg(), frame_id='cam'))
                if spin_until(node, lambda: len(cmds) > n, 1.0):
                    lat.append(cmds[n] - t0)
                rest = 1.0 / rate_hz - (time.perf_counter() - t0)
                if rest > 0:
                    spin_until(node, lambda: False, rest)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    ms = np.array(lat) * 1e3
    return {'frames': n_frames, 'answered': int(len(ms)), 'p50_ms': float(np.median(ms)),
            'p99_ms': float(np.percentile(ms, 99)), 'max_ms': float(ms.max()),
            'target_p50_ms': 5.0, 'target_p99_ms': 20.0}


def throughput(seconds: float = 60.0) -> dict:
    """The composed sim graph practising from scratch: env steps/s and gradient steps/s."""
    from rig.bringup import Graph  # noqa: PLC0415 - deferred: rclpy, mujoco
    data = RUNS / f'throughput-{time.strftime("%Y%m%d-%H%M%S")}'
    up = argparse.Namespace(graph='sim', task='reach', arm='sawyer', data_dir=str(data / 'data'),
                            practice=True, params_file=[])
    with Graph(up, extra_ros_args=['--log-level', 'warn']) as g:
        policy = g.node('policy')

        def updates() -> int:   # the trainer process's, from rig/trainer_status
            return g.trainer_status.get('counters', {}).get('updates', 0)
        g.spin_until(lambda: g.trainer_status.get('counters', {}).get('vae_fits', 0) > 0, 300)  # pretrained
        s0, u0, t0 = policy.commands_sent, updates(), time.perf_counter()
        g.spin_until(timeout=seconds)
        dt = time.perf_counter() - t0
        steps, updates = policy.commands_sent - s0, updates() - u0
    direct = read_result(DIRECT, 'learn') if DIRECT.exists() else {}
    return {'graph_env_steps_per_s': steps / dt, 'graph_grad_steps_per_s': updates / dt, 'seconds': dt,
            'direct_learner': {k: v for k, v in direct.items() if k.endswith('per_s')}}


def learning(practice_steps: int, goals: int, round_steps: int = 0, namespaces: tuple[str, ...] = (),
             back_to_back: bool = False) -> dict:
    """`make demo`'s pipeline (trainer in its own process) next to the direct learner's figure (with
    back_to_back, the direct learner run right after, on the same host); with namespaces, several
    actors practise practice_steps each."""
    from rig import demo  # noqa: PLC0415 - deferred: rclpy, mujoco, torch
    name = 'graph_reach' + ('_rounds' if round_steps else '') + (f'_{len(namespaces)}actors' if namespaces else '')
    out = RUNS / name
    shutil.rmtree(out, ignore_errors=True)  # from scratch: an old data dir would be resumed from
    demo.main(['--practice-steps', str(practice_steps), '--goals', str(goals), '--round-steps', str(round_steps),
               '--out', str(out)] + (['--namespaces', *namespaces] if namespaces else []))
    section = 'actors' if namespaces else 'learning'
    command = (f'python -m bench.bench_graph --only {section} --practice-steps '
               f'{practice_steps * len(namespaces) if namespaces else practice_steps} --goals {goals}'
               + (f' --round-steps {round_steps}' if round_steps else ''))
    result = record(out, command, practice_steps=practice_steps, goals=goals, round_steps=round_steps)
    if namespaces:
        return result
    return versus_direct(result, direct_back_to_back(practice_steps) if back_to_back else None)


def record(out: Path, command: str, **extra) -> dict:
    """One learning figure from the demo's summary.json: median final distance (and at the start),
    the fraction of goals ending within 5 cm, wall, env steps/s, host, command."""
    summary = json.loads((out / 'summary.json').read_text())
    if (out / 'goals.png').exists():   # runs/ is not kept in git; its picture is
        GRAPH.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / 'goals.png', GRAPH / f"{out.name.removeprefix('graph_')}_goals.png")
    finals = np.array([g['final_distance'] for g in summary['goals']])
    return {**extra, 'actors': summary['actors'],
            'graph_median_final_distance_m': summary['median_final_distance_m'],
            'graph_median_start_distance_m': summary['median_start_distance_m'],
            'graph_within_5cm': float(np.mean(finals <= 0.05)),
            'graph_wall_s': summary['times_s']['total_s'], 'times_s': summary['times_s'],
            'env_steps_per_s': summary['times_s']['practice_env_steps_per_s'],
            'trainer': summary['trainer'], 'host': host(), 'command': command,
            'date': time.strftime('%Y-%m-%d %H:%M:%S')}


def direct_back_to_back(steps: int) -> dict:
    """The direct learner (`rig train`'s loop, bench_learn, seed 0, the default reach config) run now,
    next to the graph run: this VM's speed varies from day to day by up to 1.8x, so a wall ratio is
    only meaningful between runs on one host in one session. Its result goes to runs/, not learn/."""
    from bench import bench_learn  # noqa: PLC0415 - deferred: torch, mujoco
    results = RUNS / 'graph_direct'
    bench_learn.main(['--task', 'reach', '--seeds', '0', '--steps', str(steps), '--results-dir', str(results)])
    run = read_result(results / 'learn' / 'reach' / 'rig.json', 'learn')['runs'][0]
    return {'wall_s': run['wall_s'], 'median_final_distance_m': run['hand_distance_median'], 'steps': steps,
            'seed': run['seed'], 'date': time.strftime('%Y-%m-%d %H:%M:%S')}


def versus_direct(result: dict, now: dict | None = None) -> dict:
    """Next to the direct learner: its wall from `now` (direct_back_to_back, same host and session)
    where given, else from its stored figure (bench/results/learn/reach/rig.json), whose 3-seed median
    distance is the distance target either way."""
    if DIRECT.exists():
        direct = read_result(DIRECT, 'learn')
        result['direct_median_final_distance_m'] = direct.get('median_final_hand_distance_m')
        result['direct_wall_s'] = direct.get('median_wall_s')
        result['direct_steps'] = direct.get('steps')
        if now:
            result['direct_back_to_back'] = now
            result['direct_wall_s'] = now['wall_s']
        result['wall_vs_direct'] = result['graph_wall_s'] / result['direct_wall_s']
        result['target'] = 'wall within 1.2x of the direct learner, final distance no worse'
        result['meets_target'] = bool(result['wall_vs_direct'] <= 1.2 and result['graph_median_final_distance_m']
                                      <= result['direct_median_final_distance_m'])
    return result


class Watcher:
    """A graph running elsewhere (other processes, other hosts), driven over ROS as `rig.demo.run`
    drives the `rig up` graph: `spin_until`, `trainer_status`, `executor`. `alive()` says whether what
    runs the graph still does (a subclass checks its process)."""

    def __init__(self):
        # deferred: rclpy and the ROS messages (only the sections that need them)
        import rclpy  # noqa: PLC0415
        from rclpy.executors import SingleThreadedExecutor  # noqa: PLC0415
        from std_msgs.msg import String  # noqa: PLC0415

        from rig_base import qos  # noqa: PLC0415
        rclpy.init()
        self.executor = SingleThreadedExecutor()
        self.node = rclpy.create_node('bench_monitor')
        self.trainer_status: dict = {}
        self.node.create_subscription(String, '/rig/trainer_status',
                                      lambda m: setattr(self, 'trainer_status', json.loads(m.data)), qos.LATCHED_QOS)
        self.executor.add_node(self.node)

    def alive(self) -> None:
        """Raise if the graph is gone."""

    def spin_until(self, predicate=lambda: False, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while deadline is None or time.monotonic() < deadline:
            if predicate():
                return True
            self.alive()
            self.executor.spin_once(timeout_sec=0.05)
        return predicate()

    def close(self) -> None:
        import rclpy  # noqa: PLC0415 - deferred with __init__'s
        rclpy.try_shutdown()


class Launched(Watcher):
    """The sim graph started with the real `ros2 launch` (a colcon build of the package, as a user
    runs it), driven over ROS like the `rig up` graph."""

    def __init__(self, work: Path, *launch_args: str):
        from launch_util import VENV_BIN, Running, build_workspace  # noqa: PLC0415 - deferred: the tests' helpers
        env = build_workspace(work)
        self.run = Running([str(VENV_BIN / 'ros2'), 'launch', 'rig', 'sim.launch.py', *launch_args], env,
                           work / 'launch.log')
        super().__init__()

    def alive(self) -> None:
        if self.run.proc.poll() is not None:
            raise RuntimeError(f'ros2 launch exited ({self.run.proc.returncode}): {self.run.text()[-3000:]}')

    def close(self) -> float:
        """Ctrl-C to the launch; returns how long it took to stop."""
        try:
            rc = self.run.interrupt(timeout=30)
            if rc != 0:
                print(f'ros2 launch exited with {rc} on Ctrl-C', file=sys.stderr)
            return self.run.stopped_in
        finally:
            self.run.kill()
            super().close()


def launch_learning(practice_steps: int, goals: int, back_to_back: bool = False) -> dict:
    """The learning figure with the graph started by the real `ros2 launch` (one process per node);
    with back_to_back, the direct learner run right after, on the same host."""
    # deferred: rclpy, mujoco, torch
    from launch_util import tooling_missing  # noqa: PLC0415

    from rig import demo  # noqa: PLC0415
    missing = tooling_missing()
    if missing:
        return {'skipped': missing}
    out = RUNS / 'graph_reach_launch'
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    opts = demo.parse(['--practice-steps', str(practice_steps), '--goals', str(goals), '--out', str(out)])
    with tempfile.TemporaryDirectory(prefix='rig-bench-ws-') as work:
        t_start = time.time()
        g = Launched(Path(work), 'practice:=true', f'data_dir:={out / "data"}')
        try:
            print(demo.run(g, opts, [''], out, t_start))
        finally:
            stop_s = g.close()
    command = f'python -m bench.bench_graph --only launch --practice-steps {practice_steps} --goals {goals}'
    result = record(out, command, practice_steps=practice_steps, goals=goals, ctrl_c_s=stop_s)
    return versus_direct(result, direct_back_to_back(practice_steps) if back_to_back else None)


def host() -> str:
    return f'{platform.node()}: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--skip-learn', action='store_true')
    parser.add_argument('--practice-steps', type=int, default=10000)
    parser.add_argument('--goals', type=int, default=50)
    parser.add_argument('--round-steps', type=int, default=0,
                        help='pause practice every N steps for the trainer (recorded as learning_rounds)')
    parser.add_argument('--throughput-seconds', type=float, default=60.0)
    parser.add_argument('--direct', choices=['back-to-back', 'stored'], default='back-to-back',
                        help="learning, launch: the direct learner's wall to compare with, run right after the graph "
                             '(one seed, about as long again) or its stored 3-seed figure')
    parser.add_argument('--only', choices=['latency', 'throughput', 'learning', 'actors', 'launch'],
                        help='run one section; the others keep their last results in figures.json')
    args = parser.parse_args(argv)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    os.environ.setdefault('ROS_DOMAIN_ID', str(80 + os.getpid() % 10))
    os.environ.setdefault('MUJOCO_GL', 'egl')
    GRAPH.mkdir(parents=True, exist_ok=True)
    out = read_result(FIGURES, 'graph') if args.only and FIGURES.exists() else {}
    out['schema'] = SCHEMAS['graph']
    if args.only in (None, 'latency'):
        out['latency'] = latency()
        lat = out['latency']
        print(f"frame -> rig/cmd through encoder, policy, safety filter: p50 {lat['p50_ms']:.2f} ms "
              f"(target <= 5), p99 {lat['p99_ms']:.2f} ms (target <= 20), {lat['answered']}/{lat['frames']} "
              f"answered", flush=True)
    if args.only in (None, 'throughput'):
        out['throughput'] = throughput(args.throughput_seconds)
        tp = out['throughput']
        print(f"lockstep practice through the graph: {tp['graph_env_steps_per_s']:.0f} env steps/s, trainer "
              f"{tp['graph_grad_steps_per_s']:.0f} gradient steps/s; direct learner: {tp['direct_learner']}",
              flush=True)
    if args.only in (None, 'learning') and not args.skip_learn:
        key = 'learning_rounds' if args.round_steps else 'learning'
        out[key] = learning(args.practice_steps, args.goals, args.round_steps,
                            back_to_back=args.direct == 'back-to-back')
        ln = out[key]
        print(f"reach through graph + bags after {ln['practice_steps']} steps: median final distance "
              f"{ln['graph_median_final_distance_m']:.3f} m, wall {ln['graph_wall_s']:.0f} s; direct learner "
              f"{ln.get('direct_median_final_distance_m')} m, {ln.get('direct_wall_s')} s", flush=True)
    if args.only in (None, 'actors') and not args.skip_learn:
        out['actors'] = actors(out.get('learning'), args.practice_steps // 2, args.goals)
        a = out['actors']
        print(f"two actors x {a['practice_steps']} steps: {a['env_steps_per_s']:.0f} env steps/s "
              f"({a.get('env_steps_vs_one_actor', float('nan')):.2f}x one actor's), median final distance "
              f"{a['graph_median_final_distance_m']:.3f} m", flush=True)
    if args.only in (None, 'launch') and not args.skip_learn:
        out['launch'] = launch_learning(args.practice_steps, args.goals, back_to_back=args.direct == 'back-to-back')
        ln = out['launch']
        if 'skipped' in ln:
            print(f"through ros2 launch: skipped ({ln['skipped']})")
        else:
            print(f"reach through ros2 launch after {ln['practice_steps']} steps: median final distance "
                  f"{ln['graph_median_final_distance_m']:.3f} m, wall {ln['graph_wall_s']:.0f} s, "
                  f"Ctrl-C {ln['ctrl_c_s']:.1f} s", flush=True)
    FIGURES.write_text(json.dumps(out, indent=2))
    (GRAPH / 'figures.md').write_text(markdown(out))
    return 0


def actors(one: dict | None, practice_steps: int, goals: int) -> dict:
    """Two actors (env0, env1: one process, one trainer process) practising practice_steps each,
    against one actor practising twice as many (the learning section)."""
    result = learning(practice_steps, goals, namespaces=('env0', 'env1'))
    result['target'] = "env steps/s >= 1.6x one actor's; the same final distance"
    if one:
        result['one_actor'] = {k: one[k] for k in ('practice_steps', 'env_steps_per_s', 'graph_wall_s',
                                                   'graph_median_final_distance_m') if k in one}
        if 'env_steps_per_s' in one:
            result['env_steps_vs_one_actor'] = result['env_steps_per_s'] / one['env_steps_per_s']
            result['meets_target'] = bool(result['env_steps_vs_one_actor'] >= 1.6)
    return result


def markdown(out: dict) -> str:
    """figures.md: every section's figures, each with the command that produced it."""
    lines = ['# Node graph figures', '',
             'Written by `python -m bench.bench_graph` (`make bench`); JSON: figures.json.', '']
    if 'latency' in out:
        lat = out['latency']
        lines += ['## Frame -> rig/cmd latency (encoder, policy, safety filter: one process each)', '',
                  f"p50 {lat['p50_ms']:.2f} ms (target <= 5), p99 {lat['p99_ms']:.2f} ms (target <= 20), "
                  f"{lat['answered']}/{lat['frames']} frames answered. "
                  '`python -m bench.bench_graph --only latency`', '']
    if 'throughput' in out:
        tp = out['throughput']
        lines += ['## Lockstep practice throughput (`rig up sim --practice`)', '',
                  f"{tp['graph_env_steps_per_s']:.0f} env steps/s, trainer {tp['graph_grad_steps_per_s']:.0f} "
                  f"gradient steps/s over {tp['seconds']:.0f} s. `python -m bench.bench_graph --only throughput`", '']
    rows = [(k, out[k]) for k in ('learning', 'learning_rounds', 'actors', 'launch')
            if k in out and 'skipped' not in out[k]]
    if rows:
        lines += ['## Learning reach through the graph (trainer in its own process) vs the direct learner', '',
                  '| run | actors x practice steps | env steps/s | wall (s) | median final distance (m) | '
                  'direct learner: wall (s), distance (m) | host | command |', '|---|---|---|---|---|---|---|---|']
        for key, r in rows:
            direct = (f"{r['direct_wall_s']:.0f}" + (' (run right after)' if r.get('direct_back_to_back') else '')
                      + f", {r['direct_median_final_distance_m']:.3f}" if r.get('direct_wall_s') else '')
            lines.append(f"| {key} | {len(r.get('actors', ['/']))} x {r['practice_steps']} | "
                         f"{r.get('env_steps_per_s', float('nan')):.0f} | {r['graph_wall_s']:.0f} | "
                         f"{r['graph_median_final_distance_m']:.3f} | {direct} | {r.get('host', '')} | "
                         f"`{r.get('command', '')}` |")
        for key, r in rows:
            if 'meets_target' in r:
                extra = (f" (wall {r['wall_vs_direct']:.2f}x the direct learner's)" if 'wall_vs_direct' in r else
                         f" (env steps/s {r['env_steps_vs_one_actor']:.2f}x one actor's)")
                lines.append(f"\n{key}: target {r['target']}{extra}: {'met' if r['meets_target'] else 'NOT met'}.")
        lines.append('')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    sys.exit(main())
