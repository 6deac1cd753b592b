"""The goal-conditioned image-env protocol the learner relies on ("bring your own simulator").

Any `gymnasium.Env` can be trained and evaluated by `rig_learn` if it follows these rules
(`rig_sim.make_env` and `rig_learn.toy_env.ToyReachEnv` do):

Spaces
    action_space        Box(-1, 1, (A,), float32). The learner outputs actions in [-1, 1]; the env
                        scales them to physical units.
    observation_space   Dict with at least
        'image'               uint8 (H, W, 3), H == W == the configured `image_size`
        'state'               float (S,)   proprioceptive/object state (used only by the oracle
                                           baseline and for logging, never by RIG itself)
        'desired_goal_image'  uint8 (H, W, 3) image of the current goal
        'desired_goal_state'  float (G,)   state of the current goal
        'achieved_goal_state' float (G,)   the part of `state` that goals talk about

Goals
    env.sample_goal(rng=None) -> {'state': (G,), 'image': uint8 (H, W, 3)}
        A goal drawn from the env's test goal distribution; `rng` is a numpy Generator (the
        learner passes a seeded one so evaluations reuse the same goals).
    env.set_goal(goal)                      make `goal` (a sample_goal() dict) the current goal
    env.reset(seed=None, options={'goal': goal})
        resets the scene and sets `goal` (omitted -> the env samples one).

Episodes
    Fixed horizon through `truncated=True` (reach 50, push 100 steps); `terminated` is True only for
    real terminal states (the learner bootstraps through truncation).

Info (from step())
    'hand_distance'   float  true end-effector distance to the goal (metres)
    'puck_distance'   float  push tasks: object distance to the goal (metres)
    'door_angle_error' float door task: |angle - goal angle| (radians)
    'success'         bool
    Missing keys are reported as NaN by the evaluator. The *task distance* is the first of
    TASK_DISTANCE_KEYS the env reports (puck, else door angle, else hand): what goal_map.png colours
    each goal by and what `success_threshold` bounds.

Values
    The float observations ('state', 'desired_goal_state', 'achieved_goal_state') are finite:
    `rig train` stops at the first env step where one is not, naming the step and the key (as it
    does when the features a reward is computed from, or a replay batch's reward, are not finite).

Optional attributes (of `env.unwrapped`; `check_env` validates each one present)
    action_scale        float > 0, optional. The physical size of an action of 1.0 per control step
                        and axis, in the env's units (rig_sim: metres of hand displacement; the toy
                        env: metres). Recorded in every checkpoint's spec as 'env_action_scale'; the
                        graph's policy node warns when it drives an arm at another scale (its own
                        `action_scale`, metres per step). Absent: recorded as None, never compared.
    success_threshold   float > 0, optional. info['success'] means the final task distance is below
                        it (in that distance's units). goal_map.png marks the goals above it; absent:
                        it marks the goals whose final info['success'] was False.
    goal_map_axes       optional: two entries (horizontal, vertical), each (index, label) or
                        (index, label, inverted): the goal-state dimension goal_map.png plots on that
                        axis, the axis label, and True to flip it (rig_sim: goal y flipped, as seen
                        from behind the robot); the two are drawn to one scale (same unit). Absent:
                        goal-state dimensions 0 and 1, labelled 'goal state[0]' and 'goal state[1]',
                        each to its own scale.
    render_observations bool, optional, set by the learner: False when the method never looks at
                        obs['image'] (the state oracle), so the env may skip rendering it and return
                        any uint8 image of the right shape instead (rig_sim and the toy env: black).
                        Goal images are always rendered; the evaluator sets it True for the episodes
                        it records for eval_grid.png. Absent: the env always renders.

The env's own reward is ignored: RIG computes rewards in the VAE latent space.
`check_env(env)` validates these rules on a live env and raises `ProtocolError` with a precise
message on the first violation; `rig train` runs it on its envs before training.
"""
from __future__ import annotations

import numpy as np
from gymnasium import spaces

REQUIRED_OBS_KEYS = ('image', 'state', 'desired_goal_image', 'desired_goal_state', 'achieved_goal_state')
STATE_OBS_KEYS = ('state', 'desired_goal_state', 'achieved_goal_state')   # float, finite
DISTANCE_KEYS = ('hand_distance', 'puck_distance', 'door_angle_error')
TASK_DISTANCE_KEYS = ('puck_distance', 'door_angle_error', 'hand_distance')  # the task distance: first reported
DISTANCE_UNITS = {'hand_distance': 'm', 'puck_distance': 'm', 'door_angle_error': 'rad'}


class ProtocolError(TypeError):
    """An environment does not follow the rig_learn protocol."""


def declared(env, name: str):
    """The optional protocol attribute `name` of `env` (read through gymnasium wrappers), or None."""
    return getattr(getattr(env, 'unwrapped', env), name, None)


def _method(env, name: str):
    """The protocol method `name` (sample_goal/set_goal) of `env` or of the env it wraps, or None."""
    target = env
    while not hasattr(target, name) and hasattr(target, 'env'):
        target = target.env
    return getattr(target, name, None)


def unwrapped_call(env, name: str, *args, **kwargs):
    """Call a protocol method (sample_goal/set_goal) through gymnasium wrappers."""
    return _method(env, name)(*args, **kwargs)


