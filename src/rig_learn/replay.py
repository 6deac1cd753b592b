"""Goal-relabelling replay buffer storing raw uint8 frames and cached features.

Layout: a ring of `capacity` frame slots. An episode of T steps occupies T+1 consecutive slots
(o_0 .. o_T); slot i holds a transition o_i -> o_{i+1} when `has_next[i]`. Overwriting proceeds
oldest-first, so for every surviving transition all later frames of its episode survive too
(HER-'future' sampling stays valid in a ring). Features (VAE latent means/log-variances, states or
pooled pixels) are cached per slot and per episode goal, and recomputed by `refresh()` after every
VAE refit: the stored truth is always the images.

Relabelling (`sample`) follows the fixed `RelabelConfig` fractions, never the collector's state:
own goal / a fresh goal from the featurizer's goal distribution (RIG: the VAE goal prior; the baselines:
a bank of env-sampled goals) / a future achieved frame of the same episode; the reward
is recomputed for the chosen goal from the cached features of the next frame.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .features import Featurizer

OWN, PRIOR, FUTURE = 0, 1, 2


class Frame(NamedTuple):
    """One observation as the buffer stores it: the image (None where features need none), the state
    and achieved-goal state (NaN where unknown, e.g. frames from a bag), its features and, from a VAE,
    the latent log-variance; `ach_feat` only where achieved-goal features differ from `feat` (oracle)."""
    image: np.ndarray | None
    state: np.ndarray
    achieved: np.ndarray
    feat: np.ndarray
    logvar: np.ndarray | None = None
    ach_feat: np.ndarray | None = None


class Batch(NamedTuple):
    """A relabelled minibatch: features at t and t+1, the action, the reward recomputed for the goal,
    and where each goal came from (OWN / PRIOR / FUTURE) and which buffer slot each row is."""
    obs: np.ndarray
    next_obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    done: np.ndarray
    goal: np.ndarray
    goal_source: np.ndarray
    index: np.ndarray


class ReplayBuffer:
    def __init__(self, capacity: int, featurizer: Featurizer, image_shape, state_dim: int,
                 goal_state_dim: int, action_dim: int, rng: np.random.Generator, fractions, reward_fn):
        self.capacity = int(capacity)
        self.f = featurizer
        self.rng = rng
        self.fractions = np.array([fractions.own, fractions.prior, fractions.future], np.float64)
        self.reward_fn = reward_fn
        cap = self.capacity
        self.images = np.zeros((cap, *image_shape), np.uint8) if featurizer.needs_images else None
        self.states = np.zeros((cap, state_dim), np.float32)
        self.achieved = np.zeros((cap, goal_state_dim), np.float32)
        self.actions = np.zeros((cap, action_dim), np.float32)
        self.terminal = np.zeros(cap, bool)
        self.has_next = np.zeros(cap, bool)
        self.written = np.zeros(cap, bool)
        self.ep_of = np.full(cap, -1, np.int64)
        self.obs_feat = np.zeros((cap, featurizer.obs_dim), np.float32)
        self.ach_feat = self.obs_feat if featurizer.shared else np.zeros((cap, featurizer.goal_dim), np.float32)
        self.ach_logvar = np.zeros((cap, featurizer.goal_dim), np.float32)
        # episode tables, indexed by episode id % capacity
        self.ep_last = np.zeros(cap, np.int64)
        self.ep_goal_state = np.zeros((cap, goal_state_dim), np.float32)
        self.ep_goal_feat = np.zeros((cap, featurizer.goal_dim), np.float32)
        self.ep_goal_images: dict[int, np.ndarray] = {}
        self.head = 0            # next slot to write
        self.episode = -1        # current episode id
        self.n_episodes = 0
        self.total_frames = 0
        self._valid_cache = None

    # -- writing ---------------------------------------------------------------------------------
    def _write_frame(self, frame: Frame) -> int:
        image, state, achieved, feat, logvar, ach_feat = frame
        s = self.head
        old = self.ep_of[s]
        if old >= 0 and old != self.episode and self.ep_last[old % self.capacity] == s:
            self.ep_goal_images.pop(int(old), None)   # last frame of an old episode evicted
        if self.images is not None:
            self.images[s] = image
        self.states[s] = state
        self.achieved[s] = achieved
        self.obs_feat[s] = feat
        if not self.f.shared:
            self.ach_feat[s] = ach_feat
        if logvar is not None:
            self.ach_logvar[s] = logvar
        self.has_next[s] = False
        self.terminal[s] = False
        self.written[s] = True
        self.ep_of[s] = self.episode
        self.ep_last[self.episode % self.capacity] = s
        self.head = (s + 1) % self.capacity
        self.total_frames += 1
        self._valid_cache = None
        return s

    def start_episode(self, goal_image, goal_state, goal_feat, first: Frame):
        """Begin an episode with its (own) goal and first frame."""
        self.episode += 1
        self.n_episodes += 1
        e = self.episode % self.capacity
        self.ep_goal_state[e] = goal_state
        self.ep_goal_feat[e] = goal_feat
        if goal_image is not None and self.f.needs_images:
            self.ep_goal_images[self.episode] = np.asarray(goal_image, np.uint8).copy()
        self._last = self._write_frame(first)

    def add_step(self, action, terminated: bool, nxt: Frame):
        """Record the transition from the last frame with `action` to the new frame `nxt`."""
        prev = self._last
        self.actions[prev] = action
        self.terminal[prev] = terminated
        self._last = self._write_frame(nxt)
        if self.ep_of[prev] == self.episode:   # (the ring may have just overwritten prev if capacity is tiny)
            self.has_next[prev] = True

    # -- reading ---------------------------------------------------------------------------------
    @property
    def n_transitions(self) -> int:
        return int(self._valid().size)

    def __len__(self):
        return self.n_transitions

    def _valid(self):
        if self._valid_cache is None:
            self._valid_cache = np.flatnonzero(self.has_next)
        return self._valid_cache

    def sample_images(self, n: int, replace: bool = True) -> np.ndarray:
        """n stored images (without replacement: at most as many as are stored)."""
        slots = np.flatnonzero(self.written)
        idx = self.rng.choice(slots, size=n if replace else min(n, slots.size), replace=replace)
        return self.images[idx]

    def sample(self, batch_size: int, fractions=None) -> Batch:
        valid = self._valid()
        if valid.size == 0:
            raise RuntimeError('replay buffer holds no transitions yet')
        cap = self.capacity
        idx = valid[self.rng.integers(0, valid.size, batch_size)]
        nxt = (idx + 1) % cap
        fr = self.fractions if fractions is None else np.asarray(fractions, np.float64)
        source = self.rng.choice(3, size=batch_size, p=fr / fr.sum())
        ep = self.ep_of[idx]
        goal = self.ep_goal_feat[ep % cap].copy()
        m = source == PRIOR
        if m.any():
            goal[m] = self.f.sample_prior(self.rng, int(m.sum()))
        m = source == FUTURE
        if m.any():
            last = self.ep_last[ep[m] % cap]
            span = (last - idx[m]) % cap                      # frames after idx in the episode (>= 1)
            off = 1 + (self.rng.random(m.sum()) * span).astype(np.int64)
            off = np.minimum(off, span)
            fut = (idx[m] + off) % cap
            goal[m] = self.ach_feat[fut]
        reward = self.reward_fn(self.ach_feat[nxt], self.ach_logvar[nxt], goal)
        return Batch(obs=self.obs_feat[idx], next_obs=self.obs_feat[nxt], action=self.actions[idx],
                     reward=reward, done=self.terminal[idx].astype(np.float32), goal=goal,
                     goal_source=source, index=idx)

    # -- re-encoding -------------------------------------------------------------------------------
    def refresh(self, featurizer: Featurizer | None = None, batch: int = 1024) -> None:
        """Recompute all cached features from the stored images/states (after a VAE refit)."""
        slots = np.flatnonzero(self.written)
        for i in range(0, slots.size, batch):
            self.refresh_frames(slots[i:i + batch], featurizer)
        self.refresh_goals(featurizer, batch)

    def refresh_frames(self, slots: np.ndarray, featurizer: Featurizer | None = None) -> None:
        """Recompute the cached features of the frames in `slots` (a caller that must stay
        interruptible, such as the online trainer, refreshes a buffer a batch at a time)."""
        f = featurizer or self.f
        imgs = self.images[slots] if self.images is not None else None
        if f.shared:
            feat, logvar = f.achieved(imgs, self.achieved[slots])
            self.obs_feat[slots] = feat
        else:
            self.obs_feat[slots] = f.obs(imgs, self.states[slots])
            ach, logvar = f.achieved(imgs, self.achieved[slots])
            self.ach_feat[slots] = ach
        if logvar is not None:
            self.ach_logvar[slots] = logvar

    def refresh_goals(self, featurizer: Featurizer | None = None, batch: int = 1024) -> None:
        """Recompute the goal features of the live episodes."""
        f = featurizer or self.f
        slots = np.flatnonzero(self.written)
        live = np.unique(self.ep_of[slots]) if slots.size else np.zeros(0, np.int64)
        with_img = [e for e in live if int(e) in self.ep_goal_images]
        if with_img:
            imgs = np.stack([self.ep_goal_images[int(e)] for e in with_img])
            rows = np.asarray(with_img) % self.capacity
            for i in range(0, len(rows), batch):
                self.ep_goal_feat[rows[i:i + batch]] = f.goal(imgs[i:i + batch], self.ep_goal_state[rows[i:i + batch]])
        without = [e for e in live if int(e) not in self.ep_goal_images]
        if without and not f.needs_images:
            rows = np.asarray(without) % self.capacity
            self.ep_goal_feat[rows] = f.goal(None, self.ep_goal_state[rows])
