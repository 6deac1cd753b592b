"""Environment construction for the learner: rig_sim tasks, the toy env, or a user factory."""
from __future__ import annotations

import importlib

from gymnasium.wrappers import TimeLimit

from .toy_env import ToyReachEnv

TOY_TASKS = ('toy_reach',)


def sim_available() -> bool:
    """True when `rig_sim.make_env` can be imported (the MuJoCo task suite is installed)."""
    try:   # rig_sim (MuJoCo) is optional for the learner: a user factory or the toy env also work
        from rig_sim import make_env  # noqa: F401, PLC0415
    except Exception:
        return False
    return True


def make_task_env(task: str, arm: str = 'sawyer', image_size: int = 48, seed=None, factory: str = '',
                  horizon: int = 0):
    """Build the env for `task`. `factory` ('module:callable') overrides the lookup; it is called
    like `rig_sim.make_env(task=, arm=, image_size=, seed=)`."""
    if factory:
        module_name, _, attr = factory.partition(':')
        if not attr:
            raise ValueError(f"env factory must be 'module:callable', got {factory!r}")
        fn = getattr(importlib.import_module(module_name), attr)
        env = fn(task=task, arm=arm, image_size=image_size, seed=seed)
    elif task in TOY_TASKS:
        env = ToyReachEnv(image_size=image_size, seed=seed, **({'horizon': horizon} if horizon else {}))
        return env
    else:
        try:   # optional, as above
            from rig_sim import make_env  # noqa: PLC0415
        except ImportError as exc:
            raise RuntimeError(f'task {task!r} needs the MuJoCo task suite (rig_sim.make_env), which '
                               f'is not importable here ({exc}); use task toy_reach or --config with env:') from exc
        env = make_env(task=task, arm=arm, image_size=image_size, seed=seed)
    if horizon:
        env = TimeLimit(env, max_episode_steps=horizon)
    return env


def unwrapped_call(env, name, *args, **kwargs):
    """Call a protocol method (sample_goal/set_goal) through gymnasium wrappers."""
    target = env
    while not hasattr(target, name) and hasattr(target, 'env'):
        target = target.env
    return getattr(target, name)(*args, **kwargs)
