"""Learner units: reward sign/scale, VAE learning, TD3/SAC critic regression, devices, configs, protocol."""
import glob
import os

import numpy as np
import pytest
import torch

from rig_base.config import ConfigError, from_dict
from rig_base.resources import config_dir
from rig_learn import DeviceUnavailable, ToyReachEnv, check_env, resolve_device
from rig_learn.config import LearnConfig, RLConfig
from rig_learn.features import reward_fn
from rig_learn.protocol import ProtocolError
from rig_learn.rl import SAC, TD3, TensorBatch, make_actor
from rig_learn.runs import load_config
from rig_learn.schedule import Schedule
from rig_learn.vae import ConvVAE, VAETrainer, encode_images


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


@pytest.mark.parametrize('kind', ['latent_distance', 'mahalanobis', 'log_prob'])
def test_reward_sign_and_scale(kind):
    r = reward_fn(kind, scale=1.0)
    g = np.zeros((1, 4), np.float32)
    lv = np.zeros((1, 4), np.float32)           # unit variance: log_prob's constant term is 0
    at_goal = r(g.copy(), lv, g)[0]
    near = r(np.full((1, 4), 0.1, np.float32), lv, g)[0]
    far = r(np.full((1, 4), 1.0, np.float32), lv, g)[0]
    assert at_goal == pytest.approx(0.0, abs=1e-6)
    assert at_goal > near > far
    if kind == 'latent_distance':
        assert far == pytest.approx(-2.0)       # -||(1,1,1,1)|| = -2: plain negative Euclidean distance
        assert reward_fn(kind, scale=3.0)(np.ones((1, 4), np.float32), lv, g)[0] == pytest.approx(-6.0)


def test_vae_reconstruction_loss_falls():
    torch.manual_seed(0)
    env = ToyReachEnv(seed=0)
    rng = np.random.default_rng(0)
    imgs = np.stack([env.sample_goal(rng)['image'] for _ in range(64)])
    vae = ConvVAE(48, 8, 'conv48', 'gaussian', 0.1)
    tr = VAETrainer(vae, beta=1.0, lr=1e-3, gen=torch.Generator().manual_seed(0))
    before = tr.evaluate(imgs)['vae/sse']
    for _ in range(60):
        tr.train_step(imgs[rng.integers(0, 64, 16)])
    after = tr.evaluate(imgs)['vae/sse']
    assert after < 0.5 * before, (before, after)


@pytest.mark.parametrize('arch,size,decoder', [('conv48', 48, 'gaussian'), ('conv84', 84, 'bernoulli'),
                                               ('conv48', 64, 'bernoulli')])
def test_vae_shapes(arch, size, decoder):
    vae = ConvVAE(size, 6, arch, decoder)
    x = np.zeros((3, size, size, 3), np.uint8)
    mu, lv = encode_images(vae, x)
    assert mu.shape == (3, 6) and lv.shape == (3, 6)
    assert vae.decode_mean(torch.zeros(2, 6)).shape == (2, 3, size, size)
    recon, kl = vae.loss(torch.rand(2, 3, size, size))
    assert recon.shape == (2,) and (kl >= 0).all()


