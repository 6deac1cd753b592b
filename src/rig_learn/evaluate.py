"""Evaluation on IMAGE goals from env.sample_goal() (the paper's test protocol)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .envs import set_rendering
from .protocol import unwrapped_call

METRIC_KEYS = ('hand_distance', 'puck_distance', 'door_angle_error')


@dataclass
class EvalResult:
    """Per-goal final true distances (NaN where the env does not report a key) and success."""
    hand_distance: np.ndarray
    puck_distance: np.ndarray
    door_angle_error: np.ndarray
    success: np.ndarray
    latent_distance: np.ndarray            # final ||mu(o_T) - mu(g)|| (NaN outside rig mode)
    goal_states: np.ndarray | None = None  # (n_goals, goal state dim): where each goal was
    goal_images: list = field(default_factory=list)
    recon_images: list = field(default_factory=list)   # VAE reconstructions of the goals (empty without a VAE)
    final_images: list = field(default_factory=list)

    def summary(self, prefix: str = 'eval/') -> dict:
        out = {}
        for k in METRIC_KEYS + ('latent_distance',):
            v = getattr(self, k)
            if np.isfinite(v).any():
                out[f'{prefix}{k}_median'] = float(np.nanmedian(v))
                out[f'{prefix}{k}_mean'] = float(np.nanmean(v))
        out[f'{prefix}success'] = float(np.mean(self.success))
        out[f'{prefix}n_goals'] = int(len(self.success))
        return out


def evaluate(agent, env, n_goals: int = 50, seed: int = 1_000_003, record: int = 0,
             max_steps: int | None = None, policy=None) -> EvalResult:
    """Run the agent's noise-free policy towards `n_goals` image goals; report final distances.

    Goals are drawn with a Generator seeded by `seed` (the same goals every call) and episode i is
    reset with seed `seed + i`. `record` keeps goal / final images (and, with a VAE, its
    reconstruction of the goal) for the first `record` goals; an env that spares obs['image']
    (protocol: render_observations) renders those episodes. `policy(obs, goal) -> action` overrides
    the agent (e.g. a random policy).
    """
    rng = np.random.default_rng(seed)
    vals = {k: np.full(n_goals, np.nan) for k in METRIC_KEYS}
    success = np.zeros(n_goals, bool)
    latent = np.full(n_goals, np.nan)
    res = EvalResult(vals['hand_distance'], vals['puck_distance'], vals['door_angle_error'], success, latent)
    for i in range(n_goals):
        goal = unwrapped_call(env, 'sample_goal', rng)
        rendering = set_rendering(env, True) if i < record else None   # the reached image is drawn
        obs, info = env.reset(seed=seed + i, options={'goal': goal})
        goal_in = {'image': np.asarray(goal['image']), 'state': np.asarray(goal['state'])}
        if res.goal_states is None:
            res.goal_states = np.full((n_goals, goal_in['state'].size), np.nan)
        res.goal_states[i] = goal_in['state'].reshape(-1)
        goal_feat = agent.goal_features(goal_in) if policy is None else None
        t = 0
        while True:
            if policy is None:
                action = agent.act_features(agent.obs_features(obs), goal_feat)
            else:
                action = policy(obs, goal_in)
            obs, _, terminated, truncated, info = env.step(action)
            t += 1
            if terminated or truncated or (max_steps is not None and t >= max_steps):
                break
        if rendering is not None:
            set_rendering(env, rendering)
        for k in METRIC_KEYS:
            if k in info:
                vals[k][i] = float(info[k])
        success[i] = bool(info.get('success', False))
        if policy is None and agent.vae is not None:
            latent[i] = float(np.linalg.norm(agent.obs_features(obs) - goal_feat))
        if i < record:
            res.goal_images.append(goal_in['image'])
            res.final_images.append(np.asarray(obs['image']))
            if agent.vae is not None:
                res.recon_images.append(agent.reconstruct(goal_in['image']))
    return res


def random_policy(action_dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return lambda obs, goal: rng.uniform(-1, 1, action_dim).astype(np.float32)
