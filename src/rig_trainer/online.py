"""Online RIG training from recorded episode bags (no ROS: the trainer node is a thin thread around it).

The bags on disk are the data; the checkpoint says which of them the model has seen. A checkpoint's
manifest carries a ledger (`trainer` key): the bags ingested so far and the counters. On (re)start
the trainer loads its newest checkpoint, re-reads exactly the bags in its ledger into the replay
buffer (they were counted before: not counted again), then ingests every other closed bag as new.
A kill -9 at any moment therefore loses nothing and counts nothing twice: bags ingested after the
last checkpoint are simply not in its ledger and are ingested again, once.
"""
from __future__ import annotations

import dataclasses
import logging
import re
import time
from pathlib import Path

import numpy as np

from rig.config import from_dict, load_yaml, to_dict
from rig_learn import checkpoint as ckpt
from rig_learn.agent import RIGAgent
from rig_learn.config import LearnConfig
from rig_trainer.bags import BagError, Episode, list_closed_bags, read_episodes

log = logging.getLogger('rig.trainer')

CHECKPOINT_PREFIX = 'ckpt_'
_CKPT_RE = re.compile(r'^ckpt_(\d{8})$')


@dataclasses.dataclass
class TrainerConfig:
    """How the online trainer consumes bags and when it publishes checkpoints."""
    data_dir: str = 'data'
    checkpoint_dir: str = ''            # '' -> <data_dir>/checkpoints
    task: str = 'reach'
    arm: str = 'sawyer'
    learn_config: str = ''              # learner YAML; '' -> config/learn_<task>.yaml (if present)
    action_scale: float = 0.02          # metres per step at action 1.0 (the sim's action_scale)
    control_rate_hz: float = 20.0       # the graph's control rate: velocity (m/s) = action * scale * rate
    action_dim: int = 2                 # 2: x-y hand motion (reach, push); 3: x-y-z (door)
    updates_per_transition: float = 4.0
    pretrain_min_images: int = 500      # first VAE fit once this many frames are on disk
    pretrain_steps: int = 1000
    refit_every_transitions: int = 2000  # online VAE refit (then the buffer is re-encoded)
    checkpoint_every_updates: int = 1000
    keep_checkpoints: int = 3
    seed: int = 0
    device: str = 'cpu'
    num_threads: int = 1                # torch threads: leave a core to the graph

    def resolved_checkpoint_dir(self) -> Path:
        return Path(self.checkpoint_dir) if self.checkpoint_dir else Path(self.data_dir) / 'checkpoints'


def load_learn_config(cfg: TrainerConfig) -> LearnConfig:
    path = cfg.learn_config
    if not path:
        from rig.graph import config_dir
        candidate = config_dir() / f'learn_{cfg.task}.yaml'
        path = str(candidate) if candidate.exists() else None
    learn = load_yaml(LearnConfig, path) if path else LearnConfig()
    learn.task, learn.arm, learn.seed, learn.device = cfg.task, cfg.arm, cfg.seed, cfg.device
    learn.num_threads = cfg.num_threads
    return learn


def agent_spec(cfg: TrainerConfig, learn: LearnConfig) -> dict:
    """The checkpoint spec, from configuration alone (the trainer has no environment)."""
    return {'task': cfg.task, 'arm': cfg.arm, 'mode': learn.mode, 'algo': learn.rl.algo,
            'image_size': int(learn.image_size), 'latent_dim': int(learn.vae.latent_dim),
            'action_dim': int(cfg.action_dim), 'action_low': [-1.0] * cfg.action_dim,
            'action_high': [1.0] * cfg.action_dim, 'state_dim': 3, 'goal_state_dim': 3,
            'action_scale': float(cfg.action_scale), 'control_rate_hz': float(cfg.control_rate_hz)}


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    found = sorted(p for p in Path(checkpoint_dir).glob(f'{CHECKPOINT_PREFIX}*') if _CKPT_RE.match(p.name))
    return found[-1] if found else None


