"""ArmKinematics against the MuJoCo arm models: twists are realised, guards act, names map joints."""
from __future__ import annotations

import numpy as np
import pytest

from rig_policy.kinematics import (
    INVALID,
    JOINT_LIMIT,
    NEAR_SINGULAR,
    SINGULAR,
    VELOCITY_LIMIT,
    ArmKinematics,
    SolverConfig,
    rotation_error,
)

# Poses with the hand in front of the robot (robosuite's initial poses) and two more per arm.
CONFIGS = {
    'ur5e': [(-0.470, -1.735, 2.480, -2.275, -1.590, -1.991),
             (0.3, -1.2, 1.6, -1.9, -1.57, 0.2),
             (-1.0, -2.0, 2.0, -1.5, -1.2, 1.0)],
    'sawyer': [(0.0, -1.18, 0.0, 2.18, 0.0, 0.57, 3.3161),
               (0.4, -0.8, 0.3, 1.6, -0.2, 0.9, 0.0),
               (-0.3, -1.0, -0.2, 2.0, 0.3, 0.4, 1.5)],
}
DIRECTIONS = [(1, 0, 0), (0, -1, 0), (0, 0, 1), (-0.6, 0.6, -0.5)]


@pytest.fixture(scope='module', params=['ur5e', 'sawyer'])
def kin(request):
    return ArmKinematics(request.param)


def ur5e_dh_fk(q):
    """tool0 position from the published UR5e DH parameters (UR 'base' frame)."""
    d = [0.1625, 0, 0, 0.1333, 0.0997, 0.0996]
    a = [0, -0.425, -0.3922, 0, 0, 0]
    alpha = [np.pi / 2, 0, 0, np.pi / 2, -np.pi / 2, 0]
    t = np.eye(4)
    for i in range(6):
        ct, st, ca, sa = np.cos(q[i]), np.sin(q[i]), np.cos(alpha[i]), np.sin(alpha[i])
        t = t @ np.array([[ct, -st * ca, st * sa, a[i] * ct], [st, ct * ca, -ct * sa, a[i] * st],
                          [0, sa, ca, d[i]], [0, 0, 0, 1]])
    return t[:3, 3]


def test_ur5e_model_frame_is_ros_base_link():
    """ROS base_link = UR base rotated by pi about z; joint angles as the driver reports them."""
    kin = ArmKinematics('ur5e')
    rng = np.random.default_rng(1)
    for q in rng.uniform(-3, 3, size=(10, 6)):
        expected = np.diag([-1.0, -1.0, 1.0]) @ ur5e_dh_fk(q)
        # robosuite's flange is 1.6 mm shorter than tool0, its offsets rounded to the mm.
        assert np.linalg.norm(kin.fk(q) - expected) < 4e-3


def test_jacobian_matches_finite_differences(kin):
    q = np.array(CONFIGS[kin.arm][1])
    jac = kin.jacobian(q)
    assert jac.shape == (3, kin.n)
    eps = 1e-6
    for i in range(kin.n):
        dq = np.zeros(kin.n)
        dq[i] = eps
        np.testing.assert_allclose((kin.fk(q + dq) - kin.fk(q - dq)) / (2 * eps), jac[:, i], atol=1e-6)


@pytest.mark.parametrize('config_index', [0, 1, 2])
def test_integrated_joint_velocities_realise_the_twist(kin, config_index):
    """Commanding v for T seconds (re-solving every step) moves the hand v*T, orientation kept."""
    dt, steps, speed = 0.02, 25, 0.04
    for direction in DIRECTIONS:
        v = speed * np.asarray(direction, float) / np.linalg.norm(direction)
        q = np.array(CONFIGS[kin.arm][config_index])
        p0, r0 = kin.fk_pose(q)
        for _ in range(steps):
            sol = kin.twist_to_joint_velocities(q, v)
            assert sol.reasons == set(), sol.reasons
            q = q + dt * sol.qdot
        p1, r1 = kin.fk_pose(q)
        np.testing.assert_allclose(p1 - p0, v * dt * steps, atol=1e-3)
        assert np.linalg.norm(rotation_error(r0, r1)) < 0.01


def test_velocity_limit_scales_whole_vector(kin):
    q = np.array(CONFIGS[kin.arm][0])
    v = np.array([0.8, -0.5, 0.3])
    cfg = SolverConfig(max_joint_velocity=0.3)
    sol = kin.twist_to_joint_velocities(q, v, cfg=cfg)
    assert VELOCITY_LIMIT in sol.reasons
    assert np.max(np.abs(sol.qdot)) == pytest.approx(0.3)
    realised = kin.jacobian(q) @ sol.qdot
    # Same direction, shorter.
    cos = realised @ v / np.linalg.norm(realised) / np.linalg.norm(v)
    assert cos > 0.9999
    assert np.linalg.norm(realised) == pytest.approx(sol.scale * np.linalg.norm(v), rel=1e-6)


