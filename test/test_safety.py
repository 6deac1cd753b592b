"""Safety filter rules, one by one (pure logic, no ROS)."""
import math

import numpy as np
import pytest

from rig_base.config import ConfigError, from_dict
from rig_policy.safety import STOP_REASONS, Reason, SafetyConfig, SafetyFilter

NOW = 100.0
CENTRE = (0.4, 0.0, 0.2)


def step(f, cmd, *, now=NOW, cmd_age=0.0, ee=CENTRE, ee_age=0.0):
    return f.filter(cmd, now - cmd_age, now, ee, now - ee_age)


def settle(f, cmd, periods=10, **kw):
    """Run `periods` control periods with the same command; return the last result."""
    for _ in range(periods):
        out = step(f, cmd, **kw)
    return out


def test_small_command_passes_unchanged():
    out, reasons = step(SafetyFilter(SafetyConfig()), (0.02, -0.01, 0.03))
    np.testing.assert_allclose(out, (0.02, -0.01, 0.03))
    assert reasons == Reason.NONE


def test_speed_is_clipped_to_max_keeping_direction():
    f = SafetyFilter(SafetyConfig(max_speed=0.1, max_accel=100.0))
    out, reasons = step(f, (0.3, 0.4, 0.0))
    np.testing.assert_allclose(out, (0.06, 0.08, 0.0))
    assert reasons == Reason.SPEED


def test_acceleration_is_limited_relative_to_last_output():
    f = SafetyFilter(SafetyConfig(max_speed=0.1, max_accel=1.0, control_rate_hz=20.0))   # 0.05 per period
    out, reasons = step(f, (0.1, 0.0, 0.0))
    np.testing.assert_allclose(out, (0.05, 0.0, 0.0))
    assert reasons == Reason.ACCEL
    out, reasons = step(f, (0.1, 0.0, 0.0))
    np.testing.assert_allclose(out, (0.1, 0.0, 0.0))
    assert reasons == Reason.NONE
    out, _ = step(f, (-0.1, 0.0, 0.0))            # reversing is ramped too
    np.testing.assert_allclose(out, (0.05, 0.0, 0.0))


def test_output_never_exceeds_speed_or_accel_limits_under_random_commands():
    cfg = SafetyConfig(max_speed=0.1, max_accel=1.0, enforce_workspace=False)
    f = SafetyFilter(cfg)
    rng = np.random.default_rng(1)
    previous = np.zeros(3)
    for _ in range(300):
        out, reasons = f.filter(rng.normal(scale=0.3, size=3), NOW, NOW)
        assert np.linalg.norm(out) <= cfg.max_speed + 1e-12
        assert np.linalg.norm(out - previous) <= cfg.max_accel * cfg.period + 1e-12
        previous = out


@pytest.mark.parametrize('cmd', [(math.nan, 0, 0), (0, math.inf, 0), (0, 0, -math.inf), (0.1, 0.0), 'abc'])
def test_invalid_command_gives_zero(cmd):
    out, reasons = step(SafetyFilter(SafetyConfig()), cmd)
    assert out.tolist() == [0.0, 0.0, 0.0]
    assert reasons == Reason.INVALID_COMMAND


def test_no_command_gives_zero():
    out, reasons = SafetyFilter(SafetyConfig()).filter(None, None, NOW, CENTRE, NOW)
    assert out.tolist() == [0.0, 0.0, 0.0] and reasons == Reason.NO_COMMAND


def test_watchdog_zeroes_commands_older_than_stale_after_periods():
    cfg = SafetyConfig(control_rate_hz=20.0, stale_after_periods=3.0)   # 0.15 s
    f = SafetyFilter(cfg)
    assert step(f, (0.02, 0, 0), cmd_age=0.14)[1] == Reason.NONE
    out, reasons = step(f, (0.02, 0, 0), cmd_age=0.16)
    assert out.tolist() == [0.0, 0.0, 0.0] and reasons == Reason.STALE_COMMAND
    # A stamp far in the future means the clocks disagree: not trusted either.
    assert step(f, (0.02, 0, 0), cmd_age=-0.16)[1] == Reason.STALE_COMMAND


def test_stops_are_immediate_and_motion_restarts_from_rest():
    f = SafetyFilter(SafetyConfig(max_speed=0.1, max_accel=1.0))
    settle(f, (0.1, 0, 0))
    out, reasons = step(f, (0.1, 0, 0), cmd_age=1.0)
    assert out.tolist() == [0.0, 0.0, 0.0] and reasons == Reason.STALE_COMMAND
    out, _ = step(f, (0.1, 0, 0))
    np.testing.assert_allclose(out, (0.05, 0, 0))   # ramps up again, not resumed at 0.1