class OnlineTrainer:
    """Ingest closed bags, train VAE + policy on them, write checkpoints with a ledger."""

    def __init__(self, cfg: TrainerConfig, learn: LearnConfig | None = None):
        if cfg.learn_config and learn is None and not Path(cfg.learn_config).exists():
            raise FileNotFoundError(f'learner config {cfg.learn_config} not found')
        self.cfg = cfg
        self.learn = learn or load_learn_config(cfg)
        if self.learn.mode != 'rig':
            raise ValueError('the online trainer trains RIG (mode rig) from images')
        self.ckpt_dir = cfg.resolved_checkpoint_dir()
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        self.ingested: list[str] = []          # bag names whose episodes are in the buffer
        self.bad_bags: dict[str, str] = {}     # bag name -> why it was skipped (not retried)
        self.counters = {'transitions': 0, 'episodes': 0, 'updates': 0, 'checkpoints': 0,
                         'vae_fits': 0, 'frames': 0}
        self._updates_owed = 0.0
        self._since_refit = 0
        self._since_ckpt = 0
        self._ledger_changed = False   # bags ingested or skipped since the last checkpoint
        self.spec = agent_spec(cfg, self.learn)
        self.agent = RIGAgent(self.learn, spec=self.spec)
        self.agent._make_buffer()
        self.latest: Path | None = None
        resume = latest_checkpoint(self.ckpt_dir)
        if resume is not None:
            self._resume(resume)

    # -- resume -------------------------------------------------------------------------------------
    def _resume(self, path: Path) -> None:
        manifest = ckpt.read_manifest(path)
        ledger = manifest.get('trainer')
        if ledger is None:
            raise ckpt.CheckpointError(f'{path}: not a trainer checkpoint (no ledger)')
        expected = {k: self.spec[k] for k in ckpt.CHECKED_KEYS}
        agent = RIGAgent.load(path, expected=expected, device=self.cfg.device)
        agent.spec.update({k: self.spec[k] for k in ('action_scale', 'control_rate_hz')})
        agent._make_buffer()
        self.agent = agent
        self.counters.update(ledger['counters'])
        self.bad_bags = dict(ledger.get('bad_bags', {}))
        self.latest = path
        missing = []
        for name in ledger['ingested']:
            bag = Path(self.cfg.data_dir) / name
            try:
                episodes = read_episodes(bag)
            except (BagError, FileNotFoundError) as exc:
                missing.append(name)
                log.error('resume: bag %s from the ledger cannot be read (%s); its data is gone', name, exc)
                continue
            for ep in episodes:
                self._add_episode(ep)
            self.ingested.append(name)
        log.info('resumed from %s: %d bags re-read (not recounted), counters %s%s', path.name,
                 len(self.ingested), self.counters, f', {len(missing)} missing' if missing else '')

    # -- ingestion ----------------------------------------------------------------------------------
    def pending_bags(self) -> list[Path]:
        seen = set(self.ingested) | set(self.bad_bags)
        return [b for b in list_closed_bags(self.cfg.data_dir) if b.name not in seen]

    def ingest(self, max_bags: int | None = None) -> int:
        """Read new closed bags into the replay buffer; returns the number of new transitions."""
        added = 0
        for bag in self.pending_bags()[:max_bags]:
            try:
                episodes = read_episodes(bag)
            except BagError as exc:
                self.bad_bags[bag.name] = str(exc)
                self._ledger_changed = True
                log.error('skipping bag %s: %s', bag.name, exc)
                continue
            n = sum(self._add_episode(ep) for ep in episodes)
            self.ingested.append(bag.name)
            self._ledger_changed = True
            self.counters['episodes'] += len(episodes)
            self.counters['transitions'] += n
            added += n
            log.info('ingested %s: %d episode(s), %d transitions', bag.name, len(episodes), n)
        self._updates_owed += added * self.cfg.updates_per_transition
        self._since_refit += added
        return added

    def _velocity_to_action(self, v: np.ndarray) -> np.ndarray:
        a = v[:, :self.cfg.action_dim] / (self.cfg.action_scale * self.cfg.control_rate_hz)
        return np.clip(a, -1.0, 1.0).astype(np.float32)

    def _goal_latent(self, ep: Episode) -> np.ndarray:
        """The episode's own goal: the latent its start event announced, if it fits; else a prior draw."""
        dim = self.learn.vae.latent_dim
        for event in ep.events:
            z = event.get('goal_latent')
            if event.get('event') == 'start' and isinstance(z, list) and len(z) == dim:
                z = np.asarray(z, np.float32)
                if np.all(np.isfinite(z)):
                    return z
        return self.agent.featurizer.sample_prior(self.agent.rng, 1)[0].astype(np.float32)

    def _add_episode(self, ep: Episode) -> int:
        """Append an episode's frames/commands as consecutive runs of transitions."""
        size = self.learn.image_size
        if ep.images.shape[1:3] != (size, size):
            import cv2
            ep.images = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in ep.images])
        actions = self._velocity_to_action(ep.velocities)
        means, logvars = self.agent.encode(ep.images)
        nan_state = np.full(3, np.nan, np.float32)
        goal = self._goal_latent(ep)
        buf = self.agent.buffer

        def frame(i):
            return {'image': ep.images[i], 'state': nan_state, 'achieved': nan_state,
                    'feat': means[i], 'logvar': logvars[i]}
        n = 0
        prev_next = None
        for k in range(ep.num_transitions):
            i, j = int(ep.obs_index[k]), int(ep.next_obs_index[k])
            if i != prev_next:  # a gap in the frames: the run starts again (same goal)
                buf.start_episode(None, nan_state, goal, frame(i))
            buf.add_step(actions[k], False, frame(j))
            prev_next = j
            n += 1
        self.counters['frames'] += len(ep.images)
        return n

    # -- training -----------------------------------------------------------------------------------
    @property
    def vae_ready(self) -> bool:
        return self.counters['vae_fits'] > 0

    def train(self, budget_s: float = 0.5) -> int:
        """Run owed VAE fits and gradient updates for at most ~budget_s; returns updates done."""
        buf = self.agent.buffer
        if buf.n_transitions == 0:
            return 0
        if not self.vae_ready:
            if self.counters['frames'] < self.cfg.pretrain_min_images:
                return 0
            images = buf.sample_images(min(buf.total_frames, 10000))
            t0 = time.perf_counter()
            self.agent.pretrain_vae(images, steps=self.cfg.pretrain_steps)
            buf.refresh()
            self.counters['vae_fits'] += 1
            self._since_refit = 0
            log.info('VAE pretrained on %d frames in %.1f s', len(images), time.perf_counter() - t0)
            return 0
        if self._since_refit >= self.cfg.refit_every_transitions:
            self.agent.refit_vae()
            self.counters['vae_fits'] += 1
            self._since_refit = 0
        done = 0
        deadline = time.perf_counter() + budget_s
        while self._updates_owed >= 1.0 and time.perf_counter() < deadline:
            self.agent.train_step()
            self._updates_owed -= 1.0
            done += 1
        self.counters['updates'] += done
        self._since_ckpt += done
        return done

    @property
    def waiting_for_frames(self) -> bool:
        """No VAE yet and too few frames on disk to fit one: there is nothing to train on."""
        return not self.vae_ready and self.counters['frames'] < self.cfg.pretrain_min_images

    @property
    def caught_up(self) -> bool:
        """Every closed bag ingested, every owed update done (or none possible yet), checkpoint written."""
        return (not self.pending_bags() and (self._updates_owed < 1.0 or self.waiting_for_frames)
                and not self.checkpoint_due)

    @property
    def checkpoint_due(self) -> bool:
        if self.latest is None:
            return True      # publish an initial checkpoint at once, so the actors can start
        idle = self._updates_owed < 1.0 and (self.vae_ready or self.waiting_for_frames)
        return self._since_ckpt >= self.cfg.checkpoint_every_updates or (
            idle and (self._since_ckpt > 0 or self._ledger_changed))

    def save_checkpoint(self) -> Path:
        """Atomically write ckpt_<n> with the ledger; prune old ones; return its path."""
        n = self.counters['checkpoints'] + 1
        path = self.ckpt_dir / f'{CHECKPOINT_PREFIX}{n:08d}'
        counters = dict(self.counters, checkpoints=n)
        manifest = {'spec': self.agent.spec, 'config': to_dict(self.learn),
                    'counters': dict(self.agent.counters),
                    'trainer': {'ingested': list(self.ingested), 'bad_bags': dict(self.bad_bags),
                                'counters': counters, 'trainer_config': dataclasses.asdict(self.cfg)}}
        ckpt.write_checkpoint(path, manifest, self.agent.state_dicts())
        self.counters = counters
        self._since_ckpt = 0
        self._ledger_changed = False
        self.latest = path
        for old in sorted(p for p in self.ckpt_dir.glob(f'{CHECKPOINT_PREFIX}*') if _CKPT_RE.match(p.name))[
                :-self.cfg.keep_checkpoints]:
            import shutil
            shutil.rmtree(old, ignore_errors=True)
        return path


def trainer_config_from(**values) -> TrainerConfig:
    return from_dict(TrainerConfig, values)
