"""`RigScene`: one MuJoCo task scene (table, arm, puck or door, cameras) behind a small API.

This is the layer both the gymnasium environments (`rig_sim.envs`) and the ROS sim bridge use, so
it knows nothing about goals, rewards or episodes: it moves the hand, reports and teleports the
task state, and renders camera images.

How the arm is driven: the arm keeps its physical joints (limits, damping, inertia) and robosuite's
torque motors are removed; a mocap body is welded to a hand tool mounted on the flange. An
end-effector Cartesian delta moves the mocap target and the physics pulls the arm along, which is
how the paper's multiworld Sawyer tasks are controlled. Only the hand tool collides with the puck
and the door; the arm links are visual, so the weld never fights the arm against the table.

Teleporting (`set_state`, used to render goal images) solves the arm's inverse kinematics for the
requested hand position, always starting from the home configuration, so the rendered arm pose is a
pure function of the requested state.
"""
from __future__ import annotations

import mujoco
import numpy as np

from rig_base.resources import sim_dir
from rig_sim.arms import ARM_SPECS, ArmSpec, robot_xml_path
from rig_sim.config import SimConfig
from rig_sim.tasks import HAND_TIP_RADIUS, PLANAR_HAND_Z, PUCK_Z, REGION_CENTRE, TASK_SPECS, TaskSpec, sample_goal_state

ARM_PREFIX = 'arm/'
EE_BODY = ARM_PREFIX + 'ee'
MOCAP_BODY = 'ee_target'
# Hand tool: a rod out of the flange ending in a sphere (the end-effector point).
TOOL_ROD_LENGTH = 0.18
TOOL_ROD_RADIUS = 0.012
# Target hand orientation: tool pointing straight down (180 deg about world x), wxyz.
HAND_DOWN_QUAT = np.array([0.0, 1.0, 0.0, 0.0])
# Colours of the geometry rig_sim adds to the arm (the scene's own colours are in sim/base.xml).
ARM_RGBA = (0.80, 0.80, 0.78, 1.0)
HAND_RGBA = (0.95, 0.10, 0.85, 1.0)
# Collision bit of the hand tool: it touches geoms whose conaffinity has bit 2 (puck, door).
TOOL_COLLISION_BIT = 2

_IK_MAX_ITERATIONS = 300
_IK_TOLERANCE = 1e-5
_IK_MAX_POSITION_ERROR = 1e-3  # metres; every point of every workspace box solves to < 0.01 mm
_IK_DAMPING = 1e-3
_IK_ROTATION_WEIGHT = 0.3  # metres per radian: orientation matters less than position
_DISABLED_RENDER_FLAGS = (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION,
                       mujoco.mjtRndFlag.mjRND_SKYBOX)


def build_model(config: SimConfig) -> mujoco.MjModel:
    """Compile the task scene with the configured arm attached and welded to the mocap target."""
    task = TASK_SPECS[config.task]
    spec = mujoco.MjSpec.from_file(str(sim_dir() / task.scene_xml))
    spec.option.timestep = config.timestep
    arm_spec = mujoco.MjSpec.from_file(str(robot_xml_path(config.arm)))
    _prepare_arm(arm_spec, ARM_SPECS[config.arm], config.mesh_fidelity)
    spec.attach(arm_spec, prefix=ARM_PREFIX, frame=spec.frame('arm_mount'))
    weld = spec.add_equality(type=mujoco.mjtEq.mjEQ_WELD, objtype=mujoco.mjtObj.mjOBJ_BODY,
                             name1=MOCAP_BODY, name2=EE_BODY)
    # anchor (3), relative position (3), relative quaternion (4), torque scale: the ee frame is
    # held exactly at the mocap frame.
    weld.data[:11] = [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]
    weld.solref = [0.01, 1.0]
    model = spec.compile()
    camera_names = [model.camera(i).name for i in range(model.ncam)]
    if config.camera not in camera_names:
        raise ValueError(f'camera {config.camera!r} is not in the {config.task} scene; '
                         f'cameras: {camera_names}')
    return model


