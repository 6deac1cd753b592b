"""Encoder, policy and trainer nodes in their own processes over real DDS, with real checkpoints."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from geometry_msgs.msg import TwistStamped
from ros_util import node_env, rclpy_node, ros_args, spawn_node, spin_until
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger

from rig_base import qos
from rig_base.image_msgs import latent_to_msg, msg_to_latent, numpy_to_image
from rig_base.msgs import operator_episode_end
from rig_learn.agent import RIGAgent
from rig_learn.config import LearnConfig
from rig_trainer.online import TrainerConfig, agent_spec

pytestmark = pytest.mark.ros
STARTUP = 40.0


def fresh_latent(node) -> Image:
    """A zero latent stamped now, as the encoder publishes it."""
    msg = latent_to_msg(np.zeros(4), np.zeros(4), Image().header)
    msg.header.stamp = node.get_clock().now().to_msg()
    return msg


def make_checkpoint(path, latent_dim=4, task='reach', grad_steps=0, scales=(0.0, 0.0)):
    """A trainer's checkpoint; `scales` (action_scale, control_rate_hz) it was trained for, (0, 0): none yet."""
    cfg = LearnConfig(task=task)
    cfg.vae.latent_dim = latent_dim
    cfg.rl.hidden = (32, 32)
    spec = agent_spec(TrainerConfig(task=task, action_scale=scales[0], control_rate_hz=scales[1]), cfg)
    agent = RIGAgent(cfg, spec=spec)
    agent.counters['grad_steps'] = grad_steps
    return agent.save(path)


@pytest.fixture
def ros_node():
    with rclpy_node('graph_test', '/g') as node:
        yield node


