"""Online trainer core: bags in, checkpoints out; restart resumes without losing or recounting data."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from rclpy.serialization import serialize_message

from rig_learn import checkpoint as ckpt
from rig_learn.agent import RIGAgent
from rig_perception.image_msgs import numpy_to_image
from rig_trainer.bags import EpisodeBagWriter
from rig_trainer.online import OnlineTrainer, TrainerConfig, latest_checkpoint

RATE = 20.0
SCALE = 0.02


def _stamp(t_ns):
    from builtin_interfaces.msg import Time
    return Time(sec=t_ns // 10**9, nanosec=t_ns % 10**9)


def record_sim_episode(data_dir, name, env, rng, steps=20, latent_dim=4, t0=10**9):
    """Random-action rollout of the real reach env, recorded as the graph would record it."""
    from geometry_msgs.msg import TwistStamped
    from std_msgs.msg import String
    w = EpisodeBagWriter(data_dir, name)
    ms = 1_000_000
    goal = rng.standard_normal(latent_dim).tolist()
    w.write('rig/episode', t0, serialize_message(String(data=json.dumps(
        {'event': 'start', 'episode': 1, 'goal_source': 'imagined', 'goal_latent': goal}))))
    obs, _ = env.reset()
    for i in range(steps + 1):
        t = t0 + (i + 1) * 10 * ms
        w.write('camera/image_raw', t, serialize_message(numpy_to_image(obs['image'], 'rgb8', stamp=_stamp(t))))
        if i < steps:
            a = rng.uniform(-1, 1, 2)
            cmd = TwistStamped()
            cmd.header.stamp, cmd.header.frame_id = _stamp(t + 3 * ms), 'base_link'
            cmd.twist.linear.x, cmd.twist.linear.y = (float(v) for v in a * SCALE * RATE)
            w.write('rig/cmd', t + 3 * ms, serialize_message(cmd))
            obs, *_ = env.step(a)
    w.write('rig/episode', t0 + (steps + 2) * 10 * ms, serialize_message(String(data=json.dumps(
        {'event': 'end', 'episode': 1}))))
    return w.close()


@pytest.fixture(scope='module')
def reach_env():
    from rig_sim import make_env
    env = make_env(task='reach', seed=0)
    yield env
    env.close()


@pytest.fixture
def tiny_learn_yaml(tmp_path):
    path = tmp_path / 'learn_tiny.yaml'
    path.write_text(yaml.safe_dump({
        'task': 'reach', 'image_size': 48,
        'vae': {'latent_dim': 4, 'batch_size': 16, 'refit_steps': 5},
        'rl': {'hidden': [32, 32], 'batch_size': 16, 'learning_starts': 0},
    }))
    return path


def make_trainer(tmp_path, learn_yaml, **kw):
    cfg = TrainerConfig(data_dir=str(tmp_path / 'data'), task='reach', learn_config=str(learn_yaml),
                        action_scale=SCALE, control_rate_hz=RATE, pretrain_min_images=30, pretrain_steps=5,
                        updates_per_transition=0.5, refit_every_transitions=30, checkpoint_every_updates=10,
                        **kw)
    return OnlineTrainer(cfg)


def train_until_idle(trainer):
    while True:
        trainer.train(budget_s=5.0)
        if trainer.checkpoint_due:
            trainer.save_checkpoint()
        if trainer._updates_owed < 1.0 and not trainer.checkpoint_due:
            return


def test_ingest_train_checkpoint_and_resume_without_double_counting(tmp_path, tiny_learn_yaml, reach_env):
    import torch
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    data = tmp_path / 'data'
    trainer = make_trainer(tmp_path, tiny_learn_yaml)
    first = trainer.save_checkpoint()  # the initial checkpoint actors start from
    assert latest_checkpoint(trainer.ckpt_dir) == first

    for k in range(2):
        record_sim_episode(data, f'a_ep{k:06d}', reach_env, rng)
    assert trainer.ingest() == 40
    train_until_idle(trainer)
    c = trainer.counters
    assert (c['episodes'], c['transitions']) == (2, 40)
    assert c['vae_fits'] >= 1 and c['updates'] == 20
    saved = trainer.latest
    manifest = ckpt.read_manifest(saved)
    assert manifest['trainer']['ingested'] == ['a_ep000000', 'a_ep000001']
    # actions recovered from velocities are the normalised actions the env received
    acts = trainer.agent.buffer.actions[trainer.agent.buffer._valid()]
    assert np.abs(acts).max() <= 1.0 and np.abs(acts).max() > 0.5

    # A checkpoint is a runnable policy for the nodes.
    agent = RIGAgent.load(saved, expected={'task': 'reach', 'action_dim': 2})
    assert agent.act_features(np.zeros(4, np.float32), np.zeros(4, np.float32)).shape == (2,)

    # More data arrives, is ingested but the process dies (kill -9) before the next checkpoint...
    record_sim_episode(data, 'a_ep000002', reach_env, rng)
    assert trainer.ingest() == 20
    del trainer
    # ... and a bag that is garbage lands too.
    bad = data / 'b_garbage'
    bad.mkdir()
    (bad / 'metadata.yaml').write_text('rosbag2_bagfile_information: {')
    (bad / 'b_garbage_0.mcap').write_bytes(b'\x89MCAP0\r\n' + b'\x00' * 100)

    restarted = make_trainer(tmp_path, tiny_learn_yaml)
    assert restarted.latest == saved
    assert restarted.counters['episodes'] == 2, 'ledger bags re-read, not recounted'
    assert restarted.agent.buffer.n_transitions == 40
    assert restarted.ingest() == 20                 # the bag after the checkpoint counts once
    assert 'b_garbage' in restarted.bad_bags        # skipped with a reason, nothing else stops
    assert restarted.counters['episodes'] == 3 and restarted.counters['transitions'] == 60
    assert restarted.ingest() == 0                  # nothing twice
    train_until_idle(restarted)
    final = ckpt.read_manifest(restarted.latest)['trainer']
    assert final['ingested'] == ['a_ep000000', 'a_ep000001', 'a_ep000002']
    assert 'b_garbage' in final['bad_bags']
    assert final['counters']['transitions'] == 60


def test_mismatched_checkpoint_in_the_directory_is_refused(tmp_path, tiny_learn_yaml, reach_env):
    trainer = make_trainer(tmp_path, tiny_learn_yaml)
    trainer.save_checkpoint()
    other = tmp_path / 'other.yaml'
    spec = yaml.safe_load(tiny_learn_yaml.read_text())
    spec['vae']['latent_dim'] = 8
    other.write_text(yaml.safe_dump(spec))
    with pytest.raises(ckpt.CheckpointMismatch, match='latent_dim'):
        make_trainer(tmp_path, other)
