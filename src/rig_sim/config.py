"""`SimConfig`: every knob of the MuJoCo task suite, validated on construction.

Load it from YAML with `rig_base.config.load_yaml(SimConfig, path, section='sim')`; unknown keys are
errors there, and out-of-range values are errors here, so a bad file fails before MuJoCo starts.
"""
from __future__ import annotations

from dataclasses import dataclass

from rig_sim.arms import ARMS
from rig_sim.tasks import TASK_SPECS, TASKS

MESH_FIDELITIES = ('simple', 'collision', 'visual')


@dataclass
class SimConfig:
    """Task suite configuration.

    task: 'reach' | 'push' | 'door'.
    arm: 'sawyer' | 'ur5e' (robosuite's models).
    image_size: side in pixels of the square learner image (48 as in the RIG paper; up to 1024).
    mesh_fidelity: what the camera sees of the arm:
        'simple'    - a capsule per link (~1 ms per 48x48 frame with CPU software rendering);
        'collision' - robosuite's collision geometry (primitives for Sawyer, meshes for UR5e);
        'visual'    - robosuite's full visual meshes (~15 ms per frame on CPU; fine on a GPU).
        Physics is the same for all three: only the hand tool touches objects.
    action_scale: largest hand displacement per control step and axis, metres (an action of 1.0).
    horizon: episode length in control steps; None = task default (reach 50, push 100, door 100).
    timestep: physics timestep, seconds.
    substeps: physics steps per control step (control_dt = timestep * substeps).
    seed: seed for the first reset when reset() gets none; None = fresh entropy.
    reset_noise: half-width (m) of a uniform jitter of the hand's start position at reset; 0 = the
        paper's fixed start. At most 3 cm, so the push hand never starts inside the puck.
    camera: name of the scene camera that produces observations ('learner' or 'overview').
    """
    task: str = 'reach'
    arm: str = 'sawyer'
    image_size: int = 48
    mesh_fidelity: str = 'simple'
    action_scale: float = 0.02
    horizon: int | None = None
    timestep: float = 0.002
    substeps: int = 25
    seed: int | None = None
    reset_noise: float = 0.0
    camera: str = 'learner'

    def __post_init__(self) -> None:
        _check_choice('task', self.task, TASKS)
        _check_choice('arm', self.arm, ARMS)
        _check_choice('mesh_fidelity', self.mesh_fidelity, MESH_FIDELITIES)
        _check_int('image_size', self.image_size, 16, 1024)
        _check_number('action_scale', self.action_scale, 1e-4, 0.1)
        if self.horizon is not None:
            _check_int('horizon', self.horizon, 1, 1_000_000)
        _check_number('timestep', self.timestep, 1e-4, 0.01)
        _check_int('substeps', self.substeps, 1, 1000)
        if self.seed is not None:
            _check_int('seed', self.seed, 0, 2**63 - 1)
        _check_number('reset_noise', self.reset_noise, 0.0, 0.03)
        if not isinstance(self.camera, str) or not self.camera:
            raise ValueError(f'camera must be a non-empty camera name, got {self.camera!r}')

    @property
    def episode_horizon(self) -> int:
        """Horizon in control steps, with the task default filled in."""
        return self.horizon if self.horizon is not None else TASK_SPECS[self.task].default_horizon

    @property
    def control_dt(self) -> float:
        """Seconds of simulated time per control step."""
        return self.timestep * self.substeps


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f'{name} must be one of {list(choices)}, got {value!r}')


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f'{name} must be an integer in [{low}, {high}], got {value!r}')


def _check_number(name: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f'{name} must be a number in [{low}, {high}], got {value!r}')
