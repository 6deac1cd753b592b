"""`make demo`: RIG end to end in simulation, through the real node graph.

1. Bring up the simulated graph as `rig up sim` does (sim bridge, encoder, policy, safety filter and
   recorder in this process, the trainer in its own), with a fresh data directory.
2. Practise from scratch on `reach` until the trainer has pretrained its VAE on the first frames
   (as `rig train` collects its pretraining images first), then `--practice-steps` more: the policy
   imagines goals from the VAE prior; every episode is recorded to a bag; the trainer, in its own
   process as under `ros2 launch`, learns from the bags meanwhile and hot-swaps its checkpoints into
   encoder and policy. At the end of practice it catches up on the last bags.
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

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import rclpy
from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger
from tqdm import tqdm

from rig.bringup import Graph
from rig.graph import namespaces
from rig_base import qos
from rig_base.image_msgs import image_to_numpy
from rig_base.msgs import operator_episode_end


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--task', default='reach')
    p.add_argument('--arm', default='sawyer')
    p.add_argument('--practice-steps', type=int, default=10000,
                   help='practice steps of each actor after the VAE pretraining frames (as `rig train --steps`)')
    p.add_argument('--params-file', action='append', default=[],
                   help='ROS 2 parameter file over config/sim.yaml (as `rig up --params-file`), e.g. a trainer '
                        "learn_set: ['vae.pretrain_images=1000']")
    p.add_argument('--namespaces', nargs='*', default=[],
                   help='one actor per namespace, all feeding the one trainer (default: one, root); the '
                        'operator goals go to the first')
    p.add_argument('--goals', type=int, default=6)
    p.add_argument('--round-steps', type=int, default=0,
                   help='pause practice every this many steps until the trainer has caught up (0: never)')
    p.add_argument('--train-timeout', type=float, default=600.0,
                   help='longest wait for the trainer to catch up (after a round, after practice)')
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
    actors = namespaces(opts.namespaces)
    up = argparse.Namespace(graph='sim', task=opts.task, arm=opts.arm, data_dir=str(out / 'data'),
                            namespace=' '.join(actors), practice=True, params_file=opts.params_file, log_level='warn')
    t_start = time.time()
    print(f'rig demo: task={opts.task} arm={opts.arm}, actors {[a or "/" for a in actors]}, output in {out}',
          flush=True)
    with Graph(up) as g:
        summary = run(g, opts, actors, out, t_start)
    print(summary)
    return 0


def same_checkpoint(a: str | None, b: str | None) -> bool:
    """Whether two paths name the same checkpoint of one trainer: its directory name (an actor on
    another host drives its own copy, under another path)."""
    return bool(a) and bool(b) and Path(a).name == Path(b).name


def run(g, opts, actors: list[str], out: Path, t_start: float) -> str:
    """Practise, let the trainer catch up, play the operator, write the report: all over ROS, so it
    drives any graph brought up with these actors (`rig up`, `ros2 launch`). `g` spins (`spin_until`),
    holds the newest `trainer_status` and an executor to add this side's nodes to."""
    clients = [ActorClient(g, ns) for ns in actors]
    operator = Operator(g, actors[0])

    def counters() -> dict:   # the trainer process's, from rig/trainer_status
        return g.trainer_status.get('counters', {'episodes': 0, 'updates': 0, 'vae_fits': 0})

    def trained():
        s = g.trainer_status
        return bool(s.get('caught_up')) and all(same_checkpoint(s.get('latest'), c.checkpoint) for c in clients)

    def catch_up(desc: str) -> None:
        """Practice paused: wait until the trainer has read every bag, done the gradient steps it owes
        them, and every actor runs its newest checkpoint."""
        g.spin_until(lambda: False, 1.0)  # the last bags close; the status reflects them
        with tqdm(desc=desc, unit='update', leave=False) as wait:
            def done():
                wait.total = counters()['updates'] + g.trainer_status.get('updates_owed', 0)
                wait.update(counters()['updates'] - wait.n)
                return trained()
            if not g.spin_until(done, timeout=opts.train_timeout):
                print(f'rig demo: the trainer did not catch up in {opts.train_timeout:.0f} s '
                      f'({g.trainer_status}); going on', file=sys.stderr)

    # -- practice: the trainer (its own process) learns from the bags meanwhile and hot-swaps its
    # checkpoints in; with --round-steps, practice pauses every so often until it has caught up
    def done_by(c, b) -> int:   # practice steps of actor c since the VAE was pretrained
        return min(c.commands - b, opts.practice_steps)

    def sent() -> int:
        return sum(done_by(c, b) for c, b in zip(clients, base))

    # -- pretraining frames: as `rig train` collects its VAE pretraining images before its first step,
    # the actors practise until the trainer has the first vae.pretrain_images frames, then wait while it
    # fits its VAE on them (the learner's schedule: rig_learn.schedule; practice meanwhile would only
    # slow the fit: those transitions earn no updates); --practice-steps counts the steps after that.
    t0 = time.perf_counter()
    for c in clients:
        c.set_practice(True)
    with tqdm(desc='practice until the VAE is pretrained', unit='frame') as bar:
        def pretrained():
            c, need = counters(), g.trainer_status.get('pretrain_images', 0)
            bar.total = need or None
            bar.update(min(c.get('frames', 0), need) - bar.n)
            bar.set_postfix(vae_fits=c['vae_fits'], refresh=False)
            if need and c.get('frames', 0) >= need:
                for client in clients:
                    client.set_practice(False, wait=False)
            return c['vae_fits'] > 0 and all(same_checkpoint(cl.checkpoint, g.trainer_status.get('latest'))
                                             for cl in clients)
        if not g.spin_until(pretrained, timeout=opts.train_timeout):
            raise RuntimeError(f'the trainer did not pretrain its VAE within {opts.train_timeout:.0f} s '
                               f'({g.trainer_status})')
    pretraining_s, base = time.perf_counter() - t0, [c.commands for c in clients]

    step = opts.round_steps if opts.round_steps > 0 else opts.practice_steps
    rounds = list(range(step, opts.practice_steps, step)) + [opts.practice_steps]
    practising_s, practised = 0.0, 0
    with tqdm(total=opts.practice_steps * len(actors), desc='practice (imagined goals)', unit='step') as bar:
        for target in rounds:
            for c in clients:
                c.set_practice(True)
            before = [c.commands for c in clients]
            # timed from when every actor is sending commands: not the start-up
            g.spin_until(lambda: all(c.commands > b for c, b in zip(clients, before)))
            t0, n0 = time.perf_counter(), sent()

            def practising():
                c = counters()
                bar.set_postfix(episodes=c['episodes'], updates=c['updates'], vae_fits=c['vae_fits'],
                                refresh=False)
                bar.update(sent() - bar.n)  # redraws at most every 0.1 s
                for client, b in zip(clients, base):     # each actor stops at its own target
                    if client.commands - b >= target and client.practising:
                        client.set_practice(False, wait=False)
                return all(client.commands - b >= target for client, b in zip(clients, base))
            g.spin_until(practising)
            practising_s += time.perf_counter() - t0
            practised += sent() - n0
            for c in clients:
                c.set_practice(False)
            if target < opts.practice_steps:
                catch_up(f'round to {target} steps: trainer catching up')
    t_practised = time.time() - t_start
    catch_up('trainer catching up on the last bags')
    t_practice = time.time() - t_start
    print(f'the actors now run {Path(clients[0].checkpoint).name}: {counters()}', flush=True)

    # -- operator goals -----------------------------------------------------------------------------
    results = [operator.reach_goal(k) for k in tqdm(range(opts.goals), desc=f'operator goals ({actors[0] or "/"})',
                                                    unit='goal')]
    times = {'pretraining_s': pretraining_s, 'practice_s': t_practised, 'practice_and_training_s': t_practice,
             'total_s': time.time() - t_start,
             'practising_s': practising_s,
             'practice_env_steps_per_s': practised / max(practising_s, 1e-9)}
    return write_report(out, opts, actors, results, counters(), times)


