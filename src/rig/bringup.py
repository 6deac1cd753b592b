"""`rig up`: bring up a node graph from one command, as a component container would (pip-only machines).

    rig up sim --task reach --namespaces env0 env1 --practice --duration 600
    rig up robot --arm ur5e --dry-run
    rig up learner --task reach                                  # learner host ...
    rig up sim --remote-learner --namespaces env0 --practice     # ... and an actor host

The nodes, their parameter files, remappings and the argument -> parameter mapping come from
`rig.graph.plan`, the same plan the launch files run. The first actor's nodes share one executor in
this process; every further actor is a process of its own (`rig up <graph> --namespaces NS
--no-trainer`), and so is the trainer (`python -m rig_trainer.trainer_node`, what `ros2 run rig
trainer` starts): actors and trainer run in parallel on as many cores as there are, as under `ros2
launch`. The trainer's progress comes back on `rig/trainer_status` (`Graph.trainer_status`). Ctrl-C
(or --duration) runs `rig_base.node_main.stop_nodes`, the shutdown every node executable uses (zero
commands first, the open episode ended and its bag closed), while the processes, sent SIGINT, do the
same; once they are gone `rig up` ends as a node executable does, without a DDS teardown, and logs
where the stop's time went (`rig up: stopped in 0.4 s (...)`).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import rclpy
import yaml
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String

from rig import graph
from rig_base import qos
from rig_base.node_main import PARENT_ENV, CallbackGuard, stop_nodes, stop_with_parent
from rig_base.ros_params import dataclass_from_yaml_params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('graph', choices=sorted(graph.GRAPHS),
                        help='which graph: sim, robot, or learner (the trainer host of actors on other hosts)')
    by_name: dict[str, list[graph.Argument]] = {}
    for a in graph.ARGUMENTS:     # an argument may be declared per graph (e.g. trainer: its default)
        by_name.setdefault(a.name, []).append(a)
    for name, decls in by_name.items():
        if name in ('namespace', 'params_file'):   # rig up's own spelling of these, below
            continue
        a = decls[0]
        graphs = [g for d in decls for g in d.graphs]
        where = '' if set(graphs) == set(graph.ALL_GRAPHS) else f" [{', '.join(graphs)}]"
        default = a.default if len(decls) == 1 else ', '.join(f'{d.graphs[0]}: {d.default}' for d in decls)
        help_text = ' / '.join(dict.fromkeys(d.description for d in decls))
        option = f'--{name.replace("_", "-")}'
        if a.is_flag:
            parser.add_argument(option, dest=name, action=argparse.BooleanOptionalAction, default=None,
                                help=f'{help_text}{where} (default: {default})')
        else:
            parser.add_argument(option, dest=name, default=None, choices=a.choices or None,
                                help=f'{help_text}{where} (default: {default!r})')
    parser.add_argument('--namespaces', '--namespace', dest='namespace', nargs='*', default=None,
                        help='one actor per namespace, all feeding one trainer (default: one actor, root)')
    parser.add_argument('--duration', type=float, default=0.0, help='stop after this many seconds (0: run)')
    parser.add_argument('--params-file', action='append', default=[],
                        help="extra parameter file(s), applied after the graph's own")
    parser.add_argument('--log-level', choices=['debug', 'info', 'warn', 'error'], default=None,
                        help="the nodes' ROS log level (default: info)")
    parser.add_argument('--dry-run', action='store_true', help='check the configuration, print the graph, exit')


def values(args) -> dict:
    """The graph arguments given on the command line (the rest take the graph's defaults)."""
    given = {a.name: getattr(args, a.name, None) for a in graph.arguments(args.graph) if a.name != 'params_file'}
    return {k: (' '.join(v) if isinstance(v, list) else v) for k, v in given.items() if v is not None}


def plan(args) -> list[graph.NodeLaunch]:
    """Every node to start, from the same `rig.graph.plan` the launch files use. An option of another
    graph (`--camera` for sim, `--namespaces` for the learner) is refused, not ignored."""
    takes = {a.name for a in graph.arguments(args.graph)}
    foreign = sorted({a.name for a in graph.ARGUMENTS
                      if a.name not in takes and getattr(args, a.name, None) is not None})
    if foreign:
        raise ValueError(f"{', '.join('--' + n.replace('_', '-') + 's' * (n == 'namespace') for n in foreign)}: "
                         f'not an option of the {args.graph} graph')
    return graph.plan(args.graph, values(args))


def parameter_files(args) -> list[str]:
    """The graph's parameter files, then the user's --params-file ones (later files win)."""
    return [str(p) for p in graph.parameter_files(args.graph, {**values(args), 'params_file': args.params_file})]


def check(args, nodes: list[graph.NodeLaunch]) -> list[str]:
    """Problems with the configuration: every section of every parameter file must name a node of
    the graph and fit that node's declared parameters (names and types)."""

    problems = []
    config_of = {}
    for n in nodes:
        try:
            _resolve(n.spec.factory)
            config_of[n.spec.name] = _resolve(n.spec.config)
        except Exception as exc:  # noqa: BLE001 - report every broken node, not just the first
            problems.append(f'{n.spec.name}: cannot load {n.spec.factory}: {exc}')
    known = {spec.name for spec in graph.GRAPHS[args.graph]}
    for f in parameter_files(args):
        try:
            sections = yaml.safe_load(open(f)) or {}
        except (OSError, yaml.YAMLError) as exc:
            problems.append(f'{f}: {exc}')
            continue
        for key in sections:
            name = str(key).split('/')[-1]
            if name not in known and name not in ('home_pose',):
                problems.append(f'{f}: section {key!r} names no node of the {args.graph} graph {sorted(known)}')
            elif name in config_of:
                try:
                    dataclass_from_yaml_params(config_of[name], f, name)
                except Exception as exc:  # noqa: BLE001
                    problems.append(f'{f}: {name}: {exc}')
    return problems


def _resolve(target: str):
    module_name, attr = target.split(':')
    return getattr(importlib.import_module(module_name), attr)


def describe(nodes: list[graph.NodeLaunch]) -> str:
    lines = []
    for n in nodes:
        shown = ', '.join([f'{k}={v}' for k, v in n.parameters.items()] + [f'{a}->{b}' for a, b in n.remappings])
        lines.append(f'  {n.full_name:<28} {n.spec.executable:<14} {shown}')
    return '\n'.join(lines)


def actor_argv(args, namespace: str) -> list[str]:
    """One more actor as its own process: `rig up <graph> --namespaces NS [--no-trainer]` with the
    arguments this `rig up` was given."""
    known = {a.name for a in graph.arguments(args.graph)}
    argv = [sys.executable, '-m', 'rig', 'up', args.graph, '--namespaces', namespace]
    argv += ['--no-trainer'] if 'trainer' in known else []
    for a in graph.arguments(args.graph):
        value = getattr(args, a.name, None)
        if a.name in ('namespace', 'trainer', 'params_file', 'sim_cell') or value is None:
            continue
        option = f'--{a.name.replace("_", "-")}'
        argv += [option if value else f'--no-{a.name.replace("_", "-")}'] if a.is_flag else [option, str(value)]
    argv += [a for f in getattr(args, 'params_file', None) or [] for a in ('--params-file', f)]
    if getattr(args, 'log_level', None):
        argv += ['--log-level', args.log_level]
    return argv


class ChildProcess:
    """A part of the graph run as its own process: stopped with SIGINT as launch stops its processes,
    and given SIGINT by the kernel should `rig up` die first (`rig_base.node_main.PARENT_ENV`)."""

    #: SIGINT -> SIGTERM -> SIGKILL, as launch escalates.
    SIGINT_GRACE_S = 5.0
    SIGTERM_GRACE_S = 2.0

    def __init__(self, name: str, argv: list[str]):
        self.name = name
        self.proc = subprocess.Popen(argv, env=dict(os.environ, **{PARENT_ENV: str(os.getpid())}))
        self.interrupted_at: float | None = None

    @classmethod
    def node(cls, n: graph.NodeLaunch, param_files: list[str], ros_args: list[str], workdir: Path):
        """A node as `ros2 run` would start it: the same parameter files, node parameters and
        remappings it would get in-process or from launch."""
        argv = [sys.executable, '-m', n.spec.factory.split(':')[0], '--ros-args', '-r', f'__node:={n.spec.name}']
        if n.namespace:
            argv += ['-r', f'__ns:={n.namespace}']
        files = list(param_files)
        if n.parameters:   # the plan's node parameters win over the files, as in launch
            own = workdir / f'{n.spec.name}.yaml'
            own.write_text(yaml.safe_dump({n.full_name: {'ros__parameters': dict(n.parameters)}}))
            files.append(str(own))
        argv += [a for f in files for a in ('--params-file', f)]
        argv += [a for src, dst in n.remappings for a in ('-r', f'{src}:={dst}')]
        return cls(n.full_name, argv + ros_args)

    @classmethod
    def actor(cls, args, namespace: str):
        return cls(namespace, actor_argv(args, namespace))

    def exit_code(self) -> int | None:
        return self.proc.poll()

    def interrupt(self) -> None:
        if self.proc.poll() is None and self.interrupted_at is None:
            self.proc.send_signal(signal.SIGINT)
            self.interrupted_at = time.monotonic()

    def wait(self, log) -> int:
        """Wait for the exit after `interrupt()`, escalating as launch does; returns the exit code."""
        self.interrupt()
        start = self.interrupted_at or time.monotonic()
        try:
            return self.proc.wait(timeout=max(0.0, self.SIGINT_GRACE_S - (time.monotonic() - start)))
        except subprocess.TimeoutExpired:
            log(f'{self.name} still running {self.SIGINT_GRACE_S:.0f} s after SIGINT: SIGTERM')
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=self.SIGTERM_GRACE_S)
        except subprocess.TimeoutExpired:
            log(f'{self.name} ignored SIGTERM: SIGKILL')
            self.proc.kill()
            return self.proc.wait()


