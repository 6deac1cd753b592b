"""Learner configuration: one dataclass tree, loaded strictly from `config/learn_<task>.yaml`.

All defaults are the paper / reference-implementation values (RIG, Nair et al. 2018; the 48x48
VAE architecture is the later Skew-Fit variant of the same code base) unless a comment says why not.

VAE loss normalisation and the scale of `beta`
---------------------------------------------
Per image, the loss is

    recon_nats(x) + beta * KL(q(z|x) || N(0, I))

where both terms are *summed* (over all H*W*3 pixels resp. over latent dimensions), i.e. `beta` is
in the paper's scale: the reference code multiplies the per-pixel mean BCE by the image length, so a
Bernoulli decoder gives the summed BCE in nats. For the Gaussian decoder (fixed standard deviation
`gaussian_sigma`, pixels in [0, 1]) recon_nats = SSE / (2 sigma^2) (constant dropped). The optimiser
sees this loss divided by the number of pixels (Adam is invariant to that scale); reported
`vae/recon` and `vae/kl` are per image, in nats.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import yaml

from rig_base.config import ConfigError, from_dict, to_dict

MODES = ('rig', 'oracle', 'her_pixels')


@dataclass
class VAEConfig:
    # 'conv48': Skew-Fit's (kernels 5/3/3, channels 16/32/64, strides 3/2/2); 'conv84': the paper era's
    # (kernels 5, stride 3, channels 16/32/32, batch norm + ReLU)
    arch: str = 'conv48'
    latent_dim: int = 16            # reacher 16, pusher 4 (paper)
    beta: float = 5.0               # paper scale, see module docstring
    decoder: str = 'gaussian'       # 'gaussian' (Skew-Fit) | 'bernoulli' (paper-era)
    gaussian_sigma: float = 0.1     # decoder std for 'gaussian' (pixels in [0, 1])
    lr: float = 1e-3
    batch_size: int = 64
    pretrain_images: int = 10000    # paper: 10,000 random-action images for the pusher
    pretrain_dataset: str = 'random'  # 'random' (random-action rollouts) | 'goals' (env.sample_goal images) | 'mixed'
    pretrain_steps: int = 3000      # Adam steps on the pretraining set
    # Online refits on the replay buffer: ((from_env_step, every_n_env_steps), ...) -> more often
    # early, less later. Each refit runs `refit_steps` Adam steps, then re-encodes the buffer.
    refit_schedule: tuple = ((0, 1000), (5000, 2500), (20000, 10000))
    refit_steps: int = 250
    refit_mix_pretrain: float = 0.0  # fraction of each refit batch drawn from the pretraining images
    # Where imagined goals (exploration and 'prior' relabelling) come from. 'standard': N(0, I), as
    # in the paper. 'fitted': a diagonal Gaussian fitted to the latent means of the images seen so
    # far (the pretraining set, then the whole replay buffer after every refit), as rlkit's RIG code
    # does (vae.dist_mu / dist_std). 'fitted' keeps imagined goals where the robot has already been,
    # and so explores less: on the 2,000-step reach run of test_learn_e2e it ended at 0.109 / 0.179 m
    # (seeds 0 / 1) against 0.064 / 0.055 m with N(0, I); over 3 seeds x 10k steps the two were
    # within seed noise (bench/results/learn/table.md). 'data': latent means of images seen so far
    # (the pretraining set and the replay buffer, re-encoded after every refit), a sample of the
    # VAE's aggregate posterior, which N(0, I) only approximates: imagined goals that some image
    # has, without a Gaussian's off-manifold combinations (Skew-Fit's buffer sampling with alpha = 0).
    # The shipped reach and push YAMLs use 'data' with goal_bank_skew -0.5 (bench/results/learn/table.md).
    goal_prior: str = 'standard'
    goal_bank_size: int = 4096      # goal_prior 'data': latents kept (a uniform subsample)
    # goal_prior 'data': Skew-Fit's skew (Pong et al. 2020, its alpha, in [-1, 0]). 0 keeps the bank a
    # uniform sample of the images seen. Below 0, after every refit `skew_candidates` images seen are
    # drawn uniformly and the bank is resampled from them with weight p(x)^alpha, p(x) the VAE's
    # density estimate (vae.log_density), so images the VAE finds rare (on push, a displaced puck)
    # become imagined goals more often than the policy's own frames, however many of those the
    # buffer holds. Skew-Fit used -1.
    goal_bank_skew: float = 0.0
    skew_candidates: int = 8192

    #: Options that benchmarks retired: {field: (its off value, why)} (rig_base.config drops them at
    #: the off value, so older files and checkpoints still load).
    RETIRED: ClassVar[dict] = {
        'goal_bank_pretrain_fraction': (None, 'a fixed share of pretraining latents in the goal bank did '
                                              'worse on push (docs/results.md)'),
        'skew_vae_training': (False, 'training the VAE on the skewed sample broke learning on push '
                                     '(docs/results.md); vae.goal_bank_skew alone is kept'),
    }


@dataclass
class RLConfig:
    algo: str = 'td3'               # 'td3' | 'sac'
    hidden: tuple = (400, 300)
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    discount: float = 0.99
    tau: float = 1e-2
    batch_size: int = 128
    updates_per_step: float = 4.0   # gradient steps per env step (fractions allowed, e.g. 0.5)
    policy_delay: int = 2           # TD3
    target_noise: float = 0.2       # TD3 target policy smoothing
    target_noise_clip: float = 0.5
    exploration: str = 'gaussian'   # 'gaussian' | 'ou' (TD3 exploration noise)
    exploration_noise: float = 0.3
    ou_theta: float = 0.15
    learning_starts: int = 1000     # env steps collected before the first gradient step
    random_steps: int = 0           # env steps with uniform random actions at the very start
    buffer_size: int = 100000
    reward_scale: float = 1.0
    # TD3: weight of the mean squared action added to the actor loss. 0 as in the paper's TD3 (rlkit);
    # OpenAI baselines' HER uses 1.0 to keep its tanh policy out of saturation.
    action_l2: float = 0.0
    sac_init_alpha: float = 1.0     # SAC: automatic entropy tuning, target entropy -action_dim
    sac_alpha_lr: float = 3e-4
    fused_critic: bool = True       # twin Q networks as one batched net (rl.TwinCritic); false: two nn.Sequential


@dataclass
class RelabelConfig:
    """Replay relabelling distribution: fixed configuration, independent of what the collector did.

    own: the goal the episode was collected with; prior: fresh goals from the learner's goal
    distribution: for RIG samples of the VAE goal prior (VAEConfig.goal_prior), for the oracle and
    HER-from-pixels baselines goals drawn from the environment's own goal distribution (a bank of
    `env_goal_bank` goals sampled once with env.sample_goal(); rlkit's fraction_goals_env_goals with
    presampled goals);
    future: an achieved state later in the same episode (HER 'future').
    """
    own: float = 0.1
    prior: float = 0.5
    future: float = 0.4
    env_goal_bank: int = 1000


@dataclass
class EvalConfig:
    n_goals: int = 50               # final evaluation: image goals from env.sample_goal()
    every: int = 1000               # env steps between evaluations during training (0: never)
    n_goals_during_training: int = 10
    seed: int = 1_000_003           # goal-sampling seed: the same goals at every evaluation
    grid_goals: int = 6             # rows of the goal / reconstruction / reached PNG grid


@dataclass
class LearnConfig:
    task: str = 'reach'             # rig_sim task ('reach' | 'push' | 'door') or 'toy_reach'
    arm: str = 'sawyer'
    image_size: int = 48
    # 'rig' | 'oracle' (state obs, true-distance reward, HER) | 'her_pixels' (pixel obs/reward, HER)
    mode: str = 'rig'
    reward: str = 'latent_distance'  # 'latent_distance' | 'log_prob' | 'mahalanobis' (rig only)
    pixel_pool: int = 4             # her_pixels: average-pool factor before the MLP
    seed: int = 0
    device: str = 'cpu'             # 'cpu' | 'cuda' | 'cuda:N'
    num_threads: int = 0            # torch intra-op threads (0: leave torch's setting alone)
    env: str = ''                   # optional 'module:callable' env factory (bring your own simulator: protocol.py)
    horizon: int = 0                # 0: the env's own truncation
    vae: VAEConfig = field(default_factory=VAEConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    relabel: RelabelConfig = field(default_factory=RelabelConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f'mode must be one of {MODES}, got {self.mode!r}')
        if self.vae.arch not in ('conv48', 'conv84'):
            raise ConfigError(f'vae.arch must be conv48 or conv84, got {self.vae.arch!r}')
        if self.vae.goal_prior not in ('data', 'fitted', 'standard'):
            raise ConfigError(f'vae.goal_prior must be data, fitted or standard, got {self.vae.goal_prior!r}')
        skew = self.vae.goal_bank_skew
        if not -1.0 <= skew <= 0.0:
            raise ConfigError(f'vae.goal_bank_skew must be in [-1, 0] (Skew-Fit alpha), got {skew}')
        if skew != 0.0 and self.vae.goal_prior != 'data':
            raise ConfigError(f'vae.goal_bank_skew skews the data goal bank: it needs vae.goal_prior data, '
                              f'got {self.vae.goal_prior!r}')
        if self.vae.skew_candidates < 1:
            raise ConfigError(f'vae.skew_candidates must be >= 1, got {self.vae.skew_candidates}')
        if self.vae.goal_bank_size < 1:
            raise ConfigError(f'vae.goal_bank_size must be >= 1, got {self.vae.goal_bank_size}')
        if self.vae.decoder not in ('gaussian', 'bernoulli'):
            raise ConfigError(f'vae.decoder must be gaussian or bernoulli, got {self.vae.decoder!r}')
        if self.vae.pretrain_dataset not in ('random', 'goals', 'mixed'):
            raise ConfigError(f'vae.pretrain_dataset: random|goals|mixed, got {self.vae.pretrain_dataset!r}')
        if self.rl.algo not in ('td3', 'sac'):
            raise ConfigError(f'rl.algo must be td3 or sac, got {self.rl.algo!r}')
        if self.rl.exploration not in ('gaussian', 'ou'):
            raise ConfigError(f'rl.exploration must be gaussian or ou, got {self.rl.exploration!r}')
        if not self.rl.action_l2 >= 0:
            raise ConfigError(f'rl.action_l2 must be >= 0, got {self.rl.action_l2!r}')
        if self.rl.action_l2 and self.rl.algo != 'td3':
            raise ConfigError('rl.action_l2 penalises the TD3 actor: it needs rl.algo td3')
        if self.reward not in ('latent_distance', 'log_prob', 'mahalanobis'):
            raise ConfigError(f'reward must be latent_distance|log_prob|mahalanobis, got {self.reward!r}')
        fr = self.relabel
        if min(fr.own, fr.prior, fr.future) < 0 or abs(fr.own + fr.prior + fr.future - 1.0) > 1e-6:
            raise ConfigError(f'relabel fractions must be >= 0 and sum to 1, got {fr}')
        if self.mode != 'rig' and fr.prior > 0 and fr.env_goal_bank < 1:
            raise ConfigError(f'relabel.prior > 0 in mode {self.mode!r} draws env goals: '
                              'relabel.env_goal_bank must be >= 1')
        sched = tuple(tuple(int(v) for v in s) for s in self.vae.refit_schedule)
        if any(len(s) != 2 or s[1] <= 0 for s in sched):
            raise ConfigError('vae.refit_schedule: list of [from_env_step, every_n_env_steps], every > 0')
        self.vae.refit_schedule = tuple(sorted(sched))
        self.rl.hidden = tuple(int(h) for h in self.rl.hidden)

    @property
    def uses_vae(self) -> bool:
        return self.mode == 'rig'


def parse_overrides(items) -> dict:
    """['vae.beta=2.5', 'rl.hidden=[64, 64]'] -> {'vae.beta': 2.5, 'rl.hidden': [64, 64]} (values are
    YAML): the `--set` of `rig train` and the benches, the `learn_set` parameter of the trainer node."""

    out = {}
    for item in items:
        key, sep, value = str(item).partition('=')
        if not sep or not key.strip():
            raise ConfigError(f'a learner override is KEY=VALUE (e.g. vae.beta=2.5), got {item!r}')
        out[key.strip()] = yaml.safe_load(value)
    return out


def with_overrides(cfg: LearnConfig, overrides: dict) -> LearnConfig:
    """A validated copy of `cfg` with dotted keys set (None values ignored); an unknown key is a
    ConfigError naming it."""
    d = to_dict(cfg)
    for key, value in overrides.items():
        if value is None:
            continue
        node, parts = d, key.split('.')
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                raise ConfigError(f'unknown learner config key {key!r}')
            node = node[p]
        if parts[-1] not in node and not (parts[:-1] == ['vae'] and parts[-1] in VAEConfig.RETIRED):
            raise ConfigError(f'unknown learner config key {key!r}')
        node[parts[-1]] = value
    return from_dict(LearnConfig, d)
