"""Rehearsed real cell: reach from scratch on the simulated UR5e (or Sawyer) cell, in wall-clock time.

    python -m bench.bench_cell [--arm ur5e] [--minutes 30] [--eval-every 10] [--eval-goals 10] [--goals 50]
                               [--params-file FILE --tag NAME]   # a variant: bench/results/sim_cell/<arm>_<NAME>.json

`rig up robot --arm ARM --sim-cell --trainer --practice`: the robot graph with its own config files
(camera -> encoder -> policy -> safety_filter -> arm_adapter -> simulated driver, at 10 Hz), the
trainer in its own process, learning from the bags as they close. Every `--eval-every` minutes of
practice, and at the end, practice pauses and the operator's goals go through the cell itself: the
arm is sent home (`rig/home`), a goal image of the task's goal distribution is published on
`rig/goal_image` (`sim/sample_goal`), the policy runs its operator episode, and the true hand distance
is read from the simulated driver (`sim/state`, metrics only). The trainer keeps training meanwhile.

Reported: the median final hand distance against practice minutes, the transitions trained, and the
latency from a camera frame to the controller command that answers it (the frame's stamp, kept by the
camera node and the policy, to the policy's rig/cmd_raw; then the next rig/cmd of the safety filter
and the next controller message of the arm adapter after it). Writes bench/results/sim_cell/<arm>.json
(.md, _curve.png, _goals.png beside it).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.bench_graph import host
from bench.layout import REPO, RUNS, SCHEMAS, SIM_CELL, repo_relative

SUCCESS_M = 0.05   # the reach task's success distance (rig_sim.tasks.HAND_SUCCESS_DISTANCE)


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    env.setdefault('MUJOCO_GL', 'egl')
    env['PYTHONPATH'] = os.pathsep.join([str(REPO / 'src'), str(REPO), env.get('PYTHONPATH', '')]).rstrip(os.pathsep)
    return env


def frame_to_controller_ms(raw, cmd, out, cmd_moving=None):
    """Frame -> controller command [ms] for each policy command: `raw` (arrival ns, frame stamp ns) of
    rig/cmd_raw, then the next rig/cmd arrival (`cmd`, ns, sorted) after it and the next controller
    message (`out`, ns, sorted) after that. Unstamped commands, and the last ones nothing answered
    yet, are left out; so are, with `cmd_moving` (per rig/cmd: not zero), those the safety filter
    answered with a zero (at the workspace box's edge, stale, e-stop): the arm adapter sends a zero
    burst and then nothing, so the next controller message after them is not their answer."""
    import numpy as np  # noqa: PLC0415 - deferred with the rest (see Cell)
    cmd, out = np.asarray(cmd, np.int64), np.asarray(out, np.int64)
    moving = np.ones(len(cmd), bool) if cmd_moving is None else np.asarray(cmd_moving, bool)
    got = []
    for arrival, stamp in raw:
        i = np.searchsorted(cmd, arrival)
        if stamp <= 0 or i >= len(cmd) or not moving[i]:
            continue
        j = np.searchsorted(out, cmd[i])
        if j < len(out):
            got.append((out[j] - stamp) / 1e6)
    return np.array(got)


def zeroed_by_filter(raw, cmd, cmd_moving) -> int:
    """How many policy commands the safety filter answered with a zero (frame_to_controller_ms)."""
    import numpy as np  # noqa: PLC0415
    cmd = np.asarray(cmd, np.int64)
    idx = np.searchsorted(cmd, [arrival for arrival, _ in raw])
    return int(sum(1 for i in idx if i < len(cmd) and not cmd_moving[i]))


class Cell:
    """The operator's and the meter's view of a running cell, over ROS."""

    def __init__(self, arm: str):
        # Deferred: the module's --help and the page generator need no ROS.
        import numpy as np  # noqa: PLC0415
        import rclpy  # noqa: PLC0415
        from geometry_msgs.msg import TwistStamped  # noqa: PLC0415
        from sensor_msgs.msg import Image, JointState  # noqa: PLC0415
        from std_msgs.msg import Float64MultiArray, String  # noqa: PLC0415
        from std_srvs.srv import SetBool, Trigger  # noqa: PLC0415

        from rig_base import qos  # noqa: PLC0415
        from rig_base.image_msgs import image_to_numpy  # noqa: PLC0415
        from rig_base.msgs import operator_episode_end, stamp_ns  # noqa: PLC0415
        from rig_sim.cell import DRIVERS  # noqa: PLC0415
        self.np, self.rclpy, self.SetBool, self.Trigger, self.to_numpy = np, rclpy, SetBool, Trigger, image_to_numpy
        self.episode_end = operator_episode_end
        rclpy.init()
        self.node = rclpy.create_node('bench_cell')
        self.raw, self.cmd, self.out = [], [], []      # (arrival ns, frame stamp ns) / arrival ns
        self.events, self.status, self.frames, self.goal_images = [], {}, [], []
        clock = self.node.get_clock()
        # Stamps are ROS time; arrivals are taken on the same clock so the two can be subtracted.
        self.node.create_subscription(TwistStamped, '/rig/cmd_raw',
                                      lambda m: self.raw.append((clock.now().nanoseconds, stamp_ns(m.header.stamp))),
                                      qos.COMMAND_QOS)
        self.cmd_moving = []   # per rig/cmd: is it not zero (frame_to_controller_ms)
        self.node.create_subscription(TwistStamped, '/rig/cmd', self._on_cmd, qos.COMMAND_QOS)
        self._clock = clock
        driver = DRIVERS[arm]
        kind = Float64MultiArray if driver.velocity_type == 'array' else JointState
        self.node.create_subscription(kind, driver.velocity_topic, lambda m: self.out.append(clock.now().nanoseconds),
                                      qos.COMMAND_QOS)
        self.node.create_subscription(String, '/rig/episode', lambda m: self.events.append(json.loads(m.data)),
                                      qos.EPISODE_QOS)
        self.node.create_subscription(String, '/rig/trainer_status', lambda m: self.status.update(json.loads(m.data)),
                                      qos.LATCHED_QOS)
        self.node.create_subscription(Image, '/camera/image_raw', lambda m: self.frames.__setitem__(slice(None), [m]),
                                      qos.CAMERA_SUBSCRIBER_QOS)
        self.node.create_subscription(Image, '/rig/goal_image', self.goal_images.append, qos.GOAL_IMAGE_QOS)
        self.practice = self.node.create_client(SetBool, '/rig/practice')
        self.home = self.node.create_client(Trigger, '/rig/home')
        self.sample_goal = self.node.create_client(Trigger, '/sim/sample_goal')
        self.state = self.node.create_client(Trigger, '/sim/state')

    def _on_cmd(self, m) -> None:
        self.cmd.append(self._clock.now().nanoseconds)
        v = m.twist.linear
        self.cmd_moving.append(bool(v.x or v.y or v.z))

    def spin(self, seconds: float, until=lambda: False) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if until():
                return True
            self.rclpy.spin_once(self.node, timeout_sec=0.05)
        return until()

    def call(self, client, request, timeout: float = 60.0):
        if not self.spin(timeout, client.service_is_ready):
            raise RuntimeError(f'{client.srv_name}: nobody answers')
        future = client.call_async(request)
        if not self.spin(timeout, future.done):
            raise RuntimeError(f'{client.srv_name} did not answer in {timeout:.0f} s')
        return future.result()

    def set_practice(self, on: bool) -> None:
        self.call(self.practice, self.SetBool.Request(data=on))

    def reach_goal(self, k: int, timeout: float = 60.0) -> dict:
        for _ in range(3):   # as an operator would: a move home stopped by a stale joint state, again
            home = self.call(self.home, self.Trigger.Request(), timeout=60.0)
            if home.success:
                break
            print(f'  goal {k}: rig/home failed ({home.message}); again', flush=True)
            self.spin(1.0)
        else:
            raise RuntimeError(f'goal {k}: rig/home failed 3 times: {home.message}')
        n_goals, n_events = len(self.goal_images), len(self.events)
        self.call(self.sample_goal, self.Trigger.Request())
        start = json.loads(self.call(self.state, self.Trigger.Request()).message)
        self.spin(10.0, lambda: len(self.goal_images) > n_goals)
        ended = lambda: self.episode_end(self.events, n_events) is not None   # this goal's episode, not the last
        if not self.spin(timeout, ended):
            raise RuntimeError(f'goal {k}: no operator episode ended within {timeout:.0f} s')
        self.spin(0.3)
        final = json.loads(self.call(self.state, self.Trigger.Request()).message)
        return {'goal': k, 'steps': self.episode_end(self.events, n_events)['steps'],
                'goal_state': start['goal_state'], 'final_state': final['state'],
                'start_distance': start['distance'], 'final_distance': final['distance'],
                'goal_image': self.to_numpy(self.goal_images[-1]), 'reached_image': self.to_numpy(self.frames[-1])}

    def evaluate(self, n: int) -> list[dict]:
        self.set_practice(False)
        self.spin(1.0)
        try:
            return [self.reach_goal(k) for k in range(n)]
        finally:
            self.set_practice(True)

    def latencies_ms(self):
        return frame_to_controller_ms(self.raw, self.cmd, self.out, self.cmd_moving)

    def zeroed(self) -> int:
        return zeroed_by_filter(self.raw, self.cmd, self.cmd_moving)

    def close(self) -> None:
        self.node.destroy_node()
        self.rclpy.try_shutdown()


def run(args) -> dict:
    import numpy as np  # noqa: PLC0415 - deferred with the ROS imports (see Cell)
    out_dir = RUNS / f'sim_cell_{args.arm}{args.tag and "_" + args.tag}'
    if out_dir.exists():
        subprocess.run(['rm', '-rf', str(out_dir)], check=True)
    out_dir.mkdir(parents=True)
    argv = [sys.executable, '-m', 'rig', 'up', 'robot', '--arm', args.arm, '--task', 'reach', '--sim-cell',
            '--trainer', '--practice', '--data-dir', str(out_dir / 'data'), '--log-level', 'warn']
    argv += [a for f in args.params_file for a in ('--params-file', str(Path(f).resolve()))]
    log = open(out_dir / 'rig_up.log', 'w')
    proc = subprocess.Popen(argv, env=_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    cell = Cell(args.arm)
    curve, final = [], []
    try:
        if not cell.spin(180, lambda: len(cell.raw) > 0):
            raise RuntimeError(f'the cell never acted: see {out_dir / "rig_up.log"}')
        # The budget is wall clock from the cell's first command to the final evaluation, the
        # evaluations along the curve included (practice pauses for them; the trainer goes on).
        t_acting = time.monotonic()
        practice_s, last = 0.0, t_acting
        next_eval = args.eval_every * 60
        while (left := args.minutes * 60 - (time.monotonic() - t_acting)) > 0:
            cell.spin(min(5.0, left))
            practice_s += time.monotonic() - last
            last = time.monotonic()
            wall_s = time.monotonic() - t_acting
            c = cell.status.get('counters', {})
            print(f'wall {wall_s / 60:5.1f} min (practice {practice_s / 60:5.1f}): {c.get("transitions", 0)} '
                  f'transitions, {c.get("updates", 0)} updates', flush=True)
            if wall_s >= next_eval and wall_s < args.minutes * 60:
                results = cell.evaluate(args.eval_goals)
                d = [r['final_distance'] for r in results]
                curve.append({'practice_min': practice_s / 60, 'wall_min': wall_s / 60,
                              'transitions': c.get('transitions', 0), 'updates': c.get('updates', 0),
                              'vae_fits': c.get('vae_fits', 0), 'median_final_distance_m': float(np.median(d)),
                              'goals': len(d)})
                print(f'  eval: median {np.median(d):.3f} m over {len(d)} goals', flush=True)
                next_eval += args.eval_every * 60
                last = time.monotonic()
        c = dict(cell.status.get('counters', {}))
        wall_practice = time.monotonic() - t_acting
        final = cell.evaluate(args.goals)
        d = np.array([r['final_distance'] for r in final])
        curve.append({'practice_min': practice_s / 60, 'wall_min': wall_practice / 60,
                      'transitions': c.get('transitions', 0), 'updates': c.get('updates', 0),
                      'vae_fits': c.get('vae_fits', 0), 'median_final_distance_m': float(np.median(d)),
                      'goals': len(d)})
        lat, zeroed = cell.latencies_ms(), cell.zeroed()
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        cell.close()
    command = (f'python -m bench.bench_cell --arm {args.arm} --minutes {args.minutes:g} --eval-every '
               f'{args.eval_every:g} --eval-goals {args.eval_goals} --goals {args.goals}'
               + ''.join(f' --params-file {f}' for f in args.params_file) + (f' --tag {args.tag}' if args.tag else ''))
    return {'schema': SCHEMAS['sim_cell'], 'command': command, 'host': host(), 'date': time.strftime('%Y-%m-%d'),
            'arm': args.arm, 'task': 'reach', 'wall_s': round(wall_practice, 1),
            'budget_minutes': args.minutes, 'practice_minutes': round(practice_s / 60, 2),
            'transitions': int(c.get('transitions', 0)),
            'updates': int(c.get('updates', 0)), 'episodes': int(c.get('episodes', 0)),
            'median_final_distance_m': float(np.median(d)), 'median_start_distance_m':
                float(np.median([r['start_distance'] for r in final])),
            'success': float(np.mean(d < SUCCESS_M)), 'latency_p50_ms': float(np.percentile(lat, 50)),
            'latency_p99_ms': float(np.percentile(lat, 99)), 'latency_samples': int(len(lat)),
            'commands_zeroed_by_filter': zeroed,
            'curve': curve, 'target': {'median_final_distance_m': 0.03, 'wall_s': 1800},
            'goals': [{k: v for k, v in r.items() if not k.endswith('_image')} for r in final],
            '_images': [(r['goal_image'], r['reached_image'], r['final_distance']) for r in final]}


def markdown(r: dict) -> str:
    ok = r['median_final_distance_m'] <= r['target']['median_final_distance_m'] and r['wall_s'] <= r['target']['wall_s']
    lines = [f'# Rehearsed cell: reach on the simulated {r["arm"]} ({r["date"]}, {r["host"]})', '',
             f'`{r["command"]}`', '',
             f'{r.get("budget_minutes", r["practice_minutes"]):g} min of wall clock (robot graph at 10 Hz, trainer in '
             f'its own process; {r["practice_minutes"]:.1f} min of it practising, the rest the evaluations along '
             f'the curve): {r["transitions"]} transitions, {r["updates"]} gradient steps, {r["episodes"]} '
             f'episodes. Then {len(r["goals"])} operator goal images through the cell: median final hand '
             f'distance **{r["median_final_distance_m"]:.3f} m** (at the start {r["median_start_distance_m"]:.3f} '
             f'm), success (< 5 cm) {r["success"]:.0%}; target <= 0.03 m within 30 min: '
             f'{"met" if ok else "missed"}.', '',
             f'Frame -> controller command latency: p50 {r["latency_p50_ms"]:.0f} ms, p99 '
             f'{r["latency_p99_ms"]:.0f} ms ({r["latency_samples"]} commands'
             + (f'; {r["commands_zeroed_by_filter"]} more the safety filter answered with a zero, not counted'
                if 'commands_zeroed_by_filter' in r else '') + ').', '',
             '| practice min | wall min | transitions | goals | median final distance (m) |', '|---|---|---|---|---|']
    lines += [f'| {p["practice_min"]:.1f} | {p["wall_min"]:.1f} | {p["transitions"]} | {p["goals"]} | '
              f'{p["median_final_distance_m"]:.3f} |' for p in r['curve']]
    return '\n'.join(lines) + '\n'


def plots(r: dict, images: list, out: Path) -> None:
    import matplotlib  # noqa: PLC0415 - deferred: only when plotting
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # noqa: PLC0415
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot([p['practice_min'] for p in r['curve']], [p['median_final_distance_m'] for p in r['curve']], 'o-')
    ax.axhline(0.03, color='grey', ls='--', lw=0.8, label='target 0.03 m')
    ax.set_xlabel('practice [min of wall clock]')
    ax.set_ylabel('median final hand distance [m]')
    ax.set_title(f'reach on the simulated {r["arm"]} cell')
    ax.legend()
    fig.tight_layout()
    fig.savefig(out.with_name(out.stem + '_curve.png'), dpi=120)
    plt.close(fig)
    cols = min(len(images), 10)
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(2 * rows, cols, figsize=(1.4 * cols, 3.0 * rows), squeeze=False)
    for a in axes.flat:
        a.axis('off')
    for i, (goal, reached, dist) in enumerate(images):
        b, c = divmod(i, cols)
        axes[2 * b][c].imshow(goal)
        axes[2 * b][c].set_title(f'goal {i}', fontsize=7)
        axes[2 * b + 1][c].imshow(reached)
        axes[2 * b + 1][c].set_title(f'{dist * 100:.1f} cm', fontsize=7)
    fig.suptitle(f'simulated {r["arm"]} cell: goal images (top), reached (bottom)', fontsize=9)
    fig.tight_layout()
    fig.savefig(out.with_name(out.stem + '_goals.png'), dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--arm', choices=('ur5e', 'sawyer'), default='ur5e')
    p.add_argument('--minutes', type=float, default=30.0,
                   help="wall-clock minutes from the cell's first command to the final evaluation, the "
                        'evaluations along the curve included')
    p.add_argument('--eval-every', type=float, default=10.0, help='evaluate every this many wall minutes')
    p.add_argument('--eval-goals', type=int, default=10, help='goals of the evaluations along the curve')
    p.add_argument('--goals', type=int, default=50, help='goals of the final evaluation')
    p.add_argument('--params-file', action='append', default=[],
                   help="a parameter file over the robot graph's own (as `rig up --params-file`), e.g. the "
                        "trainer's learn_set; give --tag with it")
    p.add_argument('--tag', default='', help='a variant: writes <arm>_<tag>.json beside the default result')
    args = p.parse_args(argv)
    if args.params_file and not args.tag:
        p.error('--params-file changes the configuration: name the variant with --tag')
    r = run(args)
    images = r.pop('_images')
    SIM_CELL.mkdir(parents=True, exist_ok=True)
    out = SIM_CELL / f'{args.arm}{args.tag and "_" + args.tag}.json'
    out.write_text(json.dumps(r, indent=2) + '\n')
    out.with_suffix('.md').write_text(markdown(r))
    plots(r, images, out)
    print(markdown(r))
    print(f'wrote {repo_relative(out)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
