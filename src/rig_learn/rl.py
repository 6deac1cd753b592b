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


class TD3:
    """TD3 (Fujimoto et al. 2018) on `actor` (an InferenceModel's: trained in place)."""

    def __init__(self, actor: DeterministicActor, inp: int, action_dim: int, cfg, device, gen=None):
        self.cfg, self.device, self.action_dim, self.gen = cfg, device, action_dim, gen
        self.actor = actor
        self.critic = Critic(inp, action_dim, cfg.hidden).to(device)
        self.actor_target = copy.deepcopy(self.actor)
        self.critic_target = copy.deepcopy(self.critic)
        for p in list(self.actor_target.parameters()) + list(self.critic_target.parameters()):
            p.requires_grad_(False)
        self.actor_opt = adam(self.actor.parameters(), cfg.actor_lr)
        self.critic_opt = adam(self.critic.parameters(), cfg.critic_lr)
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
            for p in self.critic.parameters():
                p.requires_grad_(False)
            a = self.actor(b.x)
            actor_loss = -self.critic(b.x, a)[0].mean()
            if self.cfg.action_l2:
                actor_loss = actor_loss + self.cfg.action_l2 * a.pow(2).mean()
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_opt.step()
            for p in self.critic.parameters():
                p.requires_grad_(True)
            _soft_update(self.actor_target, self.actor, self.cfg.tau)
            _soft_update(self.critic_target, self.critic, self.cfg.tau)
            out['rl/actor_loss'] = actor_loss.detach()
        return out


class SAC:
    """SAC (Haarnoja et al. 2018, automatic entropy tuning) on `actor`, trained in place."""

    def __init__(self, actor: TanhGaussianActor, inp: int, action_dim: int, cfg, device, gen=None):
        self.cfg, self.device, self.action_dim, self.gen = cfg, device, action_dim, gen
        self.actor = actor
        self.critic = Critic(inp, action_dim, cfg.hidden).to(device)
        self.critic_target = copy.deepcopy(self.critic)
        for p in self.critic_target.parameters():
            p.requires_grad_(False)
        self.log_alpha = torch.tensor(float(np.log(cfg.sac_init_alpha)), device=device, requires_grad=True)
        self.target_entropy = -float(action_dim)
        self.actor_opt = adam(self.actor.parameters(), cfg.actor_lr)
        self.critic_opt = adam(self.critic.parameters(), cfg.critic_lr)
        self.alpha_opt = adam([self.log_alpha], cfg.sac_alpha_lr)
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
        for p in self.critic.parameters():
            p.requires_grad_(False)
        a, logp = self.actor.sample(b.x, self.gen)
        alpha = self.log_alpha.exp().detach()
        actor_loss = (alpha * logp - torch.min(*self.critic(b.x, a))).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        for p in self.critic.parameters():
            p.requires_grad_(True)
        alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()
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
