"""Arm kinematics for real-arm velocity control: end-effector twist -> joint velocities (no ROS).

The policy commands a linear end-effector velocity in `base_link`; a UR's forward_velocity_controller
and intera's VELOCITY mode want joint velocities. This module maps one to the other with the same
MuJoCo arm models the simulator uses (robosuite's robot.xml, geometry stripped: kinematics only, a few
milliseconds to load), so sim and real agree on what a command means.

Frames: the robosuite UR5e world frame is the ROS `base_link` of ur_description (checked against the
UR5e DH parameters in the tests); the Sawyer world frame is intera's `base`. The end-effector point
is the `right_hand` body (UR `tool0` / intera `right_hand`).

`twist_to_joint_velocities` solves by damped least squares and guards, in this order:
  - singularity: below `sigma_slow` the command is scaled down, at `sigma_stop` zeroed, but only
    while it would drive the arm deeper into the singularity (so it can always back out);
  - joint position limits: a joint within `limit_margin` of a limit gets no velocity further into it
    (its column is removed and the rest re-solved, so the hand still goes the commanded way if it can);
  - joint velocity limits: the whole vector is scaled, keeping its direction.
Each guard that acted is named in `Solution.reasons`.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

import mujoco
import numpy as np

from rig_sim.arms import ARM_SPECS, ARMS, robot_xml_path

# Reasons a solution was altered (Solution.reasons).
NEAR_SINGULAR = 'near_singular'       # scaled down: moving deeper into a singularity
SINGULAR = 'singular'                 # zeroed: at the singularity threshold and moving deeper
JOINT_LIMIT = 'joint_limit'           # a joint near its limit was held
VELOCITY_LIMIT = 'velocity_limit'     # whole vector scaled to respect joint speed limits
INVALID = 'invalid'                   # NaN/inf in q or the command: zero


@dataclasses.dataclass
class Solution:
    """Joint velocities (model joint order) and why they differ from the plain least-squares answer."""
    qdot: np.ndarray
    reasons: set[str]
    sigma_min: float     # smallest singular value of the task Jacobian at q
    scale: float         # overall factor applied to the command (1 = as commanded)


@dataclasses.dataclass
class SolverConfig:
    """Tuning of `twist_to_joint_velocities`; defaults suit a table-top arm at a few cm/s."""
    max_joint_velocity: float = 0.5     # rad/s cap on every joint (also capped by the hardware limit)
    hold_orientation: bool = True       # solve the 6-D twist with the commanded angular velocity
    damping: float = 0.05               # largest DLS damping lambda, reached at sigma_min = 0
    sigma_slow: float = 0.05            # below this sigma_min, scale down motion deeper into a singularity
    sigma_stop: float = 0.01            # at or below this, such motion is zeroed
    limit_margin: float = 0.1           # rad: inside this distance of a limit, no motion into it

    def __post_init__(self):
        if not 0 <= self.sigma_stop < self.sigma_slow:
            raise ValueError(f'need 0 <= sigma_stop < sigma_slow, got {self.sigma_stop}, {self.sigma_slow}')
        if self.max_joint_velocity <= 0 or self.damping < 0 or self.limit_margin < 0:
            raise ValueError('max_joint_velocity must be > 0, damping and limit_margin >= 0')


def rotation_error(r_ref: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Axis-angle vector (base frame) of the rotation taking `r` to `r_ref`: omega = k * error holds r_ref."""
    r_err = r_ref @ r.T
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, r_err.reshape(-1))
    vel = np.zeros(3)
    mujoco.mju_quat2Vel(vel, quat, 1.0)
    return vel