def stamp_of(msg):
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def test_encoder_publishes_latents_with_the_source_stamp_and_survives_bad_frames(ros_node, tmp_path):
    ckpt = make_checkpoint(tmp_path / 'ckpt')
    node = ros_node
    latents, goals, recons = [], [], []
    node.create_subscription(Image, 'rig/latent', latents.append, qos.LATENT_QOS)
    node.create_subscription(Image, 'rig/goal_latent', goals.append, qos.GOAL_LATENT_QOS)
    node.create_subscription(Image, 'rig/reconstruction', recons.append, qos.RECONSTRUCTION_QOS)
    cam = node.create_publisher(Image, 'camera/image_raw', qos.CAMERA_PUBLISHER_QOS)
    goal_pub = node.create_publisher(Image, 'rig/goal_image', qos.GOAL_IMAGE_QOS)
    ck_pub = node.create_publisher(String, 'rig/checkpoint', qos.CHECKPOINT_QOS)
    log = tmp_path / 'encoder.log'
    rng = np.random.default_rng(0)
    with spawn_node('rig_perception.encoder_node', {'checkpoint': str(ckpt), 'reconstruction_period_s': 0.1},
                    namespace='/g', log_path=log) as proc:
        assert spin_until(node, lambda: cam.get_subscription_count() > 0, STARTUP), log.read_text()

        def send(img, encoding='rgb8'):
            msg = numpy_to_image(img, encoding, stamp=node.get_clock().now().to_msg(), frame_id='cam')
            cam.publish(msg)
            return msg
        # Discovery: frames until the first latent comes back, then start counting.
        deadline = time.monotonic() + STARTUP
        while not latents and time.monotonic() < deadline:
            send(np.zeros((48, 48, 3), np.uint8))
            spin_until(node, lambda: bool(latents), 0.3)
        assert latents, log.read_text()
        spin_until(node, lambda: False, 0.3)
        latents.clear()
        # rgb8 at the learner's size; bgr8 and mono8 at other sizes (cropped/resized by the encoder)
        sent = [send(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8))]
        assert spin_until(node, lambda: len(latents) >= 1, 15.0), log.read_text()
        sent.append(send(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), 'bgr8'))
        spin_until(node, lambda: len(latents) >= 2, 10.0)
        mono = Image(height=60, width=80, encoding='mono8', step=80,
                     data=bytes(rng.integers(0, 255, 4800, dtype=np.uint8)))
        mono.header.stamp = node.get_clock().now().to_msg()
        cam.publish(mono)
        sent.append(mono)
        spin_until(node, lambda: len(latents) >= 3, 10.0)
        bad = Image(height=4, width=4, encoding='yuv422', step=8, data=bytes(32))
        cam.publish(bad)
        assert spin_until(node, lambda: 'yuv422' in log.read_text(), 10.0), log.read_text()
        short = Image(height=48, width=48, encoding='rgb8', step=144, data=bytes(100))  # wrong size
        cam.publish(short)
        spin_until(node, lambda: False, 0.3)  # (its log line is throttled: the process staying up is the check)
        sent.append(send(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)))
        assert spin_until(node, lambda: len(latents) >= 4, 10.0), log.read_text()
        assert proc.poll() is None, 'a bad frame must not kill the encoder'
        assert [stamp_of(m) for m in latents[:4]] == [stamp_of(m) for m in sent]
        assert [m.header.frame_id for m in latents[:4]] == [m.header.frame_id for m in sent]
        mean, logvar = msg_to_latent(latents[0])
        assert mean.shape == logvar.shape == (4,) and np.all(np.isfinite(mean))
        assert spin_until(node, lambda: len(recons) > 0, 5.0)
        assert (recons[-1].height, recons[-1].width, recons[-1].encoding) == (48, 48, 'rgb8')

        goal_pub.publish(numpy_to_image(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8), 'rgb8'))
        assert spin_until(node, lambda: len(goals) >= 1, 10.0)
        assert msg_to_latent(goals[0])[0].shape == (4,)

        # A checkpoint of another image size is refused; a compatible one is taken and the goal re-encoded.
        other = tmp_path / 'other'
        cfg = LearnConfig(task='reach', image_size=84)
        cfg.vae.arch = 'conv84'
        RIGAgent(cfg, spec=agent_spec(TrainerConfig(), cfg)).save(other)
        # (latched, depth 1: each announcement replaces the last, so give each time to arrive)
        ck_pub.publish(String(data=str(other)))
        spin_until(node, lambda: 'image_size' in log.read_text(), 10.0)
        ck_pub.publish(String(data=str(tmp_path / 'missing')))
        spin_until(node, lambda: 'missing' in log.read_text(), 10.0)
        newer = make_checkpoint(tmp_path / 'ckpt2', latent_dim=6)
        ck_pub.publish(String(data=str(newer)))
        assert spin_until(node, lambda: len(goals) >= 2, 15.0), log.read_text()
        assert msg_to_latent(goals[-1])[0].shape == (6,)
        assert proc.poll() is None
    text = log.read_text()
    assert 'refusing checkpoint' in text and 'image_size' in text and 'missing' in text
    assert 'yuv422' in text


