"""Online RIG training from recorded episode bags (no ROS: the trainer node is a thin thread around it).

The bags on disk are the data; the checkpoint says which of them the model has seen. A checkpoint's
manifest carries a ledger (`trainer` key): the bags ingested so far (with their transition counts),
bags skipped and why, frames dropped by reason, the counters, the gradient updates still owed to the
data, and how far a VAE fit in progress has come. On (re)start the trainer loads its newest
checkpoint and re-reads, from the bags in its ledger, the newest ones that fill the replay buffer
(older ones would be overwritten in it anyway; they were counted before: nothing is counted again),
then ingests every other closed bag as new. A kill -9 at any moment therefore loses nothing and
counts nothing twice: bags ingested after the last checkpoint are simply not in its ledger and are
ingested again, once.

Scales travel with the data: a recorded command is turned back into the action the policy took with
the action scale and control rate its episode's start event records (velocity = action * action_scale *
control_rate_hz), not with this trainer's guess. The trainer trains for one (scale, rate), written into
every checkpoint's spec: its own `action_scale`/`control_rate_hz` when given, else (0, the default)
those of the first episode that records them. An episode recorded at another one is refused (the
ledger's `refused_episodes`: never ingested, never retried); an episode that records none is taken at
the trainer's, with one warning (docs/interfaces.md, "Scales").

Everything runs in short slices so that a caller (the trainer node's thread) can stop within about a
VAE step: `ingest` checks `stop` between bags, `train` stops at its budget or at `stop`, and a VAE
fit (the first pretraining, later refits) proceeds across `train` calls: Adam steps, then the buffer
re-encoded a batch at a time. A checkpoint written mid-fit records the steps done; a trainer resumed
from it continues the fit from there.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import re
import shutil
import threading
import time
from pathlib import Path

import numpy as np

from rig_base.config import from_dict, load_yaml
from rig_base.resources import learner_config, learner_tasks
from rig_learn import checkpoint as ckpt
from rig_learn.config import LearnConfig, parse_overrides, with_overrides
from rig_learn.learner import Learner
from rig_learn.model import SCALE_KEYS, check_scales, model_spec, same_scale
from rig_learn.replay import Frame
from rig_trainer.bags import BagError, Episode, list_closed_bags, read_episodes

log = logging.getLogger('rig.trainer')

CHECKPOINT_PREFIX = 'ckpt_'
_CKPT_RE = re.compile(r'^ckpt_(\d{8})$')
REENCODE_BATCH = 1024       # frames re-encoded per slice after a VAE fit (tens of ms on one core)
LOG_THROTTLE_S = 10.0       # a repeated complaint (refused episodes, bags waiting for a scale) at most this often


@dataclasses.dataclass
class TrainerConfig:
    """Where the online trainer finds bags and puts checkpoints, and how it turns recorded commands
    back into actions. When it fits the VAE and how many updates it owes the data is the learner's
    schedule (rig_learn.schedule), read from the learner YAML, the same one `rig train` follows."""
    data_dir: str = 'data'
    checkpoint_dir: str = ''            # '' -> <data_dir>/checkpoints
    task: str = 'reach'
    arm: str = 'sawyer'
    learn_config: str = ''              # learner YAML; '' -> config/learn_<task>.yaml (if present)
    learn_set: tuple[str, ...] = ()     # KEY=VALUE overrides of the learner YAML, as `rig train --set`
    # velocity (m/s) = action * action_scale * control_rate_hz. 0 (both): the values the episodes record
    # (the first that records them sets them for the run); given: episodes must record these or none.
    action_scale: float = 0.0           # metres per step at action 1.0
    control_rate_hz: float = 0.0        # the actors' control rate
    action_dim: int = 2                 # 2: x-y hand motion (reach, push); 3: x-y-z (door)
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
        candidate = learner_config(cfg.task)
        if candidate is None:
            raise ValueError(f'task {cfg.task!r}: no learner config learn_{cfg.task}.yaml '
                             f'(tasks: {learner_tasks()}); give learn_config for another task')
        path = str(candidate)
    learn = with_overrides(load_yaml(LearnConfig, path), parse_overrides(cfg.learn_set))
    learn.task, learn.arm, learn.seed, learn.device = cfg.task, cfg.arm, cfg.seed, cfg.device
    learn.num_threads = cfg.num_threads
    return learn


def check_scale_config(cfg: TrainerConfig) -> None:
    """action_scale and control_rate_hz: both 0 (from the data) or both > 0."""
    scale, rate = cfg.action_scale, cfg.control_rate_hz
    if scale < 0 or rate < 0 or (scale == 0) != (rate == 0):
        raise ValueError(f'action_scale and control_rate_hz must both be > 0, or both 0 (take them from the '
                         f'episodes), got action_scale={scale} control_rate_hz={rate}')


def configured_scales(cfg: TrainerConfig) -> tuple[float, float] | None:
    return (float(cfg.action_scale), float(cfg.control_rate_hz)) if cfg.action_scale > 0 else None


def agent_spec(cfg: TrainerConfig, learn: LearnConfig) -> dict:
    """The checkpoint spec, from configuration alone (the trainer has no environment; states are the
    3-D hand or puck positions the graph does not record). action_scale/control_rate_hz are None while
    the trainer has them neither from its configuration nor from an episode."""
    scales = configured_scales(cfg) or (None, None)
    return model_spec(learn, cfg.action_dim, 3, 3, task=cfg.task, arm=cfg.arm, action_scale=scales[0],
                      control_rate_hz=scales[1])


def _fmt_scales(scale, rate) -> str:
    return f'action_scale {scale:g} m x control_rate_hz {rate:g} Hz'


@dataclasses.dataclass
class _BagRead:
    """One bag's episodes as the buffer will take them, computed before anything is written."""
    prepared: list                                      # (Episode, encoded) of the episodes ingested
    refused: dict = dataclasses.field(default_factory=dict)   # episode key -> why it is refused
    adopted: tuple | None = None                        # (scale, rate, episode key) the bag sets for the run
    unrecorded: list = dataclasses.field(default_factory=list)  # keys taken at the trainer's scales
    waiting: bool = False                               # no scale known yet for episodes that record none


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    found = sorted(p for p in Path(checkpoint_dir).glob(f'{CHECKPOINT_PREFIX}*') if _CKPT_RE.match(p.name))
    return found[-1] if found else None


