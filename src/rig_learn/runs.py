"""Run directories: config lookup, training with metrics.jsonl / plots / checkpoints, re-evaluation."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

from rig_base.config import load_yaml, to_dict
from rig_base.resources import learner_config

from . import plots
from .agent import RIGAgent
from .config import LearnConfig, with_overrides
from .envs import make_task_env, set_rendering
from .protocol import ProtocolError, check_env, declared


def load_config(task: str | None = None, path=None, **overrides) -> LearnConfig:
    """LearnConfig from `path` (or config/learn_<task>.yaml when it exists), then `overrides`
    (None values ignored)."""
    if path is None and task is not None:
        path = learner_config(task)
    cfg = load_yaml(LearnConfig, path, **({'task': task} if task and path is None else {}))
    if task is not None:
        overrides.setdefault('task', task)
    return with_overrides(cfg, overrides)


class MetricsWriter:
    def __init__(self, path: Path):
        self.path = path
        self.rows: list[dict] = []

    def write(self, row: dict) -> None:
        self.rows.append(row)
        with open(self.path, 'a') as f:
            f.write(json.dumps(row) + '\n')


def read_metrics(path) -> list[dict]:
    rows = []
    p = Path(path)
    if p.is_file():
        for line in p.read_text().splitlines():
            if line.strip():
                rows.append(json.loads(line))
    return rows


def _np_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


def write_json(path, obj) -> None:
    Path(path).write_text(json.dumps(obj, indent=2, default=_np_default))


def per_goal(res) -> dict:
    """An EvalResult's per-goal values as eval.json keeps them (where each goal was, how it ended)."""
    return {'hand_distance': res.hand_distance, 'puck_distance': res.puck_distance,
            'door_angle_error': res.door_angle_error, 'success': res.success, 'goal_state': res.goal_states}


def eval_row(agent, result, prefix='eval/') -> dict:
    return {**result.summary(prefix), **{k: v for k, v in agent.counters.items() if k != 'vae_pretrained'}}


def write_plots(res, env, cfg: LearnConfig, grid_path, map_path) -> None:
    """The eval grid and goal map of an evaluation on `env`, the map with the success threshold and
    axes `env` declares (protocol.py: success_threshold, goal_map_axes)."""
    plots.eval_grid(res, grid_path, title=f'{cfg.task} {cfg.mode}: goals and reached images')
    plots.goal_map(res, map_path, title=f'{cfg.task} {cfg.mode} seed {cfg.seed}: final distance per goal',
                   success_threshold=declared(env, 'success_threshold'), axes=declared(env, 'goal_map_axes'))


