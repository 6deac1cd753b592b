"""The online trainer stops within a step, even mid-pretraining or mid-refit, and keeps the progress."""
from __future__ import annotations

import logging
import time

import numpy as np
import pytest
import torch
from test_online_trainer import RATE, SCALE, reach_env, record_sim_episode, write_tiny_learn_yaml  # noqa: F401

from rig_learn import checkpoint as ckpt
from rig_trainer import online
from rig_trainer.online import OnlineTrainer, TrainerConfig, latest_checkpoint


@pytest.fixture
def learn_yaml(tmp_path):
    return write_tiny_learn_yaml(tmp_path / 'learn_long_fits.yaml', refit_steps=200, refit_every=10)


def trainer_config(tmp_path, learn_yaml, **kw) -> dict:
    values = dict(data_dir=str(tmp_path / 'data'), task='reach', learn_config=str(learn_yaml),
                  action_scale=SCALE, control_rate_hz=RATE, checkpoint_every_updates=10)
    values.update(kw)
    return values


@pytest.mark.parametrize('goal_prior', [{}, {'goal_prior': 'data', 'goal_bank_skew': -0.5}],
                         ids=['standard', 'skewed_bank'])
def test_a_refit_runs_in_budgeted_slices_and_ends_as_one_refit_would(tmp_path, reach_env, monkeypatch, goal_prior):
    """Adam steps, the buffer's re-encoding and (Skew-Fit's goal bank) the density estimates all run
    in slices of the budget, and end where one refit would: the same VAE, goal bank (a VAE buffer)
    and features."""
    from rig_learn import goals
    torch.set_num_threads(1)
    learn_yaml = write_tiny_learn_yaml(tmp_path / 'learn.yaml', refit_steps=200, refit_every=10, vae=goal_prior)
    monkeypatch.setattr(online, 'REENCODE_BATCH', 8, raising=False)   # several re-encoding slices for 60 frames
    monkeypatch.setattr(goals, 'SKEW_BATCH', 8)                        # several density-estimate slices
    rng = np.random.default_rng(0)
    data = tmp_path / 'data'
    for k in range(2):
        record_sim_episode(data, f'a_ep{k:06d}', reach_env, rng)
    whole, sliced = (OnlineTrainer(TrainerConfig(**trainer_config(tmp_path / name, learn_yaml,
                                                                  data_dir=str(data))))
                     for name in ('whole', 'sliced'))
    for t in (whole, sliced):
        t.ingest()
        while not t.vae_ready:
            t.train(budget_s=5.0)
    record_sim_episode(data, 'a_ep000002', reach_env, rng)
    for t in (whole, sliced):
        assert t.ingest() == 20
    whole.learner.refit_vae()                 # the learner's refit: 200 steps, then ReplayBuffer.refresh

    budget, calls, longest = 0.05, 0, 0.0
    while True:
        t0 = time.perf_counter()
        sliced.train(budget_s=budget)
        longest = max(longest, time.perf_counter() - t0)
        calls += 1
        job = getattr(sliced, 'vae_job', None)
        if job is None:
            break
        assert job['kind'] == 'refit' and calls < 1000
        assert sliced.fitting_vae   # the node does not idle between these slices (trainer_node._run)
    assert calls > 3, 'the refit should have taken several slices'
    assert longest < budget + 0.25, f'a train() call ran {longest:.2f} s on a {budget} s budget'
    assert sliced.counters['vae_fits'] == 2 and sliced.learner.counters['vae_refits'] == 1 and not sliced.fitting_vae
    for key, value in whole.learner.model.vae.state_dict().items():
        torch.testing.assert_close(sliced.learner.model.vae.state_dict()[key], value, rtol=0, atol=0)
    if goal_prior:
        assert len(sliced.learner.model.vae.goal_bank) == sliced.learner.cfg.vae.goal_bank_size
    for buf_w, buf_s in ((whole.learner.buffer, sliced.learner.buffer),):
        np.testing.assert_array_equal(buf_s.obs_feat, buf_w.obs_feat)
        np.testing.assert_array_equal(buf_s.ach_logvar, buf_w.ach_logvar)


