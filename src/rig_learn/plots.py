"""PNG outputs: learning curves and goal / reconstruction / reached-image grids (matplotlib Agg)."""
from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt
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
