"""Safety filter logic between the policy and the arm (no ROS here, so every rule is unit-testable).

Once per control period the node asks `SafetyFilter.filter` what to send, given the newest policy
command (end-effector linear velocity in m/s, `base_link`) and the newest end-effector position. The
rules, in order (ROS2_NOTES.md, "Safety conventions"):

1. Stops, output exactly zero at once (no ramp: a ramp would delay the stop):
   e-stop latched; no command or a NaN/inf one; command older than `stale_after_periods` control
   periods (the policy stalled: forward controllers and Servo would otherwise keep moving); when the
   workspace is enforced, no end-effector position, a NaN/inf one, or one older than
   `observation_timeout` (we would be guarding the box blind).
2. Speed: the command's norm is clipped to `max_speed` (direction kept).
3. Acceleration: the change from the previous output is clipped to `max_accel` * period.
4. Workspace box: a velocity component that would carry the end effector past a face of the box
   within one control period is zeroed. Motion back into the box is always allowed; no motion is
   ever added (an arm found outside the box is not pulled anywhere).
The box comes last so that nothing after it can reintroduce outward motion. The filter is
translational only; the node publishes zero angular velocity.
"""
from __future__ import annotations

import dataclasses
import enum
import math

import numpy as np

from rig_base.config import ConfigError

OUTPUT_MODES = ('rate', 'on_input')


@dataclasses.dataclass
class SafetyConfig:
    """Limits of the safety filter. Defaults are for a real arm; the sim configuration overrides the box.

    The workspace default is sawyer_control's box from the original RIG real-robot setup
    (x 0.2..0.6, y -0.2..0.2, z 0.03..0.5 m in `base_link`): set it for your arm and table.
    max_speed 0.1 m/s crosses that box in about 4 s (lerobot-ros uses 0.05 m/s); max_accel 1.0 m/s^2
    reaches full speed in 0.1 s and reverses in 0.2 s, smooth for the arm without smothering the
    policy's exploration.
    """
    control_rate_hz: float = 20.0
    stale_after_periods: float = 3.0
    max_speed: float = 0.1
    max_accel: float = 1.0
    workspace_low: tuple[float, float, float] = (0.2, -0.2, 0.03)
    workspace_high: tuple[float, float, float] = (0.6, 0.2, 0.5)
    enforce_workspace: bool = True
    observation_timeout: float = 0.25
    frame_id: str = 'base_link'
    # 'rate': publish every period (real arms, real-time sim: controllers need a steady stream).
    # 'on_input': publish once per policy command, plus one zero when it goes stale (lockstep sim,
    # where every rig/cmd advances the simulation by one step).
    output_mode: str = 'rate'

    def __post_init__(self):
        self.workspace_low = tuple(float(v) for v in self.workspace_low)
        self.workspace_high = tuple(float(v) for v in self.workspace_high)
        positive = ('control_rate_hz', 'max_speed', 'max_accel', 'observation_timeout')
        bad = [name for name in positive if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0)]
        if bad:
            raise ConfigError(f'safety: {bad} must be finite and > 0')
        if not self.stale_after_periods >= 1:
            raise ConfigError(f'safety: stale_after_periods must be >= 1, got {self.stale_after_periods}')
        if len(self.workspace_low) != 3 or len(self.workspace_high) != 3:
            raise ConfigError('safety: workspace_low and workspace_high need 3 values (x, y, z)')
        if not all(lo < hi for lo, hi in zip(self.workspace_low, self.workspace_high)):
            raise ConfigError(f'safety: workspace_low {self.workspace_low} must be below '
                              f'workspace_high {self.workspace_high} on every axis')
        if not self.frame_id:
            raise ConfigError('safety: frame_id must not be empty')
        if self.output_mode not in OUTPUT_MODES:
            raise ConfigError(f'safety: output_mode must be one of {OUTPUT_MODES}, got {self.output_mode!r}')

    @property
    def period(self) -> float:
        return 1.0 / self.control_rate_hz

    @property
    def stale_after(self) -> float:
        """Seconds after which a command is too old to act on."""
        return self.stale_after_periods / self.control_rate_hz


