"""Bundles and the store-and-forward logic across hosts (rig_base.bundles, rig_trainer.shipping): no ROS."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rig_base import bundles
from rig_learn import checkpoint as ckpt
from rig_learn.agent import RIGAgent
from rig_learn.envs import make_task_env
from rig_learn.learner import Learner
from rig_learn.model import InferenceModel
from rig_learn.testing import tiny_config
from rig_trainer.shipping import Ack, CheckpointInbox, Inbox, LearnerWatch, Outbox, checkpoint_bundle


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    torch.set_num_threads(1)
    env = make_task_env('toy_reach', seed=0)
    agent = RIGAgent.from_config(tiny_config(), env)
    agent.learn(60)
    path = tmp_path_factory.mktemp('ck') / 'ckpt_00000001'
    agent.save(path)
    return agent, env, path


def fake_bag(data_dir, name, payload=b'x' * 1000):
    bag = data_dir / name
    bag.mkdir(parents=True)
    (bag / 'metadata.yaml').write_text('rosbag2_bagfile_information: {}\n')
    (bag / f'{name}_0.mcap').write_bytes(payload)
    return bag


# -- bundles --------------------------------------------------------------------------------------------
def test_a_bundle_round_trips_and_writes_a_whole_directory(tmp_path):
    files = {'metadata.yaml': b'a: 1\n', 'sub/x.bin': bytes(range(256)) * 10}
    data = bundles.pack('episode', 'bag1', files, actor='env0')
    header, got = bundles.unpack(data, kind='episode')
    assert got == files and header['actor'] == 'env0' and header['name'] == 'bag1'
    dest = bundles.write_dir(got, tmp_path / 'bag1')
    assert (dest / 'sub' / 'x.bin').read_bytes() == files['sub/x.bin']
    assert bundles.dir_digest(dest) == bundles.files_digest(files)
    assert [p.name for p in tmp_path.iterdir()] == ['bag1']   # no temporary left beside it
    assert bundles.from_msg_data(bundles.to_msg_data(data)) == data


@pytest.mark.parametrize('damage, match', [
    (lambda d: d[:-1], 'truncated'),
    (lambda d: d[:len(d) // 2], 'truncated'),
    (lambda d: d[:20], 'truncated'),
    (lambda d: d + b'\0', 'padded'),
    (lambda d: d[:-5] + bytes(5), 'corrupt'),
    (lambda d: b'NOTABNDL' + d[8:], 'not a rig bundle'),
    (lambda d: b'', 'not a rig bundle'),
])
def test_a_damaged_bundle_is_refused_with_the_reason(damage, match):
    data = bundles.pack('checkpoint', 'c', {'a': b'1' * 100, 'b': b'2' * 100})
    with pytest.raises(bundles.BundleError, match=match):
        bundles.unpack(damage(data))


def test_a_bundle_of_another_kind_or_with_escaping_paths_is_refused():
    with pytest.raises(bundles.BundleError, match="expected a 'checkpoint'"):
        bundles.unpack(bundles.pack('episode', 'e', {'a': b''}), kind='checkpoint')
    for bad in ('../evil', '/etc/passwd', 'a/../../b'):
        with pytest.raises(bundles.BundleError, match='leave the bundle'):
            bundles.pack('episode', 'e', {bad: b''})
    for bad in ('.hidden', 'a/b', ''):
        with pytest.raises(bundles.BundleError, match='not a plain directory name'):
            bundles.pack('episode', bad, {'a': b''})


# -- checkpoints ----------------------------------------------------------------------------------------
def test_the_inference_part_drives_like_the_whole_checkpoint_and_cannot_resume_training(checkpoint, tmp_path):
    agent, env, path = checkpoint
    data = checkpoint_bundle(path)
    whole = sum(p.stat().st_size for p in path.iterdir())
    assert len(data) < 0.7 * whole   # no critics, no optimiser state
    received = CheckpointInbox(tmp_path / 'recv').receive(data)
    assert received.name == path.name
    manifest = json.loads((received / ckpt.MANIFEST).read_text())
    assert manifest['inference_only'] is True and 'trainer' not in manifest
    model, original = InferenceModel.load(received), InferenceModel.load(path)
    rng = np.random.default_rng(1)
    for _ in range(3):
        obs, goal = env.sample_goal(rng)['image'], env.sample_goal(rng)['image']
        assert np.array_equal(model.act(obs, goal), original.act(obs, goal))
    with pytest.raises(ckpt.CheckpointError, match='inference part only'):
        Learner.load(received)


def test_a_corrupt_or_truncated_checkpoint_bundle_is_refused_and_nothing_is_written(checkpoint, tmp_path):
    _, _, path = checkpoint
    data = checkpoint_bundle(path)
    inbox = CheckpointInbox(tmp_path / 'recv')
    good = inbox.receive(data)
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0xFF
    for bad in (data[:-100], bytes(flipped), data[:100]):
        with pytest.raises(bundles.BundleError):
            inbox.receive(bad)
    assert inbox.latest == good and [p.name for p in (tmp_path / 'recv').iterdir()] == [path.name]
    # consistent as a bundle, but the manifest inside names other contents
    header, files = bundles.unpack(data)
    files = dict(files)
    files['policy.pt'] = files['policy.pt'][:-10]
    with pytest.raises(ckpt.CheckpointError, match='missing or corrupt'):
        inbox.receive(bundles.pack('checkpoint', 'ckpt_00000002', files))
    assert inbox.latest == good


def test_the_checkpoint_inbox_keeps_the_newest_and_a_restart_finds_them(checkpoint, tmp_path):
    _, _, path = checkpoint
    files = ckpt.inference_files(path)
    inbox = CheckpointInbox(tmp_path / 'recv', keep=2)
    for i in range(1, 5):
        inbox.receive(bundles.pack('checkpoint', f'ckpt_{i:08d}', files))
    assert sorted(p.name for p in (tmp_path / 'recv').iterdir()) == ['ckpt_00000003', 'ckpt_00000004']
    assert CheckpointInbox(tmp_path / 'recv').latest.name == 'ckpt_00000004'
    # a learner that started afresh numbers from 1 again: the newest received still wins
    assert inbox.receive(bundles.pack('checkpoint', 'ckpt_00000001', files)).name == 'ckpt_00000001'
    assert inbox.latest.name == 'ckpt_00000001' and (tmp_path / 'recv' / 'ckpt_00000001').is_dir()


# -- episodes -------------------------------------------------------------------------------------------
def test_every_closed_bag_reaches_the_learner_once_through_resends_and_restarts(tmp_path):
    actor_dir, learner_dir = tmp_path / 'actor', tmp_path / 'learner'
    for i in range(3):
        fake_bag(actor_dir, f'env0_ep{i:06d}_x', payload=bytes([i]) * 500)
    fake_bag(actor_dir, 'env1_ep000000_x')                      # another actor's: not ours to ship
    (actor_dir / '.partial' / 'env0_ep000009_x').mkdir(parents=True)   # still open: not shipped
    out, inbox = Outbox(actor_dir, 'env0', resend_period_s=5.0, max_in_flight=2), Inbox(learner_dir)
    first = out.due(now=0.0)
    assert [p.name for p in first] == ['env0_ep000000_x', 'env0_ep000001_x']   # max_in_flight
    sent = {p.name: out.bundle(p, 0.0) for p in first}
    assert out.due(now=1.0) == []                              # in flight, not yet due again
    ack0 = inbox.receive(sent['env0_ep000000_x'])
    assert ack0.status == 'stored' and out.acknowledge(Ack.from_json(ack0.to_json())) is None
    # the answer to ep1 is lost (link down): it is sent again after resend_period_s, stored once
    inbox.receive(sent['env0_ep000001_x'])
    again = out.due(now=6.0)
    assert [p.name for p in again] == ['env0_ep000001_x', 'env0_ep000002_x']
    acks = [inbox.receive(out.bundle(p, 6.0)) for p in again]
    assert [a.status for a in acks] == ['duplicate', 'stored']
    for a in acks:
        out.acknowledge(a)
    assert out.pending() == [] and out.due(now=20.0) == []
    assert sorted(p.name for p in learner_dir.iterdir()) == [f'env0_ep{i:06d}_x' for i in range(3)]
    for i in range(3):
        assert (learner_dir / f'env0_ep{i:06d}_x' / f'env0_ep{i:06d}_x_0.mcap').read_bytes() == bytes([i]) * 500
    # a restarted actor reads its ledger: nothing is sent twice
    fake_bag(actor_dir, 'env0_ep000003_x')
    restarted = Outbox(actor_dir, 'env0')
    assert [p.name for p in restarted.pending()] == ['env0_ep000003_x']
    # a restarted learner still knows what it has
    assert Inbox(learner_dir).receive(Outbox(actor_dir, 'env0').bundle(actor_dir / 'env0_ep000000_x', 0)).status \
        == 'duplicate'


def test_the_learner_refuses_broken_or_conflicting_bags_and_the_actor_keeps_them(tmp_path):
    actor_dir, learner_dir = tmp_path / 'actor', tmp_path / 'learner'
    bag = fake_bag(actor_dir, 'env0_ep000000_x')
    out, inbox = Outbox(actor_dir, 'env0', resend_period_s=1.0), Inbox(learner_dir)
    data = out.bundle(bag, 0.0)
    ack = inbox.receive(data[:-3])
    assert ack.status == 'refused' and 'corrupt' in ack.reason and ack.name == 'env0_ep000000_x'
    assert 'refused' in out.acknowledge(ack) and [p.name for p in out.due(2.0)] == ['env0_ep000000_x']
    assert not any(p.name == 'env0_ep000000_x' for p in learner_dir.iterdir())
    no_metadata = bundles.pack('episode', 'env0_ep000000_x', {'a.mcap': b'1'},
                               digest=bundles.files_digest({'a.mcap': b'1'}))
    assert 'no metadata.yaml' in inbox.receive(no_metadata).reason
    fake_bag(learner_dir, 'env0_ep000000_x', payload=b'other')   # same name, other content
    ack = inbox.receive(out.bundle(bag, 3.0))
    assert ack.status == 'refused' and ack.reason.startswith('conflict')
    out.acknowledge(ack)
    assert out.pending() == [] and bag.is_dir()   # never sent again, and kept on the actor
    # answers for other actors, or for other contents than sent, change nothing
    assert out.acknowledge(Ack('env1_ep000000_x', 'd', 'stored')) is None
    with pytest.raises(ValueError, match='malformed'):
        Ack.from_json('{"name": 1')


def test_practice_is_held_until_the_learner_is_heard_and_again_once_it_falls_silent():
    watch = LearnerWatch(hold_after_s=5.0)
    assert 'nothing heard' in watch.hold_reason(0.0)
    watch.heard(1.0)
    assert watch.hold_reason(1.0) == '' and watch.hold_reason(6.0) == ''
    silent = watch.hold_reason(6.5)
    assert 'not been heard for over 5 s' in silent and watch.hold_reason(60.0) == silent, 'one text per cause'
    watch.heard(61.0)
    assert watch.hold_reason(61.0) == ''
    never = LearnerWatch(hold_after_s=0.0)
    assert never.hold_reason(0.0) == '' and never.hold_reason(1e6) == '', '0 practises on through an outage'