def test_policy_answers_each_latent_in_time_and_refuses_a_mismatched_checkpoint(ros_node, tmp_path):
    ckpt = make_checkpoint(tmp_path / 'ckpt', grad_steps=10)
    node = ros_node
    cmds: list[tuple[float, TwistStamped]] = []
    node.create_subscription(TwistStamped, 'rig/cmd_raw', lambda m: cmds.append((time.monotonic(), m)),
                             qos.COMMAND_QOS)
    lat_pub = node.create_publisher(Image, 'rig/latent', qos.LATENT_QOS)
    goal_pub = node.create_publisher(Image, 'rig/goal_latent', qos.GOAL_LATENT_QOS)
    ck_pub = node.create_publisher(String, 'rig/checkpoint', qos.CHECKPOINT_QOS)
    log = tmp_path / 'policy.log'
    with spawn_node('rig_policy.policy_node', {'checkpoint': str(ckpt), 'task': 'reach'},
                    namespace='/g', log_path=log) as proc:
        goal_pub.publish(latent_to_msg(np.ones(4), np.zeros(4), Image().header))
        deadline = time.monotonic() + STARTUP  # discovery: latents until the first command comes back
        while not cmds and time.monotonic() < deadline:
            warm = latent_to_msg(np.zeros(4), np.zeros(4), Image().header)
            warm.header.stamp = node.get_clock().now().to_msg()
            lat_pub.publish(warm)
            spin_until(node, lambda: bool(cmds), 0.3)
        assert cmds, log.read_text()
        latency = []
        for i in range(20):
            msg = latent_to_msg(np.full(4, 0.1 * i), np.zeros(4), Image().header)
            msg.header.stamp = node.get_clock().now().to_msg()
            n = len(cmds)
            t0 = time.monotonic()
            lat_pub.publish(msg)
            assert spin_until(node, lambda: len(cmds) > n, 5.0), log.read_text()
            latency.append(cmds[-1][0] - t0)
            assert stamp_of(cmds[-1][1]) == stamp_of(msg), 'a command carries the stamp of its frame'
            assert cmds[-1][1].header.frame_id == 'base_link'
            v = cmds[-1][1].twist.linear
            assert abs(v.x) <= 0.4 + 1e-6 and abs(v.y) <= 0.4 + 1e-6 and v.z == 0.0
        assert np.median(latency) < 0.1, latency  # the deadline is one control period (50 ms)

        # An old frame is not acted on.
        old = latent_to_msg(np.zeros(4), np.zeros(4), Image().header)
        old.header.stamp.sec = int(time.time()) - 10
        n = len(cmds)
        lat_pub.publish(old)
        spin_until(node, lambda: False, 0.5)
        assert len(cmds) == n

        # A checkpoint for another task is refused; the old one keeps driving.
        make_checkpoint(tmp_path / 'push_ckpt', task='push')
        ck_pub.publish(String(data=str(tmp_path / 'push_ckpt')))
        assert spin_until(node, lambda: 'refusing' in log.read_text(), 10.0)
        msg = latent_to_msg(np.zeros(4), np.zeros(4), Image().header)
        msg.header.stamp = node.get_clock().now().to_msg()
        n = len(cmds)
        lat_pub.publish(msg)
        assert spin_until(node, lambda: len(cmds) > n, 5.0)
        assert proc.poll() is None
    text = log.read_text()
    assert 'refusing checkpoint' in text and "task: checkpoint has 'push'" in text


def test_policy_refuses_a_checkpoint_made_for_another_scale_and_keeps_its_own(ros_node, tmp_path):
    """A real-cell policy (config/robot.yaml: 0.01 m x 10 Hz) offered a checkpoint trained for 0.02 m x
    20 Hz (what a trainer on its old defaults made of the cell's bags) refuses it, says why with both
    values, and drives on with the one it had; a checkpoint for its own scales it takes."""
    cell = (0.01, 10.0)
    ckpt = make_checkpoint(tmp_path / 'cell', grad_steps=10, scales=cell)
    node = ros_node
    cmds, in_use = [], []
    node.create_subscription(TwistStamped, 'rig/cmd_raw', cmds.append, qos.COMMAND_QOS)
    node.create_subscription(String, 'policy/checkpoint', lambda m: in_use.append(m.data), qos.LATCHED_QOS)
    lat_pub = node.create_publisher(Image, 'rig/latent', qos.LATENT_QOS)
    goal_pub = node.create_publisher(Image, 'rig/goal_latent', qos.GOAL_LATENT_QOS)
    ck_pub = node.create_publisher(String, 'rig/checkpoint', qos.CHECKPOINT_QOS)

    def answered():
        n = len(cmds)
        lat_pub.publish(fresh_latent(node))
        return spin_until(node, lambda: len(cmds) > n, 5.0)
    log = tmp_path / 'policy.log'
    params = {'checkpoint': str(ckpt), 'task': 'reach', 'action_scale': cell[0], 'control_rate_hz': cell[1],
              'operator_steps': 1000}
    with spawn_node('rig_policy.policy_node', params, namespace='/g', log_path=log) as proc:
        goal_pub.publish(latent_to_msg(np.ones(4), np.zeros(4), Image().header))
        deadline = time.monotonic() + STARTUP
        while not cmds and time.monotonic() < deadline:
            lat_pub.publish(fresh_latent(node))
            spin_until(node, lambda: bool(cmds), 0.3)
        assert cmds, log.read_text()
        assert spin_until(node, lambda: in_use and in_use[-1] == str(ckpt), 5.0), in_use

        sim = make_checkpoint(tmp_path / 'sim_scale', grad_steps=10, scales=(0.02, 20.0))
        ck_pub.publish(String(data=str(sim)))
        assert spin_until(node, lambda: 'refusing checkpoint' in log.read_text(), 10.0), log.read_text()
        text = log.read_text()
        assert (f'refusing checkpoint {sim}: checkpoint {sim} was trained for another action scale or control rate'
                in text), text
        assert ('action_scale: checkpoint has 0.02, this policy has 0.01; '
                'control_rate_hz: checkpoint has 20.0, this policy has 10.0; keeping ' + str(ckpt)) in text, text
        assert answered(), 'the old checkpoint keeps driving'
        v = cmds[-1].twist.linear
        assert max(abs(v.x), abs(v.y)) <= 0.1 + 1e-6, 'at the cell\'s scale: 0.01 m x 10 Hz'
        assert in_use[-1] == str(ckpt)

        newer = make_checkpoint(tmp_path / 'cell2', grad_steps=20, scales=cell)
        ck_pub.publish(String(data=str(newer)))
        assert spin_until(node, lambda: in_use[-1] == str(newer), 10.0), log.read_text()
        assert answered() and proc.poll() is None
    assert log.read_text().count('refusing checkpoint') == 1


