"""The node graphs of rig, defined once (no ROS import) for both bring-up paths.

`launch/sim.launch.py` and `launch/robot.launch.py` turn these specs into `launch_ros` Nodes on a ROS 2
install; `rig up` composes the same nodes in one rclpy executor on a pip-only machine. Both read the
same parameter files from `config/` and map the same arguments (task, arm, data_dir, checkpoint) onto
the same parameters, so the two paths cannot drift apart.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

#: Launch/CLI argument -> default. Empty strings mean "use the parameter file's value".
ARGUMENTS = {
    'task': 'reach',
    'arm': 'sawyer',
    'data_dir': 'data',
    'checkpoint': '',
    'namespace': '',
    'camera': 'realsense',
}


@dataclasses.dataclass(frozen=True)
class NodeSpec:
    executable: str                 # `ros2 run rig <executable>`
    name: str                       # node name: the key of its section in the parameter files
    factory: str                    # 'module:Class' constructed in-process by `rig up`
    config: str                     # 'module:Dataclass' of its parameters (checks parameter files)
    arguments: tuple[str, ...] = ()  # ARGUMENTS passed on as parameters of the same name
    per_actor: bool = True          # one per namespace (actor); False: one shared node (the trainer)
    remap_cmd_to: str = ''          # robot graphs: where the filtered command goes


SIM_NODES = (
    NodeSpec('sim_bridge', 'sim_bridge', 'rig_sim.bridge_node:SimBridge', 'rig_sim.bridge_node:BridgeConfig', ('task', 'arm')),
    NodeSpec('encoder', 'encoder', 'rig_perception.encoder_node:Encoder', 'rig_perception.encoder_node:EncoderConfig', ('checkpoint',)),
    NodeSpec('policy', 'policy', 'rig_policy.policy_node:Policy', 'rig_policy.policy_node:PolicyConfig', ('checkpoint',)),
    NodeSpec('safety_filter', 'safety_filter', 'rig_policy.safety_filter_node:SafetyFilterNode',
             'rig_policy.safety:SafetyConfig'),
    NodeSpec('recorder', 'recorder', 'rig_trainer.recorder_node:Recorder', 'rig_trainer.recorder_node:RecorderConfig', ('data_dir',)),
    NodeSpec('trainer', 'trainer', 'rig_trainer.trainer_node:Trainer', 'rig_trainer.trainer_node:TrainerNodeConfig',
             ('task', 'arm', 'data_dir', 'checkpoint'), per_actor=False),
)

ROBOT_NODES = (
    NodeSpec('camera', 'camera', 'rig_perception.camera_node:CameraNode', 'rig_perception.camera_node:CameraConfig'),
    NodeSpec('encoder', 'encoder', 'rig_perception.encoder_node:Encoder', 'rig_perception.encoder_node:EncoderConfig', ('checkpoint',)),
    NodeSpec('policy', 'policy', 'rig_policy.policy_node:Policy', 'rig_policy.policy_node:PolicyConfig', ('checkpoint',)),
    NodeSpec('safety_filter', 'safety_filter', 'rig_policy.safety_filter_node:SafetyFilterNode',
             'rig_policy.safety:SafetyConfig'),
    NodeSpec('arm_adapter', 'arm_adapter', 'rig_policy.arm_adapter_node:ArmAdapter',
             'rig_policy.arm_adapter_node:ArmAdapterConfig'),
    NodeSpec('recorder', 'recorder', 'rig_trainer.recorder_node:Recorder', 'rig_trainer.recorder_node:RecorderConfig', ('data_dir',)),
)

GRAPHS = {'sim': SIM_NODES, 'robot': ROBOT_NODES}


def config_dir() -> Path:
    """config/ of the source tree, or share/rig/config of an installed package."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / 'config',):
        if candidate.is_dir():
            return candidate
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory('rig')) / 'config'
    except Exception as exc:  # noqa: BLE001 - any failure means: not installed
        raise FileNotFoundError('cannot find rig config/ (neither source tree nor ROS install)') from exc


def parameter_files(graph: str, arm: str = 'sawyer', camera: str = 'realsense') -> list[Path]:
    """Parameter files of a graph, in override order (later files win).

    robot: safety_filter.yaml (limits for a real arm), robot.yaml (policy timing), arm_<arm>.yaml
    (adapter, home pose), camera_<camera>.yaml (driver, crop).
    """
    if graph == 'robot':
        return [config_dir() / name for name in
                ('safety_filter.yaml', 'robot.yaml', f'arm_{arm}.yaml', f'camera_{camera}.yaml')]
    return [config_dir() / f'{graph}.yaml']


def argument_parameters(spec: NodeSpec, values: dict) -> dict:
    """The parameters a node gets from the launch/CLI arguments (non-empty values only)."""
    return {a: values[a] for a in spec.arguments if values.get(a) not in (None, '')}
