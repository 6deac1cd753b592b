"""ToyReachEnv: a tiny, fast, pure-numpy reach task following `rig_learn.protocol`.

A 2-D "hand" (a red disc on the end of a pale arm segment from a fixed base, anti-aliased so
sub-pixel motion is visible) moves in a 0.3 m x 0.3 m
workspace seen from above in an HxWx3 uint8 image. Actions in [-1, 1]^2 move the hand by up to
`max_step` metres per step. Goals are hand positions drawn uniformly from the workspace; their
image is the scene with the hand at the goal. Horizon 50 via truncation. Also the reference
"bring your own simulator" example: copy it and replace `_render`/`step` with your physics. It
declares the protocol's optional attributes too: `action_scale` (= max_step, metres),
`success_threshold`, `goal_map_axes` (x right, y up, as drawn) and `render_observations`.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class ToyReachEnv(gym.Env):
    metadata = {'render_modes': ['rgb_array']}
    goal_map_axes = ((0, 'hand goal x (m)'), (1, 'hand goal y (m)'))

    def __init__(self, image_size: int = 48, seed: int | None = None, horizon: int = 50,
                 half_width: float = 0.15, max_step: float = 0.02, hand_radius: float = 0.025,
                 success_threshold: float = 0.05):
        self.image_size = int(image_size)
        self.horizon = int(horizon)
        self.half_width = float(half_width)
        self.max_step = float(max_step)
        self.hand_radius = float(hand_radius)
        self.success_threshold = float(success_threshold)
        h = self.image_size
        img = spaces.Box(0, 255, (h, h, 3), np.uint8)
        vec = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = spaces.Dict({
            'image': img, 'state': vec, 'desired_goal_image': img,
            'desired_goal_state': vec, 'achieved_goal_state': vec})
        # pixel centres in metres (x right, y up)
        c = (np.arange(h) + 0.5) / h * 2 * self.half_width - self.half_width
        self._px = c[None, :]
        self._py = c[::-1, None]
        self._background = np.empty((h, h, 3), np.float32)
        self._background[:] = np.array([40, 60, 80], np.float32)
        self._background[:, :, 1] += np.linspace(0, 40, h, dtype=np.float32)[:, None]  # faint gradient
        self._rng = np.random.default_rng(seed)
        self._hand = np.zeros(2)
        self._goal = None
        self._t = 0
        self.render_observations = True   # False: obs['image'] is black (a learner that never looks)

    @property
    def action_scale(self) -> float:
        """Hand displacement per step and axis at action 1.0, metres."""
        return self.max_step

    # -- rendering -----------------------------------------------------------------------------
    def _render(self, pos) -> np.ndarray:
        px_size = 2 * self.half_width / self.image_size
        # a pale "arm" (capsule from a base above the workspace to the hand), then the red hand disc
        base = np.array([0.0, 1.6 * self.half_width])
        seg = np.asarray(pos, np.float64) - base
        t = np.clip(((self._px - base[0]) * seg[0] + (self._py - base[1]) * seg[1]) / max(seg @ seg, 1e-12), 0, 1)
        da = np.sqrt((self._px - base[0] - t * seg[0]) ** 2 + (self._py - base[1] - t * seg[1]) ** 2)
        arm = np.clip((0.6 * self.hand_radius - da) / px_size + 0.5, 0.0, 1.0)[:, :, None]
        img = self._background * (1 - arm) + np.array([220, 220, 210], np.float32) * arm
        d = np.sqrt((self._px - pos[0]) ** 2 + (self._py - pos[1]) ** 2)
        cover = np.clip((self.hand_radius - d) / px_size + 0.5, 0.0, 1.0)[:, :, None]
        img = img * (1 - cover) + np.array([230, 40, 40], np.float32) * cover
        return img.astype(np.uint8)

    def render(self):
        return self._render(self._hand)

    # -- goals ---------------------------------------------------------------------------------
    def sample_goal(self, rng: np.random.Generator | None = None) -> dict:
        rng = self._rng if rng is None else rng
        pos = rng.uniform(-self.half_width, self.half_width, 2).astype(np.float32)
        return {'state': pos, 'image': self._render(pos)}

    def set_goal(self, goal: dict) -> None:
        state = np.asarray(goal['state'], np.float32).copy()
        image = goal.get('image')
        self._goal = {'state': state, 'image': self._render(state) if image is None else np.asarray(image, np.uint8)}

    # -- gym API -------------------------------------------------------------------------------
    def _obs(self):
        image = self._render(self._hand) if self.render_observations else np.zeros_like(self._background, np.uint8)
        return {'image': image, 'state': self._hand.astype(np.float32),
                'desired_goal_image': self._goal['image'], 'desired_goal_state': self._goal['state'],
                'achieved_goal_state': self._hand.astype(np.float32)}

    def _info(self):
        dist = float(np.linalg.norm(self._hand - self._goal['state']))
        return {'hand_distance': dist, 'success': dist < self.success_threshold}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._hand = np.array([0.0, -0.1]) + self._rng.uniform(-0.01, 0.01, 2)
        goal = (options or {}).get('goal')
        self.set_goal(goal if goal is not None else self.sample_goal())
        self._t = 0
        return self._obs(), self._info()

    def step(self, action):
        a = np.clip(np.asarray(action, np.float64).reshape(2), -1, 1)
        self._hand = np.clip(self._hand + a * self.max_step, -self.half_width, self.half_width)
        self._t += 1
        info = self._info()
        return self._obs(), -info['hand_distance'], False, self._t >= self.horizon, info


def make_toy_env(task: str = 'toy_reach', arm: str = 'sawyer', image_size: int = 48, seed=None, **kw):
    return ToyReachEnv(image_size=image_size, seed=seed, **kw)
