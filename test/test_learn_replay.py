"""Replay buffer: relabelling fractions, recomputed rewards, ring wrap-around, re-encoding after refit."""
import numpy as np
import pytest
import torch

from rig_learn import RIGAgent, make_task_env
from rig_learn.config import LearnConfig, RelabelConfig
from rig_learn.features import Featurizer, reward_fn
from rig_learn.replay import FUTURE, OWN, PRIOR, Frame, ReplayBuffer


@pytest.fixture
def tiny_toy_agent():
    from rig_learn.testing import tiny_config
    cfg = tiny_config()
    return RIGAgent.from_config(cfg, make_task_env('toy_reach', seed=0))


class VecFeaturizer(Featurizer):
    """Features = the stored 'achieved' vector; a prior to sample from."""
    needs_images = False

    def __init__(self, d):
        self.obs_dim = self.goal_dim = d

    def obs(self, images, states):
        return np.asarray(states, np.float32)

    def achieved(self, images, ach):
        return np.asarray(ach, np.float32), None

    def goal(self, images, states):
        return np.asarray(states, np.float32)

    def sample_prior(self, rng, n):
        return (100.0 + rng.standard_normal((n, self.goal_dim))).astype(np.float32)  # far from data: identifiable


def fill(buf, n_eps, T, d=3, seed=0):
    rng = np.random.default_rng(seed)
    for e in range(n_eps):
        goal = np.full(d, -50.0 - e, np.float32)              # identifiable own goals
        def frame(t):
            v = np.array([e, t] + [0.0] * (d - 2), np.float32) + 0.01 * rng.standard_normal(d).astype(np.float32)
            return Frame(None, v, v, v)
        buf.start_episode(None, goal, goal, frame(0))
        for t in range(1, T + 1):
            buf.add_step(rng.uniform(-1, 1, 2), False, frame(t))


def make_buf(capacity=10_000, fr=None, d=3):
    f, fr = VecFeaturizer(d), fr or RelabelConfig()
    return ReplayBuffer(capacity, f, (4, 4, 3), d, d, 2, np.random.default_rng(1), fr, reward_fn('latent_distance'))


def test_relabel_fractions_and_recomputed_rewards():
    buf = make_buf()
    fill(buf, n_eps=40, T=20)
    b = buf.sample(20_000)
    src = b.goal_source
    for code, want in ((OWN, 0.1), (PRIOR, 0.5), (FUTURE, 0.4)):
        assert abs(np.mean(src == code) - want) < 0.015, (code, np.mean(src == code))
    idx, goal = b.index, b.goal
    ep = buf.ep_of[idx]
    # own goals are the episode's goal; prior goals come from the prior; future goals are later frames of
    # the same episode
    np.testing.assert_allclose(goal[src == OWN], buf.ep_goal_feat[ep[src == OWN]])
    assert (goal[src == PRIOR] > 90).all()
    fut = goal[src == FUTURE]
    assert np.allclose(np.round(fut[:, 0]), ep[src == FUTURE])                 # same episode
    t_now = buf.achieved[idx[src == FUTURE], 1]
    assert (fut[:, 1] > t_now + 0.5).all()                                    # strictly later frames
    # rewards recomputed for the relabelled goal from the next frame's features
    nxt_feat = buf.achieved[(idx + 1) % buf.capacity]
    np.testing.assert_allclose(b.reward, -np.linalg.norm(nxt_feat - goal, axis=1), rtol=1e-5, atol=1e-5)
    # next_obs is the following frame of the same episode
    np.testing.assert_allclose(b.next_obs[:, 1], b.obs[:, 1] + 1, atol=0.1)


def test_relabel_fractions_are_config_not_collector_state():
    buf = make_buf(fr=RelabelConfig(own=0.2, prior=0.0, future=0.8))
    fill(buf, 10, 10)
    src = buf.sample(10_000).goal_source
    assert (src != PRIOR).all() and abs(np.mean(src == FUTURE) - 0.8) < 0.02