def train_run(cfg: LearnConfig, steps: int, out_dir, progress: bool = True, env=None, eval_env=None,
              max_wall_s: float | None = None) -> dict:
    """Train `cfg` for `steps` env steps into run directory `out_dir`:
    config.yaml, metrics.jsonl, checkpoint/, learning_curve.png, eval_grid.png, eval.json.
    `max_wall_s` caps the wall time (VAE pretraining included): training stops at the first env step
    past it and the final evaluation follows, so a slow method can be compared on the same time
    budget; the summary's env_steps and 'stopped_by_wall_cap' say where it stopped.
    Returns the final summary (also in eval.json)."""
    if max_wall_s is not None and not max_wall_s > 0:
        raise ValueError(f'max_wall_s must be > 0 seconds, got {max_wall_s!r}')


    # Environments first: a bad task, env factory (EnvError) or protocol violation (ProtocolError)
    # fails before anything is written.
    env = env or make_task_env(cfg.task, cfg.arm, cfg.image_size, seed=cfg.seed, factory=cfg.env, horizon=cfg.horizon)
    eval_env = eval_env or make_task_env(cfg.task, cfg.arm, cfg.image_size, seed=cfg.seed + 1, factory=cfg.env,
                                         horizon=cfg.horizon)
    for e in (env, eval_env):
        try:
            check_env(e, cfg.image_size)
        except ProtocolError as exc:
            raise ProtocolError(f'env {cfg.env or cfg.task!r} breaks the env protocol (rig_learn/protocol.py): '
                                f'{exc}') from exc
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'metrics.jsonl').unlink(missing_ok=True)
    (out / 'config.yaml').write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    t_start = time.perf_counter()
    agent = RIGAgent.from_config(cfg, env, eval_env=eval_env)
    for e in (env, eval_env):   # a method that never looks at obs['image'] (the oracle) spares its rendering
        set_rendering(e, agent.featurizer.needs_images)
    metrics = MetricsWriter(out / 'metrics.jsonl')
    timing = {'eval_s': 0.0, 'pretrain_s': 0.0}
    if cfg.uses_vae:
        t = time.perf_counter()
        agent.pretrain_vae()
        timing['pretrain_s'] = time.perf_counter() - t
    bar = None
    if progress:
        bar = tqdm(total=steps, unit='step', dynamic_ncols=True, mininterval=0.5, desc=f'{cfg.task}/{cfg.mode}')
    state = {'eval': float('nan'), 't_loop': time.perf_counter(), 'grad0': agent.counters['grad_steps']}

    def do_eval(n_goals, record=0):
        t = time.perf_counter()
        res = agent.evaluate(n_goals=n_goals, record=record)
        timing['eval_s'] += time.perf_counter() - t
        return res

    def row_for(res):
        loop_s = time.perf_counter() - state['t_loop'] - timing['eval_s']
        row = {'wall_s': round(time.perf_counter() - t_start, 3), **eval_row(agent, res),
               'env_steps_per_s': agent.counters['env_steps'] / max(loop_s, 1e-9),
               'grad_steps_per_s': (agent.counters['grad_steps'] - state['grad0']) / max(loop_s, 1e-9),
               **{k: v for k, v in agent.last_metrics.items()}, 'pretrain_s': timing['pretrain_s'],
               'eval_s': timing['eval_s']}
        return row

    def callback(a):
        n = a.counters['env_steps']
        if bar is not None:
            bar.update(1)
        if cfg.eval.every and n % cfg.eval.every == 0 and n < steps:
            res = do_eval(cfg.eval.n_goals_during_training)
            row = row_for(res)
            metrics.write(row)
            state['eval'] = row.get('eval/hand_distance_median', row.get('eval/latent_distance_median', float('nan')))
            a.save(out / 'checkpoint')
            if bar is not None:
                bar.set_postfix(eval_dist=f"{state['eval']:.4f}", grad_s=f"{row['grad_steps_per_s']:.0f}")
        if max_wall_s is not None and time.perf_counter() - t_start >= max_wall_s:
            state['capped'] = True
            return False
        return True

    agent.learn(steps, callback=callback)
    if bar is not None:
        bar.close()
    res = do_eval(cfg.eval.n_goals, record=cfg.eval.grid_goals)
    row = row_for(res)
    row['final'] = True
    row['stopped_by_wall_cap'] = bool(state.get('capped', False))
    metrics.write(row)
    agent.save(out / 'checkpoint')
    plots.learning_curve({cfg.mode: metrics.rows}, out / 'learning_curve.png',
                         title=f'{cfg.task} ({cfg.arm}) {cfg.mode} seed {cfg.seed}')
    write_plots(res, eval_env, cfg, out / 'eval_grid.png', out / 'goal_map.png')
    summary = {**row, 'per_goal': per_goal(res)}
    write_json(out / 'eval.json', summary)
    return summary


def eval_run(path, n_goals: int | None = None, seed: int | None = None, device: str | None = None,
             env=None, grid: bool = True) -> dict:
    """Re-evaluate a run directory (its checkpoint/) or a checkpoint directory."""

    path = Path(path)
    ck = path / 'checkpoint' if (path / 'checkpoint').is_dir() else path
    agent = RIGAgent.load(ck, device=device)
    cfg = agent.cfg
    env = env or make_task_env(cfg.task, cfg.arm, cfg.image_size, seed=cfg.seed + 1, factory=cfg.env,
                               horizon=cfg.horizon)
    set_rendering(env, agent.featurizer.needs_images)
    res = agent.evaluate(env, n_goals=n_goals, seed=seed, record=cfg.eval.grid_goals if grid else 0)
    summary = {**eval_row(agent, res), 'checkpoint': str(ck),
               'per_goal': per_goal(res)}
    out_dir = ck.parent if ck.name == 'checkpoint' else ck
    write_json(out_dir / 'reeval.json', summary)
    if grid:
        write_plots(res, env, cfg, out_dir / 'reeval_grid.png', out_dir / 'reeval_goal_map.png')
    return summary