class ActorClient:
    """One actor as seen over ROS: its policy's commands counted, its practice switched with the
    policy's `rig/practice` service, the checkpoint it runs (`policy/checkpoint`, latched)."""

    def __init__(self, g, namespace: str):

        self.g, self.SetBool = g, SetBool
        self.node = rclpy.create_node('demo_actor', namespace=namespace or None)
        g.executor.add_node(self.node)
        self.commands, self.practising, self.checkpoint = 0, None, ''
        self.node.create_subscription(TwistStamped, 'rig/cmd_raw', self._on_cmd, qos.COMMAND_QOS)
        self.node.create_subscription(String, 'policy/checkpoint', self._on_checkpoint, qos.LATCHED_QOS)
        self.practice = self.node.create_client(SetBool, 'rig/practice')

    def _on_cmd(self, msg) -> None:
        self.commands += 1

    def _on_checkpoint(self, msg) -> None:
        self.checkpoint = msg.data

    def set_practice(self, on: bool, wait: bool = True) -> None:
        if self.practising == on:
            return
        self.practising = on
        if not self.g.spin_until(self.practice.service_is_ready, 60.0):
            raise RuntimeError(f'{self.practice.srv_name}: no policy answers')
        future = self.practice.call_async(self.SetBool.Request(data=on))
        if wait and not self.g.spin_until(future.done, 30.0):
            raise RuntimeError(f'{self.practice.srv_name} did not answer')


