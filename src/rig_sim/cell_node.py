"""Simulated drivers of a real cell: the arm's driver and a camera driver, over `rig_sim.cell.SimulatedArm`.

They speak exactly what the real drivers speak, so the robot graph (camera -> encoder -> policy ->
safety_filter -> arm_adapter) runs against them with its own configuration files:

- UR5e (Universal_Robots_ROS2_Driver): `/joint_states` (JointState, joint_state_broadcaster's
  alphabetical order), `/forward_velocity_controller/commands` (Float64MultiArray in the controller's
  joint order, held until the next one), `/scaled_joint_trajectory_controller/joint_trajectory`
  (JointTrajectory, what `rig home` sends in trajectory mode);
- Sawyer (intera through ros1_bridge and the relay of docs/real_robot.md): `/robot/joint_states`
  (head_pan, right_j0..6, torso_t0) and `/sawyer/joint_velocity_command` (JointState velocities; position
  hold 0.2 s after the last one);
- camera (realsense-ros 4.x): `/camera/camera/color/image_raw`, rgb8, 640x480 at 30 Hz, frame
  `camera_color_optical_frame`; it sees the simulated arm and table.

Services, as the sim bridge's: `sim/sample_goal` (a goal image of the task's goal distribution on
`rig/goal_image`: `rig goal --from-sim`), `sim/state` (the true state and its distance to that goal), and
two faults to rehearse: `sim/camera_enabled`, `sim/joint_states_enabled` (std_srvs/SetBool: false stops
the camera, or the arm driver's joint states, as a pulled cable would).

Physics runs in wall-clock time. A bad command is refused with a throttled error, as the controllers do,
and never moves the arm. Run: `ros2 run rig sim_cell --ros-args -p arm:=ur5e -p task:=reach`, or with
the graph: `rig up robot --sim-cell` / `ros2 launch rig robot.launch.py sim_cell:=true`.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from rig_base.config import ConfigError
from rig_base.image_msgs import numpy_to_image
from rig_base.node_main import run_node
from rig_base.qos import DRIVER_QOS, LATCHED_QOS
from rig_base.ros_params import declare_dataclass_parameters
from rig_sim.cell import DRIVERS, CommandError, SimulatedArm
from rig_sim.tasks import TASK_SPECS

LOG_THROTTLE_S = 2.0


@dataclasses.dataclass
class CellConfig:
    """Parameters of the simulated drivers (read-only). Topics '' = what the arm's real driver uses."""
    task: str = 'reach'
    arm: str = 'ur5e'
    joint_state_rate_hz: float = 0.0     # 0 = the simulated driver's (rig_sim.cell.DRIVERS)
    joint_states_topic: str = ''
    velocity_topic: str = ''
    trajectory_topic: str = ''           # UR only; 'none' = no trajectory interface
    camera_topic: str = '/camera/camera/color/image_raw'
    camera_rate_hz: float = 30.0
    camera_width: int = 640
    camera_height: int = 480
    camera_frame_id: str = 'camera_color_optical_frame'
    mesh_fidelity: str = 'simple'
    goal_image_size: int = 48
    seed: int = 0

    def __post_init__(self):
        if self.arm not in DRIVERS:
            raise ConfigError(f'arm must be one of {sorted(DRIVERS)}, got {self.arm!r}')
        if self.task not in TASK_SPECS:
            raise ConfigError(f'task must be one of {sorted(TASK_SPECS)}, got {self.task!r}')
        if self.joint_state_rate_hz < 0 or self.camera_rate_hz <= 0:
            raise ConfigError('joint_state_rate_hz must be >= 0 and camera_rate_hz > 0')
        if self.camera_width < 16 or self.camera_height < 16:
            raise ConfigError('camera_width and camera_height must be >= 16')