@pytest.mark.parametrize('ee,ee_age,reason', [
    (None, 0.0, Reason.NO_POSE),
    ((0.4, math.nan, 0.2), 0.0, Reason.INVALID_POSE),
    (CENTRE, 0.3, Reason.STALE_POSE),            # observation_timeout 0.25 s
])
def test_missing_or_stale_pose_gives_zero_when_box_is_enforced(ee, ee_age, reason):
    out, reasons = step(SafetyFilter(SafetyConfig()), (0.02, 0, 0), ee=ee, ee_age=ee_age)
    assert out.tolist() == [0.0, 0.0, 0.0] and reasons == reason
    out, reasons = step(SafetyFilter(SafetyConfig(enforce_workspace=False)), (0.02, 0, 0), ee=ee, ee_age=ee_age)
    np.testing.assert_allclose(out, (0.02, 0, 0))
    assert reasons == Reason.NONE


def test_estop_latches_zero_until_released_and_ignores_older_commands():
    f = SafetyFilter(SafetyConfig())
    settle(f, (0.02, 0, 0))
    f.set_estop(True, NOW)
    for _ in range(3):
        out, reasons = step(f, (0.02, 0, 0), now=NOW + 1)
        assert out.tolist() == [0.0, 0.0, 0.0] and Reason.ESTOP in reasons
    f.set_estop(False, NOW + 2)
    # Commanded before the release (still fresh by the watchdog): stays stopped.
    out, reasons = f.filter((0.02, 0, 0), NOW + 1.95, NOW + 2.0, CENTRE, NOW + 2.0)
    assert out.tolist() == [0.0, 0.0, 0.0] and reasons == Reason.ESTOP
    out, reasons = step(f, (0.02, 0, 0), now=NOW + 2.05)
    np.testing.assert_allclose(out, (0.02, 0, 0))


def test_motion_out_of_the_box_is_zeroed_per_component():
    cfg = SafetyConfig(max_speed=0.1, max_accel=100.0)   # box x 0.2..0.6, one period 0.05 s
    f = SafetyFilter(cfg)
    near_high_x = (0.597, 0.0, 0.2)                 # +0.04 m/s * 0.05 s = 0.002: would reach 0.599 (inside)
    np.testing.assert_allclose(step(f, (0.04, 0.05, 0), ee=near_high_x)[0], (0.04, 0.05, 0))
    out, reasons = step(f, (0.08, 0.05, 0), ee=near_high_x)   # 0.601: outside -> x zeroed, y kept
    np.testing.assert_allclose(out, (0.0, 0.05, 0))
    assert reasons == Reason.WORKSPACE
    np.testing.assert_allclose(step(f, (-0.06, 0.05, 0), ee=near_high_x)[0], (-0.06, 0.05, 0))   # back in: fine
    out, reasons = step(f, (0.0, 0.0, -0.05), ee=(0.4, 0.0, 0.031))   # towards the table
    assert out.tolist() == [0.0, 0.0, 0.0] and reasons == Reason.WORKSPACE


def test_outside_the_box_only_inward_motion_passes_and_none_is_added():
    f = SafetyFilter(SafetyConfig(max_accel=100.0))
    outside = (0.7, -0.3, 0.2)
    np.testing.assert_allclose(step(f, (0.05, -0.05, 0.02), ee=outside)[0], (0.0, 0.0, 0.02))
    np.testing.assert_allclose(step(f, (-0.05, 0.05, 0.0), ee=outside)[0], (-0.05, 0.05, 0.0))
    assert step(f, (0.0, 0.0, 0.0), ee=outside)[0].tolist() == [0.0, 0.0, 0.0]


def test_rate_limit_cannot_reintroduce_motion_the_box_removed():
    f = SafetyFilter(SafetyConfig(max_speed=0.1, max_accel=1.0))
    settle(f, (0.1, 0, 0))                          # moving at +0.1 in x
    out, reasons = step(f, (0.1, 0, 0), ee=(0.598, 0.0, 0.2))
    assert out[0] == 0.0 and Reason.WORKSPACE in reasons


def test_stop_reasons_are_exactly_the_zeroing_ones():
    assert Reason.SPEED not in STOP_REASONS and Reason.WORKSPACE not in STOP_REASONS
    assert Reason.ESTOP in STOP_REASONS and Reason.STALE_COMMAND in STOP_REASONS


@pytest.mark.parametrize('bad', [
    {'control_rate_hz': 0.0}, {'max_speed': -0.1}, {'max_accel': math.inf}, {'stale_after_periods': 0.5},
    {'workspace_low': (0.6, -0.2, 0.03)}, {'workspace_high': (0.6, 0.2)}, {'frame_id': ''},
    {'observation_timeout': 0.0},
])
def test_invalid_config_is_rejected(bad):
    with pytest.raises(ConfigError):
        from_dict(SafetyConfig, bad)


def test_config_from_yaml_lists():
    cfg = from_dict(SafetyConfig, {'workspace_low': [0, -1, 0], 'workspace_high': [1, 1, 1]})
    assert cfg.workspace_low == (0.0, -1.0, 0.0) and cfg.period == pytest.approx(0.05)
    assert cfg.stale_after == pytest.approx(0.15)
