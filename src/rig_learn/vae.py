"""Convolutional VAE over uint8 RGB images (see `rig_learn.config` for the loss convention)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# arch -> (kernels, channels, strides, batchnorm)
ARCHS = {
    'conv48': ((5, 3, 3), (16, 32, 64), (3, 2, 2), False),   # Skew-Fit variant
    'conv84': ((5, 5, 5), (16, 32, 32), (3, 3, 3), True),    # paper-era RIG
}


def to_float_images(images, device) -> torch.Tensor:
    """uint8 (N, H, W, 3) / (H, W, 3) numpy or tensor -> float (N, 3, H, W) in [0, 1] on device."""
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if x.ndim == 3:
        x = x[None]
    if x.dtype != torch.uint8:
        raise TypeError(f'expected uint8 images, got {x.dtype}')
    return x.to(device).permute(0, 3, 1, 2).float().div_(255.0)


class ConvVAE(nn.Module):
    def __init__(self, image_size: int = 48, latent_dim: int = 16, arch: str = 'conv48',
                 decoder: str = 'gaussian', gaussian_sigma: float = 0.1):
        super().__init__()
        kernels, channels, strides, bn = ARCHS[arch]
        self.image_size, self.latent_dim, self.arch = image_size, latent_dim, arch
        self.decoder_dist, self.gaussian_sigma = decoder, gaussian_sigma
        self.imlength = image_size * image_size * 3
        layers, sizes, c_in = [], [image_size], 3
        for k, c, s in zip(kernels, channels, strides):
            layers += [nn.Conv2d(c_in, c, k, s)] + ([nn.BatchNorm2d(c)] if bn else []) + [nn.ReLU()]
            sizes.append((sizes[-1] - k) // s + 1)
            c_in = c
        if sizes[-1] < 1:
            raise ValueError(f'image_size {image_size} too small for {arch}')
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        self.feat_shape = (channels[-1], sizes[-1], sizes[-1])
        flat = int(np.prod(self.feat_shape))
        self.fc_mu = nn.Linear(flat, latent_dim)
        self.fc_logvar = nn.Linear(flat, latent_dim)
        self.fc_dec = nn.Linear(latent_dim, flat)
        dec = []
        outs = list(channels[:-1])[::-1] + [3]
        for i, (k, s) in enumerate(zip(kernels[::-1], strides[::-1])):
            size_in, size_out = sizes[-1 - i], sizes[-2 - i]
            pad = size_out - ((size_in - 1) * s + k)
            if not 0 <= pad < s:
                raise ValueError(f'cannot mirror {arch} for image_size {image_size}')
            c_out = outs[i]
            dec.append(nn.ConvTranspose2d(c_in, c_out, k, s, output_padding=pad))
            if i < len(kernels) - 1:
                dec += ([nn.BatchNorm2d(c_out)] if bn else []) + [nn.ReLU()]
            c_in = c_out
        self.decoder = nn.Sequential(*dec)
        # Distribution that imagined goals are drawn from (see VAEConfig.goal_prior); buffers, so
        # they travel in the checkpoint with the weights they describe.
        self.register_buffer('goal_prior_mean', torch.zeros(latent_dim))
        self.register_buffer('goal_prior_std', torch.ones(latent_dim))
        # goal_prior 'data': latent means of images seen (rows); empty for the other priors.
        self.register_buffer('goal_bank', torch.zeros(0, latent_dim))

    def encode_tensor(self, x: torch.Tensor):
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h).clamp(-10.0, 5.0)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.fc_dec(z)).view(-1, *self.feat_shape)
        return self.decoder(h)

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder mean in [0, 1], (N, 3, H, W)."""
        return torch.sigmoid(self.decode_logits(z))

    def loss(self, x: torch.Tensor, gen: torch.Generator | None = None):
        """x float (N, 3, H, W) in [0, 1]. Returns (loss for the optimiser, recon nats, kl nats)."""
        mu, logvar = self.encode_tensor(x)
        z = mu + torch.randn(mu.shape, generator=gen, device=mu.device) * torch.exp(0.5 * logvar)
        logits = self.decode_logits(z)
        if self.decoder_dist == 'bernoulli':
            recon = F.binary_cross_entropy_with_logits(logits, x, reduction='none').flatten(1).sum(1)
        else:
            err = (torch.sigmoid(logits) - x).pow(2).flatten(1).sum(1)
            recon = err / (2 * self.gaussian_sigma ** 2)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
        return recon, kl


