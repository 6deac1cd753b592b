"""Speed of one TD3 / SAC update, the pair critic against the fused one: `python -m bench.bench_update`.

Both paths (rl.fused_critic false: two nn.Sequential Q networks, the update as it was; true:
rl.TwinCritic) are built in this one process from the same seed and run on the same random batches
(the learner's shapes: batch 128, hidden (400, 300), 32 input features, 2-D actions). The timed
updates alternate between the paths in `--repeats` blocks, the order swapped every block, so a
machine that gets busier or quieter meanwhile slows both alike. Prints ms per update of each path,
wall and CPU time (median and best block), and their ratio, and writes them with the host to
bench/results/update/<algo>.json (or --json PATH).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from bench.layout import SCHEMAS, UPDATE, repo_relative
from rig_learn.config import RLConfig
from rig_learn.rl import TensorBatch, make_actor, make_learner

PATHS = {'pair': False, 'fused': True}     # name: rl.fused_critic


def batches(n: int, batch: int, inp: int, action_dim: int, seed: int = 0) -> list[TensorBatch]:
    g = torch.Generator().manual_seed(seed)
    return [TensorBatch(x=torch.randn(batch, inp, generator=g),
                        action=torch.rand(batch, action_dim, generator=g) * 2 - 1,
                        reward=-torch.rand(batch, generator=g), x2=torch.randn(batch, inp, generator=g),
                        done=(torch.rand(batch, generator=g) < 0.02).float()) for _ in range(n)]


def learner(algo: str, fused: bool, args, device):
    cfg = RLConfig(algo=algo, hidden=tuple(args.hidden), batch_size=args.batch, fused_critic=fused)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        actor = make_actor(algo, args.inp, args.action_dim, cfg).to(device)
        return make_learner(algo, actor, args.inp, args.action_dim, cfg, device,
                            torch.Generator(device=device).manual_seed(0))


def timed_block(rl, data: list[TensorBatch], n: int, sync) -> tuple[float, float]:
    """(wall ms, CPU ms of this process) per update over n updates."""
    sync()
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        rl.update(data[i % len(data)])
    sync()
    return (time.perf_counter() - start) * 1e3 / n, (time.process_time() - cpu) * 1e3 / n


def host() -> dict:
    return {'platform': platform.platform(), 'machine': platform.machine(), 'processor': platform.processor(),
            'python': platform.python_version(), 'torch': torch.__version__, 'cpu_count': os.cpu_count(),
            'load_average': list(os.getloadavg()) if hasattr(os, 'getloadavg') else None}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--algo', choices=('td3', 'sac'), default='td3')
    p.add_argument('--updates', type=int, default=2000, help='timed updates per path, over all blocks')
    p.add_argument('--repeats', type=int, default=20, help='timed blocks per path, interleaved')
    p.add_argument('--warmup', type=int, default=20, help='untimed updates per path first')
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--hidden', type=int, nargs='+', default=[400, 300])
    p.add_argument('--inp', type=int, default=32, help='input features (observation + goal)')
    p.add_argument('--action-dim', type=int, default=2)
    p.add_argument('--threads', type=int, default=1, help='torch intra-op threads')
    p.add_argument('--device', default='cpu')
    p.add_argument('--json', type=Path, default=None, help='result file (default bench/results/update/<algo>.json)')
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    data = [TensorBatch(*(t.to(device) for t in b)) for b in batches(8, args.batch, args.inp, args.action_dim)]
    rls = {name: learner(args.algo, fused, args, device) for name, fused in PATHS.items()}
    for rl in rls.values():
        timed_block(rl, data, args.warmup, sync)
    per_block = max(1, args.updates // args.repeats)
    blocks = {name: {'wall': [], 'cpu': []} for name in rls}
    for r in range(args.repeats):
        for name in (list(rls) if r % 2 == 0 else list(rls)[::-1]):
            wall, cpu = timed_block(rls[name], data, per_block, sync)
            blocks[name]['wall'].append(wall)
            blocks[name]['cpu'].append(cpu)
    ms = {name: {kind: {'median': statistics.median(v), 'best': min(v), 'blocks': v} for kind, v in b.items()}
          for name, b in blocks.items()}
    speedup = {kind: {stat: ms['pair'][kind][stat] / ms['fused'][kind][stat] for stat in ('median', 'best')}
               for kind in ('wall', 'cpu')}
    result = {'schema': SCHEMAS['update'], 'algo': args.algo, 'batch': args.batch, 'hidden': args.hidden,
              'inp': args.inp, 'action_dim': args.action_dim, 'threads': args.threads, 'device': args.device,
              'updates_per_block': per_block, 'repeats': args.repeats, 'ms_per_update': ms,
              'speedup_pair_over_fused': speedup, 'host': host(), 'date': time.strftime('%Y-%m-%d %H:%M:%S'),
              'command': 'python -m bench.bench_update ' + ' '.join(argv if argv is not None else sys.argv[1:])}
    print(f'{args.algo}: ms per update over {args.repeats} interleaved blocks of {per_block} (median / best block)')
    for name, m in ms.items():
        print(f"  {name:5s} (fused_critic={PATHS[name]!s:5s})  wall {m['wall']['median']:.3f} / {m['wall']['best']:.3f}"
              f"   CPU {m['cpu']['median']:.3f} / {m['cpu']['best']:.3f}")
    print(f"  speed-up pair/fused: wall {speedup['wall']['median']:.3f}x / {speedup['wall']['best']:.3f}x   "
          f"CPU {speedup['cpu']['median']:.3f}x / {speedup['cpu']['best']:.3f}x")
    h = result['host']
    print(f"  host {h['platform']}, {h['cpu_count']} CPUs, load {h['load_average']}, {args.threads} torch thread(s)")
    out = args.json or UPDATE / f'{args.algo}.json'
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + '\n')
    print('wrote', repo_relative(out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
