"""Goal-conditioned gymnasium environments over `RigScene`: ReachEnv, PushEnv, DoorEnv.

Observations are what a RIG learner needs: the camera image and an image of the goal, plus the
true state and goal state for evaluation and state-based baselines. The reward returned by step()
is the negative true task distance (reach: hand distance, push: puck distance, door: door-angle
error); RIG itself ignores it and recomputes rewards from VAE latents.

Goals are drawn from the task's goal distribution (tasks.sample_goal_state) and rendered by teleporting the
scene to the goal state, then restoring the simulation exactly, so sampling a goal mid-episode
does not change the episode.

Gymnasium ids: rig/Reach-v0, rig/Push-v0, rig/Door-v0 (keyword arguments are SimConfig fields).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import gymnasium
import numpy as np
from gymnasium import spaces

from rig_sim.config import SimConfig
from rig_sim.scene import RigScene
from rig_sim.tasks import DOOR_SUCCESS_ANGLE, HAND_SUCCESS_DISTANCE, PUCK_SUCCESS_DISTANCE

OVERVIEW_SIZE = 256  # side of the frames env.render() returns (render_mode='rgb_array')


class RigEnv(gymnasium.Env):
    """Base class of the three task environments; subclasses fix the task and its goals.

    Action: Box(-1, 1) of 2 (reach, push: hand x-y) or 3 (door: hand x-y-z) values, scaled by
    config.action_scale to a hand displacement per step.
    Observation (dict): image, state, desired_goal_image, desired_goal_state, achieved_goal_state.
    Episodes never terminate; they are truncated after config.episode_horizon steps.

    The optional attributes of rig_learn's protocol: `action_scale` (config.action_scale, metres),
    `success_threshold` and `goal_map_axes` (per task) and `render_observations` (True; False makes
    obs['image'] black instead of rendered, for learners that never look at it, like the state
    oracle: goal images are still rendered).
    """

    metadata = {'render_modes': ['rgb_array']}
    task: str = ''
    success_threshold: float           # info['success']: task distance below this (m; door: rad)
    # goal_map.png: goal y across (flipped: +y on the left, as seen from behind the robot), x up
    goal_map_axes = ((1, 'hand goal y (m)', True), (0, 'hand goal x (m, away from the robot)'))

    def __init__(self, config: SimConfig | None = None, render_mode: str | None = None,
                 **overrides: Any) -> None:
        config = dataclasses.replace(config or SimConfig(task=self.task), **overrides)
        if config.task != self.task:
            raise ValueError(f'{type(self).__name__} is the {self.task!r} task, got task={config.task!r}')
        if render_mode not in (None, 'rgb_array'):
            raise ValueError(f'render_mode must be None or "rgb_array", got {render_mode!r}')
        self.config = config
        self.render_mode = render_mode
        self.scene = RigScene(config)
        self.horizon = config.episode_horizon
        self.metadata = {**self.metadata, 'render_fps': round(1.0 / config.control_dt)}

        self.action_dim = 2 if self.scene.task.planar else 3
        self.action_space = spaces.Box(-1.0, 1.0, (self.action_dim,), np.float32)
        size = config.image_size
        image_space = spaces.Box(0, 255, (size, size, 3), np.uint8)
        state_space = spaces.Box(-np.inf, np.inf, (len(self.scene.state_names),), np.float32)
        self.observation_space = spaces.Dict({
            'image': image_space,
            'state': state_space,
            'desired_goal_image': image_space,
            'desired_goal_state': state_space,
            'achieved_goal_state': state_space,
        })
        self._goal_state = self.scene.state()
        self._goal_image = np.zeros(image_space.shape, np.uint8)
        self.render_observations = True
        self._steps = 0
        self._first_reset = True

    # ----------------------------------------------------------------------------- gymnasium API
    def reset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None):
        """Start an episode; the goal is options['goal'] if given, else sampled from the goal region.

        Without a seed, the very first reset uses config.seed (if set), so an env built from a
        config with a seed is reproducible as a whole.
        """
        if seed is None and self._first_reset:
            seed = self.config.seed
        self._first_reset = False
        super().reset(seed=seed)
        self.scene.reset(self.np_random)
        goal = (options or {}).get('goal')
        self.set_goal(goal if goal is not None else self.sample_goal())
        self._steps = 0
        state = self.scene.state()
        return self._observation(state), self._metrics(state)

    def step(self, action: np.ndarray):
        action = np.clip(np.asarray(action, dtype=float).reshape(self.action_dim), -1.0, 1.0)
        delta = np.zeros(3)
        delta[:self.action_dim] = action * self.config.action_scale
        self.scene.move_ee(delta)
        self._steps += 1
        state = self.scene.state()
        info = self._metrics(state)
        reward = -float(self.task_distance(state, self._goal_state))
        truncated = self._steps >= self.horizon
        return self._observation(state), reward, False, truncated, info

    @property
    def action_scale(self) -> float:
        """Hand displacement per control step and axis at action 1.0, metres (config.action_scale)."""
        return self.config.action_scale

    def render(self) -> np.ndarray | None:
        """The 256x256 overview camera frame when render_mode='rgb_array' (for videos)."""
        if self.render_mode != 'rgb_array':
            return None
        return self.scene.render(OVERVIEW_SIZE, OVERVIEW_SIZE, 'overview')

    def close(self) -> None:
        self.scene.close()

    # ------------------------------------------------------------------------------------- goals
    def sample_goal(self, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """A goal from the task's goal distribution: {'state': float32 state, 'image': uint8 image}.

        Uses the env's seeded generator unless `rng` is given. The current simulation is restored
        exactly after rendering the goal image.
        """
        goal_state = self.scene.sample_goal_state(rng if rng is not None else self.np_random)
        return {'state': goal_state.astype(np.float32), 'image': self.render_state(goal_state)}

    def set_goal(self, goal: Mapping[str, np.ndarray] | np.ndarray) -> None:
        """Use a goal dict from sample_goal() (or just a goal state, whose image is rendered)."""
        if isinstance(goal, Mapping):
            state, image = goal['state'], goal.get('image')
        else:
            state, image = goal, None
        state = np.asarray(state, dtype=float).reshape(-1)
        if state.shape != self.observation_space['state'].shape:
            raise ValueError(f'goal state must have shape {self.observation_space["state"].shape} '
                             f'{self.scene.state_names}, got {state.shape}')
        if image is None:
            image = self.render_state(state)
        image = np.asarray(image)
        if image.shape != self.observation_space['image'].shape or image.dtype != np.uint8:
            raise ValueError(f'goal image must be uint8 {self.observation_space["image"].shape}, '
                             f'got {image.dtype} {image.shape}')
        self._goal_state = state.copy()
        self._goal_image = image.copy()

    def render_state(self, state: np.ndarray) -> np.ndarray:
        """Learner-camera image of the scene teleported to `state`; the simulation is restored."""
        snapshot = self.scene.snapshot()
        self.scene.set_state(state)
        image = self.scene.render()
        self.scene.restore(snapshot)
        return image

    @property
    def goal(self) -> dict[str, np.ndarray]:
        """The current goal, {'state', 'image'}; assigning to it calls set_goal()."""
        return {'state': self._goal_state.astype(np.float32), 'image': self._goal_image.copy()}

    @goal.setter
    def goal(self, goal: Mapping[str, np.ndarray] | np.ndarray) -> None:
        self.set_goal(goal)

    def task_distance(self, state: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        """Distance that defines reward and success (batched over leading axes)."""
        raise NotImplementedError

    def _task_metrics(self, state: np.ndarray, goal_state: np.ndarray) -> dict[str, Any]:
        raise NotImplementedError

    # ----------------------------------------------------------------------------------- helpers
    def _observation(self, state: np.ndarray) -> dict[str, np.ndarray]:
        state32 = state.astype(np.float32)
        shape = self.observation_space['image'].shape
        return {
            'image': self.scene.render() if self.render_observations else np.zeros(shape, np.uint8),
            'state': state32,
            'desired_goal_image': self._goal_image.copy(),
            'desired_goal_state': self._goal_state.astype(np.float32),
            'achieved_goal_state': state32.copy(),
        }

    def _metrics(self, state: np.ndarray) -> dict[str, Any]:
        hand_distance = float(np.linalg.norm(state[:3] - self._goal_state[:3]))
        return {'hand_distance': hand_distance, **self._task_metrics(state, self._goal_state)}


class ReachEnv(RigEnv):
    """Move the hand to a goal x-y (fixed height). Success: hand within 5 cm."""
    task = 'reach'
    success_threshold = HAND_SUCCESS_DISTANCE

    def task_distance(self, state, goal_state):
        return np.linalg.norm(np.asarray(state)[..., :3] - np.asarray(goal_state)[..., :3], axis=-1)

    def _task_metrics(self, state, goal_state):
        return {'success': bool(self.task_distance(state, goal_state) < self.success_threshold)}


class PushEnv(RigEnv):
    """Push the puck to a goal x-y; goals also place the hand. Success: puck within 6 cm."""
    task = 'push'
    success_threshold = PUCK_SUCCESS_DISTANCE
    goal_map_axes = ((4, 'puck goal y (m)', True), (3, 'puck goal x (m, away from the robot)'))

    def task_distance(self, state, goal_state):
        return np.linalg.norm(np.asarray(state)[..., 3:5] - np.asarray(goal_state)[..., 3:5], axis=-1)

    def _task_metrics(self, state, goal_state):
        puck_distance = float(self.task_distance(state, goal_state))
        return {'puck_distance': puck_distance, 'success': puck_distance < self.success_threshold}


class DoorEnv(RigEnv):
    """Open the door to a goal angle (uniform in [0, 0.8] rad). Success: within 0.1 rad."""
    task = 'door'
    success_threshold = DOOR_SUCCESS_ANGLE

    def task_distance(self, state, goal_state):
        return np.abs(np.asarray(state)[..., 3] - np.asarray(goal_state)[..., 3])

    def _task_metrics(self, state, goal_state):
        angle_error = float(self.task_distance(state, goal_state))
        return {'door_angle_error': angle_error, 'success': angle_error < self.success_threshold}


ENV_CLASSES: dict[str, type[RigEnv]] = {'reach': ReachEnv, 'push': PushEnv, 'door': DoorEnv}
GYM_IDS: dict[str, str] = {'reach': 'rig/Reach-v0', 'push': 'rig/Push-v0', 'door': 'rig/Door-v0'}


def make_env(config: SimConfig | None = None, **overrides: Any) -> RigEnv:
    """The environment for config.task (default reach), with SimConfig fields overridden by keyword.

    make_env(task='push', arm='ur5e', image_size=84) or make_env(load_yaml(SimConfig, path)).
    """
    config = dataclasses.replace(config or SimConfig(), **overrides)
    return ENV_CLASSES[config.task](config)


def register_envs() -> None:
    """Register the gymnasium ids (idempotent; done on import of rig_sim)."""
    for task, env_id in GYM_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=f'rig_sim.envs:{ENV_CLASSES[task].__name__}')


register_envs()
