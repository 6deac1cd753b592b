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
    'puck_distance'   float  push tasks: object distance to the goal
    'door_angle_error' float door task: |angle - goal angle| (radians)
    'success'         bool
    Missing keys are reported as NaN by the evaluator.

The env's own reward is ignored: RIG computes rewards in the VAE latent space.
`check_env(env)` validates these rules on a live env and raises `ProtocolError` with a precise
message on the first violation.
"""
from __future__ import annotations

import numpy as np
from gymnasium import spaces

REQUIRED_OBS_KEYS = ('image', 'state', 'desired_goal_image', 'desired_goal_state', 'achieved_goal_state')
DISTANCE_KEYS = ('hand_distance', 'puck_distance', 'door_angle_error')


class ProtocolError(TypeError):
    """An environment does not follow the rig_learn protocol."""


def check_env(env, image_size: int | None = None) -> None:
    a = env.action_space
    if not isinstance(a, spaces.Box) or len(a.shape) != 1:
        raise ProtocolError(f'action_space must be a 1-D Box, got {a}')
    if not (np.allclose(a.low, -1) and np.allclose(a.high, 1)):
        raise ProtocolError(f'action_space must be Box(-1, 1), got low={a.low} high={a.high}')
    for name in ('sample_goal', 'set_goal'):
        if not callable(getattr(env, name, None)):
            raise ProtocolError(f'env must provide {name}()')
    goal = env.sample_goal(np.random.default_rng(0))
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
    obs, _, terminated, truncated, info = env.step(np.zeros(a.shape, np.float32))
    if 'success' not in info:
        raise ProtocolError("step() info must contain 'success'")
    if not any(k in info for k in DISTANCE_KEYS):
        raise ProtocolError(f'step() info must contain one of {DISTANCE_KEYS}')
