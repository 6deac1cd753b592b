"""PNG outputs: learning curves, goal / reconstruction / reached-image grids and goal maps (matplotlib Agg)."""
from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from .protocol import DISTANCE_UNITS, TASK_DISTANCE_KEYS, map_axes


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
    """Rows: eval goals; columns: goal image, the VAE's reconstruction of the goal (only a method with
    a VAE has one: not the oracle or HER from pixels), final reached image."""
    plt = _plt()
    n = len(result.goal_images)
    if n == 0:
        return
    columns = [(result.goal_images, 'goal')]
    if result.recon_images:
        columns.append((result.recon_images, 'VAE recon'))
    columns.append((result.final_images, 'reached'))
    fig, axes = plt.subplots(n, len(columns), figsize=(1.5 * len(columns), 1.6 * n), dpi=100, squeeze=False)
    for i in range(n):
        for j, (images, name) in enumerate(columns):
            ax = axes[i, j]
            ax.imshow(np.asarray(images[i]))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=8)
        d = result.hand_distance[i]
        axes[i, -1].set_xlabel(f'hand {d:.3f} m' if np.isfinite(d) else '', fontsize=7)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def goal_map(result, path, title: str = '', success_threshold: float | None = None, axes=None) -> bool:
    """Goal-state view of the evaluation goals, each coloured by its final task distance: shows
    *where* a policy fails (an unexplored edge of the region, say), which a median cannot.

    The task distance is the first of protocol.TASK_DISTANCE_KEYS the result has (puck, door angle,
    hand). `axes`: the env's goal_map_axes, ((index, label[, inverted]), (index, label[, inverted]))
    for the horizontal and vertical axes; None: goal-state dimensions 0 and 1, labelled generically.
    Goals beyond `success_threshold` (the env's, in the distance's units) are crossed out; without
    one, the goals whose final info['success'] was False. Returns False (no file) when the goal
    states have fewer than two dimensions or the result reports no task distance.
    """
    states = getattr(result, 'goal_states', None)
    if states is None or states.ndim != 2 or states.shape[1] < 2:
        return False
    key = next((k for k in TASK_DISTANCE_KEYS if np.isfinite(getattr(result, k)).any()), None)
    if key is None:
        return False
    dist, unit = getattr(result, key), DISTANCE_UNITS[key]
    if axes is None:
        (hi, hlabel, hflip), (vi, vlabel, vflip) = (0, 'goal state[0]', False), (1, 'goal state[1]', False)
    else:
        (hi, hlabel, hflip), (vi, vlabel, vflip) = map_axes(axes, states.shape[1])
    what = key.replace('_', ' ')
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    sc = ax.scatter(states[:, hi], states[:, vi], c=dist, cmap='viridis_r', vmin=0, s=36, edgecolors='k',
                    linewidths=0.4)
    if success_threshold is not None:
        failed, label = dist > success_threshold, f'final {what} > {success_threshold:g} {unit}'
    else:
        failed, label = ~np.asarray(result.success, bool), "not successful (final info['success'])"
    if failed.any():
        ax.scatter(states[failed, hi], states[failed, vi], marker='x', c='r', s=18, linewidths=0.8, label=label)
        ax.legend(fontsize=7, loc='upper right')
    fig.colorbar(sc, ax=ax, label=f'final {what} ({unit})')
    ax.set_xlabel(hlabel)
    ax.set_ylabel(vlabel)
    if axes is not None:
        ax.set_aspect('equal')   # declared axes are positions in one unit; generic ones need not be
    if hflip:
        ax.invert_xaxis()
    if vflip:
        ax.invert_yaxis()
    ax.set_title(title or f'{what} per goal', fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