class Reason(enum.Flag):
    """Why the output differs from the command (several may hold at once)."""
    NONE = 0
    ESTOP = enum.auto()
    NO_COMMAND = enum.auto()
    INVALID_COMMAND = enum.auto()
    STALE_COMMAND = enum.auto()
    NO_POSE = enum.auto()
    INVALID_POSE = enum.auto()
    STALE_POSE = enum.auto()
    SPEED = enum.auto()
    ACCEL = enum.auto()
    WORKSPACE = enum.auto()


# Reasons that force the output to exactly zero.
STOP_REASONS = (Reason.ESTOP | Reason.NO_COMMAND | Reason.INVALID_COMMAND | Reason.STALE_COMMAND
                | Reason.NO_POSE | Reason.INVALID_POSE | Reason.STALE_POSE)


def _finite_vector(value) -> np.ndarray | None:
    try:
        vec = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None
    return vec if vec.shape == (3,) and np.isfinite(vec).all() else None


class SafetyFilter:
    """Stateful filter: remembers the e-stop latch and its last output (for the acceleration limit).

    Times are seconds on one clock (the node's); call `filter` once per control period.
    """

    def __init__(self, cfg: SafetyConfig):
        self.cfg = cfg
        self._low = np.array(cfg.workspace_low)
        self._high = np.array(cfg.workspace_high)
        self._last_output = np.zeros(3)
        self._estop = False
        self._estop_released_at = -math.inf

    @property
    def estopped(self) -> bool:
        return self._estop

    @property
    def last_output(self) -> np.ndarray:
        return self._last_output.copy()

    def set_estop(self, active: bool, now: float) -> None:
        """Latch (True) or release (False) the e-stop. Commands stamped before a release are ignored,
        so a command queued before the stop cannot resume motion by itself."""
        if self._estop and not active:
            self._estop_released_at = now
        self._estop = bool(active)

    def stop(self) -> np.ndarray:
        """Forget the previous output (next motion ramps up from rest) and return a zero command."""
        self._last_output = np.zeros(3)
        return self._last_output.copy()

    def _stop_reasons(self, cmd, cmd_time, now, ee_pos, ee_time) -> Reason:
        cfg = self.cfg
        reasons = Reason.NONE
        if self._estop or (cmd_time is not None and cmd_time < self._estop_released_at):
            reasons |= Reason.ESTOP
        if cmd is None:
            reasons |= Reason.NO_COMMAND
        elif _finite_vector(cmd) is None:
            reasons |= Reason.INVALID_COMMAND
        # A stamp from the future beyond the same margin means clocks disagree: as untrustworthy as old.
        elif cmd_time is None or not math.isfinite(cmd_time) or abs(now - cmd_time) > cfg.stale_after:
            reasons |= Reason.STALE_COMMAND
        if cfg.enforce_workspace:
            if ee_pos is None:
                reasons |= Reason.NO_POSE
            elif _finite_vector(ee_pos) is None:
                reasons |= Reason.INVALID_POSE
            elif ee_time is None or not math.isfinite(ee_time) or abs(now - ee_time) > cfg.observation_timeout:
                reasons |= Reason.STALE_POSE
        return reasons

    def filter(self, cmd_xyz, cmd_time: float | None, now: float, ee_pos=None,
               ee_time: float | None = None) -> tuple[np.ndarray, Reason]:
        """(safe linear velocity [m/s] as a new 3-vector, reasons it differs from `cmd_xyz`)."""
        cfg = self.cfg
        reasons = self._stop_reasons(cmd_xyz, cmd_time, now, ee_pos, ee_time)
        if reasons:
            return self.stop(), reasons

        velocity = _finite_vector(cmd_xyz).copy()
        speed = float(np.linalg.norm(velocity))
        if speed > cfg.max_speed:
            velocity *= cfg.max_speed / speed
            reasons |= Reason.SPEED

        change = velocity - self._last_output
        max_change = cfg.max_accel * cfg.period
        change_norm = float(np.linalg.norm(change))
        if change_norm > max_change:
            velocity = self._last_output + change * (max_change / change_norm)
            reasons |= Reason.ACCEL

        if cfg.enforce_workspace:
            ahead = _finite_vector(ee_pos) + velocity * cfg.period
            outward = ((ahead > self._high) & (velocity > 0)) | ((ahead < self._low) & (velocity < 0))
            if outward.any():
                velocity[outward] = 0.0
                reasons |= Reason.WORKSPACE

        self._last_output = velocity
        return velocity.copy(), reasons
