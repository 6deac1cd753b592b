"""Trainer node: watches the data directory, learns from closed bags, announces checkpoints.

A worker thread runs `OnlineTrainer` (ingest -> train -> checkpoint) so the ROS executor, which in
`rig up` is shared with the other nodes, never waits on a gradient step. Every checkpoint is written
atomically and its path published latched on `rig/checkpoint`; encoder and policy hot-reload it. For
actors on other hosts (`send_checkpoints`), its inference part is published too, latched, as a bundle
on `/rig/checkpoint_bundle` (`rig_trainer.shipping.checkpoint_bundle`; learner links receive it).
Killed at any moment (even kill -9), a restarted trainer resumes from its newest checkpoint and the
bags on disk without losing or double-counting an episode (see `rig_trainer.online`).

Shutdown (`rig_base.node_main.stop_nodes`): `stop()` asks the thread to stop; it leaves within about one
VAE or gradient step (even mid-pretraining or mid-refit: those run in slices), writes a final
checkpoint if anything is new since the last one (a fit's progress included), announces it, and
exits; `finished_stopping()` says when. A checkpoint is written atomically: the newest complete one
is always intact, whenever the process ends.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import threading
import time

import torch
from rclpy.node import Node
from std_msgs.msg import String, UInt8MultiArray

from rig_base import bundles, qos
from rig_base.config import ConfigError
from rig_base.node_main import run_node
from rig_base.ros_params import declare_dataclass_parameters
from rig_trainer.link_node import CHECKPOINT_BUNDLE_TOPIC
from rig_trainer.online import OnlineTrainer, TrainerConfig, check_scale_config
from rig_trainer.shipping import checkpoint_bundle

STATUS_PERIOD_S = 1.0   # rig/trainer_status
JOIN_S = 1.5   # destroy_node's longest wait for the thread (it stops within a step, then saves)


@dataclasses.dataclass
class TrainerNodeConfig(TrainerConfig):
    scan_period_s: float = 1.0
    train_slice_s: float = 0.5
    send_checkpoints: bool = True
    nice: int = 0

    def __post_init__(self):
        try:
            check_scale_config(self)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.action_dim not in (2, 3):
            raise ConfigError(f'action_dim must be 2 or 3, got {self.action_dim}')
        at_least_one = {f: getattr(self, f) for f in ('checkpoint_every_updates', 'keep_checkpoints')}
        low = {f: v for f, v in at_least_one.items() if v < 1}
        if low:
            raise ConfigError(f'{", ".join(low)} must be >= 1, got {", ".join(str(v) for v in low.values())}')
        if not 0 <= self.nice <= 19:
            raise ConfigError(f'nice must be 0..19 (0 = the priority of the rest of the graph), got {self.nice}')
        if self.scan_period_s <= 0 or self.train_slice_s <= 0:
            raise ConfigError(f'scan_period_s and train_slice_s must be > 0, got scan_period_s='
                              f'{self.scan_period_s} train_slice_s={self.train_slice_s}')


DESCRIPTIONS = {
    'data_dir': 'directory of episode bags (written by recorders or `ros2 bag record`)',
    'checkpoint_dir': "where checkpoints are written; '' = <data_dir>/checkpoints",
    'task': 'task the model is trained for (checked by consumers of the checkpoints)',
    'arm': 'arm the data comes from',
    'learn_config': "learner YAML (rig_learn.config.LearnConfig), the schedule `rig train` follows too; "
                    "'' = config/learn_<task>.yaml",
    'learn_set': "overrides of the learner YAML, KEY=VALUE as `rig train --set` (e.g. ['vae.pretrain_images=1000'])",
    'action_scale': "metres per step at action 1.0 (the policy's); 0 = as the episodes record it (the first "
                    'that records it sets it for the run); given, episodes recorded at another are refused',
    'control_rate_hz': "control rate of the actors (the policy's); 0 = as the episodes record it, like action_scale",
    'action_dim': 'action dimensions: 2 (x-y hand motion) or 3 (x-y-z)',
    'checkpoint_every_updates': 'publish a checkpoint at least every this many gradient steps',
    'keep_checkpoints': 'how many checkpoints to keep on disk',
    'seed': 'seed of the learner',
    'device': 'torch device: cpu or cuda',
    'num_threads': 'torch threads for training (leave cores to the rest of the graph)',
    'scan_period_s': 'how often the data directory is scanned for new bags',
    'train_slice_s': 'longest uninterrupted training slice between scans',
    'send_checkpoints': 'also publish each checkpoint\'s inference part on /rig/checkpoint_bundle, for actors '
                        'on other hosts (their learner links)',
    'nice': 'lower the training thread\'s CPU priority by this much (Linux nice, 0..19): on a computer '
            'shared with a control loop, e.g. 10 puts the loop first and training takes what is left',
}
#: Settable at run time (`ros2 param set`): read by the training thread when used (the core's fields
#: are copied into `OnlineTrainer.cfg`: see `TrainerNode.on_parameters_changed`). The rest is read-only:
#: paths, task, the learner config and its overrides (the model and its schedule), action conversion,
#: seed and device are fixed for a run (and a checkpoint).
LIVE_PARAMETERS = ('checkpoint_every_updates', 'keep_checkpoints', 'scan_period_s', 'train_slice_s')


class TrainerNode(Node):
    def __init__(self, cfg: TrainerNodeConfig | None = None, **node_kwargs):
        super().__init__('trainer', **node_kwargs)
        self.cfg: TrainerNodeConfig = declare_dataclass_parameters(self, cfg or TrainerNodeConfig(), DESCRIPTIONS,
                                                                      live=LIVE_PARAMETERS)
        base = {f.name: getattr(self.cfg, f.name) for f in dataclasses.fields(TrainerConfig)}
        _route_python_logging(self)
        self._stop = threading.Event()
        self.trainer = OnlineTrainer(TrainerConfig(**base), stop=self._stop)
        self.checkpoint_pub = self.create_publisher(String, 'rig/checkpoint', qos.CHECKPOINT_QOS)
        self.bundle_pub = (self.create_publisher(UInt8MultiArray, CHECKPOINT_BUNDLE_TOPIC, qos.CHECKPOINT_BUNDLE_QOS)
                           if self.cfg.send_checkpoints else None)
        self.bundle_bytes = 0   # the newest bundle's size
        if self.trainer.latest is not None:
            self._announce(self.trainer.latest)
        # What the trainer is doing, for people and programs (`ros2 topic echo /rig/trainer_status`).
        self.status_pub = self.create_publisher(String, 'rig/trainer_status', qos.LATCHED_QOS)
        self.create_timer(STATUS_PERIOD_S, self.publish_status)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name='rig-trainer', daemon=True)
        self._thread.start()
        self.get_logger().info(f'trainer watching {self.cfg.data_dir}, checkpoints in '
                               f'{self.trainer.ckpt_dir}')

    def status(self) -> dict:
        """Counters, newest checkpoint, VAE fit in progress, bags waiting, and whether it is caught up."""
        t = self.trainer
        scales = t.scales
        return {'counters': dict(t.counters), 'latest': str(t.latest or ''), 'vae_job': dict(t.vae_job or {}),
                'pretrain_images': t.schedule.pretrain_images, 'schedule_start': t.schedule_start,
                **t.backlog(), 'bad_bags': len(t.bad_bags), 'dropped_frames': dict(t.dropped_frames),
                'action_scale': scales and scales[0], 'control_rate_hz': scales and scales[1],
                'refused_episodes': len(t.refused_episodes), 'waiting_for_scales': len(t.waiting_for_scales),
                'checkpoint_bundle_bytes': self.bundle_bytes,
                'error': '' if self.error is None else f'{type(self.error).__name__}: {self.error}'}

    def publish_status(self) -> None:
        try:
            text = json.dumps(self.status())
        except RuntimeError:   # a dict changed size while the training thread wrote it: next tick
            return
        self.status_pub.publish(String(data=text))

    def on_parameters_changed(self, old: TrainerNodeConfig, new: TrainerNodeConfig) -> None:
        """The core's own copy gets the new values; the thread reads them at their next use."""
        changed = {f.name: getattr(new, f.name) for f in dataclasses.fields(TrainerConfig)
                   if getattr(new, f.name) != getattr(old, f.name)}
        if changed:
            self.trainer.cfg = dataclasses.replace(self.trainer.cfg, **changed)

    def _run(self) -> None:
        torch.set_num_threads(max(1, self.cfg.num_threads))
        # Linux keeps a nice value per thread: this lowers the training thread (and threads started
        # from it inherit it), not the node's executor, which answers and publishes at full priority.
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(),
                       min(19, os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) + self.cfg.nice))
        last_scan = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now - last_scan >= self.cfg.scan_period_s:
                    last_scan = now
                    self.trainer.ingest()
                done = self.trainer.train(self.cfg.train_slice_s)
                if self.trainer.checkpoint_due and not self._stop.is_set():
                    self._checkpoint()
                if done == 0 and not self.trainer.fitting_vae:
                    self._stop.wait(0.1)   # nothing to train on yet
            if self.trainer.unsaved:
                self._checkpoint(final=True)
        except BaseException as exc:  # noqa: BLE001 - reported, and the node says so loudly
            self.error = exc
            self.get_logger().fatal(f'training stopped: {type(exc).__name__}: {exc}')
            raise

    def _checkpoint(self, final: bool = False) -> None:
        path = self.trainer.save_checkpoint()
        c = self.trainer.counters
        job = self.trainer.vae_job
        self.get_logger().info(
            f'{"final " if final else ""}checkpoint {path.name}: {c["episodes"]} episodes, '
            f'{c["transitions"]} transitions, {c["updates"]} updates, {c["vae_fits"]} VAE fits'
            + (f', VAE {job["kind"]} at step {job["done"]}/{job["steps"]}' if job else ''))
        try:
            self._announce(path)
        except Exception as exc:  # noqa: BLE001 - at shutdown the node may be gone; the file is there
            if not final:
                raise
            self.get_logger().warning(f'final checkpoint {path.name} written but not announced: {exc}')

    def _announce(self, path) -> None:
        """The path on rig/checkpoint; the inference part on /rig/checkpoint_bundle (send_checkpoints)."""
        self.checkpoint_pub.publish(String(data=str(path)))
        if self.bundle_pub is not None:
            data = checkpoint_bundle(path)
            self.bundle_bytes = len(data)
            self.bundle_pub.publish(UInt8MultiArray(data=bundles.to_msg_data(data)))

    def stop(self) -> None:
        """Shutdown began: the thread stops at its next step, saves what is new and announces it."""
        self._stop.set()

    def finished_stopping(self, force: bool = False) -> bool:
        return not self._thread.is_alive()

    def destroy_node(self):
        self._stop.set()
        self._thread.join(timeout=JOIN_S)
        if self._thread.is_alive():
            self.get_logger().error(f'trainer thread still busy after {JOIN_S} s; the newest complete '
                                    'checkpoint on disk is intact')
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
    return run_node(TrainerNode, 'trainer', args)


if __name__ == '__main__':
    sys.exit(main())