def test_a_new_operator_goal_answers_the_frame_that_came_before_it(ros_node, tmp_path):
    """In lockstep the frame after a reset comes before the operator's goal and there is no other
    until a command: the policy answers it when the goal comes (if still fresh), not a stall later."""
    ckpt = make_checkpoint(tmp_path / 'ckpt', grad_steps=10)
    node = ros_node
    cmds: list[TwistStamped] = []
    node.create_subscription(TwistStamped, 'rig/cmd_raw', cmds.append, qos.COMMAND_QOS)
    lat_pub = node.create_publisher(Image, 'rig/latent', qos.LATENT_QOS)
    goal_pub = node.create_publisher(Image, 'rig/goal_latent', qos.GOAL_LATENT_QOS)

    def goal():
        msg = latent_to_msg(np.ones(4), np.zeros(4), Image().header)
        msg.header.stamp = node.get_clock().now().to_msg()
        return msg
    log = tmp_path / 'policy.log'
    with spawn_node('rig_policy.policy_node', {'checkpoint': str(ckpt), 'task': 'reach', 'operator_steps': 3},
                    namespace='/g', log_path=log):
        goal_pub.publish(goal())
        deadline = time.monotonic() + STARTUP
        while not cmds and time.monotonic() < deadline:
            lat_pub.publish(fresh_latent(node))
            spin_until(node, lambda: bool(cmds), 0.3)
        assert cmds, log.read_text()
        for _ in range(5):   # to the end of the 3-step episode: then silent until the next goal
            n = len(cmds)
            lat_pub.publish(fresh_latent(node))
            spin_until(node, lambda: len(cmds) > n, 0.5)
        n = len(cmds)
        lat_pub.publish(fresh_latent(node))
        assert not spin_until(node, lambda: len(cmds) > n, 0.5), 'silent after its episode'
        waiting = fresh_latent(node)
        lat_pub.publish(waiting)
        spin_until(node, lambda: False, 0.05)
        goal_pub.publish(goal())
        assert spin_until(node, lambda: len(cmds) > n, 0.5), 'the waiting frame is answered at once'
        assert stamp_of(cmds[-1]) == stamp_of(waiting)
        # A frame that waited too long (> max_latency_s) is not acted on.
        for _ in range(5):
            lat_pub.publish(fresh_latent(node))
            spin_until(node, lambda: False, 0.1)
        n = len(cmds)
        lat_pub.publish(fresh_latent(node))
        spin_until(node, lambda: False, 0.4)
        goal_pub.publish(goal())
        assert not spin_until(node, lambda: len(cmds) > n, 0.5), 'a stale frame is not answered'


