"""Run-time parameters (issue 17 items 7, 8): a `ros2 param set` that succeeds takes effect; one that
cannot (read-only, or an invalid value) is refused with its reason; values that make no sense stop
the node at start.

The real `ros2` CLI against node processes over DDS (loopback), plus in-process rclpy nodes on a
private context for the per-node table of what is live.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.exceptions import ParameterUninitializedException
from rclpy.parameter import Parameter
from ros_util import node_env, rclpy_node, spawn_node, spin_until
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import SetBool

from rig_base import qos
from rig_base.image_msgs import latent_to_msg
from rig_base.ros_params import parameter_specs

pytestmark = pytest.mark.ros
STARTUP = 40.0
ROS2 = Path(sys.executable).parent / 'ros2'

# What each node lets `ros2 param set` change at run time; everything else is read-only.
LIVE = {
    'policy': {'episode_length', 'operator_steps', 'exploration_noise', 'max_latency_s'},
    'encoder': {'crop_x', 'crop_y', 'crop_width', 'crop_height', 'reconstruction_period_s'},
    'recorder': {'max_episode_s'},
    # (its learning schedule is the learner YAML's, read-only: learn_config, learn_set)
    'trainer': {'checkpoint_every_updates', 'keep_checkpoints', 'scan_period_s', 'train_slice_s'},
    'sim_bridge': {'cmd_timeout_s', 'max_speed_m_s', 'reject_speed_m_s'},
    'safety_filter': set(),   # safety limits: restart to change
    'arm_adapter': set(),
    'camera': {'preprocess.crop_x', 'preprocess.crop_y', 'preprocess.crop_width', 'preprocess.crop_height'},
}
SAMPLES = {Parameter.Type.DOUBLE_ARRAY: [0.0], Parameter.Type.STRING_ARRAY: ['x'],
           Parameter.Type.INTEGER_ARRAY: [0], Parameter.Type.BOOL_ARRAY: [False], Parameter.Type.STRING: 'x'}


def cli_env() -> dict:
    env = node_env()
    env['AMENT_PREFIX_PATH'] = str(Path(sys.executable).parents[1])
    return env


def ros2_param(*args: str) -> subprocess.CompletedProcess:
    if not ROS2.exists():
        pytest.skip(f'the ros2 CLI is not installed ({ROS2} missing)')
    verb, node, *rest = args
    return subprocess.run([str(ROS2), 'param', verb, '--no-daemon', '--timeout', '20', node, *rest],
                          env=cli_env(), capture_output=True, text=True, timeout=90)


def param_set(node: str, name: str, value: str) -> str:
    r = ros2_param('set', node, name, value)
    return (r.stdout + r.stderr).strip()


def param_get(node: str, name: str) -> str:
    r = ros2_param('get', node, name)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.strip().split()[-1]


# -- the mechanism (rig_base.ros_params), on a plain rclpy node ----------------------------------------------
@dataclasses.dataclass
class Limits:
    low: float = 0.0
    high: float = 1.0


@dataclasses.dataclass
class Demo:
    rate: float = 20.0
    box: tuple[float, ...] = (0.0, 1.0)
    limits: Limits = dataclasses.field(default_factory=Limits)

    def validate(self):
        if not self.limits.low < self.limits.high:
            raise ValueError(f'need limits.low < limits.high, got {self.limits.low} and {self.limits.high}')


DEMO_DESCRIPTIONS = {'rate': 'r', 'box': 'b', 'limits.low': 'l', 'limits.high': 'h'}


def test_live_fields_are_validated_applied_and_announced_the_rest_is_read_only():
    from rig_base.config import ConfigError
    from rig_base.ros_params import declare_dataclass_parameters
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('demo', context=context)
    changes = []
    node.on_parameters_changed = lambda old, new: changes.append((old, new))
    try:
        with pytest.raises(ConfigError, match='not fields'):
            declare_dataclass_parameters(node, Demo(), DEMO_DESCRIPTIONS, live=('limits.typo',))
        node.cfg = declare_dataclass_parameters(node, Demo(), DEMO_DESCRIPTIONS, live=('box', 'limits.high'))
        assert node.set_parameters([Parameter('box', value=[2.0, 3.0])])[0].successful
        assert node.cfg.box == (2.0, 3.0) and changes[-1][0].box == (0.0, 1.0)
        result = node.set_parameters([Parameter('limits.high', value=-1.0)])[0]
        assert not result.successful and result.reason == 'need limits.low < limits.high, got 0.0 and -1.0'
        assert node.cfg.limits.high == node.get_parameter('limits.high').value == 1.0 and len(changes) == 1
        result = node.set_parameters([Parameter('rate', value=1.0)])[0]
        assert not result.successful and 'read-only' in result.reason and node.cfg.rate == 20.0
        assert node.set_parameters([Parameter('use_sim_time', value=True)])[0].successful   # not ours

        def refuse(old, new):
            raise RuntimeError('cannot apply')
        node.on_parameters_changed = refuse
        result = node.set_parameters([Parameter('limits.high', value=5.0)])[0]
        assert not result.successful and 'cannot apply' in result.reason and node.cfg.limits.high == 1.0
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


# -- the table: every parameter is live or read-only ---------------------------------------------------
def _make(name: str, tmp_path: Path, context):
    if name == 'policy':
        from rig_policy.policy_node import PolicyNode
        return PolicyNode(context=context)
    if name == 'encoder':
        from rig_perception.encoder_node import EncoderNode
        return EncoderNode(context=context)
    if name == 'recorder':
        from rig_trainer.recorder_node import RecorderConfig, RecorderNode
        return RecorderNode(RecorderConfig(data_dir=str(tmp_path / 'data')), context=context)
    if name == 'trainer':
        from rig_trainer.trainer_node import TrainerNode, TrainerNodeConfig
        return TrainerNode(TrainerNodeConfig(data_dir=str(tmp_path / 'data')), context=context)
    if name == 'sim_bridge':
        from rig_sim.bridge_node import SimBridgeNode
        return SimBridgeNode(context=context)
    if name == 'safety_filter':
        from rig_policy.safety_filter_node import SafetyFilterNode
        return SafetyFilterNode(context=context)
    if name == 'arm_adapter':
        from rig_policy.arm_adapter_node import ArmAdapterNode
        return ArmAdapterNode(context=context)
    if name == 'camera':
        from rig_perception.camera_node import CameraConfig, CameraNode
        return CameraNode(CameraConfig(driver='topic'), context=context)
    raise KeyError(name)


@contextlib.contextmanager
def in_process(name: str, tmp_path: Path):
    context = rclpy.Context()
    rclpy.init(context=context)
    node = None
    try:
        node = _make(name, tmp_path, context)
        yield node
    finally:
        if node is not None:
            if hasattr(node, 'stop'):
                node.stop()
            node.destroy_node()
        rclpy.shutdown(context=context)


@pytest.mark.parametrize('name', sorted(LIVE))
def test_each_parameter_is_live_or_read_only(name, tmp_path):
    with in_process(name, tmp_path) as node:
        names = [s.name for s in parameter_specs(type(node.cfg))]
        assert set(node.get_parameters_by_prefix('')) >= set(names) >= LIVE[name]
        descriptors = dict(zip(names, node.describe_parameters(names)))
        assert {n for n, d in descriptors.items() if not d.read_only} == LIVE[name]
        for n in names:
            try:
                current = node.get_parameter(n)   # set again to the same value
            except ParameterUninitializedException:   # declared typed but unset (an empty array)
                kind = Parameter.Type(descriptors[n].type)
                current = Parameter(n, kind, SAMPLES[kind])
            result = node.set_parameters([current])[0]
            if n in LIVE[name]:
                assert result.successful, (n, result.reason)
            else:
                assert not result.successful and 'read-only' in result.reason, (n, result.reason)


def test_trainer_passes_live_values_to_its_training_core(tmp_path):
    with in_process('trainer', tmp_path) as node:
        assert node.trainer.cfg.checkpoint_every_updates == 1000
        assert node.set_parameters([Parameter('checkpoint_every_updates', value=50)])[0].successful
        assert node.cfg.checkpoint_every_updates == node.trainer.cfg.checkpoint_every_updates == 50
        assert node.set_parameters([Parameter('train_slice_s', value=0.2)])[0].successful
        assert node.cfg.train_slice_s == 0.2
        result = node.set_parameters([Parameter('keep_checkpoints', value=0)])[0]
        assert not result.successful and 'keep_checkpoints must be >= 1' in result.reason
        assert node.trainer.cfg.keep_checkpoints == node.get_parameter('keep_checkpoints').value == 3


def test_sim_bridge_speed_limits_change_at_run_time_and_stay_consistent(tmp_path):
    def command(speed):
        msg = TwistStamped()
        msg.header.frame_id = 'base_link'
        msg.twist.linear.x = speed
        return msg
    with in_process('sim_bridge', tmp_path) as node:
        assert node.parse_command(command(4.5)) is None            # above reject_speed_m_s 4.0
        result = node.set_parameters([Parameter('max_speed_m_s', value=5.0)])[0]
        assert not result.successful and 'need 0 < max_speed_m_s < reject_speed_m_s' in result.reason
        assert node.set_parameters([Parameter('reject_speed_m_s', value=6.0)])[0].successful
        assert node.set_parameters([Parameter('max_speed_m_s', value=5.0)])[0].successful
        assert node.parse_command(command(4.5))[0] == pytest.approx(4.5)
        assert node.parse_command(command(5.5))[0] == pytest.approx(5.0)   # clipped at the new limit


# -- the ros2 CLI against node processes ---------------------------------------------------------------
def test_policy_episode_length_set_at_run_time_shortens_practice_episodes(tmp_path):
    from test_graph_nodes import make_checkpoint
    if not ROS2.exists():
        pytest.skip(f'the ros2 CLI is not installed ({ROS2} missing)')
    ckpt = make_checkpoint(tmp_path / 'ckpt')
    log = tmp_path / 'policy.log'
    with rclpy_node('live_test', '/lp') as node, \
            spawn_node('rig_policy.policy_node', {'checkpoint': str(ckpt)}, namespace='/lp', log_path=log) as proc:
        events = []
        node.create_subscription(String, 'rig/episode', lambda m: events.append(json.loads(m.data)),
                                 qos.EPISODE_QOS)
        lat_pub = node.create_publisher(Image, 'rig/latent', qos.LATENT_QOS)
        practice = node.create_client(SetBool, 'rig/practice')
        assert practice.wait_for_service(timeout_sec=STARTUP), log.read_text()
        assert param_get('/lp/policy', 'episode_length') == '50'

        assert 'Set parameter successful' in param_set('/lp/policy', 'episode_length', '10')
        assert param_get('/lp/policy', 'episode_length') == '10'
        # An invalid value is refused with the reason; a read-only parameter is refused.
        out = param_set('/lp/policy', 'episode_length', '0')
        assert 'Setting parameter failed: episode_length and operator_steps must be >= 1' in out, out
        assert param_get('/lp/policy', 'episode_length') == '10'
        out = param_set('/lp/policy', 'control_rate_hz', '5.0')
        assert 'Setting parameter failed: Trying to set a read-only parameter: control_rate_hz' in out, out
        assert param_get('/lp/policy', 'control_rate_hz') == '20.0'

        fut = practice.call_async(SetBool.Request(data=True))
        assert spin_until(node, fut.done, STARTUP) and fut.result().success
        for _ in range(25):
            msg = latent_to_msg(np.zeros(4), np.zeros(4), Image().header)
            msg.header.stamp = node.get_clock().now().to_msg()
            lat_pub.publish(msg)
            spin_until(node, lambda: False, 0.1)
        spin_until(node, lambda: len([e for e in events if e['event'] == 'end']) >= 2, 5.0)
        assert proc.poll() is None, log.read_text()
    ends = [e for e in events if e['event'] == 'end']
    assert len(ends) >= 2 and all(e['steps'] == 10 for e in ends), (events, log.read_text())
    assert 'parameters changed: episode_length 50 -> 10' in log.read_text()


def test_recorder_max_episode_s_set_at_run_time_closes_the_open_episode(tmp_path):
    from rig_trainer.bags import list_closed_bags
    if not ROS2.exists():
        pytest.skip(f'the ros2 CLI is not installed ({ROS2} missing)')
    data = tmp_path / 'data'
    log = tmp_path / 'recorder.log'
    with rclpy_node('live_test', '/lr') as node, \
            spawn_node('rig_trainer.recorder_node', {'data_dir': str(data)}, namespace='/lr', log_path=log) as proc:
        episode_pub = node.create_publisher(String, 'rig/episode', qos.EPISODE_QOS)
        assert spin_until(node, lambda: episode_pub.get_subscription_count() > 0, STARTUP), log.read_text()
        episode_pub.publish(String(data=json.dumps({'event': 'start', 'episode': 1})))
        assert spin_until(node, lambda: 'ep000001' in ''.join(p.name for p in data.rglob('*')), 10.0), \
            log.read_text()
        out = param_set('/lr/recorder', 'max_episode_s', '-1.0')
        assert 'Setting parameter failed: max_episode_s must be > 0, got -1.0' in out, out
        out = param_set('/lr/recorder', 'data_dir', str(tmp_path / 'elsewhere'))
        assert 'Setting parameter failed: Trying to set a read-only parameter: data_dir' in out, out
        assert not list_closed_bags(data), 'the episode is still open (600 s limit)'
        assert 'Set parameter successful' in param_set('/lr/recorder', 'max_episode_s', '1.0')
        assert param_get('/lr/recorder', 'max_episode_s') == '1.0'
        deadline = time.monotonic() + 15.0
        while not list_closed_bags(data) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list_closed_bags(data), log.read_text()
        assert proc.poll() is None
    assert 'episode exceeded max_episode_s' in log.read_text()


@pytest.mark.parametrize('module, params, message', [
    ('rig_policy.policy_node', {'control_rate_hz': -20.0}, 'control_rate_hz and action_scale must be > 0'),
    ('rig_trainer.recorder_node', {'max_episode_s': 0.0}, 'max_episode_s must be > 0'),
    ('rig_trainer.trainer_node', {'keep_checkpoints': 0}, 'keep_checkpoints must be >= 1'),
    ('rig_policy.policy_node', {'device': 'cuda:7'}, "-p device:=cpu (a node)"),
    ('rig_perception.encoder_node', {'device': 'cuda:7'}, "-p device:=cpu (a node)"),
    ('rig_trainer.trainer_node', {'task': 'bogus'}, "task 'bogus': no learner config"),
])
def test_a_value_that_cannot_work_stops_the_node_at_start(module, params, message, tmp_path):
    from ros_util import ros_args
    params = {'data_dir': str(tmp_path / 'data'), **params} if 'policy' not in module else params
    r = subprocess.run([sys.executable, '-m', module] + ros_args(params), env=node_env(),
                       capture_output=True, text=True, timeout=STARTUP + 20)
    assert r.returncode == 2, r.stdout + r.stderr
    assert 'bad configuration' in r.stderr and message in r.stderr, r.stderr