class Graph:
    """A graph brought up: the actors' nodes in one executor, the trainer in its own process.
    `with Graph(args) as g: g.spin_until(...)`."""

    def __init__(self, args, extra_ros_args: list[str] | None = None):


        full = plan(args)
        #: The first actor's nodes run here; each further actor is a process of its own (so actors
        #: scale with cores, as under launch), as is the trainer.
        self.actors = list(dict.fromkeys(n.namespace for n in full if n.spec.per_actor))
        self.plan = [n for n in full if not n.spec.per_actor or n.namespace == self.actors[0]]   # (learner: none)
        extra_ros_args = list(extra_ros_args or [])
        if getattr(args, 'log_level', None):
            extra_ros_args += ['--log-level', args.log_level]
        files = parameter_files(args)
        ros_args = ['--ros-args'] + [a for f in files for a in ('--params-file', f)] + extra_ros_args
        self.stop_requested = False
        self.nodes: dict[str, object] = {}
        self.processes: dict[str, ChildProcess] = {}
        self.failed: dict[str, str] = {}
        self.trainer_status: dict = {}   # the newest rig/trainer_status ({} until the first)
        self._workdir = tempfile.TemporaryDirectory(prefix='rig-up-')
        self.executor = None
        self.guard = CallbackGuard(self._log)
        try:
            # Processes first: nothing is forked once DDS threads run in this one.
            for n in self.plan:
                if n.spec.own_process:
                    self._start(ChildProcess.node(n, files, extra_ros_args, Path(self._workdir.name)))
            for ns in self.actors[1:]:
                self._start(ChildProcess.actor(args, ns))
            # Our own SIGINT handling: the arm must get its zero command before the context goes down.
            rclpy.init(args=ros_args, signal_handler_options=SignalHandlerOptions.NO)
            signal.signal(signal.SIGINT, self._on_signal)
            signal.signal(signal.SIGTERM, self._on_signal)
            stop_with_parent()   # an actor process of another `rig up`: stop when it dies
            self.executor = SingleThreadedExecutor()
            for n in self.plan:
                if n.spec.own_process:
                    continue
                cls = _resolve(n.spec.factory)
                overrides = [Parameter(k, value=v) for k, v in n.parameters.items()]
                remaps = [a for src, dst in n.remappings for a in ('-r', f'{src}:={dst}')]
                node = cls(namespace=n.namespace or None, parameter_overrides=overrides,
                           cli_args=['--ros-args', *remaps] if remaps else None)
                self.executor.add_node(node)
                self.nodes[n.full_name] = node
            trainers = [n for n in self.plan if n.spec.name == 'trainer']
            if trainers:
                self.monitor = rclpy.create_node('rig_up_monitor')
                self.monitor.create_subscription(String, f'{trainers[0].namespace}/rig/trainer_status',
                                                 self._on_trainer_status, qos.LATCHED_QOS)
                self.executor.add_node(self.monitor)
                self.nodes['/rig_up_monitor'] = self.monitor
        except BaseException:
            self.close()
            raise

    def _start(self, proc: ChildProcess) -> None:
        self.processes[proc.name] = proc
        self._log(f'{proc.name} runs as process {proc.proc.pid}')

    @staticmethod
    def _log(text: str) -> None:
        print(f'rig up: {text}', file=sys.stderr, flush=True)

    def _on_signal(self, signum, frame):
        self.stop_requested = True

    def _on_trainer_status(self, msg) -> None:
        self.trainer_status = json.loads(msg.data)

    def node(self, name: str):
        return self.nodes[name if name.startswith('/') else '/' + name]

    def spin_until(self, predicate=lambda: False, timeout: float | None = None) -> bool:
        """Spin all nodes until predicate() holds, timeout passes or a stop is requested. A node that
        fails (a node's error, a node process that exits) is reported loudly and the others go on."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.stop_requested and (deadline is None or time.monotonic() < deadline):
            if predicate():
                return True
            self.guard.spin_once(self.executor, 0.05)
            self._check_nodes()
        return predicate()

    def _check_nodes(self) -> None:
        for name, node in self.nodes.items():
            error = getattr(node, 'error', None)
            if error is not None and name not in self.failed:
                self._fail(name, f'{type(error).__name__}: {error}')
        for name, proc in self.processes.items():
            code = proc.exit_code()
            if code is not None and proc.interrupted_at is None and name not in self.failed:
                self._fail(name, f'its process exited with code {code}')

    def _fail(self, name: str, why: str) -> None:
        self.failed[name] = why
        self._log(f'{name} FAILED ({why}); the other nodes go on')

    def close(self, destroy: bool = True) -> None:
        """Stops everything as launch would (SIGINT, then SIGTERM, SIGKILL) and logs where the time
        went: the whole stop must fit launch's 5 s. destroy=False leaves the nodes and the context
        up after their last words, for a caller that ends the process right away (`run`)."""
        start = time.monotonic()
        took = {}
        for proc in self.processes.values():   # stops alongside the nodes here
            proc.interrupt()
        if self.executor is not None:
            here = list(self.nodes)
            stop_nodes(list(self.nodes.values()), self.executor, log=self._log, destroy=destroy)
            if here:
                took['nodes here'] = time.monotonic() - start
        self.nodes = {}
        for name, proc in self.processes.items():
            code = proc.wait(self._log)
            took[name] = time.monotonic() - start
            if code != 0 and name not in self.failed:
                self._fail(name, f'its process exited with code {code} on the way out')
        self.processes = {}
        self._workdir.cleanup()
        if destroy:
            rclpy.try_shutdown()
        if self.executor is not None:
            self._log(f'stopped in {time.monotonic() - start:.1f} s ('
                      + ', '.join(f'{k} {v:.1f} s' for k, v in took.items()) + ')')

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run(args) -> int:
    try:
        nodes_plan = plan(args)
    except ValueError as exc:
        print(f'rig up: {exc}', file=sys.stderr)
        return 2
    print(f'rig up {args.graph}: {len(nodes_plan)} nodes\n{describe(nodes_plan)}')
    problems = check(args, nodes_plan)
    if problems:
        print('configuration problems:\n  ' + '\n  '.join(problems), file=sys.stderr)
        return 2
    if args.dry_run:
        print('configuration OK (dry run: nothing started)')
        return 0
    g = Graph(args)
    try:
        g.spin_until(timeout=args.duration if args.duration > 0 else None)
    finally:
        # As a node executable ends (rig_base.node_main): every last word delivered, every child
        # process gone, then the process ends without tearing DDS down, which can stall for seconds
        # (eProsima/Fast-DDS#6502) while the other processes of the graph leave at the same moment.
        g.close(destroy=False)
    failed = g.failed
    if failed:
        print('rig up: failed nodes: ' + '; '.join(f'{k}: {v}' for k, v in failed.items()), file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1 if failed else 0)
