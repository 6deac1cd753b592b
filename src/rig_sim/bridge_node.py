"""ROS 2 bridge for the MuJoCo scene: it stands where the camera and the arm stand.

Publishes `camera/image_raw`, `joint_states`, `rig/ee_pose`; consumes `rig/cmd` (TwistStamped, m/s of
the end effector in base_link); offers `sim/reset`, `sim/sample_goal` (renders a goal and publishes
it, latched, on `rig/goal_image`) and `sim/state` (true state and distance to that goal, for metrics). Two modes:

- `lockstep`: one control step per received command, then the new frame is published at once. The
  simulation waits for the learner, so training runs as fast as the graph can go.
- `realtime`: a wall-clock timer steps at `control_rate_hz` with zero-order hold on the last command and
  stops the arm when commands go stale, as a real arm's controller does.

Bad commands (NaN/inf, absurd speeds, a foreign frame) are rejected with a throttled warning; speeds
above the limit are clipped. Nothing a publisher sends can crash the node.
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
import time

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import Trigger

from rig_base import qos
from rig_base.image_msgs import numpy_to_image
from rig_base.msgs import twist_velocity
from rig_base.node_main import run_node
from rig_base.ros_params import declare_dataclass_parameters
from rig_sim.config import SimConfig
from rig_sim.envs import make_env

MODES = ('lockstep', 'realtime')


@dataclasses.dataclass
class BridgeConfig:
    """Parameters of the sim bridge node (one per ROS parameter)."""
    task: str = 'reach'
    arm: str = 'sawyer'
    image_size: int = 48
    mesh_fidelity: str = 'simple'
    seed: int = 0
    mode: str = 'lockstep'
    control_rate_hz: float = 20.0
    cmd_timeout_s: float = 0.15
    max_speed_m_s: float = 0.6
    reject_speed_m_s: float = 4.0
    base_frame: str = 'base_link'
    camera_frame: str = 'sim_camera_optical_frame'
    stall_republish_s: float = 1.0

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {self.mode!r}')
        if self.control_rate_hz <= 0 or self.cmd_timeout_s <= 0:
            raise ValueError('control_rate_hz and cmd_timeout_s must be positive')
        if not 0 < self.max_speed_m_s < self.reject_speed_m_s:
            raise ValueError(f'need 0 < max_speed_m_s < reject_speed_m_s, got {self.max_speed_m_s} and '
                             f'{self.reject_speed_m_s}')
        if self.stall_republish_s < 0:
            raise ValueError(f'stall_republish_s must be >= 0 (0 disables), got {self.stall_republish_s}')

    def sim_config(self) -> SimConfig:
        return SimConfig(task=self.task, arm=self.arm, image_size=self.image_size,
                         mesh_fidelity=self.mesh_fidelity, seed=self.seed)


DESCRIPTIONS = {
    'task': 'simulated task: reach, push or door',
    'arm': 'arm model: sawyer or ur5e',
    'image_size': 'side of the square camera image in pixels (48 default, 84 and larger allowed)',
    'mesh_fidelity': 'what the camera sees of the arm: simple (fast), collision, or visual (full meshes)',
    'seed': 'seed of the scene (initial state and sampled goals)',
    'mode': 'lockstep: one control step per command (training); realtime: wall-clock rate, hold, stop when stale',
    'control_rate_hz': 'control rate; a command of v m/s moves the hand v/rate metres per step',
    'cmd_timeout_s': 'realtime mode: commands older than this stop the arm',
    'max_speed_m_s': 'commands faster than this are clipped (norm of the linear velocity)',
    'reject_speed_m_s': 'commands faster than this are absurd and rejected outright',
    'base_frame': 'frame of commands and of rig/ee_pose; commands in another frame are rejected',
    'camera_frame': 'frame_id of published camera images',
    'stall_republish_s': 'lockstep: republish the current frame after this long without a command, so a '
                         'frame lost on the way never stalls the loop; 0 disables',
}
#: Settable at run time (`ros2 param set`): read at each command or tick. The rest is read-only: the
#: scene, mode, rate and timers are set up at start, frames are what the other nodes expect.
LIVE_PARAMETERS = ('cmd_timeout_s', 'max_speed_m_s', 'reject_speed_m_s')


class SimBridgeNode(Node):
    """Thin ROS adapter over `RigScene`."""

    def __init__(self, cfg: BridgeConfig | None = None, **node_kwargs):
        super().__init__('sim_bridge', **node_kwargs)
        self.cfg: BridgeConfig = declare_dataclass_parameters(   # (validates: BridgeConfig.validate)
            self, cfg or BridgeConfig(), DESCRIPTIONS, live=LIVE_PARAMETERS)
        # The task env owns the scene and knows the task's goal distribution; the bridge drives the
        # scene directly (velocity commands, not normalised actions).
        self.env = make_env(self.cfg.sim_config())
        self.env.reset(seed=self.cfg.seed)
        self.scene = self.env.scene
        self.rng = np.random.default_rng(self.cfg.seed)
        self.period = 1.0 / self.cfg.control_rate_hz
        self.steps = 0
        self.rejected = 0
        self._last_cmd = np.zeros(3)
        self._last_cmd_time = -math.inf

        self.image_pub = self.create_publisher(Image, 'camera/image_raw', qos.CAMERA_PUBLISHER_QOS)
        self.joint_pub = self.create_publisher(JointState, 'joint_states', qos.STATE_PUBLISHER_QOS)
        self.pose_pub = self.create_publisher(PoseStamped, 'rig/ee_pose', qos.STATE_PUBLISHER_QOS)
        self.goal_pub = self.create_publisher(Image, 'rig/goal_image', qos.LATCHED_QOS)
        self.create_subscription(TwistStamped, 'rig/cmd', self._on_cmd, qos.COMMAND_QOS)
        self.create_service(Trigger, 'sim/reset', self._on_reset)
        self.create_service(Trigger, 'sim/sample_goal', self._on_sample_goal)
        self.create_service(Trigger, 'sim/state', self._on_state)
        self._goal_state: np.ndarray | None = None   # of the last sim/sample_goal
        self._last_activity = time.monotonic()
        if self.cfg.mode == 'realtime':
            self.create_timer(self.period, self._on_tick)
        elif self.cfg.stall_republish_s > 0:
            self.create_timer(self.cfg.stall_republish_s / 2, self._on_stall_check)
        self.publish_observation()
        self.get_logger().info(
            f'sim bridge up: task={self.cfg.task} arm={self.cfg.arm} {self.cfg.image_size}px '
            f'mode={self.cfg.mode} rate={self.cfg.control_rate_hz:g} Hz')

    # -- commands -------------------------------------------------------------------------------
    def parse_command(self, msg: TwistStamped) -> np.ndarray | None:
        """Linear velocity (m/s) of a command, clipped; None (with a throttled warning) if unusable."""
        if msg.header.frame_id not in ('', self.cfg.base_frame):
            return self._reject(f'command in frame {msg.header.frame_id!r}, expected {self.cfg.base_frame!r}')
        v = twist_velocity(msg)
        if not np.all(np.isfinite(v)):
            return self._reject('command with NaN/inf')
        speed = float(np.linalg.norm(v))
        if speed > self.cfg.reject_speed_m_s:
            return self._reject(f'command of {speed:.2f} m/s is absurd (> {self.cfg.reject_speed_m_s} m/s)')
        if speed > self.cfg.max_speed_m_s:
            self.get_logger().warning(f'clipping {speed:.2f} m/s to {self.cfg.max_speed_m_s} m/s',
                                      throttle_duration_sec=2.0)
            v *= self.cfg.max_speed_m_s / speed
        return v

    def _reject(self, why: str) -> None:
        self.rejected += 1
        self.get_logger().warning(f'rejected: {why}', throttle_duration_sec=2.0)
        return None

    def _on_cmd(self, msg: TwistStamped) -> None:
        v = self.parse_command(msg)
        if self.cfg.mode == 'lockstep':
            # A rejected command still answers with a frame (zero motion) so a lockstep client never hangs.
            self.step(np.zeros(3) if v is None else v)
        else:
            if v is None:
                v = np.zeros(3)
            self._last_cmd = v
            self._last_cmd_time = time.monotonic()

    def _on_stall_check(self) -> None:
        if time.monotonic() - self._last_activity >= self.cfg.stall_republish_s:
            self.publish_observation()

    def _on_tick(self) -> None:
        fresh = time.monotonic() - self._last_cmd_time <= self.cfg.cmd_timeout_s
        if not fresh and np.any(self._last_cmd):
            self.get_logger().warning('commands went stale: stopping the arm', throttle_duration_sec=2.0)
            self._last_cmd = np.zeros(3)
        self.step(self._last_cmd if fresh else np.zeros(3))

    def step(self, velocity: np.ndarray) -> None:
        """One control step: the hand moves velocity * period metres, then the new state is published."""
        self.scene.move_ee(velocity * self.period)
        self.steps += 1
        self.publish_observation()

    # -- services -------------------------------------------------------------------------------
    def _on_reset(self, request, response):
        self.scene.reset(self.rng)
        self._last_cmd = np.zeros(3)
        self.publish_observation()
        response.success = True
        response.message = json.dumps({'state': self.scene.state().tolist()})
        return response

    def _on_sample_goal(self, request, response):
        goal = self.env.sample_goal(self.rng)  # renders the goal, then restores the live scene exactly
        msg = numpy_to_image(goal['image'], 'rgb8', stamp=self.get_clock().now().to_msg(),
                             frame_id=self.cfg.camera_frame)
        self.goal_pub.publish(msg)
        self._goal_state = np.asarray(goal['state'], float)
        response.success = True
        response.message = json.dumps({'goal_state': goal['state'].tolist()})
        return response

    def _on_state(self, request, response):
        """The true state now and its task distance to the last sampled goal (metrics only: the
        learner never sees it)."""
        state = self.scene.state()
        goal = self._goal_state
        response.success = True
        response.message = json.dumps({
            'state': state.tolist(), 'goal_state': None if goal is None else goal.tolist(),
            'distance': None if goal is None else float(self.env.task_distance(state, goal))})
        return response

    # -- publishing -----------------------------------------------------------------------------
    def publish_observation(self) -> None:
        self._last_activity = time.monotonic()
        stamp = self.get_clock().now().to_msg()
        image = self.scene.render()
        self.image_pub.publish(numpy_to_image(image, 'rgb8', stamp=stamp, frame_id=self.cfg.camera_frame))

        joints = JointState()
        joints.header.stamp = stamp
        joints.name = list(self.scene.joint_names)
        joints.position = [float(x) for x in self.scene.joint_positions()]
        joints.velocity = [float(x) for x in self.scene.joint_velocities()]
        self.joint_pub.publish(joints)

        pose = PoseStamped()
        pose.header.stamp = stamp
        pose.header.frame_id = self.cfg.base_frame
        p = self.scene.ee_pos()  # the sim's world frame is the arm's base_link
        q = self.scene.ee_quat()
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(x) for x in p)
        (pose.pose.orientation.w, pose.pose.orientation.x,
         pose.pose.orientation.y, pose.pose.orientation.z) = (float(x) for x in q)
        self.pose_pub.publish(pose)

    def destroy_node(self):
        self.env.close()
        return super().destroy_node()


def main(args=None) -> int:
    return run_node(SimBridgeNode, 'sim_bridge', args)


if __name__ == '__main__':
    sys.exit(main())
