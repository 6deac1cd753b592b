"""Trainer node: watches the data directory, learns from closed bags, announces checkpoints.

A worker thread runs `OnlineTrainer` (ingest -> train -> checkpoint) so the ROS executor, which in
`rig up` is shared with the other nodes, never waits on a gradient step. Every checkpoint is written
atomically and its path published latched on `rig/checkpoint`; encoder and policy hot-reload it.
Killed at any moment (even kill -9), a restarted trainer resumes from its newest checkpoint and the
bags on disk without losing or double-counting an episode (see `rig_trainer.online`).
"""
from __future__ import annotations

import sys
import dataclasses
import logging
import threading
import time

from rclpy.node import Node
from std_msgs.msg import String

from rig import qos
from rig.node_main import run_node
from rig.ros_params import declare_dataclass_parameters
from rig_trainer.online import OnlineTrainer, TrainerConfig


@dataclasses.dataclass
class TrainerNodeConfig(TrainerConfig):
    checkpoint: str = ''
    scan_period_s: float = 1.0
    train_slice_s: float = 0.5


DESCRIPTIONS = {
    'data_dir': 'directory of episode bags (written by recorders or `ros2 bag record`)',
    'checkpoint_dir': "where checkpoints are written; '' = <data_dir>/checkpoints",
    'task': 'task the model is trained for (checked by consumers of the checkpoints)',
    'arm': 'arm the data comes from',
    'learn_config': "learner YAML (rig_learn.config.LearnConfig); '' = config/learn_<task>.yaml",
    'action_scale': 'metres per step at action 1.0 (must match the policy node)',
    'control_rate_hz': 'control rate of the actors (must match the policy node)',
    'action_dim': 'action dimensions: 2 (x-y hand motion) or 3 (x-y-z)',
    'updates_per_transition': 'gradient steps per ingested transition (the paper: about 4)',
    'pretrain_min_images': 'frames on disk before the first VAE fit',
    'pretrain_steps': 'Adam steps of the first VAE fit',
    'refit_every_transitions': 'refit the VAE (and re-encode the buffer) after this many new transitions',
    'checkpoint_every_updates': 'publish a checkpoint at least every this many gradient steps',
    'keep_checkpoints': 'how many checkpoints to keep on disk',
    'seed': 'seed of the learner',
    'device': 'torch device: cpu or cuda',
    'num_threads': 'torch threads for training (leave cores to the rest of the graph)',
    'checkpoint': 'unused by the trainer (it resumes from checkpoint_dir); accepted for a uniform launch',
    'scan_period_s': 'how often the data directory is scanned for new bags',
    'train_slice_s': 'longest uninterrupted training slice between scans',
}


class Trainer(Node):
    def __init__(self, cfg: TrainerNodeConfig | None = None, **node_kwargs):
        super().__init__('trainer', **node_kwargs)
        self.cfg: TrainerNodeConfig = declare_dataclass_parameters(self, cfg or TrainerNodeConfig(), DESCRIPTIONS)
        base = {f.name: getattr(self.cfg, f.name) for f in dataclasses.fields(TrainerConfig)}
        _route_python_logging(self)
        self.trainer = OnlineTrainer(TrainerConfig(**base))
        self.checkpoint_pub = self.create_publisher(String, 'rig/checkpoint', qos.CHECKPOINT_QOS)
        if self.trainer.latest is not None:
            self.checkpoint_pub.publish(String(data=str(self.trainer.latest)))
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name='rig-trainer', daemon=True)
        self._thread.start()
        self.get_logger().info(f'trainer watching {self.cfg.data_dir}, checkpoints in '
                               f'{self.trainer.ckpt_dir}')

    def _run(self) -> None:
        import torch
        torch.set_num_threads(max(1, self.cfg.num_threads))
        last_scan = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now - last_scan >= self.cfg.scan_period_s:
                    last_scan = now
                    self.trainer.ingest()
                done = self.trainer.train(self.cfg.train_slice_s)
                if self.trainer.checkpoint_due:
                    path = self.trainer.save_checkpoint()
                    self.checkpoint_pub.publish(String(data=str(path)))
                    c = self.trainer.counters
                    self.get_logger().info(
                        f'checkpoint {path.name}: {c["episodes"]} episodes, {c["transitions"]} transitions, '
                        f'{c["updates"]} updates, {c["vae_fits"]} VAE fits')
                if done == 0:
                    self._stop.wait(0.1)
        except BaseException as exc:  # noqa: BLE001 - reported, and the node says so loudly
            self.error = exc
            self.get_logger().fatal(f'training stopped: {type(exc).__name__}: {exc}')
            raise

    def destroy_node(self):
        self._stop.set()
        self._thread.join(timeout=30)
        return super().destroy_node()


def _route_python_logging(node: Node) -> None:
    """The core logs with `logging`; show it in the node's ROS log."""
    logger = node.get_logger()

    class Handler(logging.Handler):
        def emit(self, record):
            text = self.format(record)
            # rclpy binds a severity to each call site: one call per level.
            if record.levelno >= logging.ERROR:
                logger.error(text)
            elif record.levelno >= logging.WARNING:
                logger.warning(text)
            else:
                logger.info(text)
    core = logging.getLogger('rig.trainer')
    core.handlers[:] = [Handler()]
    core.setLevel(logging.INFO)
    core.propagate = False


def main(args=None) -> int:
    return run_node(Trainer, 'trainer', args)


if __name__ == '__main__':
    sys.exit(main())
