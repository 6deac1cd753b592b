"""The node graphs of rig, defined once (no ROS import) for both bring-up paths.

`launch/sim.launch.py` and `launch/robot.launch.py` turn `plan()` into `launch_ros` Nodes on a ROS 2
install; `rig up` runs the same plan on a pip-only machine. Both get the same arguments (`ARGUMENTS`),
the same parameter files (`parameter_files()`: the task's values, then `config/`), the same remappings
and the same per-node parameters, so the two paths cannot drift apart.

Several actors (namespaces) feed one trainer. The trainer lives in the root namespace; every actor's
`rig/checkpoint` is remapped to the trainer's `/rig/checkpoint`, so one latched announcement reaches
them all (docs/interfaces.md, "Namespaces").

Across hosts (docs/interfaces.md, "Across hosts"): the `learner` graph (trainer and episode receiver)
runs on the learner host; an actor graph with `remote_learner:=true` starts no trainer and gives each
actor a learner link, which receives the trainer's checkpoints over DDS (its encoder and policy load
them from `rig/checkpoint_received`) and ships its closed bags to the episode receiver.
"""
from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from pathlib import Path

import yaml

from rig_base.resources import config_dir
from rig_sim.cell import cell_parameters
from rig_sim.tasks import TASK_SPECS


@dataclasses.dataclass(frozen=True)
class Argument:
    """A launch argument (`name:=value`) and `rig up` option (`--name value`) of the graphs."""
    name: str
    default: str
    description: str
    graphs: tuple[str, ...] = ('sim', 'robot')   # the graphs that take it
    choices: tuple[str, ...] = ()    # the values allowed (none: any)
    is_flag: bool = False            # true/false


TRUE, FALSE = ('true', '1', 'yes', 'on'), ('false', '0', 'no', 'off', '')
ALL_GRAPHS = ('sim', 'robot', 'learner')

ARGUMENTS: tuple[Argument, ...] = (
    Argument('task', 'reach', 'task: reach, push or door; sets the episode length and action dimension, and '
             'encoder and policy refuse checkpoints of another task', choices=('reach', 'push', 'door'),
             graphs=ALL_GRAPHS),
    Argument('arm', 'sawyer', 'arm: sawyer or ur5e (sim: the model; robot: config/arm_<arm>.yaml)',
             choices=('sawyer', 'ur5e'), graphs=ALL_GRAPHS),
    Argument('data_dir', 'data', 'directory of the episode bags (recorders write, the trainer reads) and, '
             'under checkpoints/, the trainer\'s checkpoints', graphs=ALL_GRAPHS),
    Argument('checkpoint', '', "checkpoint directory for encoder and policy to start with; '' waits for "
             'the trainer\'s on /rig/checkpoint'),
    Argument('namespace', '', "actor namespace(s), space- or comma-separated ('env0 env1'): one actor each "
             '(sim bridge or camera + arm, encoder, policy, safety filter, recorder), all fed by one trainer; '
             "'' = one actor in the root namespace"),
    Argument('practice', 'false', 'start the actors in practice mode (imagined goals) instead of operator mode',
             is_flag=True),
    Argument('trainer', 'true', 'start the trainer (false: actors only, e.g. when it runs in another launch)',
             graphs=('sim',), is_flag=True),
    Argument('trainer', 'false', 'also start the trainer on this machine (default: it runs on the GPU machine)',
             graphs=('robot',), is_flag=True),
    Argument('sim_cell', 'false', 'rehearse in simulation: start simulated arm and camera drivers (rig_sim.cell_node) '
             'that speak what the real ones speak, with the cell values of rig_sim.cell.cell_parameters',
             graphs=('robot',), is_flag=True),
    Argument('remote_learner', 'false', 'the trainer runs on another host (`rig up learner` there): start no '
             'trainer here; a learner link per actor receives its checkpoints over DDS and ships the closed '
             'episodes to it', is_flag=True),
    Argument('params_file', '', "an extra parameter file, applied after the graph's own (`rig up`: "
             '--params-file, repeatable)', graphs=ALL_GRAPHS),
    Argument('camera', '', "camera configuration: config/camera_<camera>.yaml (realsense, uvc or topic); "
             "'' = realsense, or topic with sim_cell (the simulated camera publishes as realsense-ros does)",
             graphs=('robot',), choices=('', 'realsense', 'uvc', 'topic')),
    Argument('cmd_topic', '', "send the safety filter's rig/cmd to this topic instead of the arm adapter "
             "(MoveIt Servo: /servo_node/delta_twist_cmds; the adapter then only publishes rig/ee_pose)",
             graphs=('robot',)),
    Argument('joint_states', '', "the arm driver's joint state topic; '' = the arm's default "
             "(sawyer: /robot/joint_states through ros1_bridge, ur5e: /joint_states)", graphs=('robot',)),
    Argument('reset_service', 'rig/home', "Trigger service the policy calls between practice episodes; "
             "'none' = no reset (e.g. a Servo cell where the operator resets)", graphs=('robot',)),
)

