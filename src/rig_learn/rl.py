"""Goal-conditioned off-policy learners on feature vectors: TD3 (default) and SAC.

Inputs are concat(observation features, goal features); actions in [-1, 1].
"""
from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class TensorBatch(NamedTuple):
    """One update's minibatch on the device: x = [observation features, goal] at t, x2 the same at t+1."""
    x: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    x2: torch.Tensor
    done: torch.Tensor


def mlp(inp: int, hidden, out: int) -> nn.Sequential:
    layers, d = [], inp
    for h in hidden:
        layers += [nn.Linear(d, h), nn.ReLU()]
        d = h
    layers.append(nn.Linear(d, out))
    return nn.Sequential(*layers)


class Critic(nn.Module):
    """Twin Q networks."""

    def __init__(self, inp: int, action_dim: int, hidden):
        super().__init__()
        self.q1 = mlp(inp + action_dim, hidden, 1)
        self.q2 = mlp(inp + action_dim, hidden, 1)

    def forward(self, x, a):
        xa = torch.cat([x, a], -1)
        return self.q1(xa).squeeze(-1), self.q2(xa).squeeze(-1)


class TwinLinear(nn.Module):
    """Two independent nn.Linear layers as one: weight (2, out, in), bias (2, out, 1), on features-major
    inputs (2, in, batch): one torch.baddbmm."""

    def __init__(self, inp: int, out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(2, out, inp))
        self.bias = nn.Parameter(torch.empty(2, out, 1))

    def forward(self, h):
        return torch.baddbmm(self.bias, self.weight, h)


class TwinCritic(nn.Module):
    """Critic's twin Q networks as one batched network (rl.fused_critic): each layer's two weight matrices
    stacked, so a forward or backward is one set of kernels for both. The same math as Critic: independent
    weights, ReLU, and the very draws of a fresh Critic's nn.Linear init (a seeded run starts from the same
    weights on either path). Activations are features-major, (2, features, batch), which keeps the last
    layer (one output) a fast matrix product and the weights in nn.Linear's (out, in) layout."""

    def __init__(self, inp: int, action_dim: int, hidden):
        super().__init__()
        dims = [inp + action_dim, *hidden, 1]
        layers = []
        for d, h in zip(dims[:-1], dims[1:]):
            layers += [TwinLinear(d, h), nn.ReLU()]
        self.net = nn.Sequential(*layers[:-1])
        self.load_state_dict(twin_state(Critic(inp, action_dim, hidden).state_dict()))

    def forward(self, x, a):
        q = self.net(torch.cat([x, a], -1).t().expand(2, -1, -1)).squeeze(1)
        return q[0], q[1]

    def q1(self, x, a):
        """The first Q network alone (TD3's actor loss): its half of every layer."""
        h = torch.cat([x, a], -1).t()
        for m in self.net:
            h = torch.addmm(m.bias[0], m.weight[0], h) if isinstance(m, TwinLinear) else m(h)
        return h.squeeze(0)


def twin_state(pair: dict) -> dict:
    """A Critic state dict (q1.<i>.weight, q1.<i>.bias, ..., q2...) as TwinCritic's (net.<i>.weight ...),
    or any per-parameter tensors keyed so (Adam's moments)."""
    out = {}
    for key, v in pair.items():
        if key.startswith('q1.'):
            both = torch.stack([v, pair['q2.' + key[3:]]])
            out['net.' + key[3:]] = both.unsqueeze(-1) if key.endswith('bias') else both
    return out


def is_pair_state(critic_state: dict) -> bool:
    """Whether a critic state dict is Critic's (two nn.Sequential) rather than TwinCritic's."""
    return 'q1.0.weight' in critic_state


def twin_policy_state(policy: dict) -> dict:
    """A checkpoint's policy.pt written with the pair Critic (rl.fused_critic false, or before the option
    existed), for a TwinCritic learner: both critics and the critic optimiser's Adam moments stacked
    layer by layer. Adam is elementwise, so the resumed run goes on with the same optimisation."""
    pair_names = list(policy['critic'])        # Critic's parameters, in the order its optimiser holds them
    opt = policy['critic_opt']
    old = opt['state']
    names = list(twin_state(policy['critic']))
    state = {}
    if old:
        moments = {k: twin_state({pair_names[i]: s[k] for i, s in old.items()}) for k in old[0] if k != 'step'}
        state = {j: {'step': old[0]['step'].clone(), **{k: m[n] for k, m in moments.items()}}
                 for j, n in enumerate(names)}
    (group,) = opt['param_groups']
    return {**policy, 'critic': twin_state(policy['critic']), 'critic_target': twin_state(policy['critic_target']),
            'critic_opt': {'state': state, 'param_groups': [{**group, 'params': list(range(len(names)))}]}}


