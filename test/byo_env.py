"""A simulator from outside rig_sim and rig_learn, for the "bring your own simulator" tests.

A bead slides on a 0.2 m x 0.2 m plate seen from above (48 px): state and goals are (v, u) in
metres, in that order (v first), so the goal map must take its axes from the env, not assume
rig_sim's. Nothing here imports rig_learn: a user's env needs only gymnasium and numpy.
Factories for `env:` in a learner config ('byo_env:make_bead' with test/ on the path):
    make_bead         BeadEnv, which declares the protocol's optional attributes
    make_plain_bead   PlainBeadEnv, which declares none of them
    make_raising      a factory that raises
    make_bad_actions  an env whose action space is Box(0, 1) (a protocol violation)
    make_bad_scale    an env whose action_scale is negative (a protocol violation)
    make_nan_state    an env whose state turns NaN at the 7th step of an episode
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

HALF = 0.1           # m: the plate is [-0.1, 0.1] x [-0.1, 0.1]
STEP = 0.015         # m per step at action 1.0
SUCCESS = 0.03       # m
BEAD_U_V = ('bead u (m)', 'bead v (m)')


class PlainBeadEnv(gym.Env):
    """The protocol's required parts only: spaces, sample_goal/set_goal, reset/step and info."""
    metadata = {'render_modes': []}

    def __init__(self, image_size: int = 48, seed: int | None = None, horizon: int = 20, nan_at_step: int = 0):
        self.size, self.horizon, self.nan_at_step = int(image_size), int(horizon), int(nan_at_step)
        img = spaces.Box(0, 255, (self.size, self.size, 3), np.uint8)
        vec = spaces.Box(-HALF, HALF, (2,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = spaces.Dict({'image': img, 'state': vec, 'desired_goal_image': img,
                                              'desired_goal_state': vec, 'achieved_goal_state': vec})
        self._rng = np.random.default_rng(seed)
        self._bead = np.zeros(2)      # (v, u) m
        self._goal = None
        self._t = 0

    def _render(self, vu) -> np.ndarray:
        img = np.full((self.size, self.size, 3), 30, np.uint8)
        row = int((HALF - vu[0]) / (2 * HALF) * (self.size - 4))   # v up, u right
        col = int((vu[1] + HALF) / (2 * HALF) * (self.size - 4))
        img[row:row + 4, col:col + 4] = (250, 220, 60)
        return img

    def sample_goal(self, rng=None) -> dict:
        vu = (self._rng if rng is None else rng).uniform(-HALF, HALF, 2).astype(np.float32)
        return {'state': vu, 'image': self._render(vu)}

    def set_goal(self, goal) -> None:
        state = np.asarray(goal['state'], np.float32)
        self._goal = {'state': state, 'image': np.asarray(goal.get('image', self._render(state)), np.uint8)}

    def _obs(self):
        state = self._bead.astype(np.float32)
        if self.nan_at_step and self._t >= self.nan_at_step:
            state = np.array([np.nan, 0.0], np.float32)
        return {'image': self._render(self._bead), 'state': state, 'desired_goal_image': self._goal['image'],
                'desired_goal_state': self._goal['state'], 'achieved_goal_state': state.copy()}

    def _info(self):
        d = float(np.linalg.norm(self._bead - self._goal['state']))
        return {'hand_distance': d, 'success': d < SUCCESS}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._bead = self._rng.uniform(-0.01, 0.01, 2)
        goal = (options or {}).get('goal')
        self.set_goal(goal if goal is not None else self.sample_goal())
        self._t = 0
        return self._obs(), self._info()

    def step(self, action):
        self._bead = np.clip(self._bead + STEP * np.clip(np.asarray(action, float), -1, 1), -HALF, HALF)
        self._t += 1
        info = self._info()
        return self._obs(), -info['hand_distance'], False, self._t >= self.horizon, info


class BeadEnv(PlainBeadEnv):
    """PlainBeadEnv declaring the optional attributes: u across, v up, success within 3 cm."""
    action_scale = STEP
    success_threshold = SUCCESS            # the same as info['success']
    goal_map_axes = ((1, BEAD_U_V[0]), (0, BEAD_U_V[1]))


def make_bead(task='bead', arm='', image_size=48, seed=None):
    return BeadEnv(image_size=image_size, seed=seed)


def make_plain_bead(task='bead', arm='', image_size=48, seed=None):
    return PlainBeadEnv(image_size=image_size, seed=seed)


def make_raising(task='bead', arm='', image_size=48, seed=None):
    raise ValueError('bead plate not connected')


def make_bad_actions(task='bead', arm='', image_size=48, seed=None):
    env = BeadEnv(image_size=image_size, seed=seed)
    env.action_space = spaces.Box(0.0, 1.0, (2,), np.float32)
    return env


def make_bad_scale(task='bead', arm='', image_size=48, seed=None):
    env = BeadEnv(image_size=image_size, seed=seed)
    env.action_scale = -STEP
    return env


def make_nan_state(task='bead', arm='', image_size=48, seed=None):
    return BeadEnv(image_size=image_size, seed=seed, nan_at_step=7)