DESCRIPTIONS = {
    'task': 'task scene (reach, push, door): what the camera sees and the hand can touch',
    'arm': 'ur5e (UR ROS 2 driver interfaces) or sawyer (intera through ros1_bridge and the rig relay)',
    'joint_state_rate_hz': "joint_states rate; 0 = the simulated driver's (UR5e 100 Hz, real 500; Sawyer 100)",
    'joint_states_topic': "'' = the driver's (/joint_states, /robot/joint_states)",
    'velocity_topic': "'' = the driver's (/forward_velocity_controller/commands, /sawyer/joint_velocity_command)",
    'trajectory_topic': "UR: '' = /scaled_joint_trajectory_controller/joint_trajectory; 'none' = none",
    'camera_topic': 'the colour image, as realsense-ros 4.x names it',
    'camera_rate_hz': 'camera frames per second (RealSense: 30)',
    'camera_width': 'image width [px] (640: the crop of config/camera_topic.yaml is its centre square)',
    'camera_height': 'image height [px]',
    'camera_frame_id': 'frame_id of the images',
    'mesh_fidelity': 'what the camera sees of the arm: simple (capsules, fast) or full (robosuite meshes)',
    'goal_image_size': 'side [px] of the goal images sim/sample_goal publishes (the camera node\'s output size)',
    'seed': 'seed of the goal sampler',
}