class DeterministicActor(nn.Module):
    def __init__(self, inp: int, action_dim: int, hidden):
        super().__init__()
        self.net = mlp(inp, hidden, action_dim)

    def forward(self, x):
        return torch.tanh(self.net(x))

    def act(self, x, deterministic: bool = True, gen=None):
        return self.forward(x)


class TanhGaussianActor(nn.Module):
    def __init__(self, inp: int, action_dim: int, hidden):
        super().__init__()
        self.net = mlp(inp, hidden, 2 * action_dim)

    def sample(self, x, gen=None):
        mean, log_std = self.net(x).chunk(2, -1)
        log_std = log_std.clamp(-20, 2)
        std = log_std.exp()
        u = mean + std * _randn(mean, gen)
        a = torch.tanh(u)
        logp = (-0.5 * ((u - mean) / std).pow(2) - log_std - 0.5 * np.log(2 * np.pi)).sum(-1)
        logp = logp - (2 * (np.log(2) - u - F.softplus(-2 * u))).sum(-1)
        return a, logp

    def act(self, x, deterministic: bool = True, gen=None):
        if deterministic:
            mean, _ = self.net(x).chunk(2, -1)
            return torch.tanh(mean)
        return self.sample(x, gen)[0]

    def forward(self, x):
        return self.act(x, True)


def _randn(like: torch.Tensor, gen) -> torch.Tensor:
    return torch.randn(like.shape, generator=gen, device=like.device, dtype=like.dtype)