def _prepare_arm(arm_spec: mujoco.MjSpec, arm: ArmSpec, mesh_fidelity: str) -> None:
    """Turn robosuite's torque-driven arm into a mocap-driven one with the requested geometry."""
    for actuator in list(arm_spec.actuators):
        arm_spec.delete(actuator)
    for joint in arm_spec.joints:
        joint.damping = joint.damping + arm.joint_damping
        joint.armature = joint.armature + arm.joint_armature
    for body in arm_spec.bodies:
        body.gravcomp = 1.0  # the weld only has to move the arm, not hold it up

    for geom in list(arm_spec.geoms):
        # robosuite marks visual meshes as group 1 without contacts; the rest is collision geometry.
        is_visual = geom.group == 1 and geom.contype == 0 and geom.conaffinity == 0
        keep = ((mesh_fidelity == 'visual' and is_visual)
                or (mesh_fidelity == 'collision' and not is_visual))
        if not keep:
            arm_spec.delete(geom)
            continue
        geom.contype = 0
        geom.conaffinity = 0
        if mesh_fidelity == 'collision':
            geom.rgba = ARM_RGBA
    if mesh_fidelity == 'simple':
        _add_link_capsules(arm_spec, arm)
    used_meshes = {geom.meshname for geom in arm_spec.geoms if geom.meshname}
    for mesh in list(arm_spec.meshes):
        if mesh.name not in used_meshes:
            arm_spec.delete(mesh)  # unused meshes would still be loaded and compiled

    _add_hand_tool(arm_spec.body(arm.hand_body))


def _add_link_capsules(arm_spec: mujoco.MjSpec, arm: ArmSpec) -> None:
    """Draw each link as a capsule from its body origin to the next body's origin (cheap to render)."""
    for parent_name, child_name, radius in zip(arm.chain[:-1], arm.chain[1:], arm.capsule_radii):
        parent = arm_spec.body(parent_name)
        child_offset = _offset_in_ancestor(arm_spec, child_name, parent_name)
        parent.add_geom(type=mujoco.mjtGeom.mjGEOM_CAPSULE, size=[radius, 0, 0],
                        fromto=[0, 0, 0, *child_offset], rgba=ARM_RGBA, contype=0, conaffinity=0,
                        mass=0)


def _offset_in_ancestor(arm_spec: mujoco.MjSpec, body_name: str, ancestor_name: str) -> np.ndarray:
    """Position of `body_name`'s origin in the frame of its ancestor `ancestor_name`."""
    position = np.zeros(3)
    body = arm_spec.body(body_name)
    while body.name != ancestor_name:
        rotated = np.zeros(3)
        mujoco.mju_rotVecQuat(rotated, position, np.asarray(body.quat, dtype=float))
        position = rotated + np.asarray(body.pos, dtype=float)
        body = body.parent
    return position


def _add_hand_tool(hand: mujoco.MjsBody) -> None:
    """Mount the hand tool on the flange: a rod along the flange's +z ending in a sphere.

    The sphere's centre is the body 'ee' (the end-effector point of move_ee/ee_pos/state); the rod
    and sphere are the only arm geometry that collides, with the puck and the door only.
    """
    contact = dict(contype=TOOL_COLLISION_BIT, conaffinity=TOOL_COLLISION_BIT)
    hand.add_geom(name='tool_rod', type=mujoco.mjtGeom.mjGEOM_CAPSULE,
                  size=[TOOL_ROD_RADIUS, 0, 0], fromto=[0, 0, 0, 0, 0, TOOL_ROD_LENGTH],
                  rgba=HAND_RGBA, mass=0.05, **contact)
    ee = hand.add_body(name='ee', pos=[0, 0, TOOL_ROD_LENGTH])
    ee.add_geom(name='tool_tip', type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[HAND_TIP_RADIUS, 0, 0],
                rgba=HAND_RGBA, mass=0.05, **contact)


