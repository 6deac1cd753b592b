"""The learner: replay with relabelling, one schedule counted in transitions, the TD3/SAC update and
the VAE fits, training an `InferenceModel` in place.

Two thin drivers feed it transitions and follow its schedule (`rig_learn.schedule`):
`RIGAgent.learn` (`rig train`: the simulation loop) and `rig_trainer.online.OnlineTrainer` (the bag
trainer of the node graph). Everything that decides *how* the model learns is here, once.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rig_base.config import to_dict

from . import checkpoint as ckpt
from .features import reward_fn
from .model import InferenceModel, config_of, resolve_device
from .replay import Batch, ReplayBuffer
from .rl import TensorBatch, TwinCritic, is_pair_state, make_learner, twin_policy_state
from .schedule import Schedule
from .vae import VAETrainer


class NonFiniteError(ArithmeticError):
    """A NaN or inf where training needs numbers: an env observation or the reward of a replay batch.
    The message names the step and the key (`rig train` prints it in one line)."""


class Learner:
    def __init__(self, model: InferenceModel):
        """Critics, optimisers and the VAE trainer for `model` (fresh weights from torch's global
        generator: construct it right after the model, in the same seeded or forked scope)."""
        cfg = model.cfg
        self.model, self.cfg = model, cfg
        self.rng, self.gen, self.device = model.rng, model.gen, model.device
        self.schedule = Schedule(cfg)
        f = model.featurizer
        self.rl = make_learner(cfg.rl.algo, model.actor, f.obs_dim + f.goal_dim, model.spec['action_dim'], cfg.rl,
                               self.device, self.gen)
        self.vae_trainer = VAETrainer(model.vae, cfg.vae.beta, cfg.vae.lr, self.gen) if model.vae is not None else None
        self.reward = reward_fn(cfg.reward if cfg.uses_vae else 'latent_distance', cfg.rl.reward_scale)
        self.buffer: ReplayBuffer | None = None
        self.counters = {'env_steps': 0, 'grad_steps': 0, 'episodes': 0, 'vae_refits': 0,
                         'vae_pretrained': False, 'refit_at_step': -1, 'vae_pretrain_env_steps': 0,
                         'train_seconds': 0.0}
        self.pretrain_images: np.ndarray | None = None
        self.last_metrics: dict = {}

    @classmethod
    def fresh(cls, cfg, spec: dict) -> 'Learner':
        """A new model and its learner, seeded by cfg.seed (torch's global generator is left as it was)."""
        device = resolve_device(cfg.device)
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        rng = np.random.default_rng(cfg.seed)
        gen = torch.Generator(device=device)
        gen.manual_seed(cfg.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            return cls(InferenceModel(cfg, spec, rng, gen))

    @classmethod
    def load(cls, path, expected: dict | None = None, device: str | None = None) -> 'Learner':
        """A learner resumed from a whole checkpoint (its replay buffer is not in it: make_buffer)."""
        data = ckpt.load_checkpoint(path, expected)
        if data['manifest'].get('inference_only'):
            raise ckpt.CheckpointError(f'checkpoint {path} is the inference part only (actor and VAE, as sent to '
                                       'actors on other hosts): training cannot resume from it')
        learner = cls.fresh(config_of(data, path, device), data['spec'])
        learner.load_weights(data, str(path))
        return learner

    # -- replay ----------------------------------------------------------------------------------------
    def make_buffer(self, env=None) -> ReplayBuffer:
        """An empty replay buffer (baselines with prior relabelling also draw their env goal bank)."""
        s, cfg, f = self.model.spec, self.cfg, self.model.featurizer
        img_shape = (cfg.image_size, cfg.image_size, 3)
        self.buffer = ReplayBuffer(cfg.rl.buffer_size, f, img_shape, s['state_dim'], s['goal_state_dim'],
                                   s['action_dim'], self.rng, cfg.relabel, self.reward)
        if not cfg.uses_vae and cfg.relabel.prior > 0 and f.goal_bank is None:
            if env is None:
                raise RuntimeError(f'mode {cfg.mode!r} relabels with env goals: make_buffer(env) needs the env')
            self.model.goals.env_goal_bank(env, cfg.relabel.env_goal_bank, self.model.goal_features)
        return self.buffer

    # -- VAE -------------------------------------------------------------------------------------------
    def pretrain_vae(self, images: np.ndarray, steps: int | None = None, finish: bool = True) -> dict:
        """Fit the VAE on `images`, then fit the goal distribution to them.

        finish=False runs only the Adam steps: pretraining in slices (the bag trainer) is calls with
        finish=False, then one with steps=0; it draws the same batches as one call."""
        v = self.cfg.vae
        self.pretrain_images = images
        steps = self.schedule.pretrain_steps if steps is None else steps
        m = {}
        for _ in range(steps):
            m = self.vae_trainer.train_step(images[self.rng.integers(0, len(images), v.batch_size)])
        if finish:
            for _ in self.finish_pretrain_in_steps():
                pass
        self._metrics(m)
        return m

    def finish_pretrain_in_steps(self, images: np.ndarray | None = None):
        """The end of pretraining on `images` (default: the last pretrain_vae call's), the goal
        distribution fitted to them, as a generator yielding between batches of its work
        (GoalSampler.refit_in_steps). The images are taken now, not when the generator first runs."""
        if images is not None:
            self.pretrain_images = images
        return self._finish_pretrain()

    def _finish_pretrain(self):
        yield from self.model.goals.refit_in_steps(self.model.encode, images=self.pretrain_images)
        self.counters['vae_pretrained'] = True
        self.last_metrics.update(self.model.goals.metrics)

    def refit_vae(self, steps: int | None = None, finish: bool = True) -> dict:
        """Online VAE refit on replay images, then the whole buffer re-encoded.

        finish=False runs only the Adam steps: a refit in slices (the bag trainer) is calls with
        finish=False, then the buffer re-encoded (ReplayBuffer.refresh, or its equivalent in
        batches), then finish_refit(); it draws the same batches as one call."""
        v = self.cfg.vae
        steps = self.schedule.refit_steps if steps is None else steps
        m = {}
        n_pre = int(round(v.batch_size * v.refit_mix_pretrain)) if self.pretrain_images is not None else 0
        for _ in range(steps):
            batch = self.buffer.sample_images(v.batch_size - n_pre)
            if n_pre:
                pre = self.pretrain_images[self.rng.integers(0, len(self.pretrain_images), n_pre)]
                batch = np.concatenate([batch, pre])
            m = self.vae_trainer.train_step(batch)
        if finish:
            self.buffer.refresh()
            self.finish_refit()
        self._metrics(m)
        return m

    def finish_refit(self) -> None:
        """The end of a refit, once the buffer is re-encoded: the goal distribution, the count."""
        for _ in self.finish_refit_in_steps():
            pass

    def finish_refit_in_steps(self):
        """finish_refit as a generator yielding between batches of its work (the bag trainer runs it
        in slices: GoalSampler.refit_in_steps)."""
        yield from self.model.goals.refit_in_steps(self.model.encode, buffer=self.buffer,
                                                   pretrain_images=self.pretrain_images)
        self.last_metrics.update(self.model.goals.metrics)
        self.counters['vae_refits'] += 1

    def _metrics(self, m: dict) -> None:
        self.last_metrics.update(m)
        self.last_metrics.update(self.model.goals.metrics)

    # -- policy ----------------------------------------------------------------------------------------
    def _batch_tensors(self, b: Batch) -> TensorBatch:
        t = lambda x: torch.as_tensor(x, dtype=torch.float32, device=self.device)
        return TensorBatch(x=t(np.concatenate([b.obs, b.goal], 1)), action=t(b.action), reward=t(b.reward),
                           x2=t(np.concatenate([b.next_obs, b.goal], 1)), done=t(b.done))

    def train_step(self) -> dict:
        """One TD3/SAC update on a relabelled batch from the replay buffer."""
        b = self.buffer.sample(self.cfg.rl.batch_size)
        if not np.all(np.isfinite(b.reward)):   # one NaN would spread through the critic to every Q value
            raise NonFiniteError(f"grad step {self.counters['grad_steps'] + 1} (after env step "
                                 f"{self.counters['env_steps']}): the relabelled 'reward' of the replay batch is "
                                 f"not finite (reward {self.cfg.reward if self.cfg.uses_vae else 'latent_distance'} "
                                 'of the cached features)')
        out = self.rl.update(self._batch_tensors(b))
        self.counters['grad_steps'] += 1
        return out

    # -- persistence -----------------------------------------------------------------------------------
    def state_dicts(self) -> dict:
        blobs = {'policy.pt': {k: m.state_dict() for k, m in self.rl.modules().items()}}
        if hasattr(self.rl, 'extra_state'):
            blobs['policy.pt']['extra'] = self.rl.extra_state()
        if self.model.vae is not None:
            blobs['vae.pt'] = {'vae': self.model.vae.state_dict(), 'opt': self.vae_trainer.opt.state_dict()}
        return blobs

    def manifest(self) -> dict:
        return {'spec': self.model.spec, 'config': to_dict(self.cfg), 'counters': dict(self.counters)}

    def save(self, path, manifest: dict | None = None) -> Path:
        """A whole checkpoint (the inference part, critics, optimisers, counters), written atomically."""
        return ckpt.write_checkpoint(path, {**self.manifest(), **(manifest or {})}, self.state_dicts())

    def load_weights(self, data: dict, where: str) -> None:
        """Everything from a loaded checkpoint: the model's weights, critics, optimisers, counters."""
        self.model.load_weights(data, where)
        policy = data['policy']
        try:
            if isinstance(self.rl.critic, TwinCritic) and is_pair_state(policy['critic']):
                policy = twin_policy_state(policy)    # written before rl.fused_critic (its default now)
            for k, m in self.rl.modules().items():
                m.load_state_dict(policy[k])
            if 'extra' in policy and hasattr(self.rl, 'load_extra_state'):
                self.rl.load_extra_state(policy['extra'])
            if self.vae_trainer is not None:
                self.vae_trainer.opt.load_state_dict(data['vae']['opt'])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise ckpt.CheckpointError(f'checkpoint {where}: weights do not fit the recorded config ({exc})') from exc
        self.counters.update(data['counters'])
        self.counters['vae_pretrained'] = self.model.vae is not None
