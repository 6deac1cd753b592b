"""rig across hosts: a learner host and two simulated actor hosts as Linux network namespaces, DDS over UDP.

    python -m bench.bench_hosts [--practice-steps 5000] [--goals 50]      # as root (ip netns)

`rig up learner` runs in one namespace, `rig up sim --remote-learner --namespaces env0` and `... env1` in
one each, each with its own data directory (test/netns.py sets the hosts up, as test_hosts.py does).
`rig.demo.run` drives them from the learner host over ROS, as `make demo` drives one host: practice until
the VAE is pretrained, each actor practises --practice-steps, the trainer catches up, then --goals
operator image goals through env0. Written to bench/results/hosts/hosts.{json,md}:

- checkpoint propagation, trainer write -> the actor's policy driving it: p50 and max over every
  checkpoint both actors loaded, from the ROS log stamps (the trainer's `checkpoint ckpt_N` line after
  the write, each policy's `policy using .../ckpt_N`; one clock: the namespaces share it), and the
  checkpoint message's size;
- bandwidth per actor: the bytes of its bags (what its link ships) per second of practice; per step;
  at a real cell's 10 Hz; and what it would be with the camera's raw 640x480 rgb8 frames instead of the
  48x48 crop (computed from the frames measured);
- reach from scratch: median final distance over the goals and wall, against the single-host run of the
  same two actors (graph/figures.json, `actors`: `python -m bench.bench_graph --only actors`).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from bench.layout import GRAPH, HOSTS, REPO, RUNS, SCHEMAS, read_result, repo_relative

sys.path.insert(0, str(REPO / 'test'))   # netns, launch_util, ros_util: the tests' helpers
from launch_util import Running  # noqa: E402
from netns import Hosts, unavailable  # noqa: E402
from ros_util import node_env  # noqa: E402

from bench.bench_graph import Watcher, host  # noqa: E402

RIG = [sys.executable, '-m', 'rig']
ACTORS = {'actor1': 'env0', 'actor2': 'env1'}
RAW_FRAME_BYTES = 640 * 480 * 3     # the RealSense colour stream rig's camera configs crop from
CELL_RATE_HZ = 10.0                 # config/robot.yaml: a real cell's control rate
_STAMP = r'\[INFO\] \[(\d+\.\d+)\] '


def drive(out: Path, practice_steps: int, goals: int) -> int:
    """The operator side, run inside the learner host's namespace: `rig.demo.run` over DDS."""
    from rig import demo  # noqa: PLC0415 - deferred: rclpy, torch, matplotlib
    opts = demo.parse(['--practice-steps', str(practice_steps), '--goals', str(goals), '--out', str(out)])
    g = Watcher()
    try:
        print(demo.run(g, opts, [f'/{ns}' for ns in ACTORS.values()], out, time.time()))
        (out / 'trainer_status.json').write_text(json.dumps(g.trainer_status))
    finally:
        g.close()
    return 0


def propagation(learner_log: str, actor_logs: dict[str, str]) -> list[float]:
    """Seconds from each checkpoint's write (the trainer's log line) to each actor's policy using it."""
    written = {int(n): float(t) for t, n in re.findall(_STAMP + r'\[trainer\]: (?:final )?checkpoint ckpt_(\d+):',
                                                       learner_log)}
    out = []
    for ns, log in actor_logs.items():
        for t, n in re.findall(_STAMP + rf'\[{ns}\.policy\]: policy using \S+/ckpt_(\d+) ', log):
            if int(n) in written:
                out.append(float(t) - written[int(n)])
    return out


