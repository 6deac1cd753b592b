"""Environment construction for the learner: rig_sim tasks, the toy env, or a user factory."""
from __future__ import annotations

import importlib

from gymnasium.wrappers import TimeLimit

from .toy_env import ToyReachEnv

TOY_TASKS = ('toy_reach',)


class EnvError(RuntimeError):
    """The env cannot be built: its simulator is not installed, or a user factory ('module:callable')
    cannot be imported, lacks the callable or raised. The message names the factory and the cause
    (`rig train` prints it in one line)."""


def sim_available() -> bool:
    """True when `rig_sim.make_env` can be imported (the MuJoCo task suite is installed)."""
    try:   # rig_sim (MuJoCo) is optional for the learner: a user factory or the toy env also work
        from rig_sim import make_env  # noqa: F401, PLC0415
    except Exception:
        return False
    return True


def load_factory(factory: str):
    """The callable named by 'module:callable'; EnvError naming the factory and the cause otherwise."""
    module_name, _, attr = factory.partition(':')
    if not module_name or not attr:
        raise EnvError(f"env factory must be 'module:callable', got {factory!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name + '.').startswith(exc.name + '.'):   # the module (or its package) is not found
            raise EnvError(f'env factory {factory!r}: no module named {exc.name!r} '
                           '(is its directory on PYTHONPATH?)') from exc
        raise EnvError(f'env factory {factory!r}: importing {module_name!r} failed: {exc}') from exc
    except Exception as exc:   # noqa: BLE001 - any error in the user's module is reported as the cause
        raise EnvError(f'env factory {factory!r}: importing {module_name!r} raised '
                       f'{type(exc).__name__}: {exc}') from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        what = 'has no attribute' if fn is None else 'has a non-callable'
        raise EnvError(f'env factory {factory!r}: module {module_name!r} {what} {attr!r}')
    return fn


def make_task_env(task: str, arm: str = 'sawyer', image_size: int = 48, seed=None, factory: str = '',
                  horizon: int = 0):
    """Build the env for `task`. `factory` ('module:callable') overrides the lookup; it is called
    like `rig_sim.make_env(task=, arm=, image_size=, seed=)`. Raises EnvError when the env cannot
    be built (see there)."""
    if factory:
        fn = load_factory(factory)
        try:
            env = fn(task=task, arm=arm, image_size=image_size, seed=seed)
        except Exception as exc:   # noqa: BLE001 - the user's factory failing is reported as the cause
            raise EnvError(f'env factory {factory!r} raised {type(exc).__name__}: {exc}') from exc
    elif task in TOY_TASKS:
        env = ToyReachEnv(image_size=image_size, seed=seed, **({'horizon': horizon} if horizon else {}))
        return env
    else:
        try:   # optional, as above
            from rig_sim import make_env  # noqa: PLC0415
        except ImportError as exc:
            raise EnvError(f'task {task!r} needs the MuJoCo task suite (rig_sim.make_env), which '
                           f'is not importable here ({exc}); use task toy_reach or --config with env:') from exc
        env = make_env(task=task, arm=arm, image_size=image_size, seed=seed)
    if horizon:
        env = TimeLimit(env, max_episode_steps=horizon)
    return env


def set_rendering(env, on: bool) -> bool:
    """Ask `env` to render obs['image'] (on) or spare it (protocol: render_observations); returns the
    previous setting. An env without the attribute always renders: nothing is set, True returned."""
    target = getattr(env, 'unwrapped', env)
    if getattr(target, 'render_observations', None) is None:
        return True
    previous = bool(target.render_observations)
    target.render_observations = bool(on)
    return previous
