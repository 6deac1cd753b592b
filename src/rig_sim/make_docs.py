"""Regenerate the task pictures of docs/tasks.md: `python -m rig_sim.make_docs [--out DIR]`.

Writes into docs/img/tasks/:
  {task}_{arm}.png   the 48x48 learner image (nearest-neighbour upscaled) beside the 256x256
                     overview, with the scene at a goal state drawn by sample_goal() (seed 0);
  push_goals.png     a strip of goal images from sample_goal() (push, Sawyer, 48x48 upscaled);
  fidelity.png       the overview of both arms at each mesh fidelity.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.image
import numpy as np

from rig_sim import ARMS, TASKS, RigScene, SimConfig, make_env
from rig_sim.config import MESH_FIDELITIES

PANEL = 256       # side of every panel in the pictures
GAP = 4           # white pixels between panels
GOAL_STRIP_COUNT = 6
DEFAULT_OUT = Path(__file__).resolve().parents[2] / 'docs' / 'img' / 'tasks'


def upscale_nearest(image: np.ndarray, size: int = PANEL) -> np.ndarray:
    """Nearest-neighbour resize to size x size, so the learner's pixels stay visible as blocks."""
    rows = np.arange(size) * image.shape[0] // size
    cols = np.arange(size) * image.shape[1] // size
    return image[rows][:, cols]


def side_by_side(images: list[np.ndarray]) -> np.ndarray:
    gap = np.full((images[0].shape[0], GAP, 3), 255, np.uint8)
    parts = [images[0]]
    for image in images[1:]:
        parts += [gap, image]
    return np.concatenate(parts, axis=1)


def task_picture(task: str, arm: str) -> np.ndarray:
    env = make_env(task=task, arm=arm)
    env.reset(seed=0)
    env.scene.set_state(env.sample_goal()['state'])
    picture = side_by_side([upscale_nearest(env.scene.render()),
                            env.scene.render(PANEL, PANEL, 'overview')])
    env.close()
    return picture


def goal_strip(task: str = 'push', arm: str = 'sawyer') -> np.ndarray:
    env = make_env(task=task, arm=arm)
    env.reset(seed=0)
    goals = [env.sample_goal()['image'] for _ in range(GOAL_STRIP_COUNT)]
    env.close()
    return side_by_side([upscale_nearest(image, PANEL // 2) for image in goals])


def fidelity_picture() -> np.ndarray:
    rows = []
    for arm in ARMS:
        panels = []
        for fidelity in MESH_FIDELITIES:
            with RigScene(SimConfig(task='push', arm=arm, mesh_fidelity=fidelity)) as scene:
                panels.append(scene.render(PANEL, PANEL, 'overview'))
        rows.append(side_by_side(panels))
    gap = np.full((GAP, rows[0].shape[1], 3), 255, np.uint8)
    return np.concatenate([rows[0], gap, rows[1]], axis=0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=DEFAULT_OUT, help='output directory')
    out = parser.parse_args(argv).out
    out.mkdir(parents=True, exist_ok=True)
    for task in TASKS:
        for arm in ARMS:
            matplotlib.image.imsave(out / f'{task}_{arm}.png', task_picture(task, arm))
    matplotlib.image.imsave(out / 'push_goals.png', goal_strip())
    matplotlib.image.imsave(out / 'fidelity.png', fidelity_picture())
    print(f'wrote pictures to {out}')


if __name__ == '__main__':
    main()
