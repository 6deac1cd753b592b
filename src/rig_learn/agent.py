"""RIGAgent: VAE + goal-conditioned TD3/SAC on latent means, with imagined goals.

    agent = RIGAgent.from_config(cfg, env)      # or RIG(cfg, env)
    agent.learn(10_000)
    action = agent.act(obs_image, goal_image)   # uint8 HxWx3 in, float32 action in [-1, 1] out
    mean, logvar = agent.encode(images)
    agent.save('runs/x/checkpoint'); agent = RIGAgent.load('runs/x/checkpoint')
    result = agent.evaluate(env, n_goals=50)    # per-goal final true distances on image goals
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from rig.config import from_dict, to_dict

from . import checkpoint as ckpt
from .config import LearnConfig
from .envs import unwrapped_call
from .evaluate import EvalResult, evaluate
from .features import PixelFeaturizer, StateFeaturizer, VAEFeaturizer, reward_fn
from .replay import ReplayBuffer
from .rl import make_learner
from .schedule import Schedule
from .vae import ConvVAE, VAETrainer, decode_latents, encode_images


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


def env_spec(env, cfg: LearnConfig) -> dict:
    space = env.observation_space
    a = env.action_space
    img = space['image'].shape
    if img[0] != cfg.image_size:
        raise ValueError(f'env renders {img[0]}px images, config image_size is {cfg.image_size}')
    return {'task': cfg.task, 'arm': cfg.arm, 'mode': cfg.mode, 'algo': cfg.rl.algo,
            'image_size': int(cfg.image_size),
            'latent_dim': int(cfg.vae.latent_dim) if cfg.uses_vae else None,
            'action_dim': int(a.shape[0]),
            'action_low': [float(x) for x in a.low], 'action_high': [float(x) for x in a.high],
            # physical size of an action of 1.0 where the env says (rig_sim: metres per step)
            'env_action_scale': getattr(getattr(env.unwrapped, 'config', None), 'action_scale',
                                        getattr(env.unwrapped, 'max_step', None)),
            'state_dim': int(space['state'].shape[0]),
            'goal_state_dim': int(space['achieved_goal_state'].shape[0])}


class RIGAgent:
    def __init__(self, cfg: LearnConfig, env=None, spec: dict | None = None, eval_env=None):
        if spec is None:
            if env is None:
                raise ValueError('RIGAgent needs an env (or a spec from a checkpoint)')
            spec = env_spec(env, cfg)
        self.cfg, self.env, self.eval_env, self.spec = cfg, env, eval_env, dict(spec)
        self.device = resolve_device(cfg.device)
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        self.rng = np.random.default_rng(cfg.seed)
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(cfg.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.vae = None
            if cfg.uses_vae:
                v = cfg.vae
                self.vae = ConvVAE(cfg.image_size, v.latent_dim, v.arch, v.decoder, v.gaussian_sigma).to(self.device).eval()
                self.vae_trainer = VAETrainer(self.vae, v.beta, v.lr, self.gen)
                self.featurizer = VAEFeaturizer(self.vae)
            elif cfg.mode == 'oracle':
                self.featurizer = StateFeaturizer(spec['state_dim'], spec['goal_state_dim'])
            else:
                self.featurizer = PixelFeaturizer(cfg.image_size, cfg.pixel_pool)
            self.spec['obs_dim'] = self.featurizer.obs_dim
            self.spec['goal_dim'] = self.featurizer.goal_dim
            self.learner = make_learner(cfg.rl.algo, self.featurizer.obs_dim + self.featurizer.goal_dim,
                                        spec['action_dim'], cfg.rl, self.device, self.gen)
        self.schedule = Schedule(cfg)
        self.reward = reward_fn(cfg.reward if cfg.uses_vae else 'latent_distance', cfg.rl.reward_scale)
        self.buffer: ReplayBuffer | None = None
        self.counters = {'env_steps': 0, 'grad_steps': 0, 'episodes': 0, 'vae_refits': 0,
                         'vae_pretrained': False, 'refit_at_step': -1, 'vae_pretrain_env_steps': 0, 'train_seconds': 0.0}
        self.pretrain_images: np.ndarray | None = None
        self._skew_sample: tuple[np.ndarray, np.ndarray] | None = None   # vae.goal_bank_skew candidates, weights
        self.last_metrics: dict = {}
        self._episode_open = False
        self._update_budget = 0.0
        self._noise_state = np.zeros(spec['action_dim'], np.float32)
        self._first_reset = True

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: LearnConfig | dict, env=None, eval_env=None) -> 'RIGAgent':
        if isinstance(cfg, dict):
            cfg = from_dict(LearnConfig, cfg)
        return cls(cfg, env, eval_env=eval_env)

    # -- features / acting ---------------------------------------------------------------------------
    def encode(self, images):
        """uint8 (N, H, W, 3) or (H, W, 3) -> latent (mean, logvar) as numpy float32."""
        if self.vae is None:
            raise RuntimeError(f'mode {self.cfg.mode!r} has no VAE')
        return encode_images(self.vae, images)

    def decode(self, z) -> np.ndarray:
        return decode_latents(self.vae, z)

    def reconstruct(self, image) -> np.ndarray:
        return self.decode(self.encode(image)[0])

    @staticmethod
    def _split(x):
        if isinstance(x, dict):
            img = x.get('image')
            state = x.get('state', x.get('achieved_goal_state'))
            return (None if img is None else np.asarray(img)), state
        return np.asarray(x), None

    def obs_features(self, obs) -> np.ndarray:
        """obs: uint8 image or observation dict -> policy observation features (1-D)."""
        img, state = self._split(obs)
        if self.cfg.mode == 'oracle':
            if state is None:
                raise ValueError('oracle mode acts on states: pass the observation dict')
            return self.featurizer.obs(None, state)[0]
        return self.featurizer.obs(img, None)[0]

    def goal_features(self, goal) -> np.ndarray:
        """goal: uint8 image or {'image', 'state'} -> goal features (1-D)."""
        img, state = self._split(goal)
        if self.cfg.mode == 'oracle':
            if state is None:
                raise ValueError("oracle mode needs goal states: pass {'state': ...}")
            return self.featurizer.goal(None, state)[0]
        return self.featurizer.goal(img, None)[0]

    @torch.no_grad()
    def act_features(self, obs_feat, goal_feat, noise: bool = False) -> np.ndarray:
        if noise:
            return self.explore_features(obs_feat, goal_feat)
        x = torch.as_tensor(np.concatenate([obs_feat, goal_feat], -1)[None], dtype=torch.float32, device=self.device)
        return self.learner.actor.act(x, deterministic=True)[0].cpu().numpy().astype(np.float32)

    def act(self, obs, goal, noise: bool = False) -> np.ndarray:
        """Policy action for observation `obs` (uint8 HxWx3 or obs dict) and goal (uint8 image or
        {'image', 'state'}); deterministic unless noise=True."""
        return self.act_features(self.obs_features(obs), self.goal_features(goal), noise)

    def _explore(self, a: np.ndarray, rng: np.random.Generator | None = None, scale: float | None = None) -> np.ndarray:
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
        """The exploring action, the one way both `learn` and the graph's policy node practise: SAC
        samples its policy; TD3 adds the configured noise (Gaussian, or OU: `reset_exploration` at
        each episode start) to its deterministic action. `scale` overrides the noise's sigma."""
        x = torch.as_tensor(np.concatenate([obs_feat, goal_feat])[None], dtype=torch.float32, device=self.device)
        if self.cfg.rl.algo == 'sac':
            return self.learner.actor.act(x, deterministic=False, gen=self.gen)[0].cpu().numpy().astype(np.float32)
        return self._explore(self.learner.actor(x)[0].cpu().numpy(), rng, scale).astype(np.float32)

    def reset_exploration(self) -> None:
        """A new episode: temporally correlated (OU) noise starts from zero."""
        self._noise_state[:] = 0

    def _policy_action(self, obs_feat, goal_feat) -> np.ndarray:
        if self.counters['env_steps'] < self.cfg.rl.random_steps:
            return self.rng.uniform(-1, 1, self.spec['action_dim']).astype(np.float32)
        return self.explore_features(obs_feat, goal_feat)

    # -- data --------------------------------------------------------------------------------------
    def _frame(self, obs) -> dict:
        img = np.asarray(obs['image'])
        d = {'image': img, 'state': obs['state'], 'achieved': obs['achieved_goal_state'], 'logvar': None}
        if self.vae is not None:
            d['feat'], d['logvar'] = encode_images(self.vae, img)
        elif self.cfg.mode == 'oracle':
            d['feat'] = self.featurizer.obs(None, obs['state'])[0]
            d['ach_feat'] = self.featurizer.achieved(None, obs['achieved_goal_state'])[0][0]
        else:
            d['feat'] = self.featurizer.obs(img)[0]
        return d

    def _make_buffer(self) -> None:
        s = self.spec
        img_shape = (self.cfg.image_size, self.cfg.image_size, 3)
        self.buffer = ReplayBuffer(self.cfg.rl.buffer_size, self.featurizer, img_shape, s['state_dim'],
                                   s['goal_state_dim'], s['action_dim'], self.rng, self.cfg.relabel, self.reward)
        if not self.cfg.uses_vae and self.cfg.relabel.prior > 0 and self.featurizer.goal_bank is None:
            self._make_goal_bank(self.cfg.relabel.env_goal_bank)

    def _make_goal_bank(self, n: int) -> None:
        """Baselines' 'prior' relabelling: features of n goals from env.sample_goal(), drawn once
        with their own generator (so the rest of the run's random stream is unchanged)."""
        rng = np.random.default_rng([self.cfg.seed, 104729])
        goals = [unwrapped_call(self.env, 'sample_goal', rng) for _ in range(int(n))]
        self.featurizer.set_goal_bank(np.stack([self.goal_features(g) for g in goals]))

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
        """Fit the VAE on `images` (collected from the env if None), then fit the goal prior to them.

        finish=False runs only the Adam steps: pretraining in slices (the online trainer) is calls
        with finish=False, then one with steps=0; it draws the same batches as one call."""
        v = self.cfg.vae
        if images is None:
            images = self.collect_vae_images(self.schedule.pretrain_images)
        self.pretrain_images = images
        steps = self.schedule.pretrain_steps if steps is None else steps
        m = {}
        for _ in range(steps):
            m = self.vae_trainer.train_step(images[self.rng.integers(0, len(images), v.batch_size)])
        if finish:
            self._refit_goal_prior(images)
            self.counters['vae_pretrained'] = True
        self.last_metrics.update(m)
        return m

    def _refit_goal_prior(self, images: np.ndarray | None = None) -> None:
        """vae.goal_prior 'fitted': fit imagined goals to the latents of `images`, or of the whole
        replay buffer (already re-encoded). 'data': keep latents of the pretraining images and the
        buffer as the goal bank, uniformly or in the shares vae.goal_bank_pretrain_fraction sets.
        Nothing is encoded for the default N(0, I)."""
        prior = self.cfg.vae.goal_prior if self.cfg.uses_vae else 'standard'
        if prior == 'standard':
            return
        if prior == 'fitted':
            latents = self.encode(images)[0] if images is not None else self.buffer.obs_feat[self.buffer.written]
            self.featurizer.fit_prior(latents)
            return
        if self.cfg.vae.goal_bank_skew != 0.0:
            self._skew_goal_bank(images)
            return
        size, share = self.cfg.vae.goal_bank_size, self.cfg.vae.goal_bank_pretrain_fraction
        parts = [self.buffer.obs_feat[self.buffer.written]] if images is None else []
        seen = images if images is not None else self.pretrain_images
        if seen is not None:
            parts.append(self.encode(seen)[0])
        if share is not None and len(parts) == 2 and len(parts[0]):   # fixed shares: pretraining, buffer
            n_seen = int(round(size * share))
            pick = lambda z, n: z[self.rng.choice(len(z), min(n, len(z)), replace=False)]
            parts = [pick(parts[1], n_seen), pick(parts[0], size - n_seen)]
        self.featurizer.set_prior_bank(np.concatenate(parts), size, self.rng)

    def _skew_goal_bank(self, images: np.ndarray | None = None) -> None:
        """vae.goal_bank_skew (Skew-Fit): draw candidates uniformly from the images seen (`images`
        at pretraining, else the pretraining set and the replay buffer), weigh each by p(x)^alpha with
        the current VAE's density estimate, and resample the goal bank from them by weight. The
        candidates and weights are kept for vae.skew_vae_training's next refit."""
        from .vae import log_density
        v = self.cfg.vae
        pre = images if images is not None else self.pretrain_images
        n_pre = 0 if pre is None else len(pre)
        slots = np.flatnonzero(self.buffer.written) if images is None else np.zeros(0, int)
        total = n_pre + len(slots)
        if total == 0:
            return
        pick = np.sort(self.rng.choice(total, min(v.skew_candidates, total), replace=False))
        from_pre, from_buf = pick[pick < n_pre], slots[pick[pick >= n_pre] - n_pre]
        parts = ([pre[from_pre]] if len(from_pre) else []) + ([self.buffer.images[from_buf]] if len(from_buf) else [])
        candidates = np.concatenate(parts)
        logp, latents = log_density(self.vae, candidates)
        ok = np.isfinite(logp) & np.all(np.isfinite(latents), axis=1)
        if not ok.any():
            return
        candidates, logp, latents = candidates[ok], logp[ok], latents[ok]
        score = v.goal_bank_skew * logp.astype(np.float64)
        weights = np.exp(score - score.max())
        weights /= weights.sum()
        self.featurizer.set_goal_bank(latents[self.rng.choice(len(latents), v.goal_bank_size, p=weights)])
        # (kept only for skewed refits: 8192 candidate images are 57 MB at 48x48)
        self._skew_sample = (candidates, weights) if v.skew_vae_training else None
        # Effective sample size of the skewed sample: how many candidates the weight really rests on.
        self.last_metrics['vae/skew_ess'] = float(1.0 / np.sum(weights ** 2))

    def refit_vae(self, steps: int | None = None, finish: bool = True) -> dict:
        """Online VAE refit on replay images, then re-encode the whole buffer.

        finish=False runs only the Adam steps: a refit in slices (the online trainer) is calls with
        finish=False, then the buffer re-encoded (ReplayBuffer.refresh, or its equivalent in
        batches), then finish_refit(); it draws the same batches as one call."""
        v = self.cfg.vae
        steps = self.schedule.refit_steps if steps is None else steps
        m = {}
        n_pre = int(round(v.batch_size * v.refit_mix_pretrain)) if self.pretrain_images is not None else 0
        skewed = self._skew_sample if v.skew_vae_training else None
        for _ in range(steps):
            if skewed is not None:   # Skew-Fit: train on the last refit's skewed sample of images seen
                batch = skewed[0][self.rng.choice(len(skewed[1]), v.batch_size - n_pre, p=skewed[1])]
            else:
                batch = self.buffer.sample_images(v.batch_size - n_pre)
            if n_pre:
                batch = np.concatenate([batch, self.pretrain_images[self.rng.integers(0, len(self.pretrain_images), n_pre)]])
            m = self.vae_trainer.train_step(batch)
        if finish:
            self.buffer.refresh()
            self.finish_refit()
        self.last_metrics.update(m)
        return m

    def finish_refit(self) -> None:
        """The end of a refit, once the buffer is re-encoded: goal prior, running episode, count."""
        self._refit_goal_prior()
        if self._episode_open:   # keep the running episode's features consistent with the new VAE
            self._obs_feat = self.buffer.obs_feat[self.buffer._last].copy()
            self._goal_feat = self.buffer.ep_goal_feat[self.buffer.episode % self.buffer.capacity].copy()
        self.counters['vae_refits'] += 1

    # -- training ----------------------------------------------------------------------------------
    def _begin_episode(self) -> None:
        env = self.env
        seed = self.cfg.seed if self._first_reset else None
        self._first_reset = False
        if self.cfg.uses_vae:
            z = self.featurizer.sample_prior(self.rng, 1)[0]          # imagined goal
            goal_image = self.featurizer.decode(z)
            obs, _ = env.reset(seed=seed)
            goal_state = np.full(self.spec['goal_state_dim'], np.nan, np.float32)
            goal_feat = z
        else:
            goal = unwrapped_call(env, 'sample_goal', self.rng)
            obs, _ = env.reset(seed=seed, options={'goal': goal})
            goal_image, goal_state = np.asarray(goal['image']), np.asarray(goal['state'], np.float32)
            goal_feat = self.goal_features({'image': goal_image, 'state': goal_state})
        frame = self._frame(obs)
        self.buffer.start_episode(goal_image, goal_state, goal_feat, frame)
        self._obs_feat, self._goal_feat = frame['feat'], np.asarray(goal_feat, np.float32)
        self.reset_exploration()
        self._episode_open = True

    def _batch_tensors(self, b: dict) -> dict:
        dev = self.device
        t = lambda x: torch.as_tensor(x, dtype=torch.float32, device=dev)  # noqa: E731
        return {'x': t(np.concatenate([b['obs'], b['goal']], 1)), 'x2': t(np.concatenate([b['next_obs'], b['goal']], 1)),
                'action': t(b['action']), 'reward': t(b['reward']), 'done': t(b['done'])}

    def train_step(self) -> dict:
        b = self.buffer.sample(self.cfg.rl.batch_size)
        out = self.learner.update(self._batch_tensors(b))
        self.counters['grad_steps'] += 1
        return out

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
                frame = self._frame(obs)
                self.buffer.add_step(action, bool(terminated), frame)
                self._obs_feat = frame['feat']
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
        blobs = {'policy.pt': {k: m.state_dict() for k, m in self.learner.modules().items()}}
        if hasattr(self.learner, 'extra_state'):
            blobs['policy.pt']['extra'] = self.learner.extra_state()
        if self.vae is not None:
            blobs['vae.pt'] = {'vae': self.vae.state_dict(), 'opt': self.vae_trainer.opt.state_dict()}
        return blobs

    def save(self, path) -> Path:
        manifest = {'spec': self.spec, 'config': to_dict(self.cfg), 'counters': dict(self.counters)}
        return ckpt.write_checkpoint(path, manifest, self.state_dicts())

    @classmethod
    def load(cls, path, env=None, expected: dict | None = None, device: str | None = None,
             eval_env=None) -> 'RIGAgent':
        """Rebuild an agent from a checkpoint directory (a runnable policy; with `env`, trainable
        further, with an empty replay buffer). Raises CheckpointMismatch / CheckpointError."""
        data = ckpt.load_checkpoint(path, expected)
        cfg_dict = dict(data['config'])
        if device is not None:
            cfg_dict['device'] = device
        cfg = from_dict(LearnConfig, cfg_dict, where=f'{path}/manifest.json:config')
        spec = data['spec']
        if env is not None:
            ckpt.check_expected(spec, {k: v for k, v in env_spec(env, cfg).items() if k in ckpt.CHECKED_KEYS},
                                f'{path} (vs env)')
        agent = cls(cfg, env, spec=spec, eval_env=eval_env)
        try:
            for k, m in agent.learner.modules().items():
                m.load_state_dict(data['policy'][k])
            if 'extra' in data['policy'] and hasattr(agent.learner, 'load_extra_state'):
                agent.learner.load_extra_state(data['policy']['extra'])
            if agent.vae is not None:
                vae_state = dict(data['vae']['vae'])
                for key in ('goal_prior_mean', 'goal_prior_std', 'goal_bank'):   # checkpoints from before these priors
                    vae_state.setdefault(key, getattr(agent.vae, key))
                agent.vae.goal_bank = torch.empty_like(vae_state['goal_bank'], device=agent.vae.goal_prior_mean.device)   # its row count varies
                agent.vae.load_state_dict(vae_state)
                agent.vae_trainer.opt.load_state_dict(data['vae']['opt'])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise ckpt.CheckpointError(f'checkpoint {path}: weights do not fit the recorded config ({exc})') from exc
        agent.counters.update(data['counters'])
        agent.counters['vae_pretrained'] = agent.vae is not None
        return agent


RIG = RIGAgent