class SimCellNode(Node):
    """A simulated arm driver and camera driver in one process, sharing one MuJoCo scene."""

    def __init__(self, cfg: CellConfig | None = None, **node_kwargs):
        super().__init__('sim_cell', **node_kwargs)
        self.cfg: CellConfig = declare_dataclass_parameters(self, cfg or CellConfig(), DESCRIPTIONS, read_only=True)
        driver = DRIVERS[self.cfg.arm]
        self.arm = SimulatedArm(self.cfg.task, self.cfg.arm, mesh_fidelity=self.cfg.mesh_fidelity)
        self.rejected = 0
        rate = self.cfg.joint_state_rate_hz or driver.joint_state_rate_hz
        self.joint_pub = self.create_publisher(JointState, self.cfg.joint_states_topic or driver.joint_states_topic,
                                               DRIVER_QOS)
        self.image_pub = self.create_publisher(Image, self.cfg.camera_topic, DRIVER_QOS)
        velocity_topic = self.cfg.velocity_topic or driver.velocity_topic
        if driver.velocity_type == 'array':
            self.create_subscription(Float64MultiArray, velocity_topic, self._on_array, DRIVER_QOS)
        else:
            self.create_subscription(JointState, velocity_topic, self._on_joint_velocity, DRIVER_QOS)
        trajectory_topic = self.cfg.trajectory_topic or driver.trajectory_topic
        if trajectory_topic and trajectory_topic != 'none':
            self.create_subscription(JointTrajectory, trajectory_topic, self._on_trajectory, DRIVER_QOS)
        # As the sim bridge offers them (`rig goal --from-sim`, benchmarks): a goal image of the task's
        # goal distribution on rig/goal_image, and the true state with its distance to that goal.
        self.goal_pub = self.create_publisher(Image, 'rig/goal_image', LATCHED_QOS)
        self.rng = np.random.default_rng(self.cfg.seed)
        self._goal_state = None
        self.create_service(Trigger, 'sim/sample_goal', self._on_sample_goal)
        self.create_service(Trigger, 'sim/state', self._on_state)
        # Faults a rehearsal must survive: the camera cable pulled, the arm driver gone quiet.
        self.publishing = {'camera': True, 'joint_states': True}
        self.create_service(SetBool, 'sim/camera_enabled', lambda req, res: self._on_enable('camera', req, res))
        self.create_service(SetBool, 'sim/joint_states_enabled',
                            lambda req, res: self._on_enable('joint_states', req, res))
        self.create_timer(1.0 / rate, self._on_tick)
        self.create_timer(1.0 / self.cfg.camera_rate_hz, self._on_camera)
        self.get_logger().info(
            f'simulated {self.cfg.arm} driver ({self.cfg.task} scene): {self.joint_pub.topic_name} at {rate:g} Hz, '
            f'commands on {velocity_topic}'
            + (f' and {trajectory_topic}' if trajectory_topic and trajectory_topic != 'none' else '')
            + f'; camera {self.image_pub.topic_name} {self.cfg.camera_width}x{self.cfg.camera_height} '
              f'at {self.cfg.camera_rate_hz:g} Hz')

    # -- commands -------------------------------------------------------------------------------
    def _refuse(self, exc: Exception) -> None:
        self.rejected += 1
        self.get_logger().error(f'command refused: {exc}', throttle_duration_sec=LOG_THROTTLE_S)

    def _on_array(self, msg: Float64MultiArray) -> None:
        try:
            now = time.monotonic()
            self.arm.advance(now)
            self.arm.command_velocity(None, msg.data, now)
        except CommandError as exc:
            self._refuse(exc)

    def _on_joint_velocity(self, msg: JointState) -> None:
        try:
            now = time.monotonic()
            self.arm.advance(now)
            self.arm.command_velocity(list(msg.name), msg.velocity, now)
        except CommandError as exc:
            self._refuse(exc)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        try:
            points = msg.points
            times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in points]
            positions = [list(p.positions) for p in points]
            velocities = [list(p.velocities) for p in points] if all(len(p.velocities) for p in points) else None
            now = time.monotonic()
            self.arm.advance(now)
            self.arm.command_trajectory(list(msg.joint_names), times, positions, velocities, now)
            self.get_logger().info(f'executing a trajectory of {len(points)} points over {times[-1]:.1f} s')
        except (CommandError, ValueError, IndexError) as exc:
            self._refuse(exc)

    # -- services -------------------------------------------------------------------------------
    def _on_sample_goal(self, request, response):
        self.arm.advance(time.monotonic())
        image, state = self.arm.goal(self.rng, self.cfg.goal_image_size)
        self.goal_pub.publish(numpy_to_image(image, 'rgb8', stamp=self.get_clock().now().to_msg(), frame_id='goal'))
        self._goal_state = state
        response.success, response.message = True, json.dumps({'goal_state': state.tolist()})
        return response

    def _on_state(self, request, response):
        """The true state and its task distance to the last sampled goal (metrics only)."""
        self.arm.advance(time.monotonic())
        goal = self._goal_state
        response.success = True
        response.message = json.dumps({
            'state': self.arm.task_state().tolist(), 'goal_state': None if goal is None else goal.tolist(),
            'distance': None if goal is None else self.arm.task_distance(goal)})
        return response

    def _on_enable(self, what: str, request, response):
        self.publishing[what] = bool(request.data)
        self.get_logger().warning(f'{what} {"resumed" if request.data else "stopped (simulated fault)"}')
        response.success, response.message = True, f'{what}: {"on" if request.data else "off"}'
        return response

    # -- publishing -----------------------------------------------------------------------------
    def _on_tick(self) -> None:
        self.arm.advance(time.monotonic())
        if not self.publishing['joint_states']:
            return
        names, q, v = self.arm.joint_state()
        msg = JointState(name=names, position=[float(x) for x in q], velocity=[float(x) for x in v],
                         effort=[float('nan')] * len(names))
        msg.header.stamp = self.get_clock().now().to_msg()
        self.joint_pub.publish(msg)

    def _on_camera(self) -> None:
        self.arm.advance(time.monotonic())
        if not self.publishing['camera']:
            return
        image = self.arm.render(self.cfg.camera_width, self.cfg.camera_height)
        self.image_pub.publish(numpy_to_image(image, 'rgb8', stamp=self.get_clock().now().to_msg(),
                                              frame_id=self.cfg.camera_frame_id))

    def task_state(self) -> np.ndarray:
        return self.arm.task_state()

    def destroy_node(self):
        self.arm.close()
        return super().destroy_node()


def main(args=None) -> int:
    return run_node(SimCellNode, 'sim_cell', args)


if __name__ == '__main__':
    sys.exit(main())
