"""SimConfig validation and YAML loading: bad values must fail before MuJoCo starts."""
import pytest

from rig_base.config import ConfigError, from_dict
from rig_sim import RigScene, SimConfig


@pytest.mark.parametrize('field, value', [
    ('task', 'lift'), ('arm', 'panda'), ('mesh_fidelity', 'high'),
    ('image_size', 8), ('image_size', 48.0), ('image_size', True), ('image_size', 4096),
    ('action_scale', 0.0), ('action_scale', -0.02), ('action_scale', 0.5), ('action_scale', '0.02'),
    ('horizon', 0), ('horizon', 10.5), ('timestep', 0.0), ('timestep', 0.1),
    ('substeps', 0), ('seed', -1), ('seed', 1.5), ('camera', ''), ('reset_noise', 0.1),
    ('reset_noise', -0.01),
])
def test_bad_values_raise_value_error(field, value):
    with pytest.raises(ValueError, match=field):
        SimConfig(**{field: value})


def test_defaults_and_task_horizons():
    config = SimConfig()
    assert (config.task, config.arm, config.image_size, config.mesh_fidelity) == (
        'reach', 'sawyer', 48, 'simple')
    assert config.action_scale == 0.02
    assert [SimConfig(task=t).episode_horizon for t in ('reach', 'push', 'door')] == [50, 100, 100]
    assert SimConfig(task='push', horizon=7).episode_horizon == 7
    assert SimConfig(timestep=0.002, substeps=25).control_dt == pytest.approx(0.05)


def test_loads_strictly_from_a_mapping():
    config = from_dict(SimConfig, {'task': 'door', 'arm': 'ur5e', 'image_size': 84})
    assert (config.task, config.arm, config.image_size) == ('door', 'ur5e', 84)
    with pytest.raises(ConfigError, match='imagesize'):
        from_dict(SimConfig, {'imagesize': 84})
    with pytest.raises(ValueError, match='arm'):
        from_dict(SimConfig, {'arm': 'kuka'})


def test_unknown_camera_is_rejected_when_the_scene_is_built():
    with pytest.raises(ValueError, match='no_such_camera'):
        RigScene(SimConfig(camera='no_such_camera'))