def _fixed_batch(n=256, inp=6, adim=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, x2 = torch.randn(n, inp, generator=g), torch.randn(n, inp, generator=g)
    action, reward = torch.rand(n, adim, generator=g) * 2 - 1, -torch.rand(n, generator=g)
    return TensorBatch(x=x, action=action, reward=reward, x2=x2, done=torch.zeros(n))


def make_rl(algo, cfg):
    """TD3 or SAC on a fresh actor, 6-D inputs, 2-D actions."""
    actor = make_actor('td3' if algo is TD3 else 'sac', 6, 2, cfg)
    return algo(actor, 6, 2, cfg, torch.device('cpu'), torch.Generator().manual_seed(0))


@pytest.mark.parametrize('fused', [False, True])
@pytest.mark.parametrize('algo', [TD3, SAC])
def test_update_reduces_critic_loss_on_fixed_batch(algo, fused):
    torch.manual_seed(0)
    cfg = RLConfig(hidden=(64, 64), discount=0.5, fused_critic=fused)
    learner = make_rl(algo, cfg)
    b = _fixed_batch()
    with torch.no_grad():
        before = float(learner.critic_loss(b))
    for _ in range(150):
        learner.update(b)
    with torch.no_grad():
        after = float(learner.critic_loss(b))
    assert after < 0.3 * before, (before, after)
    assert learner.updates == 150


def test_td3_policy_delay_and_target_update():
    cfg = RLConfig(hidden=(16,), policy_delay=2)
    learner = make_rl(TD3, cfg)
    b = _fixed_batch(32)
    t0 = [p.clone() for p in learner.actor_target.parameters()]
    out1 = learner.update(b)
    assert 'rl/actor_loss' not in out1                      # actor waits for the 2nd critic step
    assert all(torch.equal(a, b_) for a, b_ in zip(t0, learner.actor_target.parameters()))
    out2 = learner.update(b)
    assert 'rl/actor_loss' in out2
    assert not all(torch.equal(a, b_) for a, b_ in zip(t0, learner.actor_target.parameters()))


def test_td3_action_l2_keeps_the_policy_out_of_saturation():
    """rl.action_l2 (OpenAI HER's actor penalty) pulls actions towards 0; at 0 the paper's loss is unchanged."""
    def mean_abs_action(action_l2):
        torch.manual_seed(0)
        cfg = RLConfig(hidden=(64, 64), policy_delay=1, action_l2=action_l2)
        learner = make_rl(TD3, cfg)
        b = _fixed_batch()
        for _ in range(200):
            learner.update(b)
        with torch.no_grad():
            return float(learner.actor(b.x).abs().mean())

    plain, penalised = mean_abs_action(0.0), mean_abs_action(100.0)
    assert penalised < 0.5 * plain, (plain, penalised)
    assert penalised < 0.1


def test_cuda_device_fails_clearly_without_cuda():
    assert resolve_device('cpu').type == 'cpu'
    if torch.cuda.is_available():
        assert resolve_device('cuda').type == 'cuda'
    else:
        with pytest.raises(DeviceUnavailable, match='CUDA is not available'):
            resolve_device('cuda')
    with pytest.raises((DeviceUnavailable, RuntimeError)):
        resolve_device('tpu')


def test_learn_configs_load_strictly(tmp_path):
    files = sorted(glob.glob(str(config_dir() / 'learn_*.yaml')))
    assert files, 'config/learn_*.yaml missing'
    for f in files:
        cfg = load_config(path=f)
        assert isinstance(cfg, LearnConfig)
    bad = tmp_path / 'bad.yaml'
    bad.write_text('task: reach\nvae:\n  latnt_dim: 4\n')
    with pytest.raises(ConfigError, match='latnt_dim'):
        load_config(path=bad)
    cfg = load_config('reach', **{'vae.beta': 2.5, 'seed': 3})
    assert cfg.vae.beta == 2.5 and cfg.seed == 3 and cfg.task == 'reach'
    assert os.path.basename(files[0]).startswith('learn_')
    with pytest.raises(ConfigError, match='rl.action_l2 must be >= 0'):
        load_config('reach', **{'rl.action_l2': -1.0})
    with pytest.raises(ConfigError, match='needs rl.algo td3'):
        load_config('reach', **{'rl.action_l2': 1.0, 'rl.algo': 'sac'})


def _schedule(refits, learning_starts=1000, updates_per_step=4.0):
    return Schedule(from_dict(LearnConfig, {'vae': {'refit_schedule': refits},
                                            'rl': {'learning_starts': learning_starts,
                                                   'updates_per_step': updates_per_step}}))


def test_refit_schedule_is_denser_early():
    sched = _schedule([[0, 1000], [5000, 2500]])
    due = [s for s in range(1, 15001) if sched.refit_due(s - 1, s)]
    assert due == [1000, 2000, 3000, 4000, 5000, 7500, 10000, 12500, 15000]


def test_schedule_over_a_span_of_transitions_agrees_with_step_by_step():
    """The bag trainer asks for whole bags at once (before, after]; rig train one step at a time."""
    sched = _schedule([[300, 70], [1000, 400], [2000, 1000]], learning_starts=250, updates_per_step=0.5)
    rng = np.random.default_rng(0)
    for _ in range(2000):
        a = int(rng.integers(0, 3000))
        b = a + int(rng.integers(0, 400))
        assert sched.refit_due(a, b) == any(sched.refit_due(n - 1, n) for n in range(a + 1, b + 1)), (a, b)
        assert sched.updates_earned(a, b) == sum(sched.updates_earned(n - 1, n) for n in range(a + 1, b + 1))
    assert [n for n in range(1, 500) if sched.refit_due(n - 1, n)] == [350, 420, 490]
    assert sched.updates_earned(0, 249) == 0 and sched.updates_earned(249, 250) == 0.5
    assert not _schedule([[500, 100]]).refit_due(0, 499)


def test_protocol_check():
    check_env(ToyReachEnv(seed=0), image_size=48)
    with pytest.raises(ProtocolError, match='px'):
        check_env(ToyReachEnv(image_size=32, seed=0), image_size=48)

    class NoGoal(ToyReachEnv):
        sample_goal = None
    with pytest.raises(ProtocolError, match='sample_goal'):
        check_env(NoGoal(seed=0))


def test_goal_map_plots_planar_goals_and_skips_others(tmp_path):
    from rig_learn.evaluate import EvalResult
    from rig_learn.plots import goal_map
    n = 6
    nan = np.full(n, np.nan)
    reach = EvalResult(np.linspace(0, 0.1, n), nan, nan, np.zeros(n, bool), nan,
                       goal_states=np.c_[np.full(n, 0.5), np.linspace(-0.2, 0.2, n), np.zeros(n)])
    assert goal_map(reach, tmp_path / 'reach.png', success_threshold=0.05)
    assert (tmp_path / 'reach.png').stat().st_size > 0
    door = EvalResult(nan, nan, np.linspace(0, 0.3, n), np.zeros(n, bool), nan, goal_states=np.zeros((n, 1)))
    assert not goal_map(door, tmp_path / 'door.png') and not (tmp_path / 'door.png').exists()
    no_states = EvalResult(np.zeros(n), nan, nan, np.zeros(n, bool), nan)
    assert not goal_map(no_states, tmp_path / 'none.png')


@pytest.mark.parametrize('algo, exploration', [('td3', 'gaussian'), ('td3', 'ou'), ('sac', 'gaussian')])
def test_one_exploration_for_rig_train_and_the_policy_node(algo, exploration):
    """`explore_features` is how both `learn` and the graph's policy node practise: SAC samples, TD3
    adds its configured noise (sigma overridable, OU state reset per episode)."""
    from rig_learn.agent import RIGAgent
    from rig_learn.config import LearnConfig
    from rig_trainer.online import TrainerConfig, agent_spec
    cfg = LearnConfig(task='reach')
    cfg.vae.latent_dim, cfg.rl.hidden = 4, (32, 32)
    cfg.rl.algo, cfg.rl.exploration = algo, exploration
    agent = RIGAgent(cfg, spec=agent_spec(TrainerConfig(), cfg))
    obs, goal = np.zeros(4, np.float32), np.ones(4, np.float32)
    det = agent.act_features(obs, goal)
    rng = np.random.default_rng(0)
    noisy = np.stack([agent.explore_features(obs, goal, rng=rng) for _ in range(200)])
    assert noisy.shape == (200, 2) and np.all(np.abs(noisy) <= 1.0)
    assert np.abs(noisy - det).mean() > 0.05, 'practice explores'
    if algo == 'td3':
        agent.reset_exploration()
        quiet = agent.explore_features(obs, goal, rng=rng, scale=0.0)
        np.testing.assert_allclose(quiet, det, atol=1e-6)   # sigma 0 (and a fresh OU state): the actor's action
        if exploration == 'ou':   # temporally correlated: neighbouring steps are closer than far ones
            d = np.diff(noisy, axis=0)
            assert np.abs(d).mean() < np.abs(noisy - noisy.mean(0)).mean()
