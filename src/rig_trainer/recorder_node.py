"""Recorder node: each episode's topics -> one rosbag2 (MCAP) directory under the data directory.

Episode boundaries come from `rig/episode` events (JSON, docs/interfaces.md). Messages are recorded as the
serialized bytes that arrived (raw subscriptions), so nothing is decoded and re-encoded on the way to
disk: the start event lands in the bag as the policy sent it, with the action scale, control rate and
action size the episode's commands are made with (the trainer turns them back into actions with those).
A bag becomes visible to the trainer only once closed; after a crash it stays in `.partial/` where
nobody reads it.

Shutdown (SIGINT to the whole graph, every node at once): the policy ends its episode with
`"reason": "shutdown"` and the safety filter sends a last zero command. The recorder keeps the bag
open until it has both, or `STOP_WAIT_S` passes; if the end event never came it writes one itself
(`"reason": "recorder shutdown"`), so the last bag always ends with its end event and, when the filter
is alive, its final zero command.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import sys
import time

from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.node import Node
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import String

from rig_base import qos
from rig_base.config import ConfigError
from rig_base.msgs import twist_is_zero
from rig_base.node_main import run_node
from rig_base.ros_params import declare_dataclass_parameters
from rig_trainer.bags import RECORDED_TOPICS, EpisodeBagWriter

MSG_CLASSES = {
    'sensor_msgs/msg/Image': Image,
    'geometry_msgs/msg/TwistStamped': TwistStamped,
    'std_msgs/msg/String': String,
    'geometry_msgs/msg/PoseStamped': PoseStamped,
}
TOPIC_QOS = {
    'camera/image_raw': qos.CAMERA_SUBSCRIBER_QOS,
    'rig/cmd': qos.COMMAND_QOS,
    'rig/episode': qos.EPISODE_QOS,
    'rig/ee_pose': qos.STATE_RECORDER_QOS,
}
#: How long the recorder waits for an episode's last words (end event, zero command) at shutdown.
STOP_WAIT_S = 1.5
#: Pre-roll: messages that arrive while no bag is open are kept this long (at most PRE_ROLL_MAX) and
#: written into the bag that the next start event opens. An episode's first frame (the one after the
#: reset) and even its first commands can reach the recorder before its start event: one subscription
#: per topic, and DDS gives no order between topics.
PRE_ROLL_S = 2.0
PRE_ROLL_MAX = 256


@dataclasses.dataclass
class RecorderConfig:
    data_dir: str = 'data'
    actor: str = 'actor0'
    max_episode_s: float = 600.0

    def __post_init__(self):
        if self.max_episode_s <= 0:
            raise ConfigError(f'max_episode_s must be > 0, got {self.max_episode_s}')
        if not self.data_dir or not self.actor:
            raise ConfigError('data_dir and actor must not be empty')


DESCRIPTIONS = {
    'data_dir': 'directory the episode bags are written to (the trainer watches it)',
    'actor': 'name of this actor, the prefix of its bag names (several actors may share a data_dir)',
    'max_episode_s': 'an episode still open after this long is closed anyway (a lost end event)',
}
#: Settable at run time (`ros2 param set`); data_dir and actor (where the trainer looks, what it is
#: called) are read-only.
LIVE_PARAMETERS = ('max_episode_s',)


class RecorderNode(Node):
    def __init__(self, cfg: RecorderConfig | None = None, **node_kwargs):
        super().__init__('recorder', **node_kwargs)
        self.cfg: RecorderConfig = declare_dataclass_parameters(self, cfg or RecorderConfig(), DESCRIPTIONS,
                                                                  live=LIVE_PARAMETERS)
        self.writer: EpisodeBagWriter | None = None
        self.opened_at = 0.0
        self.bags_written = 0
        self.dropped_outside_episode = 0
        self.episode_id = None           # the open episode's id
        self._end_seen = False           # the open episode's end event is written
        self._zero_seen = False          # ... and its last rig/cmd is zero
        self._close_by = None            # monotonic deadline for those last words (shutdown only)
        self._pre_roll: collections.deque = collections.deque()   # (receive ns, topic, raw), no bag open
        for topic, msgtype in RECORDED_TOPICS.items():
            self.create_subscription(MSG_CLASSES[msgtype], topic, self._make_callback(topic),
                                     TOPIC_QOS[topic], raw=True)
        self.create_timer(0.1, self._check_timeout)
        self.get_logger().info(f'recording {list(RECORDED_TOPICS)} into {self.cfg.data_dir}')

    def _make_callback(self, topic: str):
        def callback(raw: bytes) -> None:
            now_ns = self.get_clock().now().nanoseconds
            if topic == 'rig/episode':
                self._on_episode_event(raw, now_ns)
            elif self.writer is not None:
                self.writer.write(topic, now_ns, raw)
                if topic == 'rig/cmd':
                    self._zero_seen = _is_zero_command(raw)   # is the bag's last command a stop?
                    if self._zero_seen:
                        self._close_when_done()
            else:
                self._keep_for_next_bag(now_ns, topic, raw)
        return callback

    def _keep_for_next_bag(self, now_ns: int, topic: str, raw: bytes) -> None:
        self._pre_roll.append((now_ns, topic, raw))
        while self._pre_roll and (len(self._pre_roll) > PRE_ROLL_MAX
                                  or now_ns - self._pre_roll[0][0] > PRE_ROLL_S * 1e9):
            self._pre_roll.popleft()
            self.dropped_outside_episode += 1

    def _on_episode_event(self, raw: bytes, now_ns: int) -> None:
        try:
            event = json.loads(deserialize_message(raw, String).data)
            kind, episode = event['event'], event['episode']
        except (ValueError, KeyError, TypeError) as exc:
            self.get_logger().warning(f'ignoring malformed rig/episode event: {exc}', throttle_duration_sec=5.0)
            return
        if kind == 'start':
            if self.writer is not None:
                self.get_logger().warning('episode started before the last one ended: closing it')
                self._close()
            name = f'{self.cfg.actor}_ep{int(episode):06d}_{time.strftime("%Y%m%dT%H%M%S")}_{now_ns % 10**9:09d}'
            self.writer = EpisodeBagWriter(self.cfg.data_dir, name)
            self.opened_at = time.monotonic()
            self.episode_id, self._end_seen, self._zero_seen = episode, False, False
            while self._pre_roll:   # what arrived for this episode before its start event
                t, topic, msg = self._pre_roll.popleft()
                self.writer.write(topic, t, msg)
                if topic == 'rig/cmd':
                    self._zero_seen = _is_zero_command(msg)
        if self.writer is not None:
            self.writer.write('rig/episode', now_ns, raw)
        if kind == 'end' and self.writer is not None:
            self._end_seen = True
            if event.get('reason') == 'shutdown' and self._close_by is None:
                self._close_by = time.monotonic() + STOP_WAIT_S   # the final zero command is on its way
            self._close_when_done()

    def _close_when_done(self) -> None:
        """Close at an end event; during a shutdown only once the final zero command is in as well."""
        if self.writer is not None and self._end_seen and (self._close_by is None or self._zero_seen):
            self._close()
            self._close_by = None

    def _close(self) -> None:
        if self.writer is None:
            return
        writer, self.writer = self.writer, None
        path = writer.close()
        self.bags_written += 1
        self.get_logger().info(f'closed {path.name} ({writer.messages} messages)')

    def _check_timeout(self) -> None:
        if self.writer is not None and self._close_by is not None and time.monotonic() >= self._close_by:
            self.finished_stopping(force=True)
        elif self.writer is not None and time.monotonic() - self.opened_at > self.cfg.max_episode_s:
            self.get_logger().warning('episode exceeded max_episode_s without an end event: closing it')
            self._close()

    # -- shutdown (rig_base.node_main.stop_nodes) ----------------------------------------------------------
    def stop(self) -> None:
        """Shutdown began: wait (bounded) for the open episode's end event and final zero command."""
        if self.writer is not None and self._close_by is None:
            self._close_by = time.monotonic() + STOP_WAIT_S

    def finished_stopping(self, force: bool = False) -> bool:
        if self.writer is None:
            return True
        if not force and (self._close_by is None or time.monotonic() < self._close_by):
            return False
        if not self._end_seen:
            end = {'event': 'end', 'episode': self.episode_id, 'reason': 'recorder shutdown'}
            self.writer.write('rig/episode', self.get_clock().now().nanoseconds,
                              serialize_message(String(data=json.dumps(end))))
            self.get_logger().warning('shutdown: the policy\'s end event did not come; wrote one')
        elif not self._zero_seen:
            self.get_logger().warning('shutdown: no final zero rig/cmd came (safety filter gone?)')
        self._close()
        self._close_by = None
        return True

    def destroy_node(self):
        if self.writer is not None:
            self.finished_stopping(force=True)
        return super().destroy_node()


def _is_zero_command(raw: bytes) -> bool:
    try:
        msg = deserialize_message(raw, TwistStamped)
    except Exception:  # noqa: BLE001 - a malformed command is not the zero we wait for
        return False
    return twist_is_zero(msg)


def main(args=None) -> int:
    return run_node(RecorderNode, 'recorder', args)


if __name__ == '__main__':
    sys.exit(main())