def test_back_from_practice_the_policy_waits_for_a_new_goal_and_each_goal_gets_its_own_episode(ros_node, tmp_path):
    """An operator goal, some practice, operator mode again: the policy does not take up the old goal
    (the arm stays still until the operator gives one), and the next goal's episode runs its full
    operator_steps. (A bench that took the old goal's episode end for the new goal's measured every
    goal of the rehearsed cell 1 s in.)"""
    ckpt = make_checkpoint(tmp_path / 'ckpt', grad_steps=10)
    node = ros_node
    cmds, events = [], []
    node.create_subscription(TwistStamped, 'rig/cmd_raw', cmds.append, qos.COMMAND_QOS)
    node.create_subscription(String, 'rig/episode', lambda m: events.append(json.loads(m.data)), qos.EPISODE_QOS)
    lat_pub = node.create_publisher(Image, 'rig/latent', qos.LATENT_QOS)
    goal_pub = node.create_publisher(Image, 'rig/goal_latent', qos.GOAL_LATENT_QOS)
    practice = node.create_client(SetBool, 'rig/practice')

    def goal():
        msg = latent_to_msg(np.ones(4), np.zeros(4), Image().header)
        msg.header.stamp = node.get_clock().now().to_msg()
        return msg

    def feed(n: int) -> None:
        for _ in range(n):
            lat_pub.publish(fresh_latent(node))
            spin_until(node, lambda: False, 0.05)

    def switch(on: bool) -> None:
        fut = practice.call_async(SetBool.Request(data=on))
        assert spin_until(node, fut.done, STARTUP) and fut.result().success

    log = tmp_path / 'policy.log'
    with spawn_node('rig_policy.policy_node', {'checkpoint': str(ckpt), 'task': 'reach', 'operator_steps': 4,
                                               'episode_length': 3},
                    namespace='/g', log_path=log):
        assert practice.wait_for_service(timeout_sec=STARTUP), log.read_text()
        goal_pub.publish(goal())
        assert spin_until(node, lambda: goal_pub.get_subscription_count() > 0, STARTUP)
        feed(8)
        assert [e['steps'] for e in events if e['event'] == 'end'] == [4], events
        switch(True)
        feed(5)
        switch(False)
        n_cmds, n_events = len(cmds), len(events)
        feed(6)
        assert len(cmds) == n_cmds, 'back in operator mode the old goal is not taken up again'
        assert not [e for e in events[n_events:] if e['event'] == 'start'], events[n_events:]
        goal_pub.publish(goal())
        spin_until(node, lambda: False, 0.2)
        feed(8)
    starts = [e for e in events[n_events:] if e['event'] == 'start']
    ends = [e for e in events[n_events:] if e['event'] == 'end']
    assert len(starts) == 1 and starts[0]['goal_source'] == 'operator', events[n_events:]
    assert ends and ends[0]['episode'] == starts[0]['episode'] and ends[0]['steps'] == 4, 'its own full episode'
    assert operator_episode_end(events, n_events) == ends[0]


def test_practice_mode_runs_episodes_with_imagined_goals_and_resets(ros_node, tmp_path):
    ckpt = make_checkpoint(tmp_path / 'ckpt')
    node = ros_node
    events, cmds, resets = [], [], []
    node.create_subscription(String, 'rig/episode', lambda m: events.append(json.loads(m.data)), qos.EPISODE_QOS)
    node.create_subscription(TwistStamped, 'rig/cmd_raw', cmds.append, qos.COMMAND_QOS)
    lat_pub = node.create_publisher(Image, 'rig/latent', qos.LATENT_QOS)

    def on_reset(req, resp):
        resets.append(time.monotonic())
        resp.success = True
        return resp
    node.create_service(Trigger, 'sim/reset', on_reset)
    practice = node.create_client(SetBool, 'rig/practice')
    log = tmp_path / 'policy.log'
    with spawn_node('rig_policy.policy_node', {'checkpoint': str(ckpt), 'episode_length': 5,
                                               'action_scale': 0.01, 'control_rate_hz': 10.0},
                    namespace='/g', log_path=log) as proc:
        assert practice.wait_for_service(timeout_sec=STARTUP), log.read_text()
        fut = practice.call_async(SetBool.Request(data=True))
        assert spin_until(node, fut.done, STARTUP) and fut.result().success
        for _ in range(14):
            msg = latent_to_msg(np.zeros(4), np.zeros(4), Image().header)
            msg.header.stamp = node.get_clock().now().to_msg()
            lat_pub.publish(msg)
            spin_until(node, lambda: False, 0.1)
        spin_until(node, lambda: len(resets) >= 2, 5.0)
        assert proc.poll() is None
    starts = [e for e in events if e['event'] == 'start']
    ends = [e for e in events if e['event'] == 'end']
    assert len(starts) >= 2 and len(ends) >= 2, events
    assert starts[0]['goal_source'] == 'imagined' and len(starts[0]['goal_latent']) == 4
    # each episode says what its commands are made with (the trainer rebuilds its actions with it)
    assert all((e['action_scale'], e['control_rate_hz'], e['action_dim']) == (0.01, 10.0, 2) for e in starts), starts
    assert starts[0]['goal_latent'] != starts[1]['goal_latent'], 'each episode imagines a new goal'
    assert ends[0]['steps'] == 5
    assert len(resets) >= 2
    # before any training the practice actions are uniform random: not all equal, up to 0.01 m x 10 Hz
    xs = {round(m.twist.linear.x, 4) for m in cmds}
    assert len(xs) > 3 and max(abs(x) for x in xs) <= 0.1 + 1e-6


