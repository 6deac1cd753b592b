"""What the policy sees: VAE latent means (RIG), true states (oracle) or pooled pixels (HER-pixels).

A featurizer maps raw observations to three vectors: the policy's observation input, the
"achieved goal" compared against goals for the reward, and goal vectors. The replay buffer caches
these and asks the featurizer again after a VAE refit (`refresh`).
"""
from __future__ import annotations

import numpy as np
import torch

from .vae import ConvVAE, decode_latents, encode_images


def _pool(images, k: int) -> np.ndarray:
    x = np.asarray(images, np.float32)
    if x.ndim == 3:
        x = x[None]
    n, h, w, c = x.shape
    x = x[:, :h - h % k, :w - w % k].reshape(n, h // k, k, w // k, k, c).mean((2, 4))
    return (x / 255.0).reshape(n, -1).astype(np.float32)


class Featurizer:
    needs_images = True
    shared = True              # observation features == achieved-goal features
    obs_dim = goal_dim = 0
    goal_bank: np.ndarray | None = None   # features of env-sampled goals ('prior' relabelling, baselines)

    def sample_prior(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Fresh goals for the baselines: rows of the bank of env-sampled goal features."""
        bank = self.goal_bank
        if bank is None:
            raise RuntimeError('no goal distribution to sample: set_goal_bank() first')
        return bank[rng.integers(0, len(bank), n)].copy()

    def set_goal_bank(self, goal_features: np.ndarray) -> None:
        bank = np.asarray(goal_features, np.float32).reshape(-1, self.goal_dim)
        if not len(bank) or not np.all(np.isfinite(bank)):
            raise ValueError('goal bank must hold at least one finite goal')
        self.goal_bank = bank

    def obs(self, images, states):
        raise NotImplementedError

    def achieved(self, images, achieved_states):
        """-> (features, logvar or None)"""
        raise NotImplementedError

    def goal(self, images, states):
        raise NotImplementedError


def _batch(images) -> np.ndarray:
    x = np.asarray(images)
    return x[None] if x.ndim == 3 else x


class VAEFeaturizer(Featurizer):
    def __init__(self, vae: ConvVAE):
        self.vae = vae
        self.obs_dim = self.goal_dim = vae.latent_dim

    def obs(self, images, states=None):
        return encode_images(self.vae, _batch(images))[0]

    def achieved(self, images, achieved_states=None):
        return encode_images(self.vae, _batch(images))

    def goal(self, images, states=None):
        return encode_images(self.vae, _batch(images))[0]

    @property
    def goal_bank(self) -> np.ndarray | None:
        """goal_prior 'data': latent means of seen images. Kept as a VAE buffer so that it travels
        in the checkpoint; None (empty buffer) for the Gaussian priors."""
        bank = self.vae.goal_bank
        return bank.detach().cpu().numpy() if len(bank) else None

    @goal_bank.setter
    def goal_bank(self, bank: np.ndarray) -> None:
        self.vae.goal_bank = torch.as_tensor(bank, device=self.vae.goal_prior_mean.device)

    def sample_prior(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Imagined goals: rows of the goal bank where there is one (goal_prior 'data'), else
        N(goal_prior_mean, diag(goal_prior_std^2)), which is N(0, I) unless fitted."""
        if len(self.vae.goal_bank):   # (not the goal_bank property: it converts the whole bank)
            return super().sample_prior(rng, n)
        mean = self.vae.goal_prior_mean.detach().cpu().numpy()
        std = self.vae.goal_prior_std.detach().cpu().numpy()
        return (mean + std * rng.standard_normal((n, self.goal_dim))).astype(np.float32)

    def fit_prior(self, latent_means: np.ndarray, min_std: float = 1e-3) -> None:
        """Fit the goal prior to latent means of observed images (rlkit's dist_mu / dist_std)."""
        z = np.asarray(latent_means, np.float64).reshape(-1, self.goal_dim)
        z = z[np.all(np.isfinite(z), axis=1)]
        if len(z) < 2:
            return
        dev = self.vae.goal_prior_mean.device
        self.vae.goal_prior_mean.copy_(torch.as_tensor(z.mean(0), dtype=torch.float32, device=dev))
        self.vae.goal_prior_std.copy_(torch.as_tensor(np.maximum(z.std(0), min_std), dtype=torch.float32, device=dev))

    def set_prior_bank(self, latent_means: np.ndarray, size: int, rng: np.random.Generator) -> None:
        """goal_prior 'data': keep a uniform subsample of `size` latent means as the goal bank."""
        z = np.asarray(latent_means, np.float32).reshape(-1, self.goal_dim)
        z = z[np.all(np.isfinite(z), axis=1)]
        if not len(z):
            return
        if len(z) > size:
            z = z[rng.choice(len(z), size, replace=False)]
        self.set_goal_bank(z)

    def decode(self, z) -> np.ndarray:
        return decode_latents(self.vae, z)


class StateFeaturizer(Featurizer):
    """Oracle: true state in, true achieved-goal state compared with the goal state."""
    needs_images = False
    shared = False

    def __init__(self, state_dim: int, goal_dim: int):
        self.obs_dim, self.goal_dim = state_dim, goal_dim

    def obs(self, images, states):
        return np.atleast_2d(np.asarray(states, np.float32))

    def achieved(self, images, achieved_states):
        return np.atleast_2d(np.asarray(achieved_states, np.float32)), None

    def goal(self, images, states):
        return np.atleast_2d(np.asarray(states, np.float32))


class PixelFeaturizer(Featurizer):
    """HER from pixels: average-pooled pixels in [0, 1] (reward: negative pixel distance)."""

    def __init__(self, image_size: int, pool: int):
        self.pool = pool
        self.obs_dim = self.goal_dim = (image_size // pool) ** 2 * 3

    def obs(self, images, states=None):
        return _pool(images, self.pool)

    def achieved(self, images, achieved_states=None):
        return _pool(images, self.pool), None

    def goal(self, images, states=None):
        return _pool(images, self.pool)


def reward_fn(kind: str, scale: float = 1.0):
    """Reward for reaching goal g from the achieved features (mu, logvar) of the next observation.

    latent_distance: -||mu - g||_2 (the paper's choice; 0 at the goal, more negative farther away)
    mahalanobis:     -sqrt(sum((mu - g)^2 / var))
    log_prob:        log N(g; mu, var) (up to the constant), i.e. -0.5 * sum((mu-g)^2/var + logvar)
    """
    def latent_distance(mu, logvar, g):
        return -scale * np.linalg.norm(mu - g, axis=-1)

    def mahalanobis(mu, logvar, g):
        return -scale * np.sqrt((((mu - g) ** 2) * np.exp(-logvar)).sum(-1))

    def log_prob(mu, logvar, g):
        return -scale * 0.5 * ((((mu - g) ** 2) * np.exp(-logvar)) + logvar).sum(-1)

    fns = {'latent_distance': latent_distance, 'mahalanobis': mahalanobis, 'log_prob': log_prob}
    fn = fns[kind]

    def wrapped(mu, logvar, g):
        if kind != 'latent_distance' and logvar is None:
            return latent_distance(mu, None, g)
        return fn(mu, logvar, g).astype(np.float32)
    return wrapped