#: The joint state topic each arm's driver publishes (absolute: drivers run outside rig's namespaces).
ARM_JOINT_STATES = {'sawyer': '/robot/joint_states', 'ur5e': '/joint_states'}
#: The trainer's checkpoint announcements; actors in any namespace listen here.
CHECKPOINT_TOPIC = '/rig/checkpoint'


@dataclasses.dataclass(frozen=True)
class NodeSpec:
    executable: str                 # `ros2 run rig <executable>`
    name: str                       # node name: the key of its section in the parameter files
    factory: str                    # 'module:Class' constructed in-process by `rig up`
    config: str                     # 'module:Dataclass' of its parameters (checks parameter files)
    arguments: tuple[str, ...] = ()  # ARGUMENTS passed on as parameters of the same name
    per_actor: bool = True          # one per namespace (actor); False: one shared node (the trainer)
    own_process: bool = False       # `rig up` runs it as its own process, as launch does (the trainer:
                                    # a shared executor and GIL would starve it while the actors run)


#: One trainer for every actor of a graph, in its own process (`rig up`: a shared executor and GIL
#: would starve it while the actors run).
TRAINER = NodeSpec('trainer', 'trainer', 'rig_trainer.trainer_node:TrainerNode',
                   'rig_trainer.trainer_node:TrainerNodeConfig', ('task', 'arm', 'data_dir'),
                   per_actor=False, own_process=True)

#: An actor's link to a trainer on another host (`remote_learner:=true`): checkpoints in, episodes out.
#: Its own process under `rig up` too, so its DDS participant is the only one that talks to the other
#: host: while a link was down, one shared with the control loop's nodes held them up for 3-5 s.
LINK = NodeSpec('learner_link', 'learner_link', 'rig_trainer.link_node:LearnerLinkNode',
                'rig_trainer.link_node:LinkConfig', ('data_dir',), own_process=True)
#: The learner host's end of the links: closed episodes from every actor host into the trainer's data_dir.
RECEIVER = NodeSpec('episode_receiver', 'episode_receiver', 'rig_trainer.episode_receiver_node:EpisodeReceiverNode',
                    'rig_trainer.episode_receiver_node:ReceiverConfig', ('data_dir',), per_actor=False)
SIM_NODES = (
    NodeSpec('sim_bridge', 'sim_bridge', 'rig_sim.bridge_node:SimBridgeNode', 'rig_sim.bridge_node:BridgeConfig',
             ('task', 'arm')),
    NodeSpec('encoder', 'encoder', 'rig_perception.encoder_node:EncoderNode',
             'rig_perception.encoder_node:EncoderConfig', ('checkpoint', 'task')),
    NodeSpec('policy', 'policy', 'rig_policy.policy_node:PolicyNode', 'rig_policy.policy_node:PolicyConfig',
             ('checkpoint', 'task')),
    NodeSpec('safety_filter', 'safety_filter', 'rig_policy.safety_filter_node:SafetyFilterNode',
             'rig_policy.safety:SafetyConfig'),
    NodeSpec('recorder', 'recorder', 'rig_trainer.recorder_node:RecorderNode',
             'rig_trainer.recorder_node:RecorderConfig', ('data_dir',)),
    LINK,
    TRAINER,
)
#: The simulated drivers of `sim_cell:=true`: one per cell, outside the actor namespaces like real drivers.
SIM_CELL = NodeSpec('sim_cell', 'sim_cell', 'rig_sim.cell_node:SimCellNode', 'rig_sim.cell_node:CellConfig',
                    ('task', 'arm'), per_actor=False, own_process=True)

ROBOT_NODES = (
    NodeSpec('camera', 'camera', 'rig_perception.camera_node:CameraNode', 'rig_perception.camera_node:CameraConfig'),
    NodeSpec('encoder', 'encoder', 'rig_perception.encoder_node:EncoderNode',
             'rig_perception.encoder_node:EncoderConfig', ('checkpoint', 'task')),
    NodeSpec('policy', 'policy', 'rig_policy.policy_node:PolicyNode', 'rig_policy.policy_node:PolicyConfig',
             ('checkpoint', 'task')),
    NodeSpec('safety_filter', 'safety_filter', 'rig_policy.safety_filter_node:SafetyFilterNode',
             'rig_policy.safety:SafetyConfig'),
    NodeSpec('arm_adapter', 'arm_adapter', 'rig_policy.arm_adapter_node:ArmAdapterNode',
             'rig_policy.arm_adapter_node:ArmAdapterConfig'),
    NodeSpec('recorder', 'recorder', 'rig_trainer.recorder_node:RecorderNode',
             'rig_trainer.recorder_node:RecorderConfig', ('data_dir',)),
    LINK,
)

