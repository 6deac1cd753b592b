"""rig_base.ros_params: dataclass <-> declared ROS parameters, and parameter-file checks (used by the safety filter).

In-process rclpy nodes on a private context: declaring parameters needs no discovery or subprocess.
"""
from __future__ import annotations

import contextlib
import dataclasses

import pytest
import rclpy
from rclpy.parameter import Parameter

from rig_base.config import ConfigError
from rig_base.ros_params import dataclass_from_yaml_params, declare_dataclass_parameters, parameter_specs
from rig_policy.safety import SafetyConfig
from rig_policy.safety_filter_node import DESCRIPTIONS as SAFETY_DESCRIPTIONS


@dataclasses.dataclass
class Inner:
    gain: float = 0.5
    names: tuple[str, ...] = ('a', 'b')


@dataclasses.dataclass
class Demo:
    rate: float = 20.0
    count: int = 3
    enabled: bool = True
    label: str = 'x'
    box: tuple[float, float, float] = (0.0, 1.0, 2.0)
    ids: list[int] = dataclasses.field(default_factory=lambda: [1, 2])
    inner: Inner = dataclasses.field(default_factory=Inner)
    optional_path: str | None = None
    joints: tuple[str, ...] = ()


DESCRIPTIONS = {name: f'what {name} is for' for name in
                ('rate', 'count', 'enabled', 'label', 'box', 'ids', 'inner.gain', 'inner.names', 'optional_path',
                 'joints')}


@contextlib.contextmanager
def ros_node(*overrides: str):
    context = rclpy.Context()
    rclpy.init(args=['--ros-args', *overrides], context=context)
    node = rclpy.create_node('params_demo', context=context)
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def test_specs_map_field_types_to_ros_types():
    types = {s.name: s.type_name for s in parameter_specs(Demo)}
    assert types == {'rate': 'DOUBLE', 'count': 'INTEGER', 'enabled': 'BOOL', 'label': 'STRING',
                     'box': 'DOUBLE_ARRAY', 'ids': 'INTEGER_ARRAY', 'inner.gain': 'DOUBLE',
                     'inner.names': 'STRING_ARRAY', 'optional_path': 'STRING', 'joints': 'STRING_ARRAY'}


def test_defaults_are_declared_typed_and_described():
    with ros_node() as node:
        cfg = declare_dataclass_parameters(node, Demo(), DESCRIPTIONS)
        assert cfg == Demo()
        descriptors = dict(zip(DESCRIPTIONS, node.describe_parameters(list(DESCRIPTIONS))))
        assert descriptors['box'].type == Parameter.Type.DOUBLE_ARRAY.value
        assert descriptors['joints'].type == Parameter.Type.STRING_ARRAY.value   # empty default: still typed
        assert descriptors['inner.gain'].description == 'what inner.gain is for'
        assert not descriptors['rate'].dynamic_typing and descriptors['rate'].read_only   # not live: read-only


def test_overrides_win_and_come_back_as_the_field_types():
    with ros_node('-p', 'rate:=5.0', '-p', 'box:=[1.0,2.0,3.5]', '-p', 'inner.gain:=2.0',
                  '-p', 'inner.names:=[x]', '-p', 'optional_path:=/tmp/x', '-p', 'enabled:=false',
                  '-p', 'joints:=[j1,j2]') as node:
        cfg = declare_dataclass_parameters(node, Demo(count=7), DESCRIPTIONS)
    assert cfg == Demo(rate=5.0, count=7, enabled=False, box=(1.0, 2.0, 3.5),
                       inner=Inner(gain=2.0, names=('x',)), optional_path='/tmp/x', joints=('j1', 'j2'))
    assert isinstance(cfg.box, tuple) and isinstance(cfg.ids, list)


def test_integer_for_a_double_is_a_clear_error():
    with ros_node('-p', 'rate:=5') as node, pytest.raises(ConfigError, match="'rate' must be DOUBLE.*decimal"):
        declare_dataclass_parameters(node, Demo(), DESCRIPTIONS)


def test_every_field_needs_a_description_and_vice_versa():
    with ros_node() as node, pytest.raises(ConfigError, match=r"missing \['rate'\], unknown \['typo'\]"):
        declare_dataclass_parameters(node, Demo(), {**{k: v for k, v in DESCRIPTIONS.items() if k != 'rate'},
                                                    'typo': 'x'})


def test_read_only_and_dataclass_validation():
    with ros_node('-p', 'max_speed:=0.05') as node:
        cfg = declare_dataclass_parameters(node, SafetyConfig(), SAFETY_DESCRIPTIONS, read_only=True)
        assert cfg.max_speed == 0.05
        result = node.set_parameters([Parameter('max_speed', value=1.0)])[0]
        assert not result.successful and node.get_parameter('max_speed').value == 0.05
    with ros_node('-p', 'max_speed:=-1.0') as node, pytest.raises(ConfigError, match='max_speed'):
        declare_dataclass_parameters(node, SafetyConfig(), SAFETY_DESCRIPTIONS)


def params(section: dict, key: str = '/**/params_demo', **more) -> dict:
    return {key: {'ros__parameters': section}, **more}


def test_yaml_params_build_the_dataclass():
    cfg = dataclass_from_yaml_params(Demo, params(
        {'rate': 10.0, 'box': [0.0, 0.5, 1.0], 'inner': {'gain': 1.5}, 'use_sim_time': True},
        **{'/**': {'ros__parameters': {'label': 'shared', 'rate': 1.0}}}), 'params_demo')
    assert cfg == Demo(rate=10.0, label='shared', box=(0.0, 0.5, 1.0), inner=Inner(gain=1.5))


@pytest.mark.parametrize('section,message', [
    ({'rate': 10}, "rate: YAML value 10 is INTEGER, parameter is DOUBLE"),
    ({'box': [0, 0.5, 1.0]}, 'box: YAML value .* is None, parameter is DOUBLE_ARRAY'),
    ({'rat': 10.0}, 'rat: unknown parameter'),
    ({'use_sim_time': 'yes'}, 'use_sim_time: STRING given'),
])
def test_yaml_params_problems_are_reported(section, message):
    with pytest.raises(ConfigError, match=message):
        dataclass_from_yaml_params(Demo, params(section), 'params_demo')


def test_yaml_params_need_a_section_for_the_node():
    with pytest.raises(ConfigError, match='no section for node'):
        dataclass_from_yaml_params(Demo, params({}, key='other_node'), 'params_demo')
    with pytest.raises(ConfigError, match='ros__parameters'):
        dataclass_from_yaml_params(Demo, {'params_demo': {'rate': 1.0}}, 'params_demo')