def bandwidth(bags: list[Path]) -> dict:
    """What an actor's link ships: bag bytes per second of practice (the episodes' recorded durations),
    per step, at a real cell's rate, and with raw camera frames instead of the crop."""
    total, seconds, frames = 0, 0.0, 0
    for bag in bags:
        total += sum(p.stat().st_size for p in bag.rglob('*') if p.is_file())
        info = yaml.safe_load((bag / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
        seconds += info['duration']['nanoseconds'] / 1e9
        for topic in info['topics_with_message_count']:
            if topic['topic_metadata']['name'].endswith('camera/image_raw'):
                frames += topic['message_count']
    frame_bytes = 48 * 48 * 3     # the crop the sim renders and the camera configs make
    per_s = total / seconds
    per_step = total / frames
    raw_per_step = per_step + RAW_FRAME_BYTES - frame_bytes
    return {'bags': len(bags), 'bytes': total, 'practice_s': seconds, 'frames': frames,
            'bytes_per_s': per_s, 'bytes_per_step': per_step, 'steps_per_s': frames / seconds,
            'bytes_per_s_at_cell_rate': per_step * CELL_RATE_HZ,
            'raw_bytes_per_s': raw_per_step * frames / seconds,
            'raw_bytes_per_s_at_cell_rate': raw_per_step * CELL_RATE_HZ}


def run(practice_steps: int, goals: int) -> dict:
    from rig_trainer.bags import list_closed_bags  # noqa: PLC0415 - deferred: rosbags
    out = RUNS / 'hosts'
    shutil.rmtree(out, ignore_errors=True)   # from scratch: an old data dir would be resumed from
    out.mkdir(parents=True)
    t0 = time.time()
    with Hosts(['learner', *ACTORS]) as hosts:
        env = hosts.env(node_env())
        procs = {'learner': Running(hosts.argv('learner', RIG + ['up', 'learner', '--data-dir', str(out / 'learner')]),
                                    env, out / 'learner.log', cwd=out)}
        for h, ns in ACTORS.items():
            procs[h] = Running(hosts.argv(h, RIG + ['up', 'sim', '--remote-learner', '--namespaces', ns,
                                                    '--data-dir', str(out / h)]), env, out / f'{h}.log', cwd=out)
        try:
            r = hosts.run('learner', [sys.executable, '-m', 'bench.bench_hosts', '--drive', str(out),
                                      '--practice-steps', str(practice_steps), '--goals', str(goals)],
                          env=dict(env, PYTHONPATH=str(REPO)), cwd=REPO)
            if r.returncode != 0:
                raise RuntimeError(f'the operator side failed ({r.returncode}); logs in {out}')
            wall = time.time() - t0
            for h in ACTORS:
                procs[h].interrupt(timeout=30)
            procs['learner'].interrupt(timeout=30)
        finally:
            for proc in procs.values():
                proc.kill()
    summary = json.loads((out / 'summary.json').read_text())
    status = json.loads((out / 'trainer_status.json').read_text())
    logs = {h: (out / f'{h}.log').read_text() for h in procs}
    delays = propagation(logs['learner'], {ns: logs[h] for h, ns in ACTORS.items()})
    per_actor = {ns: bandwidth(list_closed_bags(out / h)) for h, ns in ACTORS.items()}
    received = {b.name for b in list_closed_bags(out / 'learner')}
    closed = {b.name for h in ACTORS for b in list_closed_bags(out / h)}
    finals = np.array([g['final_distance'] for g in summary['goals']])
    if (out / 'goals.png').exists():
        HOSTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / 'goals.png', HOSTS / 'hosts_goals.png')
    result = {
        'schema': SCHEMAS['hosts'], 'host': host(), 'date': time.strftime('%Y-%m-%d %H:%M:%S'),
        'command': f'python -m bench.bench_hosts --practice-steps {practice_steps} --goals {goals}',
        'practice_steps': practice_steps, 'goals': goals, 'actors': list(ACTORS.values()),
        'checkpoint_bytes': status.get('checkpoint_bundle_bytes'),
        'propagation_p50_s': float(np.median(delays)), 'propagation_max_s': float(np.max(delays)),
        'propagation_samples': len(delays),
        'bytes_per_s_per_actor': float(np.mean([b['bytes_per_s'] for b in per_actor.values()])),
        'bandwidth': per_actor,
        'median_final_distance_m': summary['median_final_distance_m'],
        'median_start_distance_m': summary['median_start_distance_m'],
        'within_5cm': float(np.mean(finals <= 0.05)),
        'wall_s': wall, 'times_s': summary['times_s'], 'trainer': summary['trainer'],
        'episodes_closed': len(closed), 'episodes_on_learner': len(received & closed),
        'run_dir': repo_relative(out),
    }
    single = GRAPH / 'figures.json'
    if single.exists():
        a = read_result(single, 'graph').get('actors', {})
        result['single_host'] = {k: a.get(k) for k in ('practice_steps', 'graph_median_final_distance_m',
                                                       'graph_wall_s', 'command', 'date')}
    return result


def markdown(r: dict) -> str:
    s = r.get('single_host') or {}
    bw = r['bandwidth']
    lines = [
        '# rig across hosts: a learner host and two actor hosts', '',
        f"`{r['command']}` on {r['host']}, {r['date']}. Three Linux network namespaces on one bridge "
        '(test/netns.py), DDS over UDPv4 with static peers; no path shared between them.', '',
        '| figure | value |', '|---|---|',
        f"| checkpoint message (inference part) | {r['checkpoint_bytes'] / 1e6:.2f} MB |",
        f"| propagation, trainer write -> actor driving it | p50 {r['propagation_p50_s']:.2f} s, max "
        f"{r['propagation_max_s']:.2f} s ({r['propagation_samples']} loads) |",
    ]
    for ns, b in bw.items():
        lines.append(f"| bandwidth {ns} (48x48 frames) | {b['bytes_per_s'] / 1e6:.2f} MB/s at the sim's "
                     f"{b['steps_per_s']:.0f} steps/s; {b['bytes_per_step'] / 1e3:.1f} kB/step, "
                     f"{b['bytes_per_s_at_cell_rate'] / 1e3:.0f} kB/s at a cell's 10 Hz |")
        lines.append(f"| the same with raw 640x480 frames (computed) | {b['raw_bytes_per_s'] / 1e6:.1f} MB/s; "
                     f"{b['raw_bytes_per_s_at_cell_rate'] / 1e6:.1f} MB/s at 10 Hz |")
    lines += [
        f"| reach from scratch, {r['practice_steps']} practice steps per actor, {r['goals']} image goals | "
        f"median final distance {r['median_final_distance_m']:.3f} m (start {r['median_start_distance_m']:.3f} m), "
        f"{r['within_5cm']:.0%} within 5 cm, wall {r['wall_s'] / 60:.1f} min |",
        f"| the same on one host (`{s.get('command')}`, {s.get('date')}) | "
        + (f"{s['graph_median_final_distance_m']:.3f} m, wall {s['graph_wall_s'] / 60:.1f} min |"
           if s.get('graph_median_final_distance_m') is not None else 'not measured |'),
        f"| episodes on the learner host | {r['episodes_on_learner']} of {r['episodes_closed']} closed |",
        '', 'Goals and what the arm reached: hosts_goals.png.']
    return '\n'.join(lines) + '\n'


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--practice-steps', type=int, default=5000, help='practice steps of each actor (after pretraining)')
    p.add_argument('--goals', type=int, default=50)
    p.add_argument('--drive', type=Path, default=None, help=argparse.SUPPRESS)   # the operator side (internal)
    args = p.parse_args(argv)
    if args.drive is not None:
        return drive(args.drive, args.practice_steps, args.goals)
    why = unavailable()
    if why:
        print(f'bench_hosts: {why}', file=sys.stderr)
        return 2
    result = run(args.practice_steps, args.goals)
    HOSTS.mkdir(parents=True, exist_ok=True)
    (HOSTS / 'hosts.json').write_text(json.dumps(result, indent=2))
    (HOSTS / 'hosts.md').write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