def test_pretraining_in_slices_equals_one_call(tmp_path, learn_yaml):
    from rig_base.config import load_yaml
    from rig_learn.agent import RIGAgent
    from rig_learn.config import LearnConfig
    learn = load_yaml(LearnConfig, str(learn_yaml))
    spec = online.agent_spec(TrainerConfig(), learn)
    images = np.random.default_rng(1).integers(0, 256, (64, 48, 48, 3), dtype=np.uint8)
    one, sliced = RIGAgent(learn, spec=spec), RIGAgent(learn, spec=spec)
    one.pretrain_vae(images, steps=12)
    for _ in range(12):
        sliced.pretrain_vae(images, steps=1, finish=False)
        assert not sliced.counters['vae_pretrained']
    sliced.pretrain_vae(images, steps=0)
    assert sliced.counters['vae_pretrained']
    for key, value in one.vae.state_dict().items():
        torch.testing.assert_close(sliced.vae.state_dict()[key], value, rtol=0, atol=0)


def test_ingest_stops_between_bags(tmp_path, learn_yaml, reach_env):
    rng = np.random.default_rng(0)
    for k in range(2):
        record_sim_episode(tmp_path / 'data', f'a_ep{k:06d}', reach_env, rng)
    trainer = OnlineTrainer(TrainerConfig(**trainer_config(tmp_path, learn_yaml)))
    trainer.stop.set()
    assert trainer.ingest() == 0 and trainer.ingested == []
    trainer.stop.clear()
    assert trainer.ingest() == 40


def test_trainer_node_stops_mid_pretraining_in_time_and_a_resumed_trainer_continues(
        tmp_path, learn_yaml, reach_env):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import String

    from rig_base import qos
    from rig_trainer.trainer_node import TrainerNode, TrainerNodeConfig
    rng = np.random.default_rng(0)
    for k in range(2):
        record_sim_episode(tmp_path / 'data', f'a_ep{k:06d}', reach_env, rng)
    values = trainer_config(tmp_path, learn_yaml, learn_set=('vae.pretrain_steps=100000',))   # minutes of it
    core_log = logging.getLogger('rig.trainer')
    saved_log = (core_log.handlers[:], core_log.level, core_log.propagate)
    context = rclpy.Context()
    rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    node = None
    try:
        node = TrainerNode(TrainerNodeConfig(**values, scan_period_s=0.1), context=context)
        probe = rclpy.create_node('probe', context=context)
        announced = []
        probe.create_subscription(String, 'rig/checkpoint', lambda m: announced.append(m.data),
                                  qos.CHECKPOINT_QOS)
        executor.add_node(node)
        executor.add_node(probe)

        def spin_until(predicate, timeout):
            deadline = time.monotonic() + timeout
            while not predicate() and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.02)
            return predicate()
        job = lambda: node.trainer.vae_job or {}   # noqa: E731
        assert spin_until(lambda: job().get('done', 0) >= 20 and node.trainer.latest is not None, 60), \
            f'pretraining did not get going: {node.trainer.counters}, error {node.error}'
        t0 = time.monotonic()
        node.stop()
        assert spin_until(node.finished_stopping, 5.0)
        executor.remove_node(node)
        node.destroy_node()
        took = time.monotonic() - t0
        node_error, node = node.error, None
        assert node_error is None
        assert took < 2.0, f'stopping took {took:.2f} s'
        final = latest_checkpoint(tmp_path / 'data' / 'checkpoints')
        assert spin_until(lambda: announced and announced[-1] == str(final), 5.0), announced
        probe.destroy_node()
    finally:
        if node is not None:
            node.destroy_node()
        executor.shutdown(timeout_sec=1.0)
        rclpy.try_shutdown(context=context)
        core_log.handlers[:], core_log.level, core_log.propagate = saved_log

    ckpt.load_checkpoint(final)   # complete and loadable
    ledger = ckpt.read_manifest(final)['trainer']
    done = ledger['vae_job']['done']
    assert ledger['vae_job']['kind'] == 'pretrain' and ledger['vae_job']['steps'] == 100_000
    assert 20 <= done < 100_000 and ledger['counters']['vae_fits'] == 0
    assert ledger['ingested'] == ['a_ep000000', 'a_ep000001']

    resumed = OnlineTrainer(TrainerConfig(**values))
    assert resumed.latest == final and resumed.vae_job == ledger['vae_job']
    assert resumed.counters == ledger['counters']
    resumed.train(budget_s=0.3)
    assert resumed.vae_job['done'] > done, 'the pretraining continues where it stopped'


