"""Online trainer core: bags in, checkpoints out; restart resumes without losing or recounting data."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from rclpy.serialization import serialize_message

from rig_base.image_msgs import numpy_to_image
from rig_learn import checkpoint as ckpt
from rig_learn.agent import RIGAgent
from rig_trainer.bags import EpisodeBagWriter
from rig_trainer.online import OnlineTrainer, TrainerConfig, latest_checkpoint

RATE = 20.0
SCALE = 0.02


def _stamp(t_ns):
    from builtin_interfaces.msg import Time
    return Time(sec=t_ns // 10**9, nanosec=t_ns % 10**9)


def write_sim_episode(w, env, rng, episode=1, steps=20, latent_dim=4, t0=10**9, frame_msg=None,
                      scales=(SCALE, RATE), record_scales=True, actions=None):
    """Random-action rollout of the real reach env, written as the graph records it: the policy's start
    event (with the scales it makes commands with, as the policy node sends it, unless not
    `record_scales`: a bag from before), frames, commands v = a * scale * rate, end event.

    frame_msg(i, image): the Image message to record for frame i instead of the image as rgb8.
    actions: a list the actions taken are appended to."""
    from geometry_msgs.msg import TwistStamped
    from std_msgs.msg import String
    ms = 1_000_000
    goal = rng.standard_normal(latent_dim).tolist()
    start = {'event': 'start', 'episode': episode, 'goal_source': 'imagined', 'goal_latent': goal}
    if record_scales:
        start.update(action_scale=scales[0], control_rate_hz=scales[1], action_dim=2)
    w.write('rig/episode', t0, serialize_message(String(data=json.dumps(start))))
    obs, _ = env.reset()
    for i in range(steps + 1):
        t = t0 + (i + 1) * 10 * ms
        msg = frame_msg(i, obs['image']) if frame_msg else numpy_to_image(obs['image'], 'rgb8')
        msg.header.stamp = _stamp(t)
        w.write('camera/image_raw', t, serialize_message(msg))
        if i < steps:
            a = rng.uniform(-1, 1, 2)
            if actions is not None:
                actions.append(a)
            cmd = TwistStamped()
            cmd.header.stamp, cmd.header.frame_id = _stamp(t + 3 * ms), 'base_link'
            cmd.twist.linear.x, cmd.twist.linear.y = (float(v) for v in a * scales[0] * scales[1])
            w.write('rig/cmd', t + 3 * ms, serialize_message(cmd))
            obs, *_ = env.step(a)
    w.write('rig/episode', t0 + (steps + 2) * 10 * ms, serialize_message(String(data=json.dumps(
        {'event': 'end', 'episode': episode}))))


def record_sim_episode(data_dir, name, env, rng, **kw):
    """One episode (write_sim_episode's arguments) as one closed bag `name`."""
    w = EpisodeBagWriter(data_dir, name)
    write_sim_episode(w, env, rng, **kw)
    return w.close()


@pytest.fixture(scope='module')
def reach_env():
    from rig_sim import make_env
    env = make_env(task='reach', seed=0)
    yield env
    env.close()


def write_tiny_learn_yaml(path, refit_steps: int = 5, refit_every: int = 30, pretrain_steps: int = 5,
                          vae: dict | None = None, **rl):
    """A tiny reach learner (4-D latents, 32x32 nets, batch 16) as a learner YAML file, with a fast
    schedule: VAE pretraining on 30 frames, a refit every `refit_every` transitions, 0.5 updates per
    transition from the first one; `vae` adds VAE settings (the goal prior)."""
    path.write_text(yaml.safe_dump({
        'task': 'reach', 'image_size': 48,
        'vae': {'latent_dim': 4, 'batch_size': 16, 'refit_steps': refit_steps, 'pretrain_images': 30,
                'pretrain_steps': pretrain_steps, 'refit_schedule': [[0, refit_every]], **(vae or {})},
        'rl': {'hidden': [32, 32], 'batch_size': 16, 'learning_starts': 0, 'updates_per_step': 0.5, **rl},
    }))
    return path


@pytest.fixture
def tiny_learn_yaml(tmp_path):
    return write_tiny_learn_yaml(tmp_path / 'learn_tiny.yaml')


@pytest.fixture
def small_buffer_yaml(tmp_path):
    """The tiny learner with a replay buffer of 45 frames: two 20-step bags do not fill it, three do."""
    return write_tiny_learn_yaml(tmp_path / 'learn_small_buffer.yaml', buffer_size=45)


def make_trainer(tmp_path, learn_yaml, **kw):
    cfg = TrainerConfig(data_dir=str(tmp_path / 'data'), task='reach', learn_config=str(learn_yaml),
                        action_scale=SCALE, control_rate_hz=RATE, checkpoint_every_updates=10, **kw)
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
    # the VAE pretrained on those 40 transitions (41 frames >= 30), which earn no updates; the
    # learner's clock starts after them
    assert c['vae_fits'] == 1 and c['updates'] == 0 and trainer.schedule_start == 40
    record_sim_episode(data, 'a_ep000001b', reach_env, rng)
    assert trainer.ingest() == 20
    train_until_idle(trainer)
    assert c['updates'] == 10 and c['transitions'] == 60      # 0.5 updates per transition
    saved = trainer.latest
    manifest = ckpt.read_manifest(saved)
    assert manifest['trainer']['ingested'] == ['a_ep000000', 'a_ep000001', 'a_ep000001b']
    # actions recovered from velocities are the normalised actions the env received
    acts = trainer.learner.buffer.actions[trainer.learner.buffer._valid()]
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
    assert restarted.counters['episodes'] == 3, 'ledger bags re-read, not recounted'
    assert restarted.learner.buffer.n_transitions == 60 and restarted.schedule_start == 40
    assert restarted.ingest() == 20                 # the bag after the checkpoint counts once
    assert 'b_garbage' in restarted.bad_bags        # skipped with a reason, nothing else stops
    assert restarted.counters['episodes'] == 4 and restarted.counters['transitions'] == 80
    assert restarted.ingest() == 0                  # nothing twice
    train_until_idle(restarted)
    final = ckpt.read_manifest(restarted.latest)['trainer']
    assert final['ingested'] == ['a_ep000000', 'a_ep000001', 'a_ep000001b', 'a_ep000002']
    assert 'b_garbage' in final['bad_bags']
    assert final['counters']['transitions'] == 80 and final['counters']['updates'] == 20


def test_mismatched_checkpoint_in_the_directory_is_refused(tmp_path, tiny_learn_yaml, reach_env):
    trainer = make_trainer(tmp_path, tiny_learn_yaml)
    trainer.save_checkpoint()
    other = tmp_path / 'other.yaml'
    spec = yaml.safe_load(tiny_learn_yaml.read_text())
    spec['vae']['latent_dim'] = 8
    other.write_text(yaml.safe_dump(spec))
    with pytest.raises(ckpt.CheckpointMismatch, match='latent_dim'):
        make_trainer(tmp_path, other)


def test_bad_frames_are_dropped_and_counted_not_the_bag(tmp_path, tiny_learn_yaml, reach_env, caplog):
    """A malformed frame used to make its bag a bad bag, a frame of another size to kill the trainer
    (np.stack of unequal shapes); now the first is dropped and counted, the second resized."""
    import cv2
    rng = np.random.default_rng(0)
    data = tmp_path / 'data'

    def frame_msg(i, image):
        if i == 5:
            msg = numpy_to_image(image, 'rgb8')
            msg.step += 3                   # step no longer matches the data
            return msg
        if i == 9:
            return numpy_to_image(cv2.resize(image, (64, 64)), 'rgb8')
        if i == 12:
            return numpy_to_image(image[..., ::-1].copy(), 'bgr8')
        return numpy_to_image(image, 'rgb8')
    record_sim_episode(data, 'a_ep000000', reach_env, rng, frame_msg=frame_msg)
    record_sim_episode(data, 'a_ep000001', reach_env, rng)
    trainer = make_trainer(tmp_path, tiny_learn_yaml)
    with caplog.at_level('INFO', logger='rig.trainer'):
        assert trainer.ingest() == 18 + 20        # frame 5 took the transitions 4->5 and 5->6
    assert trainer.bad_bags == {}
    assert trainer.ingested == ['a_ep000000', 'a_ep000001']
    assert trainer.dropped_frames == {'malformed': 1}
    assert trainer.counters['frames'] == 20 + 21
    assert 'a_ep000000: 1 episode(s), 18 transitions; dropped frames: malformed 1' in caplog.text
    trainer.save_checkpoint()
    assert ckpt.read_manifest(trainer.latest)['trainer']['dropped_frames'] == {'malformed': 1}
    again = make_trainer(tmp_path, tiny_learn_yaml)
    assert again.dropped_frames == {'malformed': 1} and again.learner.buffer.n_transitions == 38


def test_resuming_twice_counts_nothing_again(tmp_path, tiny_learn_yaml, reach_env):
    rng = np.random.default_rng(0)
    for k in range(2):
        record_sim_episode(tmp_path / 'data', f'a_ep{k:06d}', reach_env, rng)
    trainer = make_trainer(tmp_path, tiny_learn_yaml)
    trainer.ingest()
    train_until_idle(trainer)            # the VAE pretrained on those; the learner's clock starts
    record_sim_episode(tmp_path / 'data', 'a_ep000002', reach_env, rng)
    trainer.ingest()
    trainer.save_checkpoint()            # before training: the 10 updates the new data asks for are owed
    saved = dict(trainer.counters)
    assert saved['frames'] == 63 and saved['updates'] == 0
    first = make_trainer(tmp_path, tiny_learn_yaml)
    first.save_checkpoint()
    second = make_trainer(tmp_path, tiny_learn_yaml)
    for resumed in (first, second):
        assert {k: v for k, v in resumed.counters.items() if k != 'checkpoints'} == \
            {k: v for k, v in saved.items() if k != 'checkpoints'}
        assert resumed._updates_owed == 10, 'owed updates are in the ledger: a restart still does them'
        assert resumed.schedule_start == 40


def test_resume_reads_only_the_newest_bags_the_buffer_holds(tmp_path, small_buffer_yaml, reach_env,
                                                             monkeypatch):
    import rig_trainer.online as online
    rng = np.random.default_rng(0)
    data = tmp_path / 'data'
    for k in range(5):
        record_sim_episode(data, f'a_ep{k:06d}', reach_env, rng)
    trainer = make_trainer(tmp_path, small_buffer_yaml)
    assert trainer.learner.buffer.capacity == 45
    assert trainer.ingest() == 100
    trainer.save_checkpoint()

    def held(t):   # the frames in the buffer, as a multiset (slot order depends on the ring's head)
        buf = t.learner.buffer
        return sorted(im.tobytes() for im in buf.images[buf.written])
    read = []

    def reading(bag, *args, **kwargs):
        read.append(Path(bag).name)
        return real_read(bag, *args, **kwargs)
    real_read = online.read_episodes
    monkeypatch.setattr(online, 'read_episodes', reading)
    resumed = make_trainer(tmp_path, small_buffer_yaml)
    # 20 + 20 transitions do not fill 45 slots, a third bag does: the two oldest are not read.
    assert read == ['a_ep000002', 'a_ep000003', 'a_ep000004']
    assert resumed.ingested == [f'a_ep{k:06d}' for k in range(5)]
    assert resumed.counters == trainer.counters
    assert resumed.learner.buffer.n_transitions == trainer.learner.buffer.n_transitions
    assert held(resumed) == held(trainer)
    # A new bag is ingested once, and none of the unread ones.
    record_sim_episode(data, 'a_ep000005', reach_env, rng)
    read.clear()
    assert resumed.ingest() == 20 and resumed.ingest() == 0
    assert read == ['a_ep000005']
    assert resumed.counters['transitions'] == 120 and resumed.counters['episodes'] == 6


def test_a_task_without_a_learner_config_is_refused(tmp_path):
    """task:=bogus: the trainer refuses to start (it used to train and publish checkpoints for it)."""
    with pytest.raises(ValueError, match="task 'bogus': no learner config learn_bogus.yaml"):
        OnlineTrainer(TrainerConfig(task='bogus', data_dir=str(tmp_path)))
    assert not (tmp_path / 'checkpoints').exists()


@pytest.mark.parametrize('refit_every, updates_per_step', [(50, 0.5), (100, 1.0)])
def test_rig_train_and_the_bag_trainer_follow_the_schedule_of_one_learner_yaml(tmp_path, reach_env, refit_every,
                                                                                updates_per_step):
    """One learner YAML, two drivers: `rig train` (RIGAgent.learn) and the bag trainer count the same
    clock (transitions after the VAE pretraining), refit the VAE at the counts its refit_schedule
    names and make rl.updates_per_step updates per transition; change the YAML and both change."""
    from rig_base.config import load_yaml
    from rig_learn.config import LearnConfig
    learn_yaml = write_tiny_learn_yaml(tmp_path / 'learn.yaml', refit_every=refit_every,
                                       updates_per_step=updates_per_step)
    steps = 250
    agent = RIGAgent.from_config(load_yaml(LearnConfig, learn_yaml), reach_env)
    direct_refits = []
    agent.learn(steps, callback=lambda a: direct_refits.append(a.counters['refit_at_step'])
                if a.counters['refit_at_step'] not in direct_refits[-1:] + [-1] else None)

    trainer = make_trainer(tmp_path, learn_yaml)
    rng = np.random.default_rng(0)
    bag_refits, fits = [], 0
    for k in range(2 + steps // 25):            # bags of 25 transitions, read one at a time
        record_sim_episode(tmp_path / 'data', f'a_ep{k:06d}', reach_env, rng, steps=25)
        trainer.ingest()
        if not trainer.waiting_for_frames:
            train_until_idle(trainer)
        if trainer.counters['vae_fits'] > fits + (fits == 0):   # a refit (the first fit is pretraining)
            bag_refits.append(trainer.counters['transitions'] - trainer.schedule_start)
        fits = trainer.counters['vae_fits']

    # The trainer pretrained on its first 30 frames (two bags: 50 transitions, which earn nothing, as
    # rig train's pretraining images earn nothing); then `steps` transitions on the learner's clock.
    assert trainer.schedule_start == 50 and trainer.counters['transitions'] == 50 + steps
    expected = list(range(refit_every, steps + 1, refit_every))
    # rig train refits as step n + 1 begins: the one due after its last step waits for more steps
    assert direct_refits == [n for n in expected if n < steps] and agent.counters['vae_refits'] == len(direct_refits)
    assert bag_refits == expected and trainer.counters['vae_fits'] == 1 + len(expected)
    assert agent.counters['grad_steps'] == trainer.counters['updates'] == steps * updates_per_step


# -- scales travel with the data (docs/interfaces.md, "Scales") ---------------------------------------------
CELL = (0.01, 10.0)          # config/robot.yaml: the real cell's policy


def buffer_actions(trainer):
    buf = trainer.learner.buffer
    return buf.actions[buf._valid()]


def test_actions_are_rebuilt_with_the_scales_the_bag_records(tmp_path, tiny_learn_yaml, reach_env, caplog):
    """A bag made on the real cell (0.01 m x 10 Hz) gives back the actions its policy took: the trainer
    (left at its defaults, 0) takes the scales from the episode, not from its parameters, and its
    checkpoints say so; a restarted trainer keeps them, one given others refuses to go on."""
    rng = np.random.default_rng(0)
    data = tmp_path / 'data'
    taken = []
    record_sim_episode(data, 'cell_ep000001', reach_env, rng, scales=CELL, actions=taken)
    cfg = TrainerConfig(data_dir=str(data), task='reach', learn_config=str(tiny_learn_yaml))
    assert (cfg.action_scale, cfg.control_rate_hz) == (0.0, 0.0), 'the default: from the data'
    trainer = OnlineTrainer(cfg)
    first = trainer.save_checkpoint()       # before any episode: bound to no scale yet
    spec = ckpt.read_manifest(first)['spec']
    assert spec['action_scale'] is None and spec['control_rate_hz'] is None
    with caplog.at_level('INFO', logger='rig.trainer'):
        assert trainer.ingest() == 20
    assert trainer.scales == CELL
    assert 'training for action_scale 0.01 m x control_rate_hz 10 Hz, as episode cell_ep000001/root/1' in caplog.text
    np.testing.assert_allclose(buffer_actions(trainer), np.array(taken), atol=1e-5)
    assert np.abs(np.array(taken)).max() > 0.9, 'full-size actions (not a quarter of them)'
    spec = ckpt.read_manifest(trainer.save_checkpoint())['spec']
    assert (spec['action_scale'], spec['control_rate_hz']) == CELL

    resumed = OnlineTrainer(cfg)
    assert resumed.scales == CELL and resumed.learner.model.spec['action_scale'] == 0.01
    np.testing.assert_allclose(buffer_actions(resumed), np.array(taken), atol=1e-5)
    assert OnlineTrainer(dataclasses.replace(cfg, action_scale=0.01, control_rate_hz=10.0)).scales == CELL
    with pytest.raises(ckpt.CheckpointMismatch,
                       match=r'action_scale: checkpoint has 0.01, this trainer has 0.02; '
                             r'control_rate_hz: checkpoint has 10.0, this trainer has 20.0'):
        OnlineTrainer(dataclasses.replace(cfg, action_scale=0.02, control_rate_hz=20.0))


def test_an_episode_at_another_scale_is_refused_whole_recorded_and_not_retried(tmp_path, tiny_learn_yaml, reach_env,
                                                                               caplog, monkeypatch):
    import rig_trainer.online as online
    rng = np.random.default_rng(0)
    data = tmp_path / 'data'
    w = EpisodeBagWriter(data, 'a_mixed')      # one bag, two episodes: the trainer's scales, the cell's
    write_sim_episode(w, reach_env, rng, episode=1)
    write_sim_episode(w, reach_env, rng, episode=2, t0=2 * 10**9, scales=CELL)
    w.close()
    record_sim_episode(data, 'b_cell', reach_env, rng, scales=CELL)
    trainer = make_trainer(tmp_path, tiny_learn_yaml)      # given 0.02 x 20 Hz explicitly
    with caplog.at_level('INFO', logger='rig.trainer'):
        assert trainer.ingest() == 20, 'only the episode at the trainer\'s scales'
    why = ('recorded with action_scale 0.01 m x control_rate_hz 10 Hz, the trainer trains for '
           'action_scale 0.02 m x control_rate_hz 20 Hz')
    assert trainer.refused_episodes == {'a_mixed/root/2': why, 'b_cell/root/1': why}
    assert trainer.ingested == ['a_mixed', 'b_cell'] and trainer.bag_transitions == {'a_mixed': 20, 'b_cell': 0}
    c = trainer.counters
    assert (c['episodes'], c['transitions'], c['frames']) == (1, 20, 21), 'nothing of a refused episode counts'
    refusals = [r for r in caplog.records if r.levelname == 'ERROR' and 'refusing episode' in r.getMessage()]
    assert len(refusals) == 1, 'throttled: one line for the two'
    assert f'refusing episode a_mixed/root/2: {why}; not ingested' in refusals[0].getMessage()
    assert trainer.scales == (SCALE, RATE)
    assert trainer.ingest() == 0, 'not retried'
    saved = trainer.save_checkpoint()
    assert ckpt.read_manifest(saved)['trainer']['refused_episodes'] == trainer.refused_episodes

    read = []
    real_read = online.read_episodes
    monkeypatch.setattr(online, 'read_episodes', lambda bag, **kw: read.append(bag.name) or real_read(bag, **kw))
    resumed = make_trainer(tmp_path, tiny_learn_yaml)
    assert read == ['a_mixed'], 'a bag that gave nothing is not re-read'
    assert resumed.learner.buffer.n_transitions == 20 and resumed.counters == trainer.counters
    assert resumed.refused_episodes == trainer.refused_episodes
    assert resumed.ingest() == 0 and read == ['a_mixed']


def test_episodes_that_record_no_scales_use_the_trainers_or_wait_for_them(tmp_path, tiny_learn_yaml, reach_env,
                                                                          caplog):
    """Bags from before the start events carried the scales: taken at the trainer's values (one
    warning); with none (defaults, no episode has said any) they wait, out of the ledger, until one does."""
    rng = np.random.default_rng(0)
    data = tmp_path / 'data'
    old_actions, new_actions = [], []
    for k in range(2):
        record_sim_episode(data, f'a_old{k}', reach_env, rng, scales=CELL, record_scales=False, actions=old_actions)
    trainer = OnlineTrainer(TrainerConfig(data_dir=str(data), task='reach', learn_config=str(tiny_learn_yaml)))
    with caplog.at_level('INFO', logger='rig.trainer'):
        assert trainer.ingest() == 0 and trainer.ingest() == 0
    assert trainer.ingested == [] and trainer.bad_bags == {} and trainer.waiting_for_scales == {'a_old0', 'a_old1'}
    assert len(trainer.pending_bags()) == 2 and not trainer.caught_up
    waits = [r for r in caplog.records if 'waits' in r.getMessage()]
    assert len(waits) == 1 and 'give the trainer action_scale and control_rate_hz' in waits[0].getMessage()
    record_sim_episode(data, 'b_new', reach_env, rng, scales=CELL, actions=new_actions)
    caplog.clear()
    with caplog.at_level('INFO', logger='rig.trainer'):
        assert trainer.ingest() == 20       # b_new sets the scales ...
        assert trainer.ingest() == 40       # ... and the old ones are read with them
    assert trainer.scales == CELL and trainer.ingested == ['b_new', 'a_old0', 'a_old1']
    np.testing.assert_allclose(buffer_actions(trainer), np.array(new_actions + old_actions), atol=1e-5)
    warned = [r for r in caplog.records if 'records no action scale' in r.getMessage()]
    assert len(warned) == 1 and r'action_scale 0.01 m x control_rate_hz 10 Hz' in warned[0].getMessage()

    # A trainer given the scales takes such bags at once, at its values.
    given = OnlineTrainer(TrainerConfig(data_dir=str(data), checkpoint_dir=str(tmp_path / 'given'), task='reach',
                                        learn_config=str(tiny_learn_yaml), action_scale=0.01, control_rate_hz=10.0))
    assert given.ingest() == 60
    np.testing.assert_allclose(buffer_actions(given)[:40], np.array(old_actions), atol=1e-5)


def test_scale_parameters_are_both_given_or_both_left_to_the_data(tmp_path):
    with pytest.raises(ValueError, match='both be > 0, or both 0'):
        OnlineTrainer(TrainerConfig(data_dir=str(tmp_path), action_scale=0.01))
    with pytest.raises(ValueError, match='both be > 0, or both 0'):
        OnlineTrainer(TrainerConfig(data_dir=str(tmp_path), action_scale=-0.01, control_rate_hz=10.0))
