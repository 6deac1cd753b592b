"""The recorder in its own process: episodes published over DDS come back from its bags via rosbags."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped, TwistStamped
from ros_util import rclpy_node, spawn_node, spin_until
from sensor_msgs.msg import Image
from std_msgs.msg import String

from rig_base import qos
from rig_base.image_msgs import numpy_to_image
from rig_trainer.bags import list_closed_bags, read_episodes

pytestmark = pytest.mark.ros


@pytest.fixture
def ros_node():
    with rclpy_node('recorder_test', '/rec') as node:
        yield node


def test_episodes_are_recorded_to_closed_bags_that_read_back(ros_node, tmp_path):
    data = tmp_path / 'data'
    node = ros_node
    img_pub = node.create_publisher(Image, 'camera/image_raw', qos.CAMERA_PUBLISHER_QOS)
    cmd_pub = node.create_publisher(TwistStamped, 'rig/cmd', qos.COMMAND_QOS)
    ev_pub = node.create_publisher(String, 'rig/episode', qos.EPISODE_QOS)
    pose_pub = node.create_publisher(PoseStamped, 'rig/ee_pose', 10)
    log = tmp_path / 'recorder.log'
    with spawn_node('rig_trainer.recorder_node', {'data_dir': str(data), 'actor': 'simA'},
                    namespace='/rec', log_path=log) as proc:
        assert spin_until(node, lambda: all(p.get_subscription_count() > 0
                                            for p in (img_pub, cmd_pub, ev_pub, pose_pub)), 30.0), log.read_text()
        time.sleep(0.5)

        def frame(i):
            img = np.full((16, 16, 3), 10 * i, np.uint8)
            return numpy_to_image(img, 'rgb8', stamp=node.get_clock().now().to_msg())

        # episode 1 as the policy sends it now (with its scales), episode 2 as before it did
        scales = {1: {'action_scale': 0.01, 'control_rate_hz': 10.0, 'action_dim': 2}, 2: {}}
        for episode in (1, 2):
            ev_pub.publish(String(data=json.dumps({'event': 'start', 'episode': episode, 'goal_source': 'imagined',
                                                   'goal_latent': [0.0, 1.0], **scales[episode]})))
            spin_until(node, lambda: False, 0.1)
            for i in range(6):
                img_pub.publish(frame(i))
                pose_pub.publish(PoseStamped())
                spin_until(node, lambda: False, 0.03)
                if i < 5:
                    cmd = TwistStamped()
                    cmd.header.stamp = node.get_clock().now().to_msg()
                    cmd.header.frame_id = 'base_link'
                    cmd.twist.linear.y = 0.1 * episode
                    cmd_pub.publish(cmd)
                    spin_until(node, lambda: False, 0.03)
            ev_pub.publish(String(data=json.dumps({'event': 'end', 'episode': episode})))
            spin_until(node, lambda: False, 0.2)
        ev_pub.publish(String(data='not json'))  # malformed: logged, ignored
        assert spin_until(node, lambda: len(list_closed_bags(data)) == 2, 10.0), log.read_text()
        assert proc.poll() is None
    bags = list_closed_bags(data)
    assert all(b.name.startswith('simA_ep') for b in bags)
    episodes = [e for b in bags for e in read_episodes(b)]
    assert len(episodes) == 2
    assert [(ep.action_scale, ep.control_rate_hz, ep.action_dim) for ep in episodes] == [(0.01, 10.0, 2),
                                                                                          (None, None, None)]
    for ep, expect in zip(episodes, (0.1, 0.2)):
        assert ep.num_transitions == 5, ep.num_transitions
        np.testing.assert_allclose(ep.velocities[:, 1], expect, atol=1e-6)
        assert ep.events[0]['goal_latent'] == [0.0, 1.0]
        # each command leads from frame i to i+1 (pixel value 10*i)
        np.testing.assert_array_equal(ep.images[ep.next_obs_index, 0, 0, 0] - ep.images[ep.obs_index, 0, 0, 0], 10)
    assert 'malformed' in log.read_text()
    assert not any((data / '.partial').iterdir()), 'a closed episode must not stay partial'


def test_open_episode_is_closed_cleanly_on_shutdown(ros_node, tmp_path):
    data = tmp_path / 'data'
    node = ros_node
    img_pub = node.create_publisher(Image, 'camera/image_raw', qos.CAMERA_PUBLISHER_QOS)
    ev_pub = node.create_publisher(String, 'rig/episode', qos.EPISODE_QOS)
    log = tmp_path / 'recorder.log'
    with spawn_node('rig_trainer.recorder_node', {'data_dir': str(data)}, namespace='/rec', log_path=log):
        assert spin_until(node, lambda: ev_pub.get_subscription_count() > 0
                          and img_pub.get_subscription_count() > 0, 30.0)
        time.sleep(0.3)
        ev_pub.publish(String(data=json.dumps({'event': 'start', 'episode': 5})))
        spin_until(node, lambda: False, 0.2)
        img_pub.publish(numpy_to_image(np.zeros((4, 4, 3), np.uint8), 'rgb8'))
        assert spin_until(node, lambda: (data / '.partial').exists() and any((data / '.partial').iterdir()), 10.0)
    # SIGINT while the episode was open: the bag is finished and visible, not lost or half-written.
    [bag] = list_closed_bags(data)
    assert (bag / 'metadata.yaml').exists()
    assert 'closed' in log.read_text()


def test_what_arrives_just_before_the_start_event_is_in_its_bag(ros_node, tmp_path):
    """An episode's first frame (the reset frame) and even its first command may reach the recorder
    before the start event (no order between topics): the pre-roll writes them into the new bag, and
    leaves out what is older than PRE_ROLL_S."""
    from rig_trainer.recorder_node import PRE_ROLL_S
    data = tmp_path / 'data'
    node = ros_node
    img_pub = node.create_publisher(Image, 'camera/image_raw', qos.CAMERA_PUBLISHER_QOS)
    cmd_pub = node.create_publisher(TwistStamped, 'rig/cmd', qos.COMMAND_QOS)
    ev_pub = node.create_publisher(String, 'rig/episode', qos.EPISODE_QOS)
    log = tmp_path / 'recorder.log'

    def frame(value):
        img = np.full((16, 16, 3), value, np.uint8)
        return numpy_to_image(img, 'rgb8', stamp=node.get_clock().now().to_msg())

    def command():
        cmd = TwistStamped()
        cmd.header.stamp = node.get_clock().now().to_msg()
        cmd.header.frame_id = 'base_link'
        cmd.twist.linear.x = 0.05
        return cmd

    def pause(s=0.03):
        spin_until(node, lambda: False, s)

    with spawn_node('rig_trainer.recorder_node', {'data_dir': str(data)}, namespace='/rec', log_path=log):
        assert spin_until(node, lambda: all(p.get_subscription_count() > 0 for p in (img_pub, cmd_pub, ev_pub)),
                          30.0), log.read_text()
        pause(0.5)
        img_pub.publish(frame(200))          # long before the episode: not part of it
        pause(PRE_ROLL_S + 0.5)
        img_pub.publish(frame(0))            # the reset frame ...
        pause()
        cmd_pub.publish(command())           # ... and the first command, both ahead of the start event
        pause()
        ev_pub.publish(String(data=json.dumps({'event': 'start', 'episode': 1, 'goal_source': 'imagined'})))
        pause(0.1)
        for i in range(1, 5):
            img_pub.publish(frame(10 * i))
            pause()
            if i < 4:
                cmd_pub.publish(command())
                pause()
        ev_pub.publish(String(data=json.dumps({'event': 'end', 'episode': 1})))
        assert spin_until(node, lambda: len(list_closed_bags(data)) == 1, 10.0), log.read_text()
    (ep,) = read_episodes(list_closed_bags(data)[0])
    assert ep.num_transitions == 4, ep.num_transitions   # the first one included
    np.testing.assert_array_equal(ep.images[:, 0, 0, 0], [0, 10, 20, 30, 40])
