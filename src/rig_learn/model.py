"""The inference model: what acting needs, and all the encoder and policy nodes load.

    model = InferenceModel.load('runs/x/checkpoint')     # VAE + actor; no critics, no optimiser state
    mean, logvar = model.encode(images)                  # uint8 (N, H, W, 3) -> latents
    action = model.act(obs_image, goal_image)            # deterministic
    action = model.explore_features(obs_feat, goal_feat)  # the one exploration (rig train and the graph)
    z = model.goals.sample(rng, 1)                       # an imagined goal

It holds the featurizer (VAE latents for RIG, states for the oracle, pooled pixels for HER from
pixels), the actor, the imagined-goal distribution (`GoalSampler`) and the spec that checkpoints are
checked against. The learner (`rig_learn.learner.Learner`) trains a model in place.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from rig_base.config import from_dict

from . import checkpoint as ckpt
from .config import LearnConfig
from .features import PixelFeaturizer, StateFeaturizer, VAEFeaturizer
from .goals import GoalSampler
from .protocol import declared
from .rl import make_actor
from .vae import ConvVAE, decode_latents, encode_images


class DeviceUnavailable(ValueError):
    """The requested torch device cannot be used on this machine (a configuration error: the CLI and
    the node executables report it in one line and exit 2)."""


def resolve_device(name: str) -> torch.device:
    dev = torch.device(name)
    if dev.type == 'cuda':
        if not torch.cuda.is_available():
            raise DeviceUnavailable(f'device {name!r} requested but CUDA is not available '
                                    f'(torch {torch.__version__}, built with CUDA {torch.version.cuda}); use the cpu: '
                                    '--device cpu (rig train, rig eval) or -p device:=cpu (a node)')
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceUnavailable(f'device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s); '
                                    'choose another: --device (rig train, rig eval) or -p device:=cpu (a node)')
    elif dev.type != 'cpu':
        raise DeviceUnavailable(f'unsupported device {name!r} (cpu | cuda | cuda:N)')
    return dev


def model_spec(cfg: LearnConfig, action_dim: int, state_dim: int, goal_state_dim: int,
               action_low=None, action_high=None, **extra) -> dict:
    """What a checkpoint says it is for (checked by whoever loads it: task, sizes, action bounds);
    `extra`: what the driver adds (the env's action scale, the graph's action scale and rate)."""
    return {'task': cfg.task, 'arm': cfg.arm, 'mode': cfg.mode, 'algo': cfg.rl.algo,
            'image_size': int(cfg.image_size),
            'latent_dim': int(cfg.vae.latent_dim) if cfg.uses_vae else None,
            'action_dim': int(action_dim),
            'action_low': [float(x) for x in (action_low if action_low is not None else [-1.0] * action_dim)],
            'action_high': [float(x) for x in (action_high if action_high is not None else [1.0] * action_dim)],
            'state_dim': int(state_dim), 'goal_state_dim': int(goal_state_dim), **extra}


#: The spec keys that say how an action becomes a command: velocity (m/s) = action * action_scale *
#: control_rate_hz. None (or absent): the checkpoint is bound to no scale yet (a trainer that has seen
#: no episode recording them, or `rig train`, whose spec has the env's `env_action_scale` instead).
SCALE_KEYS = ('action_scale', 'control_rate_hz')


def same_scale(a, b) -> bool:
    """Two scales (or rates) are the same one (JSON and YAML round trips aside)."""
    return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-12)


def scale_mismatches(spec: dict, wanted: dict, who: str = 'expected') -> list[str]:
    """'key: checkpoint has x, <who> has y' for each key of `wanted` (SCALE_KEYS, action_dim) that the spec
    records (not None) with another value; keys the spec does not record are not compared."""
    out = []
    for key, want in wanted.items():
        have = spec.get(key)
        if have is None or want is None:
            continue
        same = same_scale(have, want) if key in SCALE_KEYS else have == want
        if not same:
            out.append(f'{key}: checkpoint has {have!r}, {who} has {want!r}')
    return out


def check_scales(spec: dict, wanted: dict, where: str, who: str = 'expected') -> None:
    """Raise CheckpointMismatch, naming both values, if the checkpoint was made for another action scale or
    control rate than `wanted` ({'action_scale': s, 'control_rate_hz': r})."""
    diffs = scale_mismatches(spec, wanted, who)
    if diffs:
        raise ckpt.CheckpointMismatch(f'checkpoint {where} was trained for another action scale or control rate '
                                      f'(velocity = action * action_scale * control_rate_hz): ' + '; '.join(diffs))


def env_spec(env, cfg: LearnConfig) -> dict:
    """The spec of a model for `env` (rig train)."""
    space = env.observation_space
    a = env.action_space
    img = space['image'].shape
    if img[0] != cfg.image_size:
        raise ValueError(f'env renders {img[0]}px images, config image_size is {cfg.image_size}')
    # the physical size of an action of 1.0, where the env declares it (protocol: action_scale)
    scale = declared(env, 'action_scale')
    return model_spec(cfg, a.shape[0], space['state'].shape[0], space['achieved_goal_state'].shape[0],
                      a.low, a.high, env_action_scale=None if scale is None else float(scale))


def _split(x):
    if isinstance(x, dict):
        img = x.get('image')
        state = x.get('state', x.get('achieved_goal_state'))
        return (None if img is None else np.asarray(img)), state
    return np.asarray(x), None


class InferenceModel:
    """VAE (RIG) or another featurizer, actor, goal sampler and spec: encode, act, explore."""

    def __init__(self, cfg: LearnConfig, spec: dict, rng: np.random.Generator | None = None,
                 gen: torch.Generator | None = None):
        """Fresh weights, drawn from torch's global generator (seed it, or fork it, around this)."""
        self.cfg, self.spec = cfg, dict(spec)
        self.device = resolve_device(cfg.device)
        self.rng = rng if rng is not None else np.random.default_rng(cfg.seed)
        if gen is None:
            gen = torch.Generator(device=self.device)
            gen.manual_seed(cfg.seed)
        self.gen = gen     # SAC's policy sampling
        self.vae: ConvVAE | None = None
        if cfg.uses_vae:
            v = cfg.vae
            self.vae = ConvVAE(cfg.image_size, v.latent_dim, v.arch, v.decoder, v.gaussian_sigma)
            self.vae = self.vae.to(self.device).eval()
            self.featurizer = VAEFeaturizer(self.vae)
        elif cfg.mode == 'oracle':
            self.featurizer = StateFeaturizer(spec['state_dim'], spec['goal_state_dim'])
        else:
            self.featurizer = PixelFeaturizer(cfg.image_size, cfg.pixel_pool)
        self.spec['obs_dim'] = self.featurizer.obs_dim
        self.spec['goal_dim'] = self.featurizer.goal_dim
        self.actor = make_actor(cfg.rl.algo, self.featurizer.obs_dim + self.featurizer.goal_dim,
                                spec['action_dim'], cfg.rl).to(self.device)
        self.goals = GoalSampler(self.featurizer, cfg, self.rng)
        self._noise_state = np.zeros(spec['action_dim'], np.float32)

    # -- features ------------------------------------------------------------------------------------
    def encode(self, images):
        """uint8 (N, H, W, 3) or (H, W, 3) -> latent (mean, logvar) as numpy float32."""
        if self.vae is None:
            raise RuntimeError(f'mode {self.cfg.mode!r} has no VAE')
        return encode_images(self.vae, images)

    def decode(self, z) -> np.ndarray:
        return decode_latents(self.vae, z)

    def reconstruct(self, image) -> np.ndarray:
        return self.decode(self.encode(image)[0])

    def _features(self, x, featurize, need_state: str) -> np.ndarray:
        img, state = _split(x)
        if self.cfg.mode == 'oracle':
            if state is None:
                raise ValueError(need_state)
            return featurize(None, state)[0]
        return featurize(img, None)[0]

    def obs_features(self, obs) -> np.ndarray:
        """obs: uint8 image or observation dict -> policy observation features (1-D)."""
        return self._features(obs, self.featurizer.obs, 'oracle mode acts on states: pass the observation dict')

    def goal_features(self, goal) -> np.ndarray:
        """goal: uint8 image or {'image', 'state'} -> goal features (1-D)."""
        return self._features(goal, self.featurizer.goal, "oracle mode needs goal states: pass {'state': ...}")

    # -- acting --------------------------------------------------------------------------------------
    def _input(self, obs_feat, goal_feat) -> torch.Tensor:
        x = np.concatenate([obs_feat, goal_feat], -1)[None]
        return torch.as_tensor(x, dtype=torch.float32, device=self.device)

    @torch.no_grad()
    def act_features(self, obs_feat, goal_feat, noise: bool = False) -> np.ndarray:
        if noise:
            return self.explore_features(obs_feat, goal_feat)
        x = self._input(obs_feat, goal_feat)
        return self.actor.act(x, deterministic=True)[0].cpu().numpy().astype(np.float32)

    def act(self, obs, goal, noise: bool = False) -> np.ndarray:
        """Policy action for observation `obs` (uint8 HxWx3 or obs dict) and goal (uint8 image or
        {'image', 'state'}); deterministic unless noise=True."""
        return self.act_features(self.obs_features(obs), self.goal_features(goal), noise)

    def _explore(self, a: np.ndarray, rng: np.random.Generator | None = None,
                 scale: float | None = None) -> np.ndarray:
        rl = self.cfg.rl
        rng = rng or self.rng
        sigma = rl.exploration_noise if scale is None else scale
        if rl.exploration == 'ou':
            self._noise_state += rl.ou_theta * -self._noise_state + sigma * rng.standard_normal(a.shape)
            n = self._noise_state
        else:
            n = sigma * rng.standard_normal(a.shape)
        return np.clip(a + n, -1.0, 1.0)

    @torch.no_grad()
    def explore_features(self, obs_feat, goal_feat, rng: np.random.Generator | None = None,
                         scale: float | None = None) -> np.ndarray:
        """The exploring action, the one way both `rig train` and the graph's policy node practise:
        SAC samples its policy; TD3 adds the configured noise (Gaussian, or OU: `reset_exploration`
        at each episode start) to its deterministic action. `scale` overrides the noise's sigma."""
        x = self._input(obs_feat, goal_feat)
        if self.cfg.rl.algo == 'sac':
            return self.actor.act(x, deterministic=False, gen=self.gen)[0].cpu().numpy().astype(np.float32)
        return self._explore(self.actor(x)[0].cpu().numpy(), rng, scale).astype(np.float32)

    def reset_exploration(self) -> None:
        """A new episode: temporally correlated (OU) noise starts from zero."""
        self._noise_state[:] = 0

    # -- persistence ---------------------------------------------------------------------------------
    def load_weights(self, data: dict, where: str) -> None:
        """Actor and VAE (with its goal prior) from a loaded checkpoint's blobs."""
        try:
            self.actor.load_state_dict(data['policy']['actor'])
            if self.vae is not None:
                vae_state = dict(data['vae']['vae'])
                for key in ('goal_prior_mean', 'goal_prior_std', 'goal_bank'):   # checkpoints from before these
                    vae_state.setdefault(key, getattr(self.vae, key))
                # the goal bank's row count varies: make room for the stored one
                self.vae.goal_bank = torch.empty_like(vae_state['goal_bank'], device=self.vae.goal_prior_mean.device)
                self.vae.load_state_dict(vae_state)
        except (KeyError, RuntimeError, ValueError) as exc:
            raise ckpt.CheckpointError(f'checkpoint {where}: weights do not fit the recorded config ({exc})') from exc

    @classmethod
    def load(cls, path, expected: dict | None = None, device: str | None = None) -> 'InferenceModel':
        """The inference part of a checkpoint directory. Raises CheckpointMismatch / CheckpointError."""
        data = ckpt.load_checkpoint(path, expected)
        cfg = config_of(data, path, device)
        with torch.random.fork_rng(devices=[]):
            model = cls(cfg, data['spec'])
        model.load_weights(data, str(path))
        model.counters = dict(data['counters'])
        return model


def config_of(data: dict, path, device: str | None = None) -> LearnConfig:
    """The learner config a loaded checkpoint was trained with (`device` overrides its device)."""
    cfg_dict = dict(data['config'])
    if device is not None:
        cfg_dict['device'] = device
    return from_dict(LearnConfig, cfg_dict, where=f'{Path(path)}/manifest.json:config')
