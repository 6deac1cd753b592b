"""`make demo`: RIG end to end in simulation, through the real node graph.

1. Bring up the simulated graph in one process (sim bridge, encoder, policy, safety filter, recorder,
   trainer: what `rig up sim` composes), with a fresh data directory.
2. Practise from scratch on `reach`, in rounds: the policy imagines goals from the VAE prior; every
   episode is recorded to a bag; after each round the trainer catches up on the bags and hot-swaps its
   checkpoint into encoder and policy, so the next round practises with a better policy.
3. Act as the operator: reset the arm, ask the bridge for a goal image (`sim/sample_goal`), and let
   the policy reach for it.
4. Write `goals.png` (goal image | reached image, per goal) and `summary.md`/`summary.json` with the
   final hand distances next to the distances at the start.

    python -m rig.demo [--task reach] [--practice-steps 10000] [--goals 6] [--out runs/demo]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--task', default='reach')
    p.add_argument('--arm', default='sawyer')
    p.add_argument('--practice-steps', type=int, default=10000)
    p.add_argument('--goals', type=int, default=6)
    p.add_argument('--round-steps', type=int, default=1000,
                   help='practise this many steps, then let the trainer catch up; 0: one round')
    p.add_argument('--train-timeout', type=float, default=600.0,
                   help='longest wait for the trainer to finish its gradient steps after a round')
    p.add_argument('--out', default='')
    return p.parse_args(argv)


def main(argv=None) -> int:
    opts = parse(argv)
    out = Path(opts.out or f'runs/demo-{time.strftime("%Y%m%d-%H%M%S")}').resolve()
    if (out / 'data').exists():
        print(f'rig demo: {out} already holds a run (its trainer would resume it); choose another --out',
              file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    from rig.bringup import Graph
    up = argparse.Namespace(graph='sim', task=opts.task, arm=opts.arm, data_dir=str(out / 'data'),
                            practice=True, params_file=[])
    t_start = time.time()
    print(f'rig demo: task={opts.task} arm={opts.arm}, output in {out}', flush=True)
    with Graph(up, extra_ros_args=['--log-level', 'warn']) as g:
        bridge, policy, trainer = g.node('sim_bridge'), g.node('policy'), g.node('trainer').trainer
        operator = Operator(g)

        # -- practice in rounds: practise, then let the trainer catch up and hot-swap its checkpoint ---
        # (composed in one process, the trainer thread gets little time while the lockstep loop runs;
        # rounds keep the data coming from an improving policy, as interleaved training would)
        def trained():
            return trainer.caught_up and policy.checkpoint_path == str(trainer.latest)

        step = opts.round_steps if opts.round_steps > 0 else opts.practice_steps
        rounds = list(range(step, opts.practice_steps, step)) + [opts.practice_steps]
        with tqdm(total=opts.practice_steps, desc='practice (imagined goals)', unit='step') as bar:
            for target in rounds:
                policy.set_practice(True)

                def practising():
                    c = trainer.counters
                    bar.set_postfix(episodes=c['episodes'], updates=c['updates'], vae_fits=c['vae_fits'],
                                    refresh=False)
                    bar.update(min(policy.commands_sent, target) - bar.n)  # redraws at most every 0.1 s
                    return policy.commands_sent >= target
                g.spin_until(practising)
                policy.set_practice(False)
                g.spin_until(lambda: False, 1.0)  # the last bag closes and is ingested
                g.spin_until(trained, timeout=opts.train_timeout)
        t_practice = time.time() - t_start
        print(f'policy now runs {Path(policy.checkpoint_path).name}: {trainer.counters}', flush=True)

        # -- operator goals -------------------------------------------------------------------------
        results = []
        for k in tqdm(range(opts.goals), desc='operator goals', unit='goal'):
            results.append(operator.reach_goal(bridge, policy, k))
    t_total = time.time() - t_start
    summary = write_report(out, opts, results, trainer.counters,
                           {'practice_and_training_s': t_practice, 'total_s': t_total})
    print(summary)
    return 0


class Operator:
    """Plays the operator over ROS: resets the sim, asks for goal images, watches episodes."""

    def __init__(self, g):
        import rclpy
        from sensor_msgs.msg import Image
        from std_msgs.msg import String
        from std_srvs.srv import Trigger

        from rig import qos
        self.g = g
        self.node = rclpy.create_node('demo_operator')
        g.executor.add_node(self.node)
        g.nodes['/demo_operator'] = self.node
        self.Trigger = Trigger
        self.reset = self.node.create_client(Trigger, 'sim/reset')
        self.sample_goal = self.node.create_client(Trigger, 'sim/sample_goal')
        self.events: list[dict] = []
        self.frames: list = []
        self.goal_images: list = []
        self.node.create_subscription(String, 'rig/episode', lambda m: self.events.append(json.loads(m.data)),
                                      qos.EPISODE_QOS)
        self.node.create_subscription(Image, 'camera/image_raw', self._on_frame, qos.CAMERA_SUBSCRIBER_QOS)
        self.node.create_subscription(Image, 'rig/goal_image', self.goal_images.append, qos.GOAL_IMAGE_QOS)

    def _on_frame(self, msg) -> None:
        self.frames[:] = [msg]

    def call(self, client, timeout=30.0):
        future = client.call_async(self.Trigger.Request())
        if not self.g.spin_until(future.done, timeout) or not future.result().success:
            raise RuntimeError(f'{client.srv_name} failed')
        return json.loads(future.result().message)

    def reach_goal(self, bridge, policy, k: int, timeout: float = 120.0) -> dict:
        from rig_perception.image_msgs import image_to_numpy
        self.call(self.reset)
        start_state = bridge.env.scene.state()
        n_goals, n_events = len(self.goal_images), len(self.events)
        goal_state = np.asarray(self.call(self.sample_goal)['goal_state'])
        self.g.spin_until(lambda: len(self.goal_images) > n_goals, 10.0)

        def done():
            return any(e['event'] == 'end' for e in self.events[n_events:])
        if not self.g.spin_until(done, timeout):
            raise RuntimeError(f'goal {k}: the policy did not finish its episode in {timeout:.0f} s')
        self.g.spin_until(lambda: False, 0.3)
        final_state = bridge.env.scene.state()
        return {
            'goal': k,
            'goal_state': goal_state.tolist(),
            'final_state': final_state.tolist(),
            'start_distance': float(bridge.env.task_distance(start_state, goal_state)),
            'final_distance': float(bridge.env.task_distance(final_state, goal_state)),
            'steps': next(e['steps'] for e in self.events[n_events:] if e['event'] == 'end'),
            'goal_image': image_to_numpy(self.goal_images[-1]),
            'reached_image': image_to_numpy(self.frames[-1]),
        }


def write_report(out: Path, opts, results: list[dict], counters: dict, times: dict) -> str:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    n = len(results)
    cols = min(n, 10)
    blocks = -(-n // cols)  # a block is a goal row over a reached row
    fig, axes = plt.subplots(2 * blocks, cols, figsize=(1.6 * cols, 3.4 * blocks + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis('off')
    for i, r in enumerate(results):
        b, c = divmod(i, cols)
        for row, key in enumerate(('goal_image', 'reached_image')):
            ax = axes[2 * b + row][c]
            ax.imshow(r[key], interpolation='nearest')
            ax.set_title(f'goal {i}' if row == 0 else f'reached: {r["final_distance"] * 100:.1f} cm', fontsize=8)
    fig.suptitle(f'rig demo ({opts.task}): operator goal images (top), what the policy reached (bottom)',
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out / 'goals.png', dpi=120)
    plt.close(fig)

    final = np.array([r['final_distance'] for r in results])
    start = np.array([r['start_distance'] for r in results])
    data = {'task': opts.task, 'arm': opts.arm, 'practice_steps': opts.practice_steps,
            'trainer': counters, 'times_s': times,
            'median_final_distance_m': float(np.median(final)), 'median_start_distance_m': float(np.median(start)),
            'goals': [{k: v for k, v in r.items() if not k.endswith('_image')} for r in results]}
    (out / 'summary.json').write_text(json.dumps(data, indent=2))
    lines = [f'# rig demo: {opts.task} ({opts.arm})', '',
             f'Practice: {opts.practice_steps} steps through the node graph with imagined goals '
             f'({counters["episodes"]} episodes in bags, {counters["updates"]} gradient steps, '
             f'{counters["vae_fits"]} VAE fits); wall time {times["total_s"] / 60:.1f} min '
             f'(practice and training in rounds: {times["practice_and_training_s"]:.0f} s).', '',
             '| goal | distance at start (m) | final distance (m) |', '|---|---|---|']
    lines += [f'| {r["goal"]} | {r["start_distance"]:.3f} | {r["final_distance"]:.3f} |' for r in results]
    lines += ['', f'Median final distance {np.median(final):.3f} m (at start {np.median(start):.3f} m). '
              f'Picture: goals.png.']
    text = '\n'.join(lines) + '\n'
    (out / 'summary.md').write_text(text)
    return text


if __name__ == '__main__':
    sys.exit(main())
