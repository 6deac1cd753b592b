"""The learner link and the episode receiver as processes over real DDS (one host): checkpoints in,
late joiners, corrupt checkpoint messages, episodes out and acknowledged."""
from __future__ import annotations

import json
import signal
import time

import pytest
import torch
from ros_util import rclpy_node, spawn_node, spin_until

from rig_base import bundles, qos
from rig_learn.agent import RIGAgent
from rig_learn.envs import make_task_env
from rig_learn.model import InferenceModel
from rig_learn.testing import tiny_config
from rig_trainer.bags import list_closed_bags
from rig_trainer.link_node import CHECKPOINT_BUNDLE_TOPIC
from rig_trainer.shipping import checkpoint_bundle

pytestmark = pytest.mark.ros


@pytest.fixture(scope='module')
def bundle(tmp_path_factory):
    torch.set_num_threads(1)
    agent = RIGAgent.from_config(tiny_config(), make_task_env('toy_reach', seed=0))
    agent.learn(60)
    path = tmp_path_factory.mktemp('learner') / 'ckpt_00000007'
    agent.save(path)
    return checkpoint_bundle(path)


class Probe:
    """Publishes bundles on /rig/checkpoint_bundle (latched, as the trainer) and listens to the links."""

    def __init__(self, node):
        from std_msgs.msg import String, UInt8MultiArray
        self.node, self.msg = node, UInt8MultiArray
        self.pub = node.create_publisher(UInt8MultiArray, CHECKPOINT_BUNDLE_TOPIC, qos.CHECKPOINT_BUNDLE_QOS)
        self.announced: dict[str, list[str]] = {}
        self.status: dict[str, dict] = {}
        for ns in ('env0', 'env1'):
            node.create_subscription(String, f'/{ns}/rig/checkpoint_received',
                                     lambda m, ns=ns: self.announced.setdefault(ns, []).append(m.data),
                                     qos.CHECKPOINT_QOS)
            node.create_subscription(String, f'/{ns}/rig/link_status',
                                     lambda m, ns=ns: self.status.__setitem__(ns, json.loads(m.data)),
                                     qos.LATCHED_QOS)

    def publish(self, data: bytes) -> None:
        self.pub.publish(self.msg(data=bundles.to_msg_data(data)))


