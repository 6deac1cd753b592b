"""VAE diagnostic: does the pretrained latent space encode what the task needs, and does the latent
distance point the hand the right way?

    python -m bench.bench_vae --task push
    python -m bench.bench_vae --task push --set vae.latent_dim=4 --set vae.beta=0.5 --tag _latent4
    python -m bench.bench_vae --task push --checkpoint RUN_DIR/checkpoint --tag _run   # a trained run's VAE

Pretrains the task's VAE exactly as `rig train` would (config/learn_<task>.yaml plus --set
overrides), then on images of goal states (env.sample_goal()):
  * probe R^2: a linear map from latent means to each part of the state (hand x-y, puck x-y, door
    angle), fitted on 400 goals and scored on 200 others. Near 0 means that part is not encoded,
    and a policy rewarded by latent distance cannot be asked to move it.
  * reward landscape (planar tasks): the hand is swept over a grid of the workspace with the rest of
    the scene as at reset. For each goal, the grid point of least latent distance to the goal image
    should be near the goal's hand position (`argmin_hand_error_m`), and latent distance should grow
    with hand distance (`landscape_corr`, Pearson, median over goals).
Writes bench/results/vae/<task><tag>.json and <task><tag>.png (goal images over their
reconstructions). No ROS; one torch thread.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from bench.layout import SCHEMAS, VAE

# state slices probed per task (see docs/tasks.md for the state layouts)
PROBES = {'reach': {'hand_xy': slice(0, 2)},
          'push': {'hand_xy': slice(0, 2), 'puck_xy': slice(3, 5)},
          'door': {'hand_xyz': slice(0, 3), 'door_angle': slice(3, 4)}}


def probe_r2(latents: np.ndarray, targets: np.ndarray, n_fit: int) -> float:
    """Held-out R^2 of a least-squares linear map latents -> targets."""
    a = np.c_[latents, np.ones(len(latents))]
    w = np.linalg.lstsq(a[:n_fit], targets[:n_fit], rcond=None)[0]
    pred, y = a[n_fit:] @ w, targets[n_fit:]
    return float(1.0 - ((pred - y) ** 2).sum() / max(((y - y.mean(0)) ** 2).sum(), 1e-12))


def reward_landscape(agent, env, rng, n_goals: int = 30, grid: tuple[int, int] = (11, 17)) -> dict:
    """Latent distance to goal images over a grid of hand positions (rest of the scene at reset)."""
    u = env.unwrapped
    scene = u.scene
    env.reset(seed=0)
    base = scene.state().copy()
    lo, hi = scene.workspace_low, scene.workspace_high
    states, images = [], []
    for x in np.linspace(lo[0], hi[0], grid[0]):
        for y in np.linspace(lo[1], hi[1], grid[1]):
            s = base.copy()
            s[0], s[1] = x, y
            if len(s) >= 5 and np.linalg.norm(s[:2] - s[3:5]) < 0.08:   # push: hand inside the puck
                continue
            states.append(s)
            images.append(u.render_state(s))
    states = np.array(states)
    mu = agent.encode(np.stack(images))[0]
    errors, corrs = [], []
    for _ in range(n_goals):
        goal = u.sample_goal(rng)
        d = np.linalg.norm(mu - agent.encode(goal['image'])[0], axis=1)
        hand_d = np.linalg.norm(states[:, :2] - goal['state'][:2], axis=1)
        errors.append(float(hand_d[d.argmin()]))
        corrs.append(float(np.corrcoef(d, hand_d)[0, 1]))
    spacing = float(min((hi[0] - lo[0]) / (grid[0] - 1), (hi[1] - lo[1]) / (grid[1] - 1)))
    return {'argmin_hand_error_m': float(np.median(errors)), 'landscape_corr': float(np.median(corrs)),
            'grid_spacing_m': spacing, 'n_goals': n_goals, 'grid_points': len(states)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--task', default='push', choices=sorted(PROBES))
    p.add_argument('--arm', default='sawyer')
    p.add_argument('--config', default=None, help='learner YAML (default config/learn_<task>.yaml)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--set', action='append', default=[], metavar='KEY=VALUE')
    p.add_argument('--goals', type=int, default=600, help='goal images for the probe (2/3 fit, 1/3 scored)')
    p.add_argument('--tag', default='')
    p.add_argument('--checkpoint', type=Path, default=None,
                   help="probe a trained run's VAE (RUN_DIR/checkpoint, after its online refits) "
                        'instead of pretraining a fresh one; the config is the checkpoint\'s')
    args = p.parse_args(argv)

    # deferred: torch (rig_learn imports it too), so that --help answers at once
    import torch  # noqa: PLC0415

    from rig_learn.agent import RIGAgent  # noqa: PLC0415
    from rig_learn.config import parse_overrides  # noqa: PLC0415
    from rig_learn.envs import make_task_env  # noqa: PLC0415
    from rig_learn.runs import load_config, to_dict, write_json  # noqa: PLC0415

    torch.set_num_threads(1)
    if args.checkpoint is not None:
        agent = RIGAgent.load(args.checkpoint)
        cfg = agent.cfg
        if cfg.task != args.task:
            p.error(f'{args.checkpoint} is a {cfg.task!r} checkpoint, not {args.task!r}')
    else:
        cfg = load_config(args.task, args.config, seed=args.seed, arm=args.arm, **parse_overrides(args.set))
    if not cfg.uses_vae:
        p.error(f'mode {cfg.mode!r} has no VAE')
    env = make_task_env(cfg.task, cfg.arm, cfg.image_size, seed=cfg.seed, factory=cfg.env, horizon=cfg.horizon)
    t0 = time.perf_counter()
    if args.checkpoint is None:
        agent = RIGAgent.from_config(cfg, env)
        vae_metrics = agent.pretrain_vae()
    else:
        vae_metrics = {}
    pretrain_s = time.perf_counter() - t0 if args.checkpoint is None else None
    rng = np.random.default_rng(args.seed + 1)
    goals = [env.unwrapped.sample_goal(rng) for _ in range(args.goals)]
    images = np.stack([g['image'] for g in goals])
    states = np.stack([g['state'] for g in goals])
    mu, logvar = agent.encode(images)
    n_fit = 2 * len(goals) // 3
    r2 = {name: probe_r2(mu, states[:, sl], n_fit) for name, sl in PROBES[args.task].items()}
    config = args.config or (None if args.checkpoint else f'config/learn_{args.task}.yaml')
    result = {'schema': SCHEMAS['vae'], 'task': args.task, 'arm': cfg.arm, 'config': config,
              'checkpoint': str(args.checkpoint) if args.checkpoint else None,
              'overrides': args.set, 'vae': to_dict(cfg.vae), 'pretrain_s': pretrain_s,
              'final_pretrain_batch': vae_metrics, 'probe_r2': r2,
              'latent_mean_std': mu.std(0).round(3).tolist(),
              'active_dims': int((mu.std(0) > 0.1).sum()),
              'command': 'python -m bench.bench_vae ' + ' '.join(argv if argv is not None else sys.argv[1:])}
    if env.unwrapped.scene.task.planar:
        result['landscape'] = reward_landscape(agent, env, rng)
    VAE.mkdir(parents=True, exist_ok=True)
    stem = f'{args.task}{args.tag}'
    write_json(VAE / f'{stem}.json', result)
    recon = agent.decode(mu[:8])
    _save_pairs(images[:8], recon, VAE / f'{stem}.png', title=f'{args.task}{args.tag}: goals / VAE reconstructions')
    print(f"{stem}: probe R^2 " + ', '.join(f'{k} {v:.2f}' for k, v in r2.items())
          + f", {result['active_dims']} active dims"
          + (f", argmin hand error {result['landscape']['argmin_hand_error_m']:.3f} m, "
             f"landscape corr {result['landscape']['landscape_corr']:.2f}" if 'landscape' in result else '')
          + (f' (pretraining {pretrain_s:.0f} s)' if pretrain_s is not None else f' ({args.checkpoint})'))
    print(f"wrote {VAE / (stem + '.json')}")
    return 0


def _save_pairs(images: np.ndarray, recon: np.ndarray, path: Path, title: str) -> None:
    from rig_learn.plots import _plt  # noqa: PLC0415 - deferred: matplotlib (and torch, with rig_learn)
    plt = _plt()
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(1.2 * n, 2.7), dpi=100, squeeze=False)
    for i in range(n):
        for row, img in enumerate((images[i], recon[i])):
            axes[row, i].imshow(img, interpolation='nearest')
            axes[row, i].axis('off')
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == '__main__':
    sys.exit(main())