GRAPHS = {'sim': SIM_NODES, 'robot': ROBOT_NODES + (TRAINER, SIM_CELL), 'learner': (TRAINER, RECEIVER)}


@dataclasses.dataclass(frozen=True)
class NodeLaunch:
    """One node to start: what, where, with which node-specific parameters and remappings."""
    spec: NodeSpec
    namespace: str                          # '' (root) or '/env0'
    parameters: dict                        # applied after the parameter files
    remappings: tuple[tuple[str, str], ...]

    @property
    def full_name(self) -> str:
        return f'{self.namespace}/{self.spec.name}'


def arguments(graph: str) -> list[Argument]:
    return [a for a in ARGUMENTS if graph in a.graphs]


def defaults(graph: str) -> dict[str, str]:
    return {a.name: a.default for a in arguments(graph)}


def flag(value) -> bool:
    """A boolean launch argument ('true'/'false', as launch passes them, or a bool)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in TRUE + FALSE:
        raise ValueError(f'expected true or false, got {value!r}')
    return text in TRUE


_NAME = re.compile(r'^[A-Za-z][A-Za-z0-9_]*$')


def namespaces(value) -> list[str]:
    """'env0 env1' or 'env0,env1' or ['env0', '/env1'] -> ['/env0', '/env1']; '' -> [''] (root)."""
    parts = value if isinstance(value, (list, tuple)) else re.split(r'[\s,]+', str(value))
    out = []
    for part in parts:
        name = str(part).strip().strip('/')
        if not name:
            continue
        if not all(_NAME.match(p) for p in name.split('/')):
            raise ValueError(f'namespace {part!r}: ROS names are letters, digits and _, starting with a letter')
        if '/' + name in out:
            raise ValueError(f'namespace {part!r} given twice')
        out.append('/' + name)
    return out or ['']


def check_arguments(graph: str, values: dict) -> None:
    """Refuse a bad argument before anything starts (a bogus task would otherwise kill the sim bridge
    while the trainer trains for it)."""
    if graph not in GRAPHS:
        raise ValueError(f'graph must be one of {sorted(GRAPHS)}, got {graph!r}')
    known = {a.name for a in arguments(graph)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f'unknown argument(s) {unknown} for the {graph} graph (known: {sorted(known)})')
    for a in arguments(graph):
        value = values.get(a.name, a.default)
        if a.choices and str(value) not in a.choices:
            raise ValueError(f'{a.name}:={value!r}: must be one of {list(a.choices)}')
        if a.is_flag:
            try:
                flag(value)
            except ValueError as exc:
                raise ValueError(f'{a.name}:={value!r}: {exc}') from None
    actors = namespaces(values.get('namespace', ''))
    if flag(values.get('remote_learner', 'false')) and flag(values.get('trainer', 'false')):
        raise ValueError('remote_learner:=true: the trainer runs on the learner host (`rig up learner`); '
                         'trainer:=true contradicts it')
    if graph == 'robot' and flag(values.get('sim_cell', 'false')):
        if len(actors) > 1:
            raise ValueError('sim_cell:=true simulates one cell: give at most one namespace')
        if str(values.get('camera', '')) not in ('', 'topic'):
            raise ValueError(f"sim_cell:=true: the simulated camera publishes a topic; camera:={values['camera']!r} "
                             "cannot read it (use camera:=topic or leave it out)")


def plan(graph: str, values: dict) -> list[NodeLaunch]:
    """Every node to start for these argument values (missing ones take their defaults)."""
    check_arguments(graph, values)
    v = {**defaults(graph), **{k: val for k, val in values.items() if val is not None}}
    remote = flag(v.get('remote_learner', False))
    out = []
    for ns in namespaces(v['namespace']) if 'namespace' in v else []:
        for spec in GRAPHS[graph]:
            if spec.per_actor and (spec is not LINK or remote):
                out.append(NodeLaunch(spec, ns, _node_parameters(spec, ns, v), _remappings(graph, spec, v)))
    shared = {TRAINER: graph == 'learner' or (flag(v.get('trainer', False)) and not remote),
              RECEIVER: graph == 'learner', SIM_CELL: flag(v.get('sim_cell', False))}
    out += [NodeLaunch(spec, '', _node_parameters(spec, '', v), ())
            for spec in GRAPHS[graph] if not spec.per_actor and shared[spec]]
    return out


def _node_parameters(spec: NodeSpec, ns: str, v: dict) -> dict:
    params = {a: v[a] for a in spec.arguments if str(v.get(a, '')) != ''}
    if spec.name == 'policy':
        params['practice_on_start'] = flag(v['practice'])
        if 'reset_service' in v:
            params['reset_service'] = '' if v['reset_service'].strip().lower() in ('none', '') else v['reset_service']
    if spec.name in ('recorder', 'learner_link'):   # the link ships the bags its recorder names
        params['actor'] = ns.strip('/').replace('/', '_') or 'actor0'
    if spec.name == 'arm_adapter' and v.get('cmd_topic'):
        params['output'] = 'none'   # MoveIt Servo moves the arm; the adapter only publishes rig/ee_pose
    return params


def _remappings(graph: str, spec: NodeSpec, v: dict) -> tuple[tuple[str, str], ...]:
    # The trainer's announcement, or with a remote learner this actor's link's (a local path).
    checkpoints = 'rig/checkpoint_received' if flag(v.get('remote_learner', False)) else CHECKPOINT_TOPIC
    remaps = [('rig/checkpoint', checkpoints)] if spec.name in ('encoder', 'policy') else []
    if spec.name in ('safety_filter', 'recorder') and v.get('cmd_topic'):
        remaps.append(('rig/cmd', v['cmd_topic']))   # the recorder records what the arm is sent
    if spec.name == 'arm_adapter':
        remaps.append(('joint_states', v.get('joint_states') or ARM_JOINT_STATES[v['arm']]))
    return tuple(remaps)


def task_parameters(graph: str, task: str) -> dict:
    """What differs between tasks, as a parameter file's content: the horizon (practice episode length,
    operator steps) and the action dimension, both from the task suite's own definition."""
    spec = TASK_SPECS[task]
    sections = {'policy': {'episode_length': spec.default_horizon, 'operator_steps': spec.default_horizon},
                'trainer': {'action_dim': 2 if spec.planar else 3}}
    nodes = {spec.name for spec in GRAPHS[graph]}
    return {f'/**/{node}': {'ros__parameters': p} for node, p in sections.items() if node in nodes}


