"""Episode receiver node: the learner host's end of the actors' links (`rig up learner`).

It subscribes to `/rig/episode_bags`, where every actor host's learner link ships its closed bags
(bundles of `rig_base.bundles` in `std_msgs/UInt8MultiArray`), writes each into `data_dir` whole or
not at all (`rig_trainer.shipping.Inbox`: under a hidden name, then renamed; the trainer watching
`data_dir` sees only closed bags), and answers every bag on `/rig/episode_acks`: `stored`,
`duplicate` (a bag it already has: a resend after a link loss or a restart, stored once) or
`refused` with the reason. Its counts are on `/rig/episode_receiver_status` (latched JSON, 1 Hz), which
is also the learner host's heartbeat for the actors' links.
"""
from __future__ import annotations

import dataclasses
import json
import sys

from rclpy.node import Node
from std_msgs.msg import String, UInt8MultiArray

from rig_base import bundles, qos
from rig_base.config import ConfigError
from rig_base.node_main import run_node
from rig_base.ros_params import declare_dataclass_parameters
from rig_trainer.link_node import EPISODE_ACKS_TOPIC, EPISODE_BAGS_TOPIC, LEARNER_STATUS_TOPIC
from rig_trainer.shipping import Inbox

STATUS_PERIOD_S = 1.0


@dataclasses.dataclass
class ReceiverConfig:
    data_dir: str = 'data'

    def __post_init__(self):
        if not self.data_dir:
            raise ConfigError('data_dir must not be empty')


DESCRIPTIONS = {'data_dir': "the learner's directory of episode bags (the trainer's data_dir)"}


class EpisodeReceiverNode(Node):
    def __init__(self, cfg: ReceiverConfig | None = None, **node_kwargs):
        super().__init__('episode_receiver', **node_kwargs)
        self.cfg: ReceiverConfig = declare_dataclass_parameters(self, cfg or ReceiverConfig(), DESCRIPTIONS)
        self.inbox = Inbox(self.cfg.data_dir)
        self.bytes_received = 0
        self.ack_pub = self.create_publisher(String, EPISODE_ACKS_TOPIC, qos.EPISODE_ACK_QOS)
        self.status_pub = self.create_publisher(String, LEARNER_STATUS_TOPIC, qos.LATCHED_QOS)
        self.create_subscription(UInt8MultiArray, EPISODE_BAGS_TOPIC, self._on_bag, qos.EPISODE_BAG_QOS)
        self.create_timer(STATUS_PERIOD_S, self.publish_status)
        self.get_logger().info(f'receiving episodes into {self.cfg.data_dir}')

    def _on_bag(self, msg: UInt8MultiArray) -> None:
        data = bundles.from_msg_data(msg.data)
        self.bytes_received += len(data)
        try:
            ack = self.inbox.receive(data)
        except OSError as exc:   # the disk: nothing acknowledged, so the actor sends it again
            self.get_logger().error(f'cannot store a received episode: {exc}', throttle_duration_sec=5.0)
            return
        if ack.status == 'stored':
            self.get_logger().info(f'stored {ack.name} ({len(data) / 1e3:.0f} kB)')
        elif ack.status == 'refused':
            self.get_logger().error(f'refused episode {ack.name}: {ack.reason}')
        self.ack_pub.publish(String(data=ack.to_json()))

    def status(self) -> dict:
        return {**self.inbox.counts, 'bytes_received': self.bytes_received}

    def publish_status(self) -> None:
        self.status_pub.publish(String(data=json.dumps(self.status())))


def main(args=None) -> int:
    return run_node(EpisodeReceiverNode, 'episode_receiver', args)


if __name__ == '__main__':
    sys.exit(main())
