"""Learner link node: an actor's link to a trainer on another host, over DDS only (no shared files).

One per actor namespace on an actor host (`rig up sim --remote-learner`, `remote_learner:=true`):
- **Checkpoints in.** It subscribes to the trainer's latched `/rig/checkpoint_bundle` (the inference
  part of its newest checkpoint, as a `rig_base.bundles` bundle in a `std_msgs/UInt8MultiArray`),
  verifies it, keeps it under `checkpoint_dir` and announces the local path, latched, on
  `rig/checkpoint_received`, where this actor's encoder and policy listen. A corrupt or truncated
  bundle is refused with the reason and nothing is announced: the old checkpoint keeps driving. At
  start it announces the newest one already on disk, so a restarted actor drives at once.
- **Episodes out.** It ships every closed bag of its actor in `data_dir` to the learner host on
  `/rig/episode_bags`, and sends each again every `resend_period_s` until the learner's episode
  receiver acknowledges it on `/rig/episode_acks` (`rig_trainer.shipping.Outbox`; acknowledged ones
  are listed in `<data_dir>/.shipped_<actor>`). Bags stay on the actor's disk.

- **Practice held without the learner.** It listens to the learner's heartbeat (the episode
  receiver's status, 1 Hz); before the first one, and once none has come for `hold_without_learner_s`,
  it holds practice on `rig/practice_hold` (latched, the reason; '' releases): the policy ends its
  episode, commands zero and is silent, and the safety filter's watchdog keeps the arm stopped, until
  the learner is heard again. `hold_without_learner_s: 0` practises on through an outage instead.

At shutdown it ships the bag its recorder closes last and waits up to `STOP_SHIP_S` for the learner's
answer; a bag still unacknowledged then stays on disk and is sent at the next start. Its state is on
`rig/link_status` (latched JSON, 1 Hz). The logic is `rig_trainer.shipping`.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

from rclpy.node import Node
from std_msgs.msg import String, UInt8MultiArray

from rig_base import bundles, qos
from rig_base.config import ConfigError
from rig_base.node_main import run_node
from rig_base.ros_params import declare_dataclass_parameters
from rig_learn.checkpoint import CheckpointError
from rig_trainer.bags import PARTIAL_DIR
from rig_trainer.shipping import Ack, CheckpointInbox, LearnerWatch, Outbox

CHECKPOINT_BUNDLE_TOPIC = '/rig/checkpoint_bundle'
EPISODE_BAGS_TOPIC = '/rig/episode_bags'
EPISODE_ACKS_TOPIC = '/rig/episode_acks'
#: The learner host's heartbeat: its episode receiver's status, 1 Hz.
LEARNER_STATUS_TOPIC = '/rig/episode_receiver_status'
WATCH_PERIOD_S = 0.5
STATUS_PERIOD_S = 1.0
#: At shutdown, how long the link waits for the recorder's last bag to be closed and acknowledged
#: (within rig_base.node_main.STOP_GRACE_S).
STOP_SHIP_S = 3.0


@dataclasses.dataclass
class LinkConfig:
    data_dir: str = 'data'
    actor: str = 'actor0'
    checkpoint_dir: str = ''
    keep_checkpoints: int = 3
    scan_period_s: float = 1.0
    resend_period_s: float = 5.0
    max_in_flight: int = 4
    hold_without_learner_s: float = 5.0

    def __post_init__(self):
        if not self.data_dir or not self.actor:
            raise ConfigError('data_dir and actor must not be empty')
        if self.keep_checkpoints < 1 or self.max_in_flight < 1:
            raise ConfigError(f'keep_checkpoints and max_in_flight must be >= 1, got {self.keep_checkpoints} '
                              f'and {self.max_in_flight}')
        if self.hold_without_learner_s < 0:
            raise ConfigError(f'hold_without_learner_s must be >= 0 (0 = never hold), '
                              f'got {self.hold_without_learner_s}')
        if self.scan_period_s <= 0 or self.resend_period_s <= 0:
            raise ConfigError(f'scan_period_s and resend_period_s must be > 0, got {self.scan_period_s} '
                              f'and {self.resend_period_s}')

    @property
    def checkpoints(self) -> Path:
        return Path(self.checkpoint_dir or Path(self.data_dir) / f'received_checkpoints_{self.actor}')


DESCRIPTIONS = {
    'data_dir': "this actor host's directory of episode bags (its recorder writes them here)",
    'actor': "this actor's name, the prefix of its bag names (the recorder's `actor`)",
    'checkpoint_dir': "where received checkpoints are kept; '' = <data_dir>/received_checkpoints_<actor>",
    'keep_checkpoints': 'how many received checkpoints to keep on disk',
    'scan_period_s': 'how often data_dir is scanned for closed bags to ship',
    'resend_period_s': 'an episode not acknowledged by the learner after this long is sent again',
    'max_in_flight': 'most episodes sent and not yet acknowledged at a time',
    'hold_without_learner_s': 'hold practice (arm stopped) once the learner host has not been heard for '
                              'this long, and until it is first heard; 0 = practise on through an outage',
}
LIVE_PARAMETERS = ('scan_period_s', 'resend_period_s', 'max_in_flight', 'hold_without_learner_s')


class LearnerLinkNode(Node):
    def __init__(self, cfg: LinkConfig | None = None, **node_kwargs):
        super().__init__('learner_link', **node_kwargs)
        self.cfg: LinkConfig = declare_dataclass_parameters(self, cfg or LinkConfig(), DESCRIPTIONS,
                                                              live=LIVE_PARAMETERS)
        Path(self.cfg.data_dir).mkdir(parents=True, exist_ok=True)
        self.inbox = CheckpointInbox(self.cfg.checkpoints, keep=self.cfg.keep_checkpoints)
        self.outbox = Outbox(self.cfg.data_dir, self.cfg.actor, self.cfg.resend_period_s, self.cfg.max_in_flight)
        self.counts = {'checkpoints': 0, 'refused_checkpoints': 0, 'bytes_sent': 0, 'bytes_received': 0}
        self.last_error = ''
        self.started = time.monotonic()
        self._stop_by: float | None = None   # shutdown: the deadline for the last bag's answer
        self.watch = LearnerWatch(self.cfg.hold_without_learner_s)
        self.hold = None                     # the reason last sent on rig/practice_hold
        self.checkpoint_pub = self.create_publisher(String, 'rig/checkpoint_received', qos.CHECKPOINT_QOS)
        self.bag_pub = self.create_publisher(UInt8MultiArray, EPISODE_BAGS_TOPIC, qos.EPISODE_BAG_QOS)
        self.status_pub = self.create_publisher(String, 'rig/link_status', qos.LATCHED_QOS)
        self.hold_pub = self.create_publisher(String, 'rig/practice_hold', qos.PRACTICE_HOLD_QOS)
        self.create_subscription(UInt8MultiArray, CHECKPOINT_BUNDLE_TOPIC, self._on_checkpoint,
                                 qos.CHECKPOINT_BUNDLE_QOS)
        self.create_subscription(String, EPISODE_ACKS_TOPIC, self._on_ack, qos.EPISODE_ACK_QOS)
        self.create_subscription(String, LEARNER_STATUS_TOPIC, lambda _: self.watch.heard(time.monotonic()),
                                 qos.LATCHED_QOS)
        self.create_timer(self.cfg.scan_period_s, self._ship)
        self.create_timer(WATCH_PERIOD_S, self._watch_learner)
        self.create_timer(STATUS_PERIOD_S, self.publish_status)
        if self.inbox.latest is not None:
            self.get_logger().info(f'driving with {self.inbox.latest.name} from an earlier run until the '
                                   'learner sends a newer one')
            self.checkpoint_pub.publish(String(data=str(self.inbox.latest)))
        self.get_logger().info(f'link of actor {self.cfg.actor}: shipping bags from {self.cfg.data_dir}, '
                               f'checkpoints into {self.cfg.checkpoints}')

    def on_parameters_changed(self, old: LinkConfig, new: LinkConfig) -> None:
        self.outbox.resend_period_s, self.outbox.max_in_flight = new.resend_period_s, new.max_in_flight
        self.watch.hold_after_s = new.hold_without_learner_s
        self._watch_learner()

    # -- the learner's heartbeat ----------------------------------------------------------------------
    def _watch_learner(self) -> None:
        reason = self.watch.hold_reason(time.monotonic())
        if reason == self.hold:
            return
        if reason:
            self.get_logger().warning(f'holding practice: {reason}; episodes wait on disk')
        elif self.hold is not None:
            self.get_logger().info('the learner host is heard: practice goes on')
        self.hold = reason
        self.hold_pub.publish(String(data=reason))

    # -- checkpoints in -------------------------------------------------------------------------------
    def _on_checkpoint(self, msg: UInt8MultiArray) -> None:
        data = bundles.from_msg_data(msg.data)
        self.counts['bytes_received'] += len(data)
        try:
            path = self.inbox.receive(data)
        except (bundles.BundleError, CheckpointError, OSError) as exc:
            self.counts['refused_checkpoints'] += 1
            self.last_error = f'refused a checkpoint: {exc}'
            self.get_logger().error(f'refusing a checkpoint from the learner ({len(data)} bytes): {exc}; '
                                    f'keeping {self.inbox.latest.name if self.inbox.latest else "none"}')
            return
        self.counts['checkpoints'] += 1
        self.get_logger().info(f'received {path.name} ({len(data) / 1e6:.2f} MB)')
        self.checkpoint_pub.publish(String(data=str(path)))

    # -- episodes out ---------------------------------------------------------------------------------
    def _ship(self) -> None:
        now = time.monotonic()
        for bag in self.outbox.due(now):
            try:
                data = self.outbox.bundle(bag, now)
            except OSError as exc:   # deleted meanwhile, unreadable: say so, try again next scan
                self.get_logger().error(f'cannot read {bag.name} to ship it: {exc}', throttle_duration_sec=10.0)
                continue
            self.bag_pub.publish(UInt8MultiArray(data=bundles.to_msg_data(data)))
            self.counts['bytes_sent'] += len(data)

    def _on_ack(self, msg: String) -> None:
        try:
            ack = Ack.from_json(msg.data)
        except ValueError as exc:
            self.get_logger().warning(str(exc), throttle_duration_sec=5.0)
            return
        problem = self.outbox.acknowledge(ack)
        if problem:
            self.last_error = problem
            self.get_logger().error(problem)

    def stop(self) -> None:
        """Shutdown began: ship what the recorder closes now, and wait a little for the answer."""
        self._stop_by = time.monotonic() + STOP_SHIP_S

    def finished_stopping(self, force: bool = False) -> bool:
        if self._stop_by is None:
            return True
        if not force and time.monotonic() < self._stop_by:
            self._ship()
            partial = Path(self.cfg.data_dir) / PARTIAL_DIR
            recording = partial.is_dir() and any(p.name.startswith(f'{self.cfg.actor}_') for p in partial.iterdir())
            if recording or self.outbox.pending():
                return False
        left = self.outbox.pending()
        if left:   # nothing is lost: the next start sends them first
            self.get_logger().warning(
                f'shutdown: {len(left)} episode(s) not acknowledged by the learner yet stay on disk and '
                f'are sent at the next start: {", ".join(p.name for p in left)}')
        self._stop_by = None
        return True

    def status(self) -> dict:
        return {**self.counts, 'latest': str(self.inbox.latest or ''), 'shipped': len(self.outbox.shipped),
                'pending': self.outbox.pending_at_last_scan, 'in_flight': len(self.outbox.in_flight),
                'sends': self.outbox.sends, 'refused_bags': len(self.outbox.refused),
                'uptime_s': round(time.monotonic() - self.started, 1), 'hold': self.hold or '',
                'error': self.last_error}

    def publish_status(self) -> None:
        self.status_pub.publish(String(data=json.dumps(self.status())))


def main(args=None) -> int:
    return run_node(LearnerLinkNode, 'learner_link', args)


if __name__ == '__main__':
    sys.exit(main())