def test_trainer_node_takes_the_scales_of_the_data_and_reports_an_episode_at_others(tmp_path, learn_yaml, reach_env):
    """The node left at its defaults (as docs/real_robot.md starts it): the first bag (the real cell's
    0.01 m x 10 Hz) sets its scales and its checkpoints say so; an episode made at the sim's 0.02 x 20 is
    refused, and rig/trainer_status (over DDS) counts it."""
    import json

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import String

    from rig_base import qos
    from rig_trainer.trainer_node import TrainerNode, TrainerNodeConfig
    rng = np.random.default_rng(0)
    data = tmp_path / 'data'
    record_sim_episode(data, 'a_ep000000', reach_env, rng, scales=(0.01, 10.0))
    record_sim_episode(data, 'a_ep000001', reach_env, rng, scales=(SCALE, RATE))
    values = trainer_config(tmp_path, learn_yaml, action_scale=0.0, control_rate_hz=0.0)
    core_log = logging.getLogger('rig.trainer')
    saved_log = (core_log.handlers[:], core_log.level, core_log.propagate)
    context = rclpy.Context()
    rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    node = probe = None
    try:
        node = TrainerNode(TrainerNodeConfig(**values, scan_period_s=0.1), context=context)
        probe = rclpy.create_node('probe', context=context)
        status, announced = [], []
        probe.create_subscription(String, 'rig/trainer_status', lambda m: status.append(json.loads(m.data)),
                                  qos.LATCHED_QOS)
        probe.create_subscription(String, 'rig/checkpoint', lambda m: announced.append(m.data), qos.CHECKPOINT_QOS)
        executor.add_node(node)
        executor.add_node(probe)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
                status and status[-1]['refused_episodes'] == 1 and status[-1]['pending_bags'] == 0
                and announced and ckpt.read_manifest(announced[-1])['trainer']['refused_episodes']):
            executor.spin_once(timeout_sec=0.05)
        assert status, 'no rig/trainer_status'
        last = status[-1]
        assert last['refused_episodes'] == 1, (last, node.error)
        assert (last['action_scale'], last['control_rate_hz']) == (0.01, 10.0)
        assert last['counters']['transitions'] == 20 and last['counters']['episodes'] == 1
        manifest = ckpt.read_manifest(announced[-1])
        assert (manifest['spec']['action_scale'], manifest['spec']['control_rate_hz']) == (0.01, 10.0)
        assert list(manifest['trainer']['refused_episodes']) == ['a_ep000001/root/1']
        assert node.error is None
    finally:
        for n in (probe, node):
            if n is not None:
                n.destroy_node()
        executor.shutdown(timeout_sec=1.0)
        rclpy.try_shutdown(context=context)
        core_log.handlers[:], core_log.level, core_log.propagate = saved_log


def test_trainer_node_parameters_give_both_scales_or_neither():
    from rig_base.config import ConfigError
    from rig_trainer.trainer_node import TrainerNodeConfig
    with pytest.raises(ConfigError, match='action_scale and control_rate_hz must both be > 0, or both 0'):
        TrainerNodeConfig(action_scale=0.01)
    assert TrainerNodeConfig().action_scale == 0.0 and TrainerNodeConfig(action_scale=0.01, control_rate_hz=10.0)