def test_a_practice_hold_ends_the_episode_stops_the_arm_and_silences_practice_until_released(ros_node, tmp_path):
    """`rig/practice_hold` (the learner link holds practice while the learner host is unreachable): the
    open episode ends with reason 'hold', one zero command goes out, no latent is answered while held,
    and practice goes on with a new episode once it is released."""
    ckpt = make_checkpoint(tmp_path / 'ckpt')
    node = ros_node
    events, cmds = [], []
    node.create_subscription(String, 'rig/episode', lambda m: events.append(json.loads(m.data)), qos.EPISODE_QOS)
    node.create_subscription(TwistStamped, 'rig/cmd_raw', cmds.append, qos.COMMAND_QOS)
    lat_pub = node.create_publisher(Image, 'rig/latent', qos.LATENT_QOS)
    hold_pub = node.create_publisher(String, 'rig/practice_hold', qos.PRACTICE_HOLD_QOS)
    log = tmp_path / 'policy.log'

    def feed(n: int) -> None:
        for _ in range(n):
            lat_pub.publish(fresh_latent(node))
            spin_until(node, lambda: False, 0.1)

    def feed_until(predicate, timeout: float = 10.0) -> bool:
        """Latents at 10 Hz, as the encoder sends them, until predicate() holds: a policy process
        that is still warming up lets the first ones go stale ('not acting on it'), rightly."""
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            feed(1)
        return predicate()

    with spawn_node('rig_policy.policy_node', {'checkpoint': str(ckpt), 'episode_length': 50,
                                               'practice_on_start': True},
                    namespace='/g', log_path=log) as proc:
        assert spin_until(node, lambda: lat_pub.get_subscription_count() > 0 and
                          hold_pub.get_subscription_count() > 0, STARTUP), log.read_text()
        assert feed_until(lambda: len(cmds) >= 3), log.read_text()
        hold_pub.publish(String(data='the learner host has not been heard for over 5 s'))
        assert spin_until(node, lambda: any(e['event'] == 'end' for e in events), 5.0), events
        spin_until(node, lambda: False, 0.3)
        held_at = len(cmds)
        last = cmds[-1].twist.linear
        assert (last.x, last.y, last.z) == (0.0, 0.0, 0.0), 'the hold sends one zero command'
        feed(5)
        assert len(cmds) == held_at, 'no latent is answered while practice is held'
        hold_pub.publish(String(data=''))
        spin_until(node, lambda: False, 0.3)
        assert feed_until(lambda: len(cmds) > held_at), 'practice goes on once released'
        assert proc.poll() is None
    starts = [e for e in events if e['event'] == 'start']
    ends = [e for e in events if e['event'] == 'end']
    assert ends[0]['reason'] == 'hold' and len(starts) == 2, events
    text = log.read_text()
    assert 'practice held: the learner host has not been heard' in text and 'practice hold released' in text