def test_future_relabelling_survives_ring_wraparound():
    buf = make_buf(capacity=97)
    fill(buf, n_eps=23, T=10)          # 253 frames through a 97-slot ring
    b = buf.sample(5000, fractions=[0, 0, 1])
    ep = buf.ep_of[b.index]
    assert np.allclose(np.round(b.goal[:, 0]), ep)
    assert (b.goal[:, 1] > buf.achieved[b.index, 1] + 0.5).all()
    assert np.allclose(b.next_obs[:, 1], b.obs[:, 1] + 1, atol=0.1)
    assert len(buf) <= 97


def test_relabel_config_validation():
    from rig_base.config import ConfigError
    with pytest.raises(ConfigError):
        LearnConfig(relabel=RelabelConfig(own=0.5, prior=0.5, future=0.5))
    with pytest.raises(ConfigError):   # the oracle's 'prior' goals come from a bank of env goals
        LearnConfig(mode='oracle', relabel=RelabelConfig(env_goal_bank=0))


@pytest.mark.parametrize('mode', ['oracle', 'her_pixels'])
def test_baselines_prior_relabelling_draws_env_goals(mode):
    """For the baselines 'prior' goals are env-sampled goals (rlkit's fraction_goals_env_goals), and
    their rewards are recomputed against them like every other relabelled goal."""
    from rig_learn.testing import tiny_config
    env = make_task_env('toy_reach', seed=0)
    cfg = tiny_config('toy_reach', mode=mode, **{'relabel.own': 0.1, 'relabel.prior': 0.5, 'relabel.future': 0.4,
                                                 'relabel.env_goal_bank': 64})
    agent = RIGAgent.from_config(cfg, env)
    agent.learn(120)
    bank = agent.featurizer.goal_bank
    assert bank.shape == (64, agent.featurizer.goal_dim) and np.isfinite(bank).all()
    assert len(np.unique(bank, axis=0)) > 32                       # distinct goals, not one repeated
    b = agent.buffer.sample(4000)
    src = b.goal_source
    assert abs(np.mean(src == PRIOR) - 0.5) < 0.04
    prior_goals = b.goal[src == PRIOR]
    # every prior goal is a row of the bank
    assert (np.abs(prior_goals[:, None] - bank[None]).max(-1).min(1) < 1e-6).all()
    nxt = agent.buffer.ach_feat[(b.index + 1) % agent.buffer.capacity]
    nxt_lv = agent.buffer.ach_logvar[(b.index + 1) % agent.buffer.capacity]
    np.testing.assert_allclose(b.reward, agent.reward(nxt, nxt_lv, b.goal), rtol=1e-5, atol=1e-5)
    if mode == 'oracle':   # state goals from the env's goal distribution (not achieved states of the buffer)
        assert not np.isin(prior_goals[:, 0], agent.buffer.ach_feat[:, 0]).any()


def test_reencoding_after_vae_refit_changes_cached_latents(tiny_toy_agent):
    torch.set_num_threads(1)
    agent = tiny_toy_agent
    agent.learn(120)
    buf = agent.buffer
    slots = np.flatnonzero(buf.written)
    before = buf.obs_feat[slots].copy()
    goals_before = buf.ep_goal_feat[:buf.n_episodes].copy()
    np.testing.assert_allclose(before, agent.encode(buf.images[slots])[0], atol=1e-5)
    agent.refit_vae(steps=5)
    after = buf.obs_feat[slots]
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(after, agent.encode(buf.images[slots])[0], atol=1e-5)   # cache == new encoder
    assert np.abs(buf.ep_goal_feat[:buf.n_episodes] - goals_before).max() > 1e-3
    np.testing.assert_allclose(buf.ach_logvar[slots], agent.encode(buf.images[slots])[1], atol=1e-5)


def test_fitted_goal_prior_follows_the_buffer_latents_after_each_refit():
    """vae.goal_prior 'fitted': imagined goals ~ N(mean, std) of the buffer's latent means."""
    torch.set_num_threads(1)
    from rig_learn.testing import tiny_config
    agent = RIGAgent.from_config(tiny_config(**{'vae.goal_prior': 'fitted'}), make_task_env('toy_reach', seed=0))
    agent.learn(120)
    agent.refit_vae(steps=5)
    buf = agent.buffer
    z = buf.obs_feat[buf.written]
    mean, std = agent.vae.goal_prior_mean.numpy(), agent.vae.goal_prior_std.numpy()
    np.testing.assert_allclose(mean, z.mean(0), atol=1e-5)
    np.testing.assert_allclose(std, np.maximum(z.std(0), 1e-3), atol=1e-5)
    assert not np.allclose(std, 1.0)                # not the standard normal any more
    goals = agent.featurizer.sample_prior(np.random.default_rng(0), 20000)
    np.testing.assert_allclose(goals.mean(0), mean, atol=4 * std.max() / np.sqrt(20000) + 1e-6)
    np.testing.assert_allclose(goals.std(0), std, rtol=0.05)
    # prior relabelling draws from the same distribution
    batch = buf.sample(4000)
    prior_goals = batch.goal[batch.goal_source == PRIOR]
    assert abs(prior_goals.mean(0) - mean).max() < 0.2 * std.max() + 1e-3


