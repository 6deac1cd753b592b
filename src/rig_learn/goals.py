"""The imagined-goal distribution: where the goals that RIG practises on and relabels with come from.

Every option lives here (configured by `vae.goal_prior`, `vae.goal_bank_*`, `vae.skew_*`). Like
Stable-Baselines3's goal-selection strategies for HER, each strategy is one named value:

- `standard`: N(0, I), the VAE prior, as in the paper;
- `fitted`: a diagonal Gaussian fitted to the latent means of the images seen so far (rlkit's RIG);
- `data`: latent means of images seen (a sample of the VAE's aggregate posterior), optionally
  skewed towards images the VAE finds rare (`vae.goal_bank_skew`, Skew-Fit's alpha).

The baselines (oracle, HER from pixels) have no VAE: their "prior" goals are a bank of goals drawn once
from the environment (`env_goal_bank`). The distribution's state travels in the checkpoint (as VAE
buffers: goal_prior_mean, goal_prior_std, goal_bank).
"""
from __future__ import annotations

import enum

import numpy as np

from .config import LearnConfig
from .protocol import unwrapped_call
from .vae import log_density

#: Candidates per density-estimate batch of Skew-Fit's goal bank (log_density's batch).
SKEW_BATCH = 512


class GoalStrategy(str, enum.Enum):
    STANDARD = 'standard'
    FITTED = 'fitted'
    DATA = 'data'


class GoalSampler:
    def __init__(self, featurizer, cfg: LearnConfig, rng: np.random.Generator):
        self.featurizer, self.cfg, self.rng = featurizer, cfg, rng
        self.strategy = GoalStrategy(cfg.vae.goal_prior if cfg.uses_vae else 'standard')
        self.metrics: dict = {}

    def sample(self, n: int = 1, rng: np.random.Generator | None = None) -> np.ndarray:
        """n imagined goals (feature vectors)."""
        return self.featurizer.sample_prior(rng or self.rng, n)

    def decode(self, z) -> np.ndarray:
        """The image of an imagined goal (RIG)."""
        return self.featurizer.decode(z)

    def env_goal_bank(self, env, n: int, goal_features) -> None:
        """Baselines' 'prior' goals: features of n goals from env.sample_goal(), drawn once with their
        own generator (so the rest of the run's random stream is unchanged)."""
        rng = np.random.default_rng([self.cfg.seed, 104729])
        goals = [unwrapped_call(env, 'sample_goal', rng) for _ in range(int(n))]
        self.featurizer.set_goal_bank(np.stack([goal_features(g) for g in goals]))

    def refit(self, encode, images: np.ndarray | None = None, buffer=None,
              pretrain_images: np.ndarray | None = None) -> None:
        """Fit the distribution to what has been seen: the `images` given (at pretraining), else the
        replay `buffer` (already re-encoded) and the `pretrain_images`. Nothing to do for N(0, I)."""
        for _ in self.refit_in_steps(encode, images, buffer, pretrain_images):
            pass

    def refit_in_steps(self, encode, images: np.ndarray | None = None, buffer=None,
                       pretrain_images: np.ndarray | None = None):
        """`refit` as a generator that yields between batches of its work (Skew-Fit's density
        estimates: seconds for 8,192 candidates on one CPU thread), so that the bag trainer runs it in
        slices and a shutdown never waits for it. The distribution changes only at its end."""
        if self.strategy is GoalStrategy.STANDARD:
            return
        if self.strategy is GoalStrategy.FITTED:
            latents = encode(images)[0] if images is not None else buffer.obs_feat[buffer.written]
            self.featurizer.fit_prior(latents)
            return
        v = self.cfg.vae
        if v.goal_bank_skew != 0.0:
            yield from self._skew(images, buffer, pretrain_images)
            return
        parts = [buffer.obs_feat[buffer.written]] if images is None else []
        seen = images if images is not None else pretrain_images
        if seen is not None:
            parts.append(encode(seen)[0])
        self.featurizer.set_prior_bank(np.concatenate(parts), v.goal_bank_size, self.rng)

    def _skew(self, images, buffer, pretrain_images):
        """Skew-Fit: draw candidates uniformly from the images seen (`images` at pretraining, else the
        pretraining set and the replay buffer), weigh each by p(x)^alpha with the current VAE's density
        estimate, and resample the goal bank from them by weight. A generator: yields after each batch
        of density estimates."""
        v = self.cfg.vae
        pre = images if images is not None else pretrain_images
        n_pre = 0 if pre is None else len(pre)
        slots = np.flatnonzero(buffer.written) if images is None else np.zeros(0, int)
        total = n_pre + len(slots)
        if total == 0:
            return
        pick = np.sort(self.rng.choice(total, min(v.skew_candidates, total), replace=False))
        from_pre, from_buf = pick[pick < n_pre], slots[pick[pick >= n_pre] - n_pre]
        parts = ([pre[from_pre]] if len(from_pre) else []) + ([buffer.images[from_buf]] if len(from_buf) else [])
        candidates = np.concatenate(parts)   # a copy: frames ingested meanwhile do not change it
        scored = []
        for i in range(0, len(candidates), SKEW_BATCH):
            scored.append(log_density(self.featurizer.vae, candidates[i:i + SKEW_BATCH]))
            yield
        logp, latents = (np.concatenate(x) for x in zip(*scored))
        ok = np.isfinite(logp) & np.all(np.isfinite(latents), axis=1)
        if not ok.any():
            return
        logp, latents = logp[ok], latents[ok]
        score = v.goal_bank_skew * logp.astype(np.float64)
        weights = np.exp(score - score.max())
        weights /= weights.sum()
        self.featurizer.set_goal_bank(latents[self.rng.choice(len(latents), v.goal_bank_size, p=weights)])
        # Effective sample size of the skewed sample: how many candidates the weight really rests on.
        self.metrics['vae/skew_ess'] = float(1.0 / np.sum(weights ** 2))
