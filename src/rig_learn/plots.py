"""PNG outputs: learning curves, goal / reconstruction / reached-image grids and goal maps (matplotlib Agg)."""
from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np


def _plt():
    matplotlib.use('Agg', force=False)
    return plt


def learning_curve(curves: dict, path, key: str = 'eval/hand_distance_median', ylabel: str | None = None,
                   title: str = '') -> None:
    """curves: {label: [metrics rows]} -> one line per label of `key` against env steps."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    for label, rows in curves.items():
        pts = [(r['env_steps'], r[key]) for r in rows if key in r]
        if pts:
            x, y = zip(*pts)
            ax.plot(x, y, marker='o', ms=3, label=label)
    ax.set_xlabel('env steps')
    ax.set_ylabel(ylabel or key)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def eval_grid(result, path, title: str = '') -> None:
    """Rows: eval goals; columns: goal image, VAE reconstruction of the goal, final reached image."""
    plt = _plt()
    n = len(result.goal_images)
    if n == 0:
        return
    fig, axes = plt.subplots(n, 3, figsize=(4.5, 1.6 * n), dpi=100, squeeze=False)
    for i in range(n):
        for j, (img, name) in enumerate(((result.goal_images[i], 'goal'), (result.recon_images[i], 'VAE recon'),
                                         (result.final_images[i], 'reached'))):
            ax = axes[i, j]
            ax.imshow(np.asarray(img))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=8)
        d = result.hand_distance[i]
        axes[i, 2].set_xlabel(f'hand {d:.3f} m' if np.isfinite(d) else '', fontsize=7)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def goal_map(result, path, title: str = '', success_m: float | None = None) -> bool:
    """Top view of the evaluation goals, each coloured by its final distance: shows *where* a
    policy fails (an unexplored edge of the region, say), which a median cannot.

    Plots puck goals by puck distance when the result has them, else hand goals by hand distance.
    Needs goal states with x-y first (reach, push); returns False (no file) otherwise.
    """
    states = getattr(result, 'goal_states', None)
    if states is None or states.ndim != 2 or states.shape[1] < 2:
        return False
    if np.isfinite(result.puck_distance).any() and states.shape[1] >= 5:
        xy, dist, what = states[:, 3:5], result.puck_distance, 'puck'
    elif np.isfinite(result.hand_distance).any():
        xy, dist, what = states[:, :2], result.hand_distance, 'hand'
    else:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    sc = ax.scatter(xy[:, 1], xy[:, 0], c=dist, cmap='viridis_r', vmin=0, s=36, edgecolors='k', linewidths=0.4)
    if success_m is not None:
        failed = dist > success_m
        ax.scatter(xy[failed, 1], xy[failed, 0], marker='x', c='r', s=18, linewidths=0.8,
                   label=f'final {what} distance > {success_m} m')
        if failed.any():
            ax.legend(fontsize=7, loc='upper right')
    fig.colorbar(sc, ax=ax, label=f'final {what} distance (m)')
    ax.set_xlabel('goal y (m)')
    ax.set_ylabel('goal x (m, away from the robot)')
    ax.set_aspect('equal')
    ax.invert_xaxis()          # as seen from behind the robot: +y on the left
    ax.set_title(title or f'{what} goals', fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
