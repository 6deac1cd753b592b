"""RIGAgent: RIG on a simulated task, as `rig train` runs it; the learner's simulation-loop driver.

    agent = RIGAgent.from_config(cfg, env)      # or RIG(cfg, env)
    agent.learn(10_000)
    action = agent.act(obs_image, goal_image)   # uint8 HxWx3 in, float32 action in [-1, 1] out
    mean, logvar = agent.encode(images)
    agent.save('runs/x/checkpoint'); agent = RIGAgent.load('runs/x/checkpoint')
    result = agent.evaluate(env, n_goals=50)    # per-goal final true distances on image goals

An agent is an `InferenceModel` (`agent.model`: VAE, actor, goal sampler; encode / act / explore),
the `Learner` that trains it (`agent.learner`: replay, schedule, TD3/SAC update, VAE fits) and this
loop, which collects the pretraining images and steps the environment. The bag trainer
(`rig_trainer.online`) feeds the same learner from recorded episodes instead.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from rig_base.config import from_dict

from . import checkpoint as ckpt
from .config import LearnConfig
from .evaluate import EvalResult, evaluate
from .learner import Learner, NonFiniteError
from .model import DeviceUnavailable, InferenceModel, config_of, env_spec, resolve_device
from .protocol import nonfinite_key, unwrapped_call
from .replay import Frame

__all__ = ['RIG', 'RIGAgent', 'DeviceUnavailable', 'env_spec', 'resolve_device']


class RIGAgent:
    def __init__(self, cfg: LearnConfig, env=None, spec: dict | None = None, eval_env=None):
        if spec is None:
            if env is None:
                raise ValueError('RIGAgent needs an env (or a spec from a checkpoint)')
            spec = env_spec(env, cfg)
        self.cfg, self.env, self.eval_env = cfg, env, eval_env
        self.learner = Learner.fresh(cfg, spec)
        self.model: InferenceModel = self.learner.model
        self._episode_open = False
        self._update_budget = 0.0
        self._first_reset = True

    # The parts, by the names the API has always had.
    spec = property(lambda self: self.model.spec)
    device = property(lambda self: self.model.device)
    rng = property(lambda self: self.model.rng)
    gen = property(lambda self: self.model.gen)
    vae = property(lambda self: self.model.vae)
    featurizer = property(lambda self: self.model.featurizer)
    goals = property(lambda self: self.model.goals)
    schedule = property(lambda self: self.learner.schedule)
    counters = property(lambda self: self.learner.counters)
    buffer = property(lambda self: self.learner.buffer)
    vae_trainer = property(lambda self: self.learner.vae_trainer)
    reward = property(lambda self: self.learner.reward)
    last_metrics = property(lambda self: self.learner.last_metrics)
    pretrain_images = property(lambda self: self.learner.pretrain_images)

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: LearnConfig | dict, env=None, eval_env=None) -> 'RIGAgent':
        if isinstance(cfg, dict):
            cfg = from_dict(LearnConfig, cfg)
        return cls(cfg, env, eval_env=eval_env)

    # -- features / acting: the model's ------------------------------------------------------------------
    def encode(self, images):
        return self.model.encode(images)

    def decode(self, z) -> np.ndarray:
        return self.model.decode(z)

    def reconstruct(self, image) -> np.ndarray:
        return self.model.reconstruct(image)

    def obs_features(self, obs) -> np.ndarray:
        return self.model.obs_features(obs)

    def goal_features(self, goal) -> np.ndarray:
        return self.model.goal_features(goal)

    def act_features(self, obs_feat, goal_feat, noise: bool = False) -> np.ndarray:
        return self.model.act_features(obs_feat, goal_feat, noise)

    def act(self, obs, goal, noise: bool = False) -> np.ndarray:
        """Policy action for observation `obs` (uint8 HxWx3 or obs dict) and goal (uint8 image or
        {'image', 'state'}); deterministic unless noise=True."""
        return self.model.act(obs, goal, noise)

    def explore_features(self, obs_feat, goal_feat, rng=None, scale=None) -> np.ndarray:
        return self.model.explore_features(obs_feat, goal_feat, rng, scale)

    def reset_exploration(self) -> None:
        self.model.reset_exploration()

    def _policy_action(self, obs_feat, goal_feat) -> np.ndarray:
        if self.counters['env_steps'] < self.cfg.rl.random_steps:
            return self.rng.uniform(-1, 1, self.spec['action_dim']).astype(np.float32)
        return self.model.explore_features(obs_feat, goal_feat)

    # -- data --------------------------------------------------------------------------------------
    def _frame(self, obs) -> Frame:
        img, state, achieved = np.asarray(obs['image']), obs['state'], obs['achieved_goal_state']
        if self.vae is not None:
            return Frame(img, state, achieved, *self.model.encode(img))
        if self.cfg.mode == 'oracle':
            return Frame(img, state, achieved, self.featurizer.obs(None, state)[0],
                         ach_feat=self.featurizer.achieved(None, achieved)[0][0])
        return Frame(img, state, achieved, self.featurizer.obs(img)[0])

    def _checked_frame(self, obs, at: str) -> Frame:
        """`_frame(obs)`, first making sure that the env's float observations and the features the
        reward is computed from are finite; NonFiniteError naming `at` (the step) and the key if not."""
        key = nonfinite_key(obs)
        if key is not None:
            bad = np.flatnonzero(~np.isfinite(np.asarray(obs[key], np.float64)))
            raise NonFiniteError(f'{at}: the env observation {key!r} is not finite (NaN or inf at index '
                                 f'{bad[:8].tolist()})')
        frame = self._frame(obs)
        for name, value in (('features', frame.feat), ('achieved-goal features', frame.ach_feat)):
            if value is not None and not np.all(np.isfinite(value)):
                cause = ' (VAE latents of the image: has the VAE diverged?)' if self.vae is not None else ''
                raise NonFiniteError(f'{at}: the {self.cfg.mode} {name} of the observation are not finite{cause}')
        return frame

    def _make_buffer(self) -> None:
        self.learner.make_buffer(self.env)

    def collect_vae_images(self, n: int, kind: str | None = None) -> np.ndarray:
        """Images for VAE pretraining: random-action rollouts ('random'), env goal images
        ('goals') or half of each ('mixed')."""
        kind = kind or self.cfg.vae.pretrain_dataset
        env = self.env
        n_goal = n if kind == 'goals' else (n // 2 if kind == 'mixed' else 0)
        images = [np.asarray(unwrapped_call(env, 'sample_goal', self.rng)['image']) for _ in range(n_goal)]
        first = True
        while len(images) < n:
            obs, _ = env.reset(seed=self.cfg.seed + 7919 if first else None)
            first = False
            images.append(np.asarray(obs['image']))
            done = False
            while not done and len(images) < n:
                obs, _, term, trunc, _ = env.step(self.rng.uniform(-1, 1, self.spec['action_dim']).astype(np.float32))
                images.append(np.asarray(obs['image']))
                self.counters['vae_pretrain_env_steps'] += 1
                done = term or trunc
        self._first_reset = True
        self._episode_open = False
        return np.stack(images).astype(np.uint8)

    def pretrain_vae(self, images: np.ndarray | None = None, steps: int | None = None,
                     finish: bool = True) -> dict:
        """Fit the VAE on `images` (collected from the env if None), then the goal distribution."""
        if images is None:
            images = self.collect_vae_images(self.schedule.pretrain_images)
        return self.learner.pretrain_vae(images, steps, finish)

    def refit_vae(self, steps: int | None = None, finish: bool = True) -> dict:
        """Online VAE refit on replay images, then the buffer re-encoded (Learner.refit_vae)."""
        m = self.learner.refit_vae(steps, finish=False)
        if finish:
            self.buffer.refresh()
            self.finish_refit()
        return m

    def finish_refit(self) -> None:
        """The end of a refit: the learner's, then the running episode's features re-read."""
        self.learner.finish_refit()
        if self._episode_open:   # keep the running episode's features consistent with the new VAE
            self._obs_feat = self.buffer.obs_feat[self.buffer._last].copy()
            self._goal_feat = self.buffer.ep_goal_feat[self.buffer.episode % self.buffer.capacity].copy()

    # -- training ----------------------------------------------------------------------------------
    def _begin_episode(self) -> None:
        env = self.env
        seed = self.cfg.seed if self._first_reset else None
        self._first_reset = False
        if self.cfg.uses_vae:
            z = self.goals.sample(1)[0]          # imagined goal
            goal_image = self.goals.decode(z)
            obs, _ = env.reset(seed=seed)
            goal_state = np.full(self.spec['goal_state_dim'], np.nan, np.float32)
            goal_feat = z
        else:
            goal = unwrapped_call(env, 'sample_goal', self.rng)
            obs, _ = env.reset(seed=seed, options={'goal': goal})
            goal_image, goal_state = np.asarray(goal['image']), np.asarray(goal['state'], np.float32)
            goal_feat = self.goal_features({'image': goal_image, 'state': goal_state})
        at = f"the reset before env step {self.counters['env_steps'] + 1}"
        if not np.all(np.isfinite(goal_feat)):
            raise NonFiniteError(f"{at}: the episode's goal features ({self.cfg.mode}) are not finite")
        frame = self._checked_frame(obs, at)
        self.buffer.start_episode(goal_image, goal_state, goal_feat, frame)
        self._obs_feat, self._goal_feat = frame.feat, np.asarray(goal_feat, np.float32)
        self.reset_exploration()
        self._episode_open = True

    def train_step(self) -> dict:
        return self.learner.train_step()

    def learn(self, steps: int, callback=None) -> 'RIGAgent':
        """Collect `steps` env steps, training as configured. `callback(agent)` runs after each
        env step (return False to stop early)."""
        if self.env is None:
            raise RuntimeError('learn() needs an env (RIGAgent.from_config(cfg, env))')
        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            if self.cfg.uses_vae and not self.counters['vae_pretrained']:
                self.pretrain_vae()
            if self.buffer is None:
                self._make_buffer()
            last = {}
            for _ in range(int(steps)):
                # A refit due after step n runs here, as step n + 1 begins: evaluations and
                # checkpoints taken at step n (callback, end of learn) then see a policy trained on
                # the current latents, not one the refit has just moved under it.
                n = self.counters['env_steps']
                if self.schedule.refit_due(n - 1, n) and self.counters['refit_at_step'] != n:
                    self.refit_vae()
                    self.counters['refit_at_step'] = n
                if not self._episode_open:
                    self._begin_episode()
                action = self._policy_action(self._obs_feat, self._goal_feat)
                obs, _, terminated, truncated, info = self.env.step(action)
                frame = self._checked_frame(obs, f'env step {n + 1}')
                self.buffer.add_step(action, bool(terminated), frame)
                self._obs_feat = frame.feat
                self.counters['env_steps'] += 1
                if terminated or truncated:
                    self._episode_open = False
                    self.counters['episodes'] += 1
                self._update_budget += self.schedule.updates_earned(n, n + 1)
                while self._update_budget >= 1.0:
                    last = self.train_step()
                    self._update_budget -= 1.0
                if callback is not None:
                    self.last_metrics.update({k: float(v) for k, v in last.items()})
                    if callback(self) is False:
                        break
            self.last_metrics.update({k: float(v) for k, v in last.items()})
        self.counters['train_seconds'] += time.perf_counter() - t0
        return self

    # -- evaluation ----------------------------------------------------------------------------------
    def evaluate(self, env=None, n_goals: int | None = None, seed: int | None = None, record: int = 0) -> EvalResult:
        env = env or self.eval_env or self.env
        if env is None:
            raise RuntimeError('evaluate() needs an env')
        if env is self.env:
            self._episode_open = False   # the training episode is cut here (bootstrapped, still valid)
        with torch.random.fork_rng(devices=[]):
            return evaluate(self, env, n_goals or self.cfg.eval.n_goals,
                            self.cfg.eval.seed if seed is None else seed, record=record)

    # -- persistence ---------------------------------------------------------------------------------
    def state_dicts(self) -> dict:
        return self.learner.state_dicts()

    def save(self, path):
        return self.learner.save(path)

    @classmethod
    def load(cls, path, env=None, expected: dict | None = None, device: str | None = None,
             eval_env=None) -> 'RIGAgent':
        """Rebuild an agent from a checkpoint directory (a runnable policy; with `env`, trainable
        further, with an empty replay buffer). Acting only? `InferenceModel.load` loads less.
        Raises CheckpointMismatch / CheckpointError."""
        data = ckpt.load_checkpoint(path, expected)
        cfg = config_of(data, path, device)
        spec = data['spec']
        if env is not None:
            ckpt.check_expected(spec, {k: v for k, v in env_spec(env, cfg).items() if k in ckpt.CHECKED_KEYS},
                                f'{path} (vs env)')
        agent = cls(cfg, env, spec=spec, eval_env=eval_env)
        agent.learner.load_weights(data, str(path))
        return agent


RIG = RIGAgent