class VAETrainer:
    """Adam on a ConvVAE; `beta` in the paper's scale (see rig_learn.config)."""

    def __init__(self, vae: ConvVAE, beta: float, lr: float = 1e-3, gen: torch.Generator | None = None):
        self.vae, self.beta, self.gen = vae, beta, gen
        self.opt = torch.optim.Adam(vae.parameters(), lr=lr)
        self.device = next(vae.parameters()).device

    def train_step(self, images_uint8) -> dict:
        self.vae.train()
        x = to_float_images(images_uint8, self.device)
        recon, kl = self.vae.loss(x, self.gen)
        loss = (recon + self.beta * kl).mean() / self.vae.imlength
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.vae.eval()
        return {'vae/recon': float(recon.detach().mean()), 'vae/kl': float(kl.detach().mean()),
                'vae/loss': float(loss.detach())}

    @torch.no_grad()
    def evaluate(self, images_uint8, batch: int = 256) -> dict:
        self.vae.eval()
        recons, kls = [], []
        for i in range(0, len(images_uint8), batch):
            x = to_float_images(images_uint8[i:i + batch], self.device)
            mu, logvar = self.vae.encode_tensor(x)
            xm = self.vae.decode_mean(mu)
            recons.append((xm - x).pow(2).flatten(1).sum(1))
            kls.append(-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1))
        return {'vae/sse': float(torch.cat(recons).mean()), 'vae/kl': float(torch.cat(kls).mean())}


@torch.no_grad()
def encode_images(vae: ConvVAE, images_uint8, batch: int = 512):
    """Latent means and log-variances (numpy float32) of uint8 images, in eval mode."""
    vae.eval()
    device = next(vae.parameters()).device
    images_uint8 = np.asarray(images_uint8)
    single = images_uint8.ndim == 3
    if single:
        images_uint8 = images_uint8[None]
    mus, lvs = [], []
    for i in range(0, len(images_uint8), batch):
        mu, lv = vae.encode_tensor(to_float_images(images_uint8[i:i + batch], device))
        mus.append(mu.cpu().numpy())
        lvs.append(lv.cpu().numpy())
    mu = np.concatenate(mus) if mus else np.zeros((0, vae.latent_dim), np.float32)
    lv = np.concatenate(lvs) if lvs else np.zeros((0, vae.latent_dim), np.float32)
    return (mu[0], lv[0]) if single else (mu, lv)


@torch.no_grad()
def log_density(vae: ConvVAE, images_uint8, batch: int = 512):
    """(log p(x) estimates, latent means) of uint8 images: the ELBO at the latent mean, as Skew-Fit
    weighs images for its skewed goal and training distributions.

    The reconstruction term uses a unit-variance Gaussian (Skew-Fit's 'gaussian_identity_variance')
    for a Gaussian decoder whatever its training sigma, since at sigma 0.1 the log-likelihoods of two
    images differ by hundreds of nats and any skew puts all weight on one image; a Bernoulli decoder
    uses its own log-likelihood. Nats, higher = the VAE finds the image more typical.
    """
    vae.eval()
    device = next(vae.parameters()).device
    logp, mus = [], []
    for i in range(0, len(images_uint8), batch):
        x = to_float_images(images_uint8[i:i + batch], device)
        mu, logvar = vae.encode_tensor(x)
        logits = vae.decode_logits(mu)
        if vae.decoder_dist == 'bernoulli':
            log_like = -F.binary_cross_entropy_with_logits(logits, x, reduction='none').flatten(1).sum(1)
        else:
            log_like = -0.5 * (torch.sigmoid(logits) - x).pow(2).flatten(1).sum(1)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
        logp.append((log_like - kl).cpu().numpy())
        mus.append(mu.cpu().numpy())
    if not logp:
        return np.zeros(0, np.float32), np.zeros((0, vae.latent_dim), np.float32)
    return np.concatenate(logp), np.concatenate(mus)


@torch.no_grad()
def decode_latents(vae: ConvVAE, z) -> np.ndarray:
    """Decoder means as uint8 (N, H, W, 3) images."""
    vae.eval()
    device = next(vae.parameters()).device
    zt = torch.as_tensor(np.asarray(z, np.float32), device=device)
    single = zt.ndim == 1
    if single:
        zt = zt[None]
    x = vae.decode_mean(zt).permute(0, 2, 3, 1).mul(255.0).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
    return x[0] if single else x