def task_parameter_file(graph: str, task: str) -> Path:
    """`task_parameters` written to a file, so both bring-up paths layer it below config/ like any
    other parameter file (a value in config/ or a user's file still wins)."""
    text = (f'# generated by rig.graph.task_parameters({graph!r}, {task!r}): per-task graph values\n'
            + yaml.safe_dump(task_parameters(graph, task), sort_keys=True))
    return _generated_file(f'{graph}_{task}.yaml', text)


def cell_parameter_file(task: str, arm: str) -> Path:
    """The simulated cell's own values (home pose over its table, workspace box around its task region:
    `rig_sim.cell.cell_parameters`), layered after config/ as a lab's own cell file would be."""
    text = (f'# generated by rig_sim.cell.cell_parameters({task!r}, {arm!r}): the simulated cell\'s values\n'
            + yaml.safe_dump(cell_parameters(task, arm), sort_keys=True))
    return _generated_file(f'sim_cell_{task}_{arm}.yaml', text)


def _generated_file(name: str, text: str) -> Path:
    folder = Path(tempfile.gettempdir()) / 'rig-task-parameters'
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(f'.{os.getpid()}.tmp')
        tmp.write_text(text)
        tmp.replace(path)   # atomic: parallel launches never read half a file
    return path


def parameter_files(graph: str, values: dict) -> list[Path]:
    """Parameter files of a graph, in override order (later files win): the task's values, then
    sim: config/sim.yaml; robot: safety_filter.yaml (limits for a real arm), robot.yaml (policy timing),
    arm_<arm>.yaml (adapter, home pose), camera_<camera>.yaml (driver, crop); then the user's
    `params_file` (one path, or a list from `rig up --params-file`)."""
    v = {**defaults(graph), **values}
    files = [task_parameter_file(graph, v['task'])]
    extra = v['params_file']
    extra = [extra] if isinstance(extra, str) and extra else list(extra or [])
    if graph == 'robot':
        camera = v['camera'] or ('topic' if flag(v['sim_cell']) else 'realsense')
        names = ('safety_filter.yaml', 'robot.yaml', f'arm_{v["arm"]}.yaml', f'camera_{camera}.yaml')
    elif graph == 'learner':
        names = ('learner.yaml',)
    else:
        names = (f'{graph}.yaml',)
    missing = [f for f in extra if not Path(f).is_file()]
    if missing:
        raise FileNotFoundError(f'parameter file(s) not found: {missing}')
    cell = [cell_parameter_file(v['task'], v['arm'])] if graph == 'robot' and flag(v['sim_cell']) else []
    return files + [config_dir() / name for name in names] + cell + [Path(f) for f in extra]
