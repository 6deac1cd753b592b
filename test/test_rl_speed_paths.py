"""rl.fused_critic: the fused TwinCritic is the pair Critic's math (values, gradients, whole TD3/SAC
updates), and checkpoints written with the pair critic resume on the fused one."""
import json
import shutil

import numpy as np
import pytest
import torch

from rig_learn.config import RLConfig
from rig_learn.rl import SAC, TD3, Critic, TensorBatch, TwinCritic, make_actor, twin_state


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def _inputs(n=64, inp=6, adim=2, seed=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return TensorBatch(x=torch.randn(n, inp, generator=g, dtype=dtype),
                       action=torch.rand(n, adim, generator=g, dtype=dtype) * 2 - 1,
                       reward=-torch.rand(n, generator=g, dtype=dtype),
                       x2=torch.randn(n, inp, generator=g, dtype=dtype),
                       done=(torch.rand(n, generator=g) < 0.1).to(dtype))


def _grads(module) -> dict:
    return {k: p.grad for k, p in module.named_parameters()}


def _assert_close(twin: dict, pair: dict, atol, what=''):
    """A TwinCritic's tensors against a Critic's (stacked as twin_state does)."""
    stacked = twin_state(pair)
    assert set(twin) == set(stacked), what
    for k in twin:
        torch.testing.assert_close(twin[k], stacked[k], atol=atol, rtol=0, msg=lambda m: f'{what} {k}: {m}')


def test_twin_critic_is_two_independent_mlps():
    """Values and gradients of the fused critic match the pair's with the same weights; a fresh
    TwinCritic is initialised with the very draws of a fresh Critic (nn.Linear's default init)."""
    torch.manual_seed(3)
    pair = Critic(6, 2, (64, 48))
    torch.manual_seed(3)
    twin = TwinCritic(6, 2, (64, 48))
    _assert_close(dict(twin.state_dict()), pair.state_dict(), atol=0, what='init')
    w = twin.net[0].weight.detach()
    assert w.shape == (2, 64, 8) and not torch.equal(w[0], w[1])            # independent networks
    assert 0.3 < float(w.abs().max()) * np.sqrt(8) <= 1.0                     # U(-1/sqrt(fan_in), +)
    torch.manual_seed(4)
    pair = Critic(6, 2, (64, 48))                                             # other weights, copied over
    twin.load_state_dict(twin_state(pair.state_dict()))
    b = _inputs()
    a = b.action.clone().requires_grad_(True)
    a_twin = b.action.clone().requires_grad_(True)
    q1, q2 = pair(b.x, a)
    t1, t2 = twin(b.x, a_twin)
    torch.testing.assert_close(t1, q1, atol=1e-5, rtol=0)
    torch.testing.assert_close(t2, q2, atol=1e-5, rtol=0)
    torch.testing.assert_close(twin.q1(b.x, b.action), q1, atol=1e-5, rtol=0)
    assert not torch.allclose(q1, q2)
    weights = torch.linspace(-1, 1, len(b.x))
    ((q1 * weights).sum() + (q2 - b.reward).pow(2).mean()).backward()
    ((t1 * weights).sum() + (t2 - b.reward).pow(2).mean()).backward()
    _assert_close(_grads(twin), _grads(pair), atol=1e-5, what='grad')
    torch.testing.assert_close(a_twin.grad, a.grad, atol=1e-5, rtol=0)


def _rl(algo, fused, dtype, hidden=(64, 64)):
    cfg = RLConfig(hidden=hidden, policy_delay=2, fused_critic=fused)
    torch.manual_seed(0)
    rl = algo(make_actor('td3' if algo is TD3 else 'sac', 6, 2, cfg), 6, 2, cfg, torch.device('cpu'),
              torch.Generator().manual_seed(0))
    for m in rl.modules().values():
        if isinstance(m, torch.nn.Module):
            m.to(dtype)
    if algo is SAC:
        rl.log_alpha.data = rl.log_alpha.data.to(dtype)
    return rl


@pytest.mark.parametrize('dtype, atol', [(torch.float32, 1e-5), (torch.float64, 1e-10)])
@pytest.mark.parametrize('algo', [TD3, SAC])
def test_an_update_is_the_same_on_both_paths(algo, dtype, atol):
    """From the same seed, updates (TD3: a critic step, then one with the delayed actor step and the
    target updates) give the same losses, gradients and weights on both paths: the target noise and
    SAC's samples come from the same generator calls. The critic's gradients after the actor step are
    the critic step's alone on both (the fused actor step leaves the critic's weights out)."""
    pair, fused = _rl(algo, False, dtype), _rl(algo, True, dtype)
    assert isinstance(pair.critic, Critic) and isinstance(fused.critic, TwinCritic)
    for step in range(2):
        b = _inputs(dtype=dtype, seed=10 + step)
        out_p, out_f = pair.update(b), fused.update(b)
        assert out_p.keys() == out_f.keys()
        for k in out_p:
            torch.testing.assert_close(out_f[k], out_p[k], atol=atol, rtol=0, msg=lambda m: f'{k}: {m}')
    assert 'rl/actor_loss' in out_p
    _assert_close(_grads(fused.critic), _grads(pair.critic), atol=atol, what='critic grad')
    _assert_close(dict(fused.critic.state_dict()), pair.critic.state_dict(), atol=atol, what='critic')
    _assert_close(dict(fused.critic_target.state_dict()), pair.critic_target.state_dict(), atol=atol, what='target')
    nets = ['actor'] + (['actor_target'] if algo is TD3 else [])
    for name in nets:
        for (k, p), f in zip(getattr(pair, name).named_parameters(), getattr(fused, name).parameters()):
            torch.testing.assert_close(f, p, atol=atol, rtol=0, msg=lambda m: f'{name}.{k}: {m}')
    assert not torch.equal(fused.critic_target.net[0].weight, _rl(algo, True, dtype).critic_target.net[0].weight)


@pytest.fixture(scope='module')
def pair_checkpoint(tmp_path_factory):
    """A checkpoint trained with the pair critic, and a copy whose manifest lacks rl.fused_critic (as
    every checkpoint written before the option)."""
    from rig_learn import RIGAgent, make_task_env
    from rig_learn.testing import tiny_config
    torch.set_num_threads(1)
    agent = RIGAgent.from_config(tiny_config(**{'rl.fused_critic': False}), make_task_env('toy_reach', seed=0))
    agent.learn(60)                         # 11 updates: the critic's Adam has moments
    root = tmp_path_factory.mktemp('pair')
    agent.save(root / 'pair')
    shutil.copytree(root / 'pair', root / 'old')
    manifest = json.loads((root / 'old' / 'manifest.json').read_text())
    del manifest['config']['rl']['fused_critic']
    (root / 'old' / 'manifest.json').write_text(json.dumps(manifest))
    return root / 'pair', root / 'old'


def test_a_pair_critic_checkpoint_resumes_on_the_fused_critic(pair_checkpoint, tmp_path):
    """Loaded with the default config (fused), an old checkpoint's critics, targets and the critic's
    Adam moments are stacked: the same Q values, and the next update the same as resuming it on the
    pair critic it was written with. Saved again, it records fused_critic and loads as it is."""
    from rig_learn.learner import Learner
    from rig_learn.model import InferenceModel
    pair_path, old_path = pair_checkpoint
    pair, fused = Learner.load(pair_path), Learner.load(old_path)
    assert not pair.cfg.rl.fused_critic and isinstance(pair.rl.critic, Critic)
    assert fused.cfg.rl.fused_critic and isinstance(fused.rl.critic, TwinCritic)
    inp = fused.model.featurizer.obs_dim + fused.model.featurizer.goal_dim
    b = _inputs(n=32, inp=inp)
    with torch.no_grad():
        for critic in ('critic', 'critic_target'):
            for qf, qp in zip(getattr(fused.rl, critic)(b.x, b.action), getattr(pair.rl, critic)(b.x, b.action)):
                torch.testing.assert_close(qf, qp, atol=1e-5, rtol=0)
    state = fused.rl.critic_opt.state_dict()['state']
    steps = pair.counters['grad_steps']
    assert steps >= 10 and len(state) == 6 and all(float(s['step']) == steps for s in state.values())
    for _ in range(2):
        pair.rl.update(b)
        fused.rl.update(b)
    _assert_close(dict(fused.rl.critic.state_dict()), pair.rl.critic.state_dict(), atol=1e-5, what='resumed critic')
    for f, p in zip(fused.rl.actor.parameters(), pair.rl.actor.parameters()):
        torch.testing.assert_close(f, p, atol=1e-5, rtol=0)
    fused.save(tmp_path / 'again')
    again = Learner.load(tmp_path / 'again')
    assert json.loads((tmp_path / 'again' / 'manifest.json').read_text())['config']['rl']['fused_critic'] is True
    _assert_close(dict(again.rl.critic.state_dict()), pair.rl.critic.state_dict(), atol=1e-5, what='saved again')
    # The inference model (VAE + actor) reads the old checkpoint as before.
    model = InferenceModel.load(old_path)
    for m, p in zip(model.actor.parameters(), Learner.load(pair_path).model.actor.parameters()):
        torch.testing.assert_close(m, p, atol=0, rtol=0)


def test_bench_update_times_both_paths(tmp_path):
    from bench.bench_update import main
    from bench.layout import SCHEMAS
    out = tmp_path / 'u.json'
    argv = ['--updates', '4', '--repeats', '2', '--warmup', '1', '--hidden', '16', '--batch', '8', '--json', str(out)]
    assert main([*argv, '--algo', 'sac']) == 0
    r = json.loads(out.read_text())
    assert r['schema'] == SCHEMAS['update'] and r['algo'] == 'sac' and r['host']['cpu_count'] >= 1
    assert set(r['ms_per_update']) == {'pair', 'fused'}
    assert all(len(r['ms_per_update'][p]['wall']['blocks']) == 2 for p in ('pair', 'fused'))
    assert r['speedup_pair_over_fused']['wall']['median'] > 0