def test_no_velocity_into_a_nearby_joint_limit(kin):
    cfg = SolverConfig(limit_margin=0.1)
    q = np.array(CONFIGS[kin.arm][1])
    joint = 1
    q[joint] = kin.upper[joint] - 0.05
    # Find a direction whose plain solution drives that joint up, into its limit.
    free = SolverConfig(limit_margin=0.0)
    for v in np.vstack([np.eye(3), -np.eye(3)]) * 0.05:
        if kin.twist_to_joint_velocities(q, v, cfg=free).qdot[joint] > 1e-4:
            break
    else:
        pytest.fail('no direction moves the joint into its limit')
    sol = kin.twist_to_joint_velocities(q, v, cfg=cfg)
    assert JOINT_LIMIT in sol.reasons
    assert sol.qdot[joint] <= 0.0
    realised = kin.jacobian(q) @ sol.qdot
    assert realised @ v > 0.5 * v @ v        # the other joints still carry the hand the right way
    if kin.n > 6:                             # a redundant arm can do the whole twist without it
        np.testing.assert_allclose(kin.jacobian6(q) @ sol.qdot, np.r_[v, 0, 0, 0], atol=1e-4)
    # Moving away from the limit is untouched.
    away = kin.twist_to_joint_velocities(q, -v, cfg=cfg)
    assert JOINT_LIMIT not in away.reasons and away.qdot[joint] < 0


def test_stretched_arm_zeroes_outward_motion_but_allows_backing_out():
    """UR5e straight up (elbow 0.02 rad from stretched): rising further is zeroed, coming down is not."""
    kin = ArmKinematics('ur5e')
    cfg = SolverConfig()
    q = np.array([0.0, -np.pi / 2, 0.02, -np.pi / 2, -np.pi / 2, 0.0])
    assert kin.sigma_min(q) < cfg.sigma_stop
    up = kin.twist_to_joint_velocities(q, [0, 0, 0.05], cfg=cfg)
    assert SINGULAR in up.reasons and not np.any(up.qdot) and up.scale == 0.0
    down = kin.twist_to_joint_velocities(q, [0, 0, -0.05], cfg=cfg)
    assert not ({SINGULAR, NEAR_SINGULAR} & down.reasons)
    assert (kin.jacobian(q) @ down.qdot)[2] < 0      # damped (slow) but the right way
    # Between the thresholds the deeper-going command is scaled, not zeroed.
    q_mid = q.copy()
    q_mid[2] = 0.12
    assert cfg.sigma_stop < kin.sigma_min(q_mid) < cfg.sigma_slow
    mid = kin.twist_to_joint_velocities(q_mid, [0, 0, 0.05], cfg=cfg)
    assert NEAR_SINGULAR in mid.reasons and 0 < mid.scale < 1


def test_invalid_input_gives_zero(kin):
    q = np.array(CONFIGS[kin.arm][0])
    for v, qq in [([np.nan, 0, 0], q), ([0.01, 0, 0], np.r_[q[:-1], np.inf])]:
        sol = kin.twist_to_joint_velocities(qq, v)
        assert sol.reasons == {INVALID} and not np.any(sol.qdot)
    assert not np.any(kin.twist_to_joint_velocities(q, [0, 0, 0]).qdot)


def test_joint_order_by_name():
    kin = ArmKinematics('ur5e', joint_prefix='ur_')
    assert kin.joint_names[0] == 'ur_shoulder_pan_joint'
    q = np.arange(6, dtype=float)
    rng = np.random.default_rng(0)
    perm = rng.permutation(6)
    names = [kin.joint_names[i] for i in perm] + ['gripper_joint']
    values = [q[i] for i in perm] + [9.9]
    np.testing.assert_array_equal(kin.order(names, values), q)
    controller = list(reversed(kin.joint_names))
    np.testing.assert_array_equal(kin.reorder(q, controller), q[::-1])
    with pytest.raises(KeyError, match='missing'):
        kin.order(names[1:], values[1:])
    with pytest.raises(KeyError):
        kin.reorder(q, controller[:-1] + ['elbow_joint'])


def test_orientation_correction_returns_the_hand_to_its_reference(kin):
    """omega = gain * rotation_error(r_ref, r), as the arm adapter applies it, removes orientation drift."""
    q = np.array(CONFIGS[kin.arm][0])
    _, r_ref = kin.fk_pose(q)
    q = q + 0.05 * np.sign(np.arange(kin.n) % 2 - 0.5)        # knock the wrist off its orientation
    p_start = kin.fk(q)
    start_error = np.linalg.norm(rotation_error(r_ref, kin.fk_pose(q)[1]))
    assert start_error > 0.02
    for _ in range(100):
        omega = 2.0 * rotation_error(r_ref, kin.fk_pose(q)[1])
        q = q + 0.02 * kin.twist_to_joint_velocities(q, np.zeros(3), omega).qdot
    assert np.linalg.norm(rotation_error(r_ref, kin.fk_pose(q)[1])) < 0.05 * start_error
    assert np.linalg.norm(kin.fk(q) - p_start) < 1e-3           # the hand's position stays put