def test_data_goal_prior_draws_latents_of_seen_images_after_each_refit():
    """vae.goal_prior 'data': imagined goals are latent means of pretraining and buffer images under
    the current encoder (re-encoded after every refit), subsampled to vae.goal_bank_size."""
    torch.set_num_threads(1)
    from rig_learn.testing import tiny_config
    agent = RIGAgent.from_config(tiny_config(**{'vae.goal_prior': 'data', 'vae.goal_bank_size': 64}),
                                 make_task_env('toy_reach', seed=0))
    agent.learn(120)
    buf = agent.buffer
    stale = np.concatenate([buf.obs_feat[buf.written], agent.encode(agent.pretrain_images)[0]])
    agent.refit_vae(steps=5)
    seen = np.concatenate([buf.obs_feat[buf.written], agent.encode(agent.pretrain_images)[0]])
    bank = agent.vae.goal_bank.numpy()
    assert bank.shape == (64, agent.cfg.vae.latent_dim) and len(seen) > 64
    # every bank row is the current latent of some seen image (not a stale pre-refit latent)
    dist = np.linalg.norm(bank[:, None] - seen[None], axis=2).min(1)
    assert dist.max() < 1e-4
    assert np.median(np.linalg.norm(bank[:, None] - stale[None], axis=2).min(1)) > 1e-4
    goals = agent.featurizer.sample_prior(np.random.default_rng(0), 500)
    assert np.linalg.norm(goals[:, None] - bank[None], axis=2).min(1).max() < 1e-6
    assert len(np.unique(goals, axis=0)) > 40            # drawn across the bank, not one row
    np.testing.assert_array_equal(agent.vae.goal_prior_std.numpy(), 1.0)   # the Gaussian is unused
    # prior relabelling draws from the bank too
    batch = buf.sample(2000)
    prior_goals = batch.goal[batch.goal_source == PRIOR]
    assert len(prior_goals) > 100
    assert np.linalg.norm(prior_goals[:, None] - bank[None], axis=2).min(1).max() < 1e-5


def test_standard_goal_prior_stays_unit_normal(tiny_toy_agent):
    torch.set_num_threads(1)
    from rig_learn.testing import tiny_config
    agent = tiny_toy_agent
    assert agent.cfg.vae.goal_prior == 'standard'          # the default, as in the paper
    agent.learn(120)
    agent.refit_vae(steps=5)
    np.testing.assert_array_equal(agent.vae.goal_prior_mean.numpy(), 0.0)
    np.testing.assert_array_equal(agent.vae.goal_prior_std.numpy(), 1.0)
    from rig_base.config import ConfigError
    with pytest.raises(ConfigError):
        tiny_config(**{'vae.goal_prior': 'uniform'})


def test_refit_due_after_step_n_runs_as_step_n_plus_1_begins(tiny_toy_agent):
    """Evaluations/checkpoints at step n must not see a policy whose latents a refit just moved."""
    torch.set_num_threads(1)
    agent = tiny_toy_agent                       # refit every 100 env steps
    seen = {}
    agent.learn(100, callback=lambda a: seen.setdefault(a.counters['env_steps'], a.counters['vae_refits']) or True)
    assert seen[100] == 0 and agent.counters['vae_refits'] == 0      # due, not yet run
    agent.learn(1)
    assert agent.counters['vae_refits'] == 1 and agent.counters['refit_at_step'] == 100
    agent.learn(99)
    assert agent.counters['vae_refits'] == 1
    agent.learn(1)
    assert agent.counters['vae_refits'] == 2