class RigScene:
    """A task scene: hand control, true task state, teleporting and camera rendering.

    State layout (`state()` / `set_state()`), see `TaskSpec.state_names`:
      reach: hand xyz;  push: hand xyz, puck xy;  door: hand xyz, door angle (rad, 0 = closed).
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config if config is not None else SimConfig()
        self.task: TaskSpec = TASK_SPECS[self.config.task]
        self.arm: ArmSpec = ARM_SPECS[self.config.arm]
        self.model = build_model(self.config)
        self.data = mujoco.MjData(self.model)

        arm_joint_ids = [j for j in range(self.model.njnt)
                         if self.model.joint(j).name.startswith(ARM_PREFIX)]
        self.joint_names: list[str] = [self.model.joint(j).name[len(ARM_PREFIX):]
                                       for j in arm_joint_ids]
        self._arm_qpos_ids = self.model.jnt_qposadr[arm_joint_ids]
        self._arm_dof_ids = self.model.jnt_dofadr[arm_joint_ids]
        self._arm_joint_range = self.model.jnt_range[arm_joint_ids].copy()
        self._ee_body = self.model.body(EE_BODY).id
        self._arm_base_body = self.model.body(ARM_PREFIX + self.arm.chain[0]).id
        self._mocap = self.model.body(MOCAP_BODY).mocapid[0]
        self._puck_qpos = (self.model.joint('puck').qposadr[0] if self.task.name == 'push' else None)
        self._door_qpos = (self.model.joint('door_hinge').qposadr[0]
                           if self.task.name == 'door' else None)

        self.workspace_low = np.array(self.task.workspace_low)
        self.workspace_high = np.array(self.task.workspace_high)
        self.control_dt = self.config.control_dt

        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self.home_qpos = self._solve_hand_ik(np.array(self.task.hand_home),
                                             np.array(self.arm.ik_seed_qpos))
        self.reset()

    # ----------------------------------------------------------------------------------- control
    def reset(self, rng: np.random.Generator | int | None = None) -> None:
        """Arm at its home pose, puck at the goal-region centre, door closed, everything at rest.

        The initial state is deterministic, as in the paper's tasks; `rng` (a Generator or a seed)
        is only drawn from when config.reset_noise > 0, to jitter the hand's start position.
        """
        mujoco.mj_resetData(self.model, self.data)
        hand = np.array(self.task.hand_home)
        qpos = self.home_qpos
        if self.config.reset_noise > 0:
            rng = np.random.default_rng(rng)
            moving_axes = 2 if self.task.planar else 3
            hand[:moving_axes] += rng.uniform(-self.config.reset_noise, self.config.reset_noise,
                                              moving_axes)
            hand = np.clip(hand, self.workspace_low, self.workspace_high)
            qpos = self._solve_hand_ik(hand, self.home_qpos)
        self._place(qpos, hand)
        if self._puck_qpos is not None:
            self.data.qpos[self._puck_qpos:self._puck_qpos + 7] = [*REGION_CENTRE, PUCK_Z, 1, 0, 0, 0]
        mujoco.mj_forward(self.model, self.data)

    def move_ee(self, delta_xyz: np.ndarray) -> np.ndarray:
        """Move the hand by a Cartesian delta (metres) for one control step; return the achieved delta.

        The delta is clipped per axis to +-action_scale and the target to the workspace box; the
        planar tasks ignore the z component and hold the hand at its fixed height. The target is
        taken relative to where the hand is, so a blocked hand does not wind the target up.
        """
        delta = np.asarray(delta_xyz, dtype=float).reshape(3)
        if not np.all(np.isfinite(delta)):
            raise ValueError(f'move_ee got a non-finite delta {delta}')
        scale = self.config.action_scale
        start = self.ee_pos()
        target = np.clip(start + np.clip(delta, -scale, scale), self.workspace_low, self.workspace_high)
        if self.task.planar:
            target[2] = PLANAR_HAND_Z
        self.data.mocap_pos[self._mocap] = target
        mujoco.mj_step(self.model, self.data, nstep=self.config.substeps)
        # mj_step leaves positions of bodies one substep stale (computed before integrating);
        # refresh them so state(), ee_pos() and render() show the state the physics reached.
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)
        return self.ee_pos() - start

    # ------------------------------------------------------------------------------------ state
    def ee_pos(self) -> np.ndarray:
        """Hand tool tip position (world, metres)."""
        return self.data.xpos[self._ee_body].copy()

    def ee_pos_base(self) -> np.ndarray:
        """Hand tool tip position in the arm's base frame (what a real arm's driver reports)."""
        offset = self.data.xpos[self._ee_body] - self.data.xpos[self._arm_base_body]
        return self.data.xmat[self._arm_base_body].reshape(3, 3).T @ offset

    def ee_quat(self) -> np.ndarray:
        """Hand tool orientation, quaternion wxyz (tool z axis points down at the target pose).

        The arm base is mounted at the world origin without rotation, so this is also the
        orientation in the arm's base frame.
        """
        return self.data.xquat[self._ee_body].copy()

    def joint_positions(self) -> np.ndarray:
        """Arm joint angles (rad), ordered as `joint_names`."""
        return self.data.qpos[self._arm_qpos_ids].copy()

    def joint_velocities(self) -> np.ndarray:
        """Arm joint velocities (rad/s), ordered as `joint_names`."""
        return self.data.qvel[self._arm_dof_ids].copy()

    @property
    def state_names(self) -> tuple[str, ...]:
        return self.task.state_names

    def state(self) -> np.ndarray:
        """True task state: hand xyz, then puck xy (push) or door angle (door)."""
        parts = [self.ee_pos()]
        if self._puck_qpos is not None:
            parts.append(self.data.qpos[self._puck_qpos:self._puck_qpos + 2])
        if self._door_qpos is not None:
            parts.append(self.data.qpos[self._door_qpos:self._door_qpos + 1])
        return np.concatenate(parts)

    def set_state(self, state: np.ndarray) -> None:
        """Teleport the scene to a task state (at rest), e.g. to render a goal image.

        The arm pose comes from inverse kinematics started at the home pose, so equal states give
        identical scenes and images regardless of what happened before.
        """
        state = np.asarray(state, dtype=float).reshape(-1)
        if state.shape != (len(self.task.state_names),):
            raise ValueError(f'{self.task.name} state has {len(self.task.state_names)} values '
                             f'{self.task.state_names}, got shape {state.shape}')
        hand = state[:3]
        mujoco.mj_resetData(self.model, self.data)
        self._place(self._solve_hand_ik(hand, self.home_qpos), hand)
        if self._puck_qpos is not None:
            self.data.qpos[self._puck_qpos:self._puck_qpos + 7] = [*state[3:5], PUCK_Z, 1, 0, 0, 0]
        if self._door_qpos is not None:
            self.data.qpos[self._door_qpos] = state[3]
        mujoco.mj_forward(self.model, self.data)

    def sample_goal_state(self, rng: np.random.Generator) -> np.ndarray:
        """A goal state from the task's goal distribution (see tasks.sample_goal_state)."""
        return sample_goal_state(self.task.name, rng)

    def snapshot(self) -> np.ndarray:
        """Complete simulator state (incl. the solver's warm start), for `restore`."""
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        snapshot = np.empty(mujoco.mj_stateSize(self.model, spec))
        mujoco.mj_getState(self.model, self.data, snapshot, spec)
        return snapshot

    def restore(self, snapshot: np.ndarray) -> None:
        """Return to a `snapshot()`; the simulation then continues bit-identically."""
        mujoco.mj_setState(self.model, self.data, snapshot, mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(self.model, self.data)

    def _place(self, arm_qpos: np.ndarray, hand: np.ndarray) -> None:
        """Set the arm joints and put the mocap target exactly on the hand (no initial weld pull)."""
        self.data.qpos[self._arm_qpos_ids] = arm_qpos
        self.data.mocap_pos[self._mocap] = hand
        self.data.mocap_quat[self._mocap] = HAND_DOWN_QUAT

    def _solve_hand_ik(self, hand_pos: np.ndarray, seed_qpos: np.ndarray) -> np.ndarray:
        """Arm joint angles putting the hand tip at `hand_pos` pointing down (damped least squares).

        Uses a scratch MjData so the live simulation is untouched; joint limits are respected by
        clipping every iterate. Raises ValueError if the position is out of reach (a teleport must
        never silently render the wrong scene).
        """
        data = mujoco.MjData(self.model)
        qpos = np.array(seed_qpos, dtype=float)
        jac_pos = np.zeros((3, self.model.nv))
        jac_rot = np.zeros((3, self.model.nv))
        quat_error = np.zeros(4)
        rot_error = np.zeros(3)
        current_conj = np.zeros(4)
        error = np.zeros(6)
        for _ in range(_IK_MAX_ITERATIONS):
            data.qpos[self._arm_qpos_ids] = qpos
            mujoco.mj_kinematics(self.model, data)
            mujoco.mj_comPos(self.model, data)
            mujoco.mju_negQuat(current_conj, data.xquat[self._ee_body])
            mujoco.mju_mulQuat(quat_error, HAND_DOWN_QUAT, current_conj)
            mujoco.mju_quat2Vel(rot_error, quat_error, 1.0)
            error[:3] = hand_pos - data.xpos[self._ee_body]
            error[3:] = _IK_ROTATION_WEIGHT * rot_error
            if np.linalg.norm(error) < _IK_TOLERANCE:
                break
            mujoco.mj_jacBody(self.model, data, jac_pos, jac_rot, self._ee_body)
            jacobian = np.vstack([jac_pos, _IK_ROTATION_WEIGHT * jac_rot])[:, self._arm_dof_ids]
            normal = jacobian @ jacobian.T + _IK_DAMPING * np.eye(6)
            step = jacobian.T @ np.linalg.solve(normal, error)
            qpos = np.clip(qpos + step, self._arm_joint_range[:, 0], self._arm_joint_range[:, 1])
        if np.linalg.norm(error[:3]) > _IK_MAX_POSITION_ERROR:
            raise ValueError(f'the {self.arm.name} cannot put its hand at {np.round(hand_pos, 4)} '
                             f'pointing down (closest: {np.linalg.norm(error[:3]):.3f} m away)')
        return qpos

    # ---------------------------------------------------------------------------------- render
    def render(self, width: int | None = None, height: int | None = None,
               camera: str | None = None) -> np.ndarray:
        """RGB image (uint8, height x width x 3) from a scene camera.

        Defaults: config.image_size square from config.camera (the learner's view). The scenes also
        have an 'overview' camera for documentation and videos. One renderer per image size is
        kept until close().
        """
        width = self.config.image_size if width is None else int(width)
        height = self.config.image_size if height is None else int(height)
        renderer = self._renderers.get((width, height))
        if renderer is None:
            renderer = mujoco.Renderer(self.model, height=height, width=width)
            for flag in _DISABLED_RENDER_FLAGS:
                renderer.scene.flags[flag] = False
            self._renderers[(width, height)] = renderer
        renderer.update_scene(self.data, camera=camera or self.config.camera)
        return renderer.render()

    def close(self) -> None:
        """Free the OpenGL renderers now (rather than at garbage collection, see SIM_NOTES)."""
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()

    def __enter__(self) -> RigScene:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