class Operator:
    """Plays the operator over ROS: resets the sim, asks for goal images, watches episodes, and reads
    the true distances from the bridge's `sim/state` (metrics only)."""

    def __init__(self, g, namespace: str = ''):

        self.g = g
        self.node = rclpy.create_node('demo_operator', namespace=namespace or None)
        g.executor.add_node(self.node)
        self.Trigger = Trigger
        self.reset = self.node.create_client(Trigger, 'sim/reset')
        self.sample_goal = self.node.create_client(Trigger, 'sim/sample_goal')
        self.state = self.node.create_client(Trigger, 'sim/state')
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
        if not self.g.spin_until(client.service_is_ready, timeout):
            raise RuntimeError(f'{client.srv_name}: no sim bridge answers')
        future = client.call_async(self.Trigger.Request())
        if not self.g.spin_until(future.done, timeout) or not future.result().success:
            raise RuntimeError(f'{client.srv_name} failed')
        return json.loads(future.result().message)

    def reach_goal(self, k: int, timeout: float = 120.0) -> dict:
        self.call(self.reset)
        n_goals, n_events = len(self.goal_images), len(self.events)
        self.call(self.sample_goal)
        start = self.call(self.state)   # the live scene is restored exactly after the goal's render
        self.g.spin_until(lambda: len(self.goal_images) > n_goals, 10.0)

        def done():
            return operator_episode_end(self.events, n_events) is not None
        if not self.g.spin_until(done, timeout):
            raise RuntimeError(f'goal {k}: the policy did not finish its episode in {timeout:.0f} s')
        self.g.spin_until(lambda: False, 0.3)
        final = self.call(self.state)
        return {
            'goal': k,
            'goal_state': start['goal_state'],
            'final_state': final['state'],
            'start_distance': start['distance'],
            'final_distance': final['distance'],
            'steps': operator_episode_end(self.events, n_events)['steps'],
            'goal_image': image_to_numpy(self.goal_images[-1]),
            'reached_image': image_to_numpy(self.frames[-1]),
        }


def write_report(out: Path, opts, actors: list[str], results: list[dict], counters: dict, times: dict) -> str:
    matplotlib.use('Agg')
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
            'actors': [a or '/' for a in actors],
            'trainer': counters, 'times_s': times,
            'median_final_distance_m': float(np.median(final)), 'median_start_distance_m': float(np.median(start)),
            'goals': [{k: v for k, v in r.items() if not k.endswith('_image')} for r in results]}
    (out / 'summary.json').write_text(json.dumps(data, indent=2))
    lines = [f'# rig demo: {opts.task} ({opts.arm})', '',
             f'Practice: {times["pretraining_s"]:.0f} s until the trainer had pretrained its VAE on the first '
             f'recorded frames (vae.pretrain_images), then {opts.practice_steps} steps'
             + (f' by each of {len(actors)} actors ({", ".join(actors)})' if len(actors) > 1 else '')
             + f' through the node graph with imagined goals, {times["practice_env_steps_per_s"]:.0f} env '
             f'steps/s '
             f'({counters["episodes"]} episodes in bags, {counters["updates"]} gradient steps, '
             f'{counters["vae_fits"]} VAE fits); wall time {times["total_s"] / 60:.1f} min '
             f'(practice {times["practice_s"]:.0f} s, then the trainer caught up: '
             f'{times["practice_and_training_s"]:.0f} s in all'
             + (f', practice paused every {opts.round_steps} steps' if 0 < opts.round_steps < opts.practice_steps
                else '') + ').', '',
             '| goal | distance at start (m) | final distance (m) |', '|---|---|---|']
    lines += [f'| {r["goal"]} | {r["start_distance"]:.3f} | {r["final_distance"]:.3f} |' for r in results]
    lines += ['', f'Median final distance {np.median(final):.3f} m (at start {np.median(start):.3f} m). '
              f'Picture: goals.png.']
    text = '\n'.join(lines) + '\n'
    (out / 'summary.md').write_text(text)
    return text


if __name__ == '__main__':
    sys.exit(main())
