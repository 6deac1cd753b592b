"""`rig eval RUN_DIR`: re-evaluate a run directory (or a checkpoint directory) on image goals."""
from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('path', help='run directory (with checkpoint/) or checkpoint directory')
    parser.add_argument('--goals', type=int, default=None, help='number of image goals (default: config eval.n_goals)')
    parser.add_argument('--seed', type=int, default=None, help='goal-sampling seed (default: the training eval seed)')
    parser.add_argument('--device', default=None, help='cpu | cuda | cuda:N (default: cpu)')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--no-grid', action='store_true', help='skip the PNG grid')


def run(args) -> int:
    # Deferred: `rig eval --help` answers without importing torch and MuJoCo.
    import torch  # noqa: PLC0415

    from .agent import DeviceUnavailable  # noqa: PLC0415
    from .checkpoint import CheckpointError  # noqa: PLC0415
    from .envs import EnvError  # noqa: PLC0415
    from .runs import eval_run  # noqa: PLC0415

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        s = eval_run(args.path, n_goals=args.goals, seed=args.seed, device=args.device or 'cpu', grid=not args.no_grid)
    except (CheckpointError, DeviceUnavailable, EnvError) as exc:
        print(f'rig eval: {exc}', file=sys.stderr)
        return 2
    for k, v in s.items():
        if k.startswith('eval/'):
            print(f'{k}: {v:.4g}')
    return 0