class OnlineTrainer:
    """Ingest closed bags, train VAE + policy on them, write checkpoints with a ledger."""

    def __init__(self, cfg: TrainerConfig, learn: LearnConfig | None = None,
                 stop: threading.Event | None = None):
        if cfg.learn_config and learn is None and not Path(cfg.learn_config).exists():
            raise FileNotFoundError(f'learner config {cfg.learn_config} not found')
        check_scale_config(cfg)
        self.cfg = cfg
        self.learn = learn or load_learn_config(cfg)
        if self.learn.mode != 'rig':
            raise ValueError('the online trainer trains RIG (mode rig) from images')
        self.ckpt_dir = cfg.resolved_checkpoint_dir()
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        self.stop = stop or threading.Event()  # set: ingest and train return at the next bag / step
        self.ingested: list[str] = []          # bag names ingested (counted), in ingestion order
        self.bag_transitions: dict[str, int] = {}  # bag name -> transitions it gave (to resume)
        self.bad_bags: dict[str, str] = {}     # bag name -> why it was skipped (not retried)
        self.refused_episodes: dict[str, str] = {}  # episode key -> why (another scale); its bag is ingested
        self.waiting_for_scales: set[str] = set()   # bags that need a scale no episode has given yet
        self._warned_unrecorded = False
        self._throttle: dict[str, tuple[float, int]] = {}   # complaint -> (last logged, not logged since)
        self.dropped_frames: collections.Counter = collections.Counter()  # reason -> frames dropped
        self.counters = {'transitions': 0, 'episodes': 0, 'updates': 0, 'checkpoints': 0,
                         'vae_fits': 0, 'frames': 0}
        # A VAE fit in progress: {'kind': 'pretrain' | 'refit', 'steps': n, 'done': k} (in the ledger).
        self.vae_job: dict | None = None
        self._pretrain_images: np.ndarray | None = None
        self._reencoded = 0           # frames of the buffer re-encoded since the fit's steps ended
        self._finishing = None        # the fit's last part in progress: the goal distribution (a generator)
        self._updates_owed = 0.0
        self._refit_pending = False    # the schedule made a refit due; it starts at the next train()
        # The learner's clock (rig_learn.schedule) counts the transitions ingested after the VAE
        # pretraining, as `rig train` counts its env steps after collecting the pretraining images:
        # the transitions count when pretraining ended (None before). Those recorded before it stay in
        # the replay buffer but earn no updates, as rig train's pretraining images earn none.
        self.schedule_start: int | None = None
        self._since_ckpt = 0
        self._ledger_changed = False   # bags ingested or skipped, VAE steps done since the last checkpoint
        self.spec = agent_spec(cfg, self.learn)
        self.learner = Learner.fresh(self.learn, self.spec)
        self.schedule = self.learner.schedule
        self.learner.make_buffer()
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
        learner = Learner.load(path, expected=expected, device=self.cfg.device)
        # The checkpoint's scales are those of the data in it: a trainer given others refuses to go on
        # with it; one left to the data (0) takes them; one whose checkpoint has none yet keeps its own.
        mine = configured_scales(self.cfg)
        if mine is not None:
            try:
                check_scales(learner.model.spec, dict(zip(SCALE_KEYS, mine)), str(path), who='this trainer')
            except ckpt.CheckpointMismatch as exc:
                raise ckpt.CheckpointMismatch(
                    f'{exc}. Its model learned from data of that scale: start the trainer without '
                    'action_scale/control_rate_hz (0: the data says), or give it another checkpoint_dir') from exc
        theirs = tuple(learner.model.spec.get(k) for k in SCALE_KEYS)
        scales = theirs if None not in theirs else mine
        for k, v in zip(SCALE_KEYS, scales or (None, None)):
            self.spec[k] = learner.model.spec[k] = None if v is None else float(v)
        learner.make_buffer()
        self.learner = learner
        self.schedule = learner.schedule
        self.counters.update(ledger['counters'])
        self.bad_bags = dict(ledger.get('bad_bags', {}))
        self.refused_episodes = dict(ledger.get('refused_episodes', {}))
        self.dropped_frames = collections.Counter(ledger.get('dropped_frames', {}))
        self.bag_transitions = dict(ledger.get('bag_transitions', {}))
        self.vae_job = ledger.get('vae_job')
        self._updates_owed = float(ledger.get('updates_owed', 0.0))
        self._refit_pending = bool(ledger.get('refit_pending', False))
        self.schedule_start = ledger.get('schedule_start', 0 if self.counters['vae_fits'] else None)
        self.ingested = list(ledger['ingested'])   # all of them, re-read or not: none is ingested twice
        self.latest = path
        # Newest first, until the buffer is full: it keeps only its newest `capacity` frames, and a bag
        # gives at least as many frames as transitions. (A bag without a recorded count is read.)
        capacity = self.learner.buffer.capacity
        chosen, covered, missing = [], 0, []
        for name in reversed(self.ingested):
            if covered >= capacity:
                break
            if self.bag_transitions.get(name, 1) == 0:
                continue          # it gave nothing to the buffer (every episode refused, or too short)
            if not (Path(self.cfg.data_dir) / name).is_dir():
                missing.append(name)
                log.error('resume: bag %s from the ledger is gone; its data is lost', name)
                continue
            chosen.append(name)
            covered += self.bag_transitions.get(name, 0)
        reread = 0
        for name in reversed(chosen):           # into the buffer in the order they first went in
            try:
                read = self._read_bag(Path(self.cfg.data_dir) / name, resume=True)
                if read.waiting:
                    raise BagError('it records no action scale and the checkpoint has none')
            except Exception as exc:  # noqa: BLE001 - one bag's trouble must not stop the resume
                missing.append(name)
                log.error('resume: bag %s from the ledger cannot be read (%s); its data is lost', name, exc)
                continue
            for ep, enc in read.prepared:
                self._add_episode(ep, enc)
            reread += 1
        log.info('resumed from %s: %d of %d ledger bags re-read (not recounted), counters %s%s%s', path.name,
                 reread, len(self.ingested), self.counters,
                 f', {len(missing)} missing' if missing else '',
                 f", VAE {self.vae_job['kind']} at step {self.vae_job['done']}/{self.vae_job['steps']}"
                 if self.vae_job else '')

    # -- scales -------------------------------------------------------------------------------------
    @property
    def scales(self) -> tuple[float, float] | None:
        """(action_scale, control_rate_hz) the trainer trains for (its checkpoints' spec); None: not known yet."""
        values = tuple(self.spec.get(k) for k in SCALE_KEYS)
        return None if None in values else values

    def _adopt(self, scale: float, rate: float, source: str) -> None:
        for k, v in zip(SCALE_KEYS, (scale, rate)):
            self.spec[k] = self.learner.model.spec[k] = float(v)
        self.waiting_for_scales.clear()        # they can be read now
        self._ledger_changed = True
        log.info('training for %s, as episode %s records (checkpoints say so from now on)',
                 _fmt_scales(scale, rate), source)

    def _refusal(self, ep: Episode, scales: tuple | None) -> str | None:
        """Why an episode cannot be trained on with the others (made at another scale or size), or None."""
        if ep.action_dim is not None and ep.action_dim != self.cfg.action_dim:
            return f'recorded with action_dim {ep.action_dim}, the trainer trains action_dim {self.cfg.action_dim}'
        if ep.action_scale is None or scales is None:
            return None
        if same_scale(ep.action_scale, scales[0]) and same_scale(ep.control_rate_hz, scales[1]):
            return None
        return (f'recorded with {_fmt_scales(ep.action_scale, ep.control_rate_hz)}, the trainer trains for '
                f'{_fmt_scales(*scales)}')

    def _throttled(self, level: int, kind: str, text: str) -> None:
        """Log `text` unless `kind` was logged within LOG_THROTTLE_S; then say how many were not."""
        now = time.monotonic()
        last, quiet = self._throttle.get(kind, (-float('inf'), 0))
        if now - last < LOG_THROTTLE_S:
            self._throttle[kind] = (last, quiet + 1)
            return
        log.log(level, text + (f' ({quiet} more like it in the last {now - last:.0f} s)' if quiet else ''))
        self._throttle[kind] = (now, 0)

    # -- ingestion ----------------------------------------------------------------------------------
    def pending_bags(self) -> list[Path]:
        """Closed bags not yet ingested nor skipped (those waiting for a scale included)."""
        seen = set(self.ingested) | set(self.bad_bags)
        return [b for b in list_closed_bags(self.cfg.data_dir) if b.name not in seen]

    def ingest(self, max_bags: int | None = None) -> int:
        """Read new closed bags into the replay buffer; returns the number of new transitions.

        A bag that fails in any way is skipped with its reason (bad_bags); the others go on. An episode
        recorded at another action scale or control rate is refused (refused_episodes) and the rest of
        its bag ingested. A bag that needs a scale nobody has given yet waits (not in the ledger) until
        an episode records one."""
        added = 0
        for bag in self.pending_bags()[:max_bags]:
            if self.stop.is_set():
                break
            if bag.name in self.waiting_for_scales:
                continue             # read again once an episode has given the scales
            try:
                read = self._read_bag(bag)
            except Exception as exc:  # noqa: BLE001 - one bad bag never stops ingestion
                reason = str(exc) if isinstance(exc, BagError) else f'{type(exc).__name__}: {exc}'
                self.bad_bags[bag.name] = reason
                self._ledger_changed = True
                log.error('skipping bag %s: %s', bag.name, reason)
                continue
            if read.waiting:
                self.waiting_for_scales.add(bag.name)
                self._throttled(logging.ERROR, 'waiting', (
                    f'bag {bag.name} waits: its episodes record no action scale or control rate and the trainer '
                    'has none (action_scale and control_rate_hz 0: taken from the first episode that records '
                    'them); give the trainer action_scale and control_rate_hz (the policy\'s) to train on it '
                    f'now ({len(self.waiting_for_scales)} bag(s) waiting)'))
                continue
            if read.adopted is not None:
                self._adopt(*read.adopted)
            if read.unrecorded and not self._warned_unrecorded:
                self._warned_unrecorded = True
                log.warning('episode %s (and maybe others) records no action scale or control rate (recorded '
                            'before rig recorded them, or without a rig policy): its commands are taken as made '
                            'at %s, the values this trainer trains for (said once)', read.unrecorded[0],
                            _fmt_scales(*self.scales))
            for key, why in read.refused.items():
                self.refused_episodes[key] = why
                self._throttled(logging.ERROR, 'refused', (
                    f'refusing episode {key}: {why}; not ingested ({len(self.refused_episodes)} refused so far). '
                    'A trainer trains for one scale: the policy\'s action_scale and control_rate_hz must be the '
                    'same for all the data (docs/interfaces.md, "Scales")'))
            prepared = read.prepared
            n = sum(self._add_episode(ep, enc) for ep, enc in prepared)
            episodes = [ep for ep, _ in prepared if ep.num_transitions]
            dropped = sum((collections.Counter(ep.dropped_frames) for ep, _ in prepared), collections.Counter())
            self.ingested.append(bag.name)
            self.bag_transitions[bag.name] = n
            self._ledger_changed = True
            self.counters['episodes'] += len(episodes)
            self.counters['transitions'] += n
            self.counters['frames'] += sum(len(ep.images) for ep in episodes)
            self.dropped_frames.update(dropped)
            if self.schedule_start is not None:   # the learner's clock runs: updates and refits come due
                before = self.counters['transitions'] - n - self.schedule_start
                self._updates_owed += self.schedule.updates_earned(before, before + n)
                self._refit_pending |= self.schedule.refit_due(before, before + n)
            added += n
            if dropped:
                log.warning('ingested %s: %d episode(s), %d transitions; dropped frames: %s', bag.name,
                            len(episodes), n, ', '.join(f'{k} {v}' for k, v in sorted(dropped.items())))
            else:
                log.info('ingested %s: %d episode(s), %d transitions', bag.name, len(episodes), n)
        return added

    def _read_bag(self, bag: Path, resume: bool = False) -> _BagRead:
        """The bag's episodes, each with what the buffer needs of it, all computed before anything is
        written (the scales it would set for the run included): a bag that fails leaves the buffer and
        the trainer as they were. Each episode's commands become actions at the scales it records, or,
        if it records none, at the trainer's; an episode recorded at others is refused whole. On a
        resume, the episodes the ledger refused are left out again."""
        episodes = read_episodes(bag, image_size=self.learn.image_size)
        out = _BagRead(prepared=[])
        scales = self.scales
        if scales is None:
            first = next((ep for ep in episodes if ep.action_scale is not None
                          and self._refusal(ep, None) is None), None)
            if first is not None:
                scales = (first.action_scale, first.control_rate_hz)
                out.adopted = (*scales, first.key)
        kept = []
        for ep in episodes:
            if resume and ep.key in self.refused_episodes:
                continue
            why = self._refusal(ep, scales)
            if why is not None:
                out.refused[ep.key] = why
                continue
            if ep.action_scale is None and ep.num_transitions:
                if scales is None:
                    return _BagRead(prepared=[], waiting=True)
                out.unrecorded.append(ep.key)
            kept.append(ep)
        for ep in kept:
            own = scales if ep.action_scale is None else (ep.action_scale, ep.control_rate_hz)
            out.prepared.append((ep, self._encode_episode(ep, own)))
        return out

    def _velocity_to_action(self, v: np.ndarray, scales: tuple[float, float]) -> np.ndarray:
        """Recorded velocities (m/s) -> the actions that made them, at the episode's (scale, rate)."""
        scale, rate = scales
        a = v[:, :self.cfg.action_dim] / (scale * rate)
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
        return self.learner.model.goals.sample(1)[0].astype(np.float32)

    def _encode_episode(self, ep: Episode, scales: tuple[float, float] | None) -> tuple:
        """(actions, latent means, log-variances, goal latent) of an episode with transitions."""
        if not ep.num_transitions:
            return ()
        means, logvars = self.learner.model.encode(ep.images)
        return self._velocity_to_action(ep.velocities, scales), means, logvars, self._goal_latent(ep)

    def _add_episode(self, ep: Episode, encoded: tuple) -> int:
        """Append an episode's frames/commands as consecutive runs of transitions."""
        if not ep.num_transitions:
            return 0
        actions, means, logvars, goal = encoded
        nan_state = np.full(3, np.nan, np.float32)
        buf = self.learner.buffer

        def frame(i):
            return Frame(ep.images[i], nan_state, nan_state, means[i], logvars[i])
        n = 0
        prev_next = None
        for k in range(ep.num_transitions):
            i, j = int(ep.obs_index[k]), int(ep.next_obs_index[k])
            if i != prev_next:  # a gap in the frames: the run starts again (same goal)
                buf.start_episode(None, nan_state, goal, frame(i))
            buf.add_step(actions[k], False, frame(j))
            prev_next = j
            n += 1
        return n

    # -- training -----------------------------------------------------------------------------------
    @property
    def vae_ready(self) -> bool:
        return self.counters['vae_fits'] > 0

    def train(self, budget_s: float = 0.5) -> int:
        """Run owed VAE fits and gradient updates for at most ~budget_s, or until `stop` is set;
        returns the gradient updates done. A VAE fit is carried on across calls; while it runs the
        policy is not updated (its latents are about to change)."""
        buf = self.learner.buffer
        if buf.n_transitions == 0:
            return 0
        deadline = time.perf_counter() + budget_s
        if self.vae_job is None:
            if not self.vae_ready and self.counters['frames'] >= self.schedule.pretrain_images:
                self.vae_job = {'kind': 'pretrain', 'steps': self.schedule.pretrain_steps, 'done': 0}
            elif self.vae_ready and self._refit_pending:
                self.vae_job = {'kind': 'refit', 'steps': self.schedule.refit_steps, 'done': 0}
                self._refit_pending = False
        if self.vae_job is not None and not self._continue_vae_job(deadline):
            return 0
        if not self.vae_ready:
            return 0
        done = 0
        while self._updates_owed >= 1.0 and time.perf_counter() < deadline and not self.stop.is_set():
            self.learner.train_step()
            self._updates_owed -= 1.0
            done += 1
        self.counters['updates'] += done
        self._since_ckpt += done
        return done

    @property
    def fitting_vae(self) -> bool:
        """A VAE fit is in progress that the next train() call advances (it returns 0 updates while
        it does: that is no reason to idle)."""
        return self.vae_job is not None and self.learner.buffer.n_transitions > 0

    def _out_of_time(self, deadline: float) -> bool:
        return self.stop.is_set() or time.perf_counter() >= deadline

    def _continue_vae_job(self, deadline: float) -> bool:
        """Advance the VAE fit in progress until `deadline`: its Adam steps, then the buffer's
        re-encoding, then its end (goal prior, counts). True once it is finished."""
        job, buf = self.vae_job, self.learner.buffer
        pretrain = job['kind'] == 'pretrain'
        if pretrain and self._pretrain_images is None:
            self._pretrain_images = buf.sample_images(self.schedule.pretrain_images, replace=False)
        while job['done'] < job['steps']:
            if self._out_of_time(deadline):
                return False
            if pretrain:
                self.learner.pretrain_vae(self._pretrain_images, steps=1, finish=False)
            else:
                self.learner.refit_vae(steps=1, finish=False)
            job['done'] += 1
            self._ledger_changed = True
        if self._finishing is None:
            if not self._reencode(deadline):
                return False
            # then the goal distribution, in slices too
            self._finishing = (self.learner.finish_pretrain_in_steps(self._pretrain_images) if pretrain
                               else self.learner.finish_refit_in_steps())
        for _ in self._finishing:
            if self._out_of_time(deadline):
                return False
        self._finishing = None
        if pretrain:
            self.schedule_start = self.counters['transitions']
            log.info('VAE pretrained on %d frames (%d steps); the schedule counts transitions from here',
                     len(self._pretrain_images), job['steps'])
            self._pretrain_images = None
        else:
            log.info('VAE refitted (%d steps), buffer re-encoded', job['steps'])
        self.counters['vae_fits'] += 1
        self.vae_job, self._reencoded = None, 0
        self._ledger_changed = True
        return True

    def _reencode(self, deadline: float) -> bool:
        """The buffer's features recomputed with the VAE just fitted (ReplayBuffer.refresh, a batch at a
        time until `deadline`: on a full buffer it takes seconds). True once every frame is done; frames
        ingested meanwhile are encoded with this VAE already."""
        buf = self.learner.buffer
        slots = np.flatnonzero(buf.written)
        while self._reencoded < slots.size:
            if self._out_of_time(deadline):
                return False
            s = slots[self._reencoded:self._reencoded + REENCODE_BATCH]
            buf.refresh_frames(s)
            self._reencoded += s.size
        buf.refresh_goals()
        return True

    @property
    def waiting_for_frames(self) -> bool:
        """No VAE yet and too few frames on disk to fit one: there is nothing to train on."""
        return not self.vae_ready and self.counters['frames'] < self.schedule.pretrain_images

    @property
    def caught_up(self) -> bool:
        """Every closed bag ingested, every owed update done (or none possible yet), checkpoint written."""
        return self.backlog()['caught_up']

    def backlog(self) -> dict:
        """`pending_bags` (closed bags not yet read), `updates_owed` (gradient steps owed to the data
        read so far) and `caught_up`, from one scan of the data dir."""
        pending = len(self.pending_bags())
        owed = 0 if self.waiting_for_frames else int(self._updates_owed)
        done = owed == 0 and self.vae_job is None
        return {'pending_bags': pending, 'updates_owed': owed,
                'caught_up': pending == 0 and done and not self.checkpoint_due}

    @property
    def checkpoint_due(self) -> bool:
        if self.latest is None:
            return True      # publish an initial checkpoint at once, so the actors can start
        if self.vae_job is not None:
            return False     # not a half-fitted VAE (a stop still saves one: see `unsaved`)
        idle = self._updates_owed < 1.0 and (self.vae_ready or self.waiting_for_frames)
        return self._since_ckpt >= self.cfg.checkpoint_every_updates or (
            idle and (self._since_ckpt > 0 or self._ledger_changed))

    @property
    def unsaved(self) -> bool:
        """Something the newest checkpoint does not hold: bags, updates, VAE steps."""
        return self._ledger_changed or self._since_ckpt > 0

    def save_checkpoint(self) -> Path:
        """Atomically write ckpt_<n> with the ledger; prune old ones; return its path."""
        n = self.counters['checkpoints'] + 1
        path = self.ckpt_dir / f'{CHECKPOINT_PREFIX}{n:08d}'
        counters = dict(self.counters, checkpoints=n)
        manifest = {**self.learner.manifest(),
                    'trainer': {'ingested': list(self.ingested), 'bag_transitions': dict(self.bag_transitions),
                                'bad_bags': dict(self.bad_bags), 'dropped_frames': dict(self.dropped_frames),
                                'refused_episodes': dict(self.refused_episodes),
                                'vae_job': dict(self.vae_job) if self.vae_job else None,
                                'updates_owed': self._updates_owed, 'refit_pending': self._refit_pending,
                                'schedule_start': self.schedule_start,
                                'counters': counters, 'trainer_config': dataclasses.asdict(self.cfg)}}
        ckpt.write_checkpoint(path, manifest, self.learner.state_dicts())
        self.counters = counters
        self._since_ckpt = 0
        self._ledger_changed = False
        self.latest = path
        for old in sorted(p for p in self.ckpt_dir.glob(f'{CHECKPOINT_PREFIX}*') if _CKPT_RE.match(p.name))[
                :-self.cfg.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return path


def trainer_config_from(**values) -> TrainerConfig:
    return from_dict(TrainerConfig, values)