def _positive_number(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or not value > 0:
        raise ProtocolError(f'{name} must be a finite number > 0, got {value!r}')


def map_axes(axes, goal_dim: int) -> tuple[tuple[int, str, bool], tuple[int, str, bool]]:
    """A goal_map_axes declaration as ((index, label, inverted), (index, label, inverted)) for a goal
    state of `goal_dim` values; raises ProtocolError on a malformed one."""
    what = f'goal_map_axes must be two (index, label) or (index, label, inverted) entries, got {axes!r}'
    if isinstance(axes, (str, bytes)) or not hasattr(axes, '__len__') or len(axes) != 2:
        raise ProtocolError(what)
    out = []
    for axis in axes:
        if isinstance(axis, (str, bytes)) or not hasattr(axis, '__len__') or len(axis) not in (2, 3):
            raise ProtocolError(what)
        index, label, inverted = (*axis, False)[:3]
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not isinstance(label, str) \
                or not isinstance(inverted, (bool, np.bool_)):
            raise ProtocolError(what)
        if not 0 <= index < goal_dim:
            raise ProtocolError(f'goal_map_axes index {index} is outside the goal state ({goal_dim} values)')
        out.append((int(index), label, bool(inverted)))
    return out[0], out[1]


def nonfinite_key(obs) -> str | None:
    """The first float observation key (STATE_OBS_KEYS) of `obs` holding a NaN or inf, or None."""
    for key in STATE_OBS_KEYS:
        if key in obs and not np.all(np.isfinite(np.asarray(obs[key], np.float64))):
            return key
    return None


def check_env(env, image_size: int | None = None) -> None:
    """Raise ProtocolError naming the first rule (module docstring) that `env` breaks. Resets the env
    once (seed 0) and takes one zero-action step."""
    a = getattr(env, 'action_space', None)
    if not isinstance(a, spaces.Box) or len(a.shape) != 1:
        raise ProtocolError(f'action_space must be a 1-D Box, got {a!r}')
    if not (np.allclose(a.low, -1) and np.allclose(a.high, 1)):
        raise ProtocolError(f'action_space must be Box(-1, 1), got low={a.low.tolist()} high={a.high.tolist()}')
    space = getattr(env, 'observation_space', None)
    if not isinstance(space, spaces.Dict):
        raise ProtocolError(f'observation_space must be a gymnasium Dict space, got {space!r}')
    missing = [k for k in REQUIRED_OBS_KEYS if k not in space.spaces]
    if missing:
        raise ProtocolError(f'observation_space lacks {missing}; has {sorted(space.spaces)}')
    for name in ('sample_goal', 'set_goal'):
        if not callable(_method(env, name)):
            raise ProtocolError(f'env must provide {name}()')
    for name in ('action_scale', 'success_threshold'):
        if declared(env, name) is not None:
            _positive_number(name, declared(env, name))
    render = declared(env, 'render_observations')
    if render is not None and not isinstance(render, (bool, np.bool_)):
        raise ProtocolError(f'render_observations must be a bool, got {render!r}')
    goal = unwrapped_call(env, 'sample_goal', np.random.default_rng(0))
    if not isinstance(goal, dict) or 'image' not in goal or 'state' not in goal:
        raise ProtocolError("sample_goal() must return {'state': ..., 'image': ...}")
    obs, info = env.reset(seed=0, options={'goal': goal})
    for key in REQUIRED_OBS_KEYS:
        if key not in obs:
            raise ProtocolError(f'observation lacks {key!r}; has {sorted(obs)}')
    for key in ('image', 'desired_goal_image'):
        img = np.asarray(obs[key])
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 or img.shape[0] != img.shape[1]:
            raise ProtocolError(f'{key} must be uint8 (H, H, 3), got {img.dtype} {img.shape}')
        if image_size is not None and img.shape[0] != image_size:
            raise ProtocolError(f'{key} is {img.shape[0]}px, config expects {image_size}px')
    gi = np.asarray(goal['image'])
    if gi.shape != np.asarray(obs['image']).shape:
        raise ProtocolError(f"sample_goal()['image'] shape {gi.shape} != obs image {np.asarray(obs['image']).shape}")
    if np.shape(obs['achieved_goal_state']) != np.shape(goal['state']):
        raise ProtocolError('achieved_goal_state and sample_goal()["state"] must have the same shape')
    for key in STATE_OBS_KEYS:
        if np.shape(obs[key]) != space[key].shape:
            raise ProtocolError(f'observation {key!r} has shape {np.shape(obs[key])}, observation_space says '
                                f'{space[key].shape}')
    key = nonfinite_key(obs)
    if key is not None:
        raise ProtocolError(f'observation {key!r} after reset() is not finite: {np.asarray(obs[key]).tolist()}')
    if declared(env, 'goal_map_axes') is not None:
        map_axes(declared(env, 'goal_map_axes'), int(np.size(goal['state'])))
    obs, _, terminated, truncated, info = env.step(np.zeros(a.shape, np.float32))
    if 'success' not in info:
        raise ProtocolError("step() info must contain 'success'")
    if not any(k in info for k in DISTANCE_KEYS):
        raise ProtocolError(f'step() info must contain one of {DISTANCE_KEYS}')