def test_a_link_keeps_what_the_trainer_sends_refuses_a_corrupt_one_and_a_late_one_gets_the_newest(
        tmp_path, bundle):
    with rclpy_node('probe', '/') as node:
        probe = Probe(node)
        with spawn_node('rig_trainer.link_node', {'data_dir': str(tmp_path / 'a0'), 'actor': 'env0'},
                        namespace='/env0', log_path=tmp_path / 'env0.log'):
            assert spin_until(node, lambda: 'env0' in probe.status, 30), 'the link did not come up'
            probe.publish(bundle)
            assert spin_until(node, lambda: probe.announced.get('env0'), 30), (tmp_path / 'env0.log').read_text()
            path = probe.announced['env0'][-1]
            assert path == str(tmp_path / 'a0' / 'received_checkpoints_env0' / 'ckpt_00000007')
            assert InferenceModel.load(path).spec['latent_dim'] == 4   # what encoder and policy will load
            # an actor that joins late gets the newest checkpoint at once (latched)
            t0 = time.monotonic()
            with spawn_node('rig_trainer.link_node', {'data_dir': str(tmp_path / 'a1'), 'actor': 'env1'},
                            namespace='/env1', log_path=tmp_path / 'env1.log'):
                assert spin_until(node, lambda: probe.announced.get('env1'), 30), (tmp_path / 'env1.log').read_text()
                late_s = time.monotonic() - t0
            # corrupt and truncated messages are refused; the old checkpoint stays the one announced
            flipped = bytearray(bundle)
            flipped[len(flipped) // 2] ^= 0x01
            for i, bad in enumerate((bundle[:len(bundle) - 1000], bytes(flipped), b'garbage'), start=1):
                probe.publish(bad)
                assert spin_until(node, lambda i=i: probe.status['env0']['refused_checkpoints'] == i, 20), \
                    probe.status['env0']
            spin_until(node, lambda: False, 1.5)
            assert probe.announced['env0'] == [path], 'nothing new is announced for a refused checkpoint'
            assert probe.status['env0']['latest'] == path
    log = (tmp_path / 'env0.log').read_text()
    assert log.count('refusing a checkpoint from the learner') == 3 and 'truncated' in log and 'corrupt' in log
    assert 'Traceback' not in log
    print(f'late joiner announced its checkpoint {late_s:.1f} s after it started')


def test_the_receiver_stores_each_shipped_episode_once_and_the_link_records_the_answer(tmp_path):
    """A link (actor host side) and a receiver (learner side) on one host: the actor's closed bags, and
    only those, end up in the learner's directory, acknowledged; a restarted link sends nothing again."""
    actor, learner = tmp_path / 'actor', tmp_path / 'learner'
    for i in range(3):
        bag = actor / f'env0_ep{i:06d}_x'
        bag.mkdir(parents=True)
        (bag / 'metadata.yaml').write_text('rosbag2_bagfile_information: {}\n')
        (bag / 'a.mcap').write_bytes(bytes([i]) * 200_000)
    (actor / '.partial' / 'env0_ep000003_x').mkdir(parents=True)
    params = {'data_dir': str(actor), 'actor': 'env0', 'scan_period_s': 0.2}
    with spawn_node('rig_trainer.episode_receiver_node', {'data_dir': str(learner)},
                    log_path=tmp_path / 'receiver.log'):
        with spawn_node('rig_trainer.link_node', params, namespace='/env0', log_path=tmp_path / 'link.log'):
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and len((actor / '.shipped_env0').read_text().splitlines()
                                                      if (actor / '.shipped_env0').exists() else []) < 3:
                time.sleep(0.2)
        with spawn_node('rig_trainer.link_node', params, namespace='/env0', log_path=tmp_path / 'link2.log'):
            time.sleep(3)
    assert [b.name for b in list_closed_bags(learner)] == [f'env0_ep{i:06d}_x' for i in range(3)], \
        (tmp_path / 'link.log').read_text() + (tmp_path / 'receiver.log').read_text()
    for i in range(3):
        assert bundles.dir_digest(learner / f'env0_ep{i:06d}_x') == bundles.dir_digest(actor / f'env0_ep{i:06d}_x')
    assert len((actor / '.shipped_env0').read_text().splitlines()) == 3
    receiver_log = (tmp_path / 'receiver.log').read_text()
    assert receiver_log.count('stored env0_ep') == 3, receiver_log


def test_a_link_stopped_before_the_learner_answered_names_what_it_keeps_and_sends_it_next_start(tmp_path):
    """Ctrl-C while the learner has acknowledged nothing (no receiver up): the link stops within
    launch's grace, names the episodes it keeps, and they stay on disk; the next start sends them."""
    actor, learner = tmp_path / 'actor', tmp_path / 'learner'
    names = [f'env0_ep{i:06d}_x' for i in range(2)]
    for i, name in enumerate(names):
        (actor / name).mkdir(parents=True)
        (actor / name / 'metadata.yaml').write_text('rosbag2_bagfile_information: {}\n')
        (actor / name / 'a.mcap').write_bytes(bytes([i]) * 100_000)
    params = {'data_dir': str(actor), 'actor': 'env0', 'scan_period_s': 0.2}
    with rclpy_node('probe', '/') as node:
        probe = Probe(node)
        with spawn_node('rig_trainer.link_node', params, namespace='/env0', log_path=tmp_path / 'link.log') as link:
            assert spin_until(node, lambda: probe.status.get('env0', {}).get('sends', 0) >= 2, 30), \
                (tmp_path / 'link.log').read_text()
            t0 = time.monotonic()
            link.send_signal(signal.SIGINT)
            assert link.wait(timeout=10) == 0
            stopped_s = time.monotonic() - t0
    log = (tmp_path / 'link.log').read_text()
    assert stopped_s < 5.0, log
    assert 'shutdown: 2 episode(s) not acknowledged by the learner yet stay on disk' in log, log
    assert all(name in log for name in names), log
    assert all((actor / name).is_dir() for name in names)
    assert not (actor / '.shipped_env0').exists() or not (actor / '.shipped_env0').read_text().strip()
    with spawn_node('rig_trainer.episode_receiver_node', {'data_dir': str(learner)},
                    log_path=tmp_path / 'receiver.log'):
        with spawn_node('rig_trainer.link_node', params, namespace='/env0', log_path=tmp_path / 'link2.log'):
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and not (
                    (actor / '.shipped_env0').exists() and len((actor / '.shipped_env0').read_text().split()) == 4):
                time.sleep(0.2)
    assert [b.name for b in list_closed_bags(learner)] == names, (tmp_path / 'link2.log').read_text()
    assert 'not acknowledged' not in (tmp_path / 'link2.log').read_text()


def test_the_link_holds_practice_until_the_learner_is_heard_and_when_it_falls_silent(tmp_path):
    """Before the learner's heartbeat (the episode receiver's status) the link holds practice on
    rig/practice_hold; the receiver's first status releases it; once the receiver is gone for
    hold_without_learner_s the hold is back. Latched: a policy that starts late gets the state."""
    from std_msgs.msg import String
    holds: list[str] = []
    with rclpy_node('probe', '/') as node:
        node.create_subscription(String, '/env0/rig/practice_hold', lambda m: holds.append(m.data),
                                 qos.PRACTICE_HOLD_QOS)
        with spawn_node('rig_trainer.link_node', {'data_dir': str(tmp_path / 'a0'), 'actor': 'env0',
                                                   'hold_without_learner_s': 1.5},
                        namespace='/env0', log_path=tmp_path / 'link.log'):
            assert spin_until(node, lambda: holds, 30), (tmp_path / 'link.log').read_text()
            assert 'nothing heard' in holds[-1]
            with spawn_node('rig_trainer.episode_receiver_node', {'data_dir': str(tmp_path / 'learner')},
                            log_path=tmp_path / 'receiver.log'):
                assert spin_until(node, lambda: holds[-1] == '', 30), holds
                t_up = time.monotonic()
            assert spin_until(node, lambda: holds[-1] != '', 15), holds
            held_after_s = time.monotonic() - t_up
            assert 'not been heard for over 1.5 s' in holds[-1]
    assert held_after_s >= 1.0, f'held {held_after_s:.1f} s after the receiver went: before its timeout'
    log = (tmp_path / 'link.log').read_text()
    assert 'holding practice' in log and 'the learner host is heard' in log and 'Traceback' not in log
