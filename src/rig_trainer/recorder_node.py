"""Recorder node: each episode's topics -> one rosbag2 (MCAP) directory under the data directory.

Episode boundaries come from `rig/episode` events (JSON, DESIGN.md). Messages are recorded as the
serialized bytes that arrived (raw subscriptions), so nothing is decoded and re-encoded on the way to
disk. A bag becomes visible to the trainer only once closed; on shutdown the open episode is closed
cleanly, and after a crash it stays in `.partial/` where nobody reads it.
"""
from __future__ import annotations

import sys
import dataclasses
import json
import time

from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import String

from rig import qos
from rig.node_main import run_node
from rig.ros_params import declare_dataclass_parameters
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
    'rig/ee_pose': 10,
}


@dataclasses.dataclass
class RecorderConfig:
    data_dir: str = 'data'
    actor: str = 'actor0'
    max_episode_s: float = 600.0


DESCRIPTIONS = {
    'data_dir': 'directory the episode bags are written to (the trainer watches it)',
    'actor': 'name of this actor, the prefix of its bag names (several actors may share a data_dir)',
    'max_episode_s': 'an episode still open after this long is closed anyway (a lost end event)',
}


class Recorder(Node):
    def __init__(self, cfg: RecorderConfig | None = None, **node_kwargs):
        super().__init__('recorder', **node_kwargs)
        self.cfg: RecorderConfig = declare_dataclass_parameters(self, cfg or RecorderConfig(), DESCRIPTIONS)
        self.writer: EpisodeBagWriter | None = None
        self.opened_at = 0.0
        self.bags_written = 0
        self.dropped_outside_episode = 0
        for topic, msgtype in RECORDED_TOPICS.items():
            self.create_subscription(MSG_CLASSES[msgtype], topic, self._make_callback(topic),
                                     TOPIC_QOS[topic], raw=True)
        self.create_timer(1.0, self._check_timeout)
        self.get_logger().info(f'recording {list(RECORDED_TOPICS)} into {self.cfg.data_dir}')

    def _make_callback(self, topic: str):
        def callback(raw: bytes) -> None:
            now_ns = self.get_clock().now().nanoseconds
            if topic == 'rig/episode':
                self._on_episode_event(raw, now_ns)
            elif self.writer is not None:
                self.writer.write(topic, now_ns, raw)
            else:
                self.dropped_outside_episode += 1
        return callback

    def _on_episode_event(self, raw: bytes, now_ns: int) -> None:
        from rclpy.serialization import deserialize_message
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
        if self.writer is not None:
            self.writer.write('rig/episode', now_ns, raw)
        if kind == 'end':
            self._close()

    def _close(self) -> None:
        if self.writer is None:
            return
        writer, self.writer = self.writer, None
        path = writer.close()
        self.bags_written += 1
        self.get_logger().info(f'closed {path.name} ({writer.messages} messages)')

    def _check_timeout(self) -> None:
        if self.writer is not None and time.monotonic() - self.opened_at > self.cfg.max_episode_s:
            self.get_logger().warning('episode exceeded max_episode_s without an end event: closing it')
            self._close()

    def destroy_node(self):
        self._close()
        return super().destroy_node()


def main(args=None) -> int:
    return run_node(Recorder, 'recorder', args)


if __name__ == '__main__':
    sys.exit(main())