def test_trainer_survives_kill_9_and_resumes_without_losing_or_recounting(tmp_path):
    """Real trainer processes: killed with SIGKILL while working, restarted, the ledger adds up."""
    from test_online_trainer import record_sim_episode

    from rig_learn import checkpoint as ck
    from rig_sim import make_env
    data = tmp_path / 'data'
    learn_yaml = tmp_path / 'learn.yaml'
    learn_yaml.write_text('task: reach\nvae: {latent_dim: 4, batch_size: 16, refit_steps: 5, pretrain_images: 30, '
                          'pretrain_steps: 5}\nrl: {hidden: [32, 32], batch_size: 16, updates_per_step: 40, '
                          'learning_starts: 0}\n')
    env = make_env(task='reach', seed=0)
    rng = np.random.default_rng(1)
    for k in range(3):
        record_sim_episode(data, f'a_ep{k:06d}', env, rng)
    # Many updates per transition and no periodic checkpoints: after new bags are ingested there are
    # seconds of training before the next checkpoint, the window in which the process is killed.
    params = {'data_dir': str(data), 'learn_config': str(learn_yaml), 'checkpoint_every_updates': 10**6,
              'scan_period_s': 0.2}
    cmd = [sys.executable, '-m', 'rig_trainer.trainer_node'] + ros_args(params, '/t')

    def ledger():
        from rig_trainer.online import latest_checkpoint
        latest = latest_checkpoint(data / 'checkpoints')
        return ck.read_manifest(latest)['trainer'] if latest else None

    log1_path = tmp_path / 'trainer1.log'
    log1 = open(log1_path, 'w')
    p1 = subprocess.Popen(cmd, env=node_env(), stdout=log1, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            led = ledger()
            if led and len(led['ingested']) == 3 and led['counters']['vae_fits'] > 0:
                break   # pretrained on those 60 transitions: the learner's clock starts after them
            time.sleep(0.2)
        else:
            pytest.fail('trainer made no checkpoint of its bags:\n' + log1_path.read_text())
        for k in range(3, 5):
            record_sim_episode(data, f'a_ep{k:06d}', env, rng)
        deadline = time.monotonic() + 30
        while 'ingested a_ep000004' not in log1_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        p1.send_signal(signal.SIGKILL)  # mid-training on the new bags, no clean-up at all
        p1.wait(10)
    finally:
        if p1.poll() is None:
            p1.kill()
        log1.close()
    led = ledger()
    assert len(led['ingested']) == 3, 'the kill should come before the new bags reach a checkpoint'
    # A corrupted bag appears while it is down.
    shutil.copytree(data / 'a_ep000000', data / 'z_truncated')
    mcap = next((data / 'z_truncated').glob('*.mcap'))
    mcap.write_bytes(mcap.read_bytes()[:200])

    with spawn_node('rig_trainer.trainer_node', {**params, 'nice': 5}, namespace='/t',
                    log_path=tmp_path / 'trainer2.log') as p2:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            led = ledger()
            if led and len(led['ingested']) == 5 and 'z_truncated' in led['bad_bags']:
                break
            time.sleep(0.3)
        assert p2.poll() is None, (tmp_path / 'trainer2.log').read_text()
        # `nice` lowers the training thread alone (Linux keeps nice per thread): the executor stays at 0
        nices = sorted({int(open(t / 'stat').read().rsplit(')', 1)[1].split()[16])
                        for t in Path(f'/proc/{p2.pid}/task').iterdir()})
        assert nices == [0, 5], nices
    led = ledger()
    log2 = (tmp_path / 'trainer2.log').read_text()
    assert led is not None and led['ingested'] == [f'a_ep{k:06d}' for k in range(5)], log2
    assert 'z_truncated' in led['bad_bags'], log2
    assert led['counters']['episodes'] == 5 and led['counters']['transitions'] == 100, led['counters']
    # 40 transitions after the pretraining x 40 updates each: the killed run's owed updates done again, once
    assert led['counters']['updates'] == 1600, led['counters']
    assert 'resumed from' in log2 and 'skipping bag z_truncated' in log2
    env.close()
