"""Tiny configurations for tests and smoke runs (small networks, short schedules)."""
from __future__ import annotations

from rig_base.config import from_dict, to_dict

from .config import EvalConfig, LearnConfig, RLConfig, VAEConfig


def tiny_config(task: str = 'toy_reach', mode: str = 'rig', seed: int = 0, **kw) -> LearnConfig:
    relabel = {} if mode == 'rig' else {'relabel': {'own': 0.2, 'prior': 0.0, 'future': 0.8}}
    cfg = LearnConfig(
        task=task, seed=seed,
        vae=VAEConfig(latent_dim=4, beta=5.0, batch_size=16, pretrain_images=200, pretrain_steps=20,
                      refit_schedule=((0, 100),), refit_steps=5),
        rl=RLConfig(hidden=(32, 32), batch_size=32, updates_per_step=1.0, learning_starts=50, buffer_size=2000),
        eval=EvalConfig(n_goals=3, every=0, n_goals_during_training=2, grid_goals=2),
    )
    d = to_dict(cfg)
    d['mode'] = mode
    d.update(relabel)
    for k, v in kw.items():
        node, parts = d, k.split('.')
        for p in parts[:-1]:
            node = node[p]
        node[parts[-1]] = v
    return from_dict(LearnConfig, d)