def adam(params, lr: float) -> torch.optim.Optimizer:
    """Adam, fused where this torch build supports it (about 10% faster per update on CPU)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr)


def _soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    with torch.no_grad():
        for tp, sp in zip(target.parameters(), source.parameters()):
            tp.lerp_(sp, tau)


def _soft_update_all(targets: list, sources: list, tau: float) -> None:
    """_soft_update of whole parameter lists as one foreach operation."""
    with torch.no_grad():
        torch._foreach_lerp_(targets, sources, tau)


def _params(*modules: nn.Module) -> list:
    return [p for m in modules for p in m.parameters()]


class TD3:
    """TD3 (Fujimoto et al. 2018) on `actor` (an InferenceModel's: trained in place).

    cfg.fused_critic: the twin critics as one TwinCritic, the actor's loss through its first network
    alone, the critic's weights kept out of the actor's backward by `inputs=` and the target networks
    moved in one foreach lerp; false: Critic and the update as it was before (`_actor_step_pair`)."""

    def __init__(self, actor: DeterministicActor, inp: int, action_dim: int, cfg, device, gen=None):
        self.cfg, self.device, self.action_dim, self.gen = cfg, device, action_dim, gen
        self.fused = cfg.fused_critic
        self.actor = actor
        self.critic = (TwinCritic if self.fused else Critic)(inp, action_dim, cfg.hidden).to(device)
        self.actor_target = copy.deepcopy(self.actor)
        self.critic_target = copy.deepcopy(self.critic)
        for p in list(self.actor_target.parameters()) + list(self.critic_target.parameters()):
            p.requires_grad_(False)
        self.actor_opt = adam(self.actor.parameters(), cfg.actor_lr)
        self.critic_opt = adam(self.critic.parameters(), cfg.critic_lr)
        self.actor_params = list(self.actor.parameters())
        self.targets = _params(self.actor_target, self.critic_target)
        self.sources = _params(self.actor, self.critic)
        self.updates = 0

    def modules(self) -> dict:
        return {'actor': self.actor, 'critic': self.critic, 'actor_target': self.actor_target,
                'critic_target': self.critic_target, 'actor_opt': self.actor_opt, 'critic_opt': self.critic_opt}

    def critic_loss(self, b: TensorBatch) -> torch.Tensor:
        x, a, r, x2, d = b.x, b.action, b.reward, b.x2, b.done
        with torch.no_grad():
            noise = (_randn(a, self.gen) * self.cfg.target_noise).clamp(-self.cfg.target_noise_clip,
                                                                         self.cfg.target_noise_clip)
            a2 = (self.actor_target(x2) + noise).clamp(-1, 1)
            q1t, q2t = self.critic_target(x2, a2)
            y = r + self.cfg.discount * (1 - d) * torch.min(q1t, q2t)
        q1, q2 = self.critic(x, a)
        return F.mse_loss(q1, y) + F.mse_loss(q2, y)

    def update(self, b: TensorBatch) -> dict:
        loss = self.critic_loss(b)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        self.updates += 1
        out = {'rl/critic_loss': loss.detach()}
        if self.updates % self.cfg.policy_delay == 0:
            out['rl/actor_loss'] = self._actor_step(b) if self.fused else self._actor_step_pair(b)
        return out

    def _actor_loss(self, a, q1):
        actor_loss = -q1.mean()
        if self.cfg.action_l2:
            actor_loss = actor_loss + self.cfg.action_l2 * a.pow(2).mean()
        return actor_loss

    def _actor_step(self, b: TensorBatch) -> torch.Tensor:
        a = self.actor(b.x)
        actor_loss = self._actor_loss(a, self.critic.q1(b.x, a))
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward(inputs=self.actor_params)   # no gradient for the critic's weights
        self.actor_opt.step()
        _soft_update_all(self.targets, self.sources, self.cfg.tau)
        return actor_loss.detach()

    def _actor_step_pair(self, b: TensorBatch) -> torch.Tensor:
        """The actor step with the pair Critic (rl.fused_critic false), as before TwinCritic."""
        for p in self.critic.parameters():
            p.requires_grad_(False)
        a = self.actor(b.x)
        actor_loss = self._actor_loss(a, self.critic(b.x, a)[0])
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        for p in self.critic.parameters():
            p.requires_grad_(True)
        _soft_update(self.actor_target, self.actor, self.cfg.tau)
        _soft_update(self.critic_target, self.critic, self.cfg.tau)
        return actor_loss.detach()


class SAC:
    """SAC (Haarnoja et al. 2018, automatic entropy tuning) on `actor`, trained in place.

    cfg.fused_critic as for TD3 (both Q networks enter SAC's actor loss)."""

    def __init__(self, actor: TanhGaussianActor, inp: int, action_dim: int, cfg, device, gen=None):
        self.cfg, self.device, self.action_dim, self.gen = cfg, device, action_dim, gen
        self.fused = cfg.fused_critic
        self.actor = actor
        self.critic = (TwinCritic if self.fused else Critic)(inp, action_dim, cfg.hidden).to(device)
        self.critic_target = copy.deepcopy(self.critic)
        for p in self.critic_target.parameters():
            p.requires_grad_(False)
        self.log_alpha = torch.tensor(float(np.log(cfg.sac_init_alpha)), device=device, requires_grad=True)
        self.target_entropy = -float(action_dim)
        self.actor_opt = adam(self.actor.parameters(), cfg.actor_lr)
        self.critic_opt = adam(self.critic.parameters(), cfg.critic_lr)
        self.alpha_opt = adam([self.log_alpha], cfg.sac_alpha_lr)
        self.actor_params = list(self.actor.parameters())
        self.targets, self.sources = _params(self.critic_target), _params(self.critic)
        self.updates = 0

    def modules(self) -> dict:
        return {'actor': self.actor, 'critic': self.critic, 'critic_target': self.critic_target,
                'actor_opt': self.actor_opt, 'critic_opt': self.critic_opt, 'alpha_opt': self.alpha_opt}

    def extra_state(self) -> dict:
        return {'log_alpha': self.log_alpha.detach().cpu()}

    def load_extra_state(self, d: dict) -> None:
        with torch.no_grad():
            self.log_alpha.copy_(d['log_alpha'].to(self.device))

    def critic_loss(self, b: TensorBatch) -> torch.Tensor:
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            a2, logp2 = self.actor.sample(b.x2, self.gen)
            q1t, q2t = self.critic_target(b.x2, a2)
            y = b.reward + self.cfg.discount * (1 - b.done) * (torch.min(q1t, q2t) - alpha * logp2)
        q1, q2 = self.critic(b.x, b.action)
        return F.mse_loss(q1, y) + F.mse_loss(q2, y)

    def update(self, b: TensorBatch) -> dict:
        loss = self.critic_loss(b)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        if not self.fused:
            for p in self.critic.parameters():
                p.requires_grad_(False)
        a, logp = self.actor.sample(b.x, self.gen)
        alpha = self.log_alpha.exp().detach()
        actor_loss = (alpha * logp - torch.min(*self.critic(b.x, a))).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward(inputs=self.actor_params if self.fused else None)   # fused: none for the critic
        self.actor_opt.step()
        if not self.fused:
            for p in self.critic.parameters():
                p.requires_grad_(True)
        alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()
        if self.fused:
            _soft_update_all(self.targets, self.sources, self.cfg.tau)
        else:
            _soft_update(self.critic_target, self.critic, self.cfg.tau)
        self.updates += 1
        return {'rl/critic_loss': loss.detach(), 'rl/actor_loss': actor_loss.detach(),
                'rl/alpha': self.log_alpha.detach().exp()}


def make_actor(algo: str, inp: int, action_dim: int, cfg) -> nn.Module:
    """The policy network of `algo`: deterministic (TD3) or tanh-Gaussian (SAC)."""
    return {'td3': DeterministicActor, 'sac': TanhGaussianActor}[algo](inp, action_dim, cfg.hidden)


def make_learner(algo: str, actor: nn.Module, inp: int, action_dim: int, cfg, device, gen=None):
    """The update rule of `algo` around `actor`: critics, targets, optimisers."""
    return {'td3': TD3, 'sac': SAC}[algo](actor, inp, action_dim, cfg, device, gen)