class ArmKinematics:
    """Forward kinematics, Jacobians and twist-to-joint-velocity solving for one arm model."""

    def __init__(self, arm: str, joint_prefix: str = '', ee_body: str | None = None):
        if arm not in ARM_SPECS:
            raise ValueError(f'unknown arm {arm!r}; known: {list(ARMS)}')
        self.arm = arm
        info = ARM_SPECS[arm]   # the hardware's joint speed limits, the hand body
        spec = mujoco.MjSpec.from_file(str(robot_xml_path(arm)))
        # Kinematics only: drop geometry so loading takes milliseconds, not a second of mesh parsing.
        for element in list(spec.geoms) + list(spec.meshes) + list(spec.textures):
            spec.delete(element)
        self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        hinge = [j for j in range(self.model.njnt) if self.model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]
        if len(hinge) != self.model.nv:
            raise ValueError(f'{arm}: expected only hinge joints, model has nv={self.model.nv}')
        self.model_joint_names: tuple[str, ...] = tuple(self.model.joint(j).name for j in hinge)
        self.joint_prefix = joint_prefix
        # Names as the robot's joint_states spells them (UR drivers may add a tf_prefix).
        self.joint_names: tuple[str, ...] = tuple(joint_prefix + n for n in self.model_joint_names)
        self.lower = self.model.jnt_range[hinge, 0].copy()
        self.upper = self.model.jnt_range[hinge, 1].copy()
        self.max_joint_velocity = np.array(info.max_joint_velocity, dtype=float)
        self.ee_body = ee_body or info.hand_body
        self._ee_id = self.model.body(self.ee_body).id
        self.n = self.model.nv

    # -- joint order ------------------------------------------------------------------------------
    def order(self, names: Sequence[str], values: Sequence[float]) -> np.ndarray:
        """Values given with `names` (any order, extra joints ignored) in this model's joint order."""
        if len(names) != len(values):
            raise ValueError(f'{len(names)} names but {len(values)} values')
        index = {name: i for i, name in enumerate(names)}
        missing = [n for n in self.joint_names if n not in index]
        if missing:
            raise KeyError(f'joint(s) {missing} missing (got {list(names)}); check joint_prefix')
        return np.array([values[index[n]] for n in self.joint_names], dtype=float)

    def reorder(self, values: Sequence[float], target_names: Sequence[str]) -> np.ndarray:
        """Model-order `values` rearranged into `target_names` order (e.g. a controller's `joints`)."""
        index = {name: i for i, name in enumerate(self.joint_names)}
        unknown = [n for n in target_names if n not in index]
        if unknown or len(target_names) != self.n or len(set(target_names)) != self.n:
            raise KeyError(f'target joints {list(target_names)} must be a permutation of {list(self.joint_names)}')
        return np.array([values[index[n]] for n in target_names], dtype=float)

    # -- kinematics -------------------------------------------------------------------------------
    def _set(self, q: Iterable[float]) -> None:
        q = np.asarray(q, dtype=float)
        if q.shape != (self.n,):
            raise ValueError(f'{self.arm}: q needs {self.n} values, got shape {q.shape}')
        self.data.qpos[:] = q
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)

    def fk(self, q: Iterable[float]) -> np.ndarray:
        """End-effector position (m) in the base frame."""
        self._set(q)
        return self.data.xpos[self._ee_id].copy()

    def fk_pose(self, q: Iterable[float]) -> tuple[np.ndarray, np.ndarray]:
        """End-effector (position, 3x3 rotation matrix) in the base frame."""
        self._set(q)
        return self.data.xpos[self._ee_id].copy(), self.data.xmat[self._ee_id].reshape(3, 3).copy()

    def jacobian6(self, q: Iterable[float]) -> np.ndarray:
        """6 x N Jacobian of the end-effector point: rows 0-2 linear (m/rad), 3-5 angular (rad/rad)."""
        self._set(q)
        jacp = np.zeros((3, self.n))
        jacr = np.zeros((3, self.n))
        mujoco.mj_jacBody(self.model, self.data, jacp, jacr, self._ee_id)
        return np.vstack([jacp, jacr])

    def jacobian(self, q: Iterable[float]) -> np.ndarray:
        """3 x N linear Jacobian: d(ee position)/dq."""
        return self.jacobian6(q)[:3]

    def sigma_min(self, q: Iterable[float], hold_orientation: bool = True) -> float:
        """Smallest singular value of the task Jacobian: the distance-to-singularity measure used."""
        jac = self.jacobian6(q) if hold_orientation else self.jacobian(q)
        return float(np.linalg.svd(jac, compute_uv=False)[-1])

    # -- velocity solving -------------------------------------------------------------------------
    @staticmethod
    def _dls(jac: np.ndarray, target: np.ndarray, sigma: float, cfg: SolverConfig) -> np.ndarray:
        """Damped least squares; the damping rises only below sigma_slow so the solve is exact elsewhere."""
        lam2 = 0.0
        if sigma < cfg.sigma_slow:
            lam2 = (1.0 - (sigma / cfg.sigma_slow) ** 2) * cfg.damping ** 2
        jjt = jac @ jac.T + lam2 * np.eye(jac.shape[0])
        return jac.T @ np.linalg.solve(jjt, target)

    def twist_to_joint_velocities(self, q: Iterable[float], v_xyz: Iterable[float],
                                  omega: Iterable[float] | None = None,
                                  cfg: SolverConfig | None = None) -> Solution:
        """Joint velocities (model order) that move the end effector at `v_xyz` m/s (base frame).

        With `cfg.hold_orientation` the 6-D twist (v, omega) is solved, omega defaulting to zero so the
        hand keeps its orientation; otherwise only the linear part is (the wrist may turn freely).
        """
        cfg = cfg or SolverConfig()
        q = np.asarray(q, dtype=float)
        v = np.asarray(v_xyz, dtype=float).reshape(3)
        w = np.zeros(3) if omega is None else np.asarray(omega, dtype=float).reshape(3)
        zero = np.zeros(self.n)
        if not (np.all(np.isfinite(q)) and np.all(np.isfinite(v)) and np.all(np.isfinite(w))):
            return Solution(zero, {INVALID}, float('nan'), 0.0)
        target = np.concatenate([v, w]) if cfg.hold_orientation else v
        if not np.any(target):
            return Solution(zero, set(), self.sigma_min(q, cfg.hold_orientation), 1.0)

        reasons: set[str] = set()
        jac_full = self.jacobian6(q) if cfg.hold_orientation else self.jacobian(q)
        sigma = float(np.linalg.svd(jac_full, compute_uv=False)[-1])

        # Joint-position guard: hold joints that would move further into a nearby limit, re-solve.
        held = np.zeros(self.n, dtype=bool)
        for _ in range(self.n):
            jac = jac_full.copy()
            jac[:, held] = 0.0
            qdot = self._dls(jac, target, sigma, cfg)
            qdot[held] = 0.0
            into = ((q >= self.upper - cfg.limit_margin) & (qdot > 0)) | \
                   ((q <= self.lower + cfg.limit_margin) & (qdot < 0))
            into &= ~held
            if not into.any():
                break
            held |= into
            reasons.add(JOINT_LIMIT)

        # Singularity guard: only motion that lowers sigma_min is slowed, so the arm can back out.
        scale = 1.0
        if sigma < cfg.sigma_slow and np.any(qdot):
            step = 1e-3 * qdot / np.max(np.abs(qdot))
            deeper = self.sigma_min(q + step, cfg.hold_orientation) < sigma
            if deeper:
                scale = float(np.clip((sigma - cfg.sigma_stop) / (cfg.sigma_slow - cfg.sigma_stop), 0.0, 1.0))
                reasons.add(SINGULAR if scale == 0.0 else NEAR_SINGULAR)
                qdot = qdot * scale

        # Joint speed limits: scale the whole vector (direction kept).
        limit = np.minimum(self.max_joint_velocity, cfg.max_joint_velocity)
        peak = np.max(np.abs(qdot) / limit)
        if peak > 1.0:
            qdot = qdot / peak
            scale /= peak
            reasons.add(VELOCITY_LIMIT)
        return Solution(qdot, reasons, sigma, scale)
