"""`rig train`: train RIG (or a baseline) on a simulated task and write a run directory."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rig_base.config import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--task', default=None,
                        help="reach | push | door (rig_sim) or toy_reach (default: the --config file's, else reach)")
    parser.add_argument('--arm', default=None, help='sawyer | ur5e (default: from config, sawyer)')
    parser.add_argument('--steps', type=int, default=10000, help='env steps (VAE pretraining images not counted)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default=None, help='cpu | cuda | cuda:N (default: from config, cpu)')
    parser.add_argument('--config', default=None,
                        help='learner YAML (default: config/learn_<task>.yaml when present)')
    parser.add_argument('--mode', default=None, choices=['rig', 'oracle', 'her_pixels'],
                        help='baseline: without --config, loads config/learn_<task>_<mode>.yaml '
                             '(RIG without prior relabelling: --config config/learn_reach_no_prior.yaml)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch intra-op threads (default 1: at batch 128 a second thread gave no speed-up '
                             'on the 2-core machine and slowed training badly when the other core was busy)')
    parser.add_argument('--out', default=None, help='run directory (default: runs/<task>_<mode>_s<seed>_<time>)')
    parser.add_argument('--eval-every', type=int, default=None, help='env steps between evaluations')
    parser.add_argument('--eval-goals', type=int, default=None, help='image goals in the final evaluation')
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                        help='override any config key, e.g. --set vae.beta=2.5 --set rl.updates_per_step=2')
    parser.add_argument('--max-minutes', type=float, default=None,
                        help='stop training after this much wall time (VAE pretraining included), then evaluate')
    parser.add_argument('--no-progress', action='store_true', help='no tqdm progress bar')


def _error(exc) -> int:
    """A `rig train` error: one line on stderr (an exception's message may span lines), exit status 2."""
    print('rig train: ' + ' '.join(str(exc).split()), file=sys.stderr)
    return 2


def run(args) -> int:
    # Deferred: `rig train --help` (and `rig --help`) answer without importing torch and MuJoCo.
    from rig_base.resources import learner_config  # noqa: PLC0415

    from .agent import DeviceUnavailable, resolve_device  # noqa: PLC0415
    from .config import parse_overrides  # noqa: PLC0415
    from .envs import EnvError  # noqa: PLC0415
    from .learner import NonFiniteError  # noqa: PLC0415
    from .protocol import ProtocolError  # noqa: PLC0415
    from .runs import load_config, train_run  # noqa: PLC0415

    try:
        overrides = {'arm': args.arm, 'seed': args.seed, 'device': args.device, 'mode': args.mode,
                     'num_threads': args.threads, 'eval.every': args.eval_every, 'eval.n_goals': args.eval_goals}
        overrides.update(parse_overrides(args.set))
        path = args.config
        # the task: --task, else the --config file's, else reach
        task = args.task or (None if path is not None else 'reach')
        if path is None and args.mode and args.mode != 'rig':
            # baselines have their own files: config/learn_<task>_<mode>.yaml
            path = learner_config(task, '_' + args.mode)
            if path is None:
                raise ConfigError(f'no config/learn_{task}_{args.mode}.yaml; pass --config')
        cfg = load_config(task, path, **overrides)
        resolve_device(cfg.device)
        if args.max_minutes is not None and not args.max_minutes > 0:
            raise ConfigError(f'--max-minutes must be > 0, got {args.max_minutes}')
    except (ConfigError, DeviceUnavailable, FileNotFoundError, KeyError) as exc:
        return _error(exc)
    out = Path(args.out or f"runs/{cfg.task}_{cfg.mode}_s{cfg.seed}_{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        summary = train_run(cfg, args.steps, out, progress=not args.no_progress,
                            max_wall_s=None if args.max_minutes is None else 60.0 * args.max_minutes)
    except (EnvError, ProtocolError, NonFiniteError) as exc:
        # the env cannot be built, breaks the protocol (rig_learn.protocol), or gave a NaN
        return _error(exc)
    keys = [k for k in ('eval/hand_distance_median', 'eval/puck_distance_median', 'eval/door_angle_error_median',
                        'eval/success', 'env_steps_per_s', 'grad_steps_per_s', 'wall_s') if k in summary]
    print(f'run directory: {out}')
    if summary.get('stopped_by_wall_cap'):
        print(f"  stopped by --max-minutes after {summary['env_steps']} of {args.steps} env steps")
    for k in keys:
        print(f'  {k}: {summary[k]:.4g}')
    # Typical or not: the same config's figures in the benchmark table (source checkouts have it).
    from .benchmarks import comparison  # noqa: PLC0415 - deferred with the rest
    for line in comparison(summary, cfg, summary.get('env_steps', args.steps)):
        print(line)
    return 0
