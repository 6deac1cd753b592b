"""The node graph's figures: frame -> rig/cmd latency, lockstep throughput, and learning through bags.

    python -m bench.bench_graph [--skip-learn] [--practice-steps 10000] [--goals 50]

1. Latency: encoder, policy and safety filter each in their own process (as `ros2 launch` runs them);
   this process publishes 48x48 frames on camera/image_raw at 20 Hz and times the rig/cmd each one
   causes (safety filter in on_input mode, so a command is the answer to one frame; in rate mode add
   up to one control period). Targets: p50 <= 5 ms, p99 <= 20 ms.
2. Throughput: the composed sim graph practising (`rig up sim --practice`): env steps/s through ROS and
   the trainer's gradient steps/s, next to the direct learner's (bench/results/learn_reach.json).
3. Learning through the graph: `make demo`'s pipeline with --practice-steps and --goals image goals,
   median final hand distance next to the direct learner's at the same step count (target: within 20%).

Writes bench/results/graph.json and graph.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / 'bench' / 'results'
sys.path.insert(0, str(REPO / 'test'))


def latency(n_frames: int = 600, rate_hz: float = 20.0) -> dict:
    import rclpy
    from geometry_msgs.msg import PoseStamped, TwistStamped
    from sensor_msgs.msg import Image

    from rig import qos
    from rig_learn.agent import RIGAgent
    from rig_learn.config import LearnConfig
    from rig_perception.image_msgs import numpy_to_image
    from rig_trainer.online import TrainerConfig, agent_spec
    from ros_util import spawn_node, spin_until

    work = RESULTS / 'runs' / 'latency'
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
    from rig.bringup import Graph
    data = RESULTS / 'runs' / f'throughput-{time.strftime("%Y%m%d-%H%M%S")}'
    up = argparse.Namespace(graph='sim', task='reach', arm='sawyer', data_dir=str(data / 'data'),
                            practice=True, params_file=[])
    with Graph(up, extra_ros_args=['--log-level', 'warn']) as g:
        policy, trainer = g.node('policy'), g.node('trainer').trainer
        g.spin_until(lambda: trainer.counters['vae_fits'] > 0, 300)  # past VAE pretraining
        s0, u0, t0 = policy.commands_sent, trainer.counters['updates'], time.perf_counter()
        g.spin_until(timeout=seconds)
        dt = time.perf_counter() - t0
        steps, updates = policy.commands_sent - s0, trainer.counters['updates'] - u0
    direct = {}
    learn = RESULTS / 'learn_reach.json'
    if learn.exists():
        direct = json.loads(learn.read_text())
    return {'graph_env_steps_per_s': steps / dt, 'graph_grad_steps_per_s': updates / dt, 'seconds': dt,
            'direct_learner': {k: v for k, v in direct.items() if k.endswith('per_s')}}


def learning(practice_steps: int, goals: int) -> dict:
    import shutil

    from rig import demo
    out = RESULTS / 'runs' / 'graph_reach'
    shutil.rmtree(out, ignore_errors=True)  # from scratch: an old data dir would be resumed from
    demo.main(['--practice-steps', str(practice_steps), '--goals', str(goals), '--out', str(out)])
    summary = json.loads((out / 'summary.json').read_text())
    result = {'practice_steps': practice_steps, 'goals': goals,
              'graph_median_final_distance_m': summary['median_final_distance_m'],
              'graph_wall_s': summary['times_s']['total_s'], 'trainer': summary['trainer']}
    learn = RESULTS / 'learn_reach.json'
    if learn.exists():
        direct = json.loads(learn.read_text())
        result['direct_median_final_distance_m'] = direct.get('median_final_hand_distance_m')
        result['direct_steps'] = direct.get('steps')
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--skip-learn', action='store_true')
    parser.add_argument('--practice-steps', type=int, default=10000)
    parser.add_argument('--goals', type=int, default=50)
    parser.add_argument('--throughput-seconds', type=float, default=60.0)
    parser.add_argument('--only', choices=['latency', 'throughput', 'learning'],
                        help='run one section; the others keep their last results in graph.json')
    args = parser.parse_args(argv)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    os.environ.setdefault('ROS_DOMAIN_ID', str(80 + os.getpid() % 10))
    os.environ.setdefault('MUJOCO_GL', 'egl')
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / 'graph.json'
    out = json.loads(path.read_text()) if args.only and path.exists() else {}
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
        out['learning'] = learning(args.practice_steps, args.goals)
        ln = out['learning']
        print(f"reach through graph + bags after {ln['practice_steps']} steps: median final distance "
              f"{ln['graph_median_final_distance_m']:.3f} m; direct learner "
              f"{ln.get('direct_median_final_distance_m')}", flush=True)
    path.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
