"""`rig up`: bring up a node graph in one process, as a component container would (pip-only machines).

    rig up sim --task reach --namespaces env0 env1 --practice --duration 600
    rig up robot --arm ur5e --dry-run

The nodes, their parameter files, remappings and the argument -> parameter mapping come from
`rig.graph.plan`, the same plan the launch files run. All nodes share one executor; the trainer trains
in its own thread. Ctrl-C (or --duration) runs `rig.node_main.stop_nodes`, the shutdown every node
executable uses: zero commands first, the open episode ended and its bag closed, then teardown.
"""
from __future__ import annotations

import argparse
import importlib
import signal
import sys
import time

from rig import graph


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('graph', choices=sorted(graph.GRAPHS), help='which graph: sim or robot')
    for a in graph.ARGUMENTS:
        if a.name in ('namespace', 'params_file'):   # rig up's own spelling of these, below
            continue
        where = '' if len(a.graphs) == 2 else f' [{a.graphs[0]} only]'
        option = f'--{a.name.replace("_", "-")}'
        if a.is_flag:
            parser.add_argument(option, dest=a.name, action=argparse.BooleanOptionalAction, default=None,
                                help=f'{a.description}{where} (default: {a.default})')
        else:
            parser.add_argument(option, dest=a.name, default=None, choices=a.choices or None,
                                help=f'{a.description}{where} (default: {a.default!r})')
    parser.add_argument('--namespaces', '--namespace', dest='namespace', nargs='*', default=None,
                        help='one actor per namespace, all feeding one trainer (default: one actor, root)')
    parser.add_argument('--duration', type=float, default=0.0, help='stop after this many seconds (0: run)')
    parser.add_argument('--params-file', action='append', default=[],
                        help="extra parameter file(s), applied after the graph's own")
    parser.add_argument('--dry-run', action='store_true', help='check the configuration, print the graph, exit')


def values(args) -> dict:
    """The graph arguments given on the command line (the rest take the graph's defaults)."""
    given = {a.name: getattr(args, a.name, None) for a in graph.ARGUMENTS if a.name != 'params_file'}
    return {k: (' '.join(v) if isinstance(v, list) else v) for k, v in given.items() if v is not None}


def plan(args) -> list[graph.NodeLaunch]:
    """Every node to start, from the same `rig.graph.plan` the launch files use."""
    return graph.plan(args.graph, values(args))


def parameter_files(args) -> list[str]:
    """The graph's parameter files, then the user's --params-file ones (later files win)."""
    return [str(p) for p in graph.parameter_files(args.graph, {**values(args), 'params_file': args.params_file})]


def check(args, nodes: list[graph.NodeLaunch]) -> list[str]:
    """Problems with the configuration: every section of every parameter file must name a node of
    the graph and fit that node's declared parameters (names and types)."""
    import yaml

    from rig.ros_params import dataclass_from_yaml_params
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


class Graph:
    """A composed graph: its nodes in one executor. `with Graph(args) as g: g.spin_until(...)`."""

    def __init__(self, args, extra_ros_args: list[str] | None = None):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from rclpy.signals import SignalHandlerOptions

        from rig.node_main import CallbackGuard

        self.plan = plan(args)
        ros_args = (['--ros-args'] + [a for f in parameter_files(args) for a in ('--params-file', f)]
                    + (extra_ros_args or []))
        # Our own SIGINT handling: the arm must get its zero command before the context goes down.
        rclpy.init(args=ros_args, signal_handler_options=SignalHandlerOptions.NO)
        self.stop_requested = False
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        self.executor = SingleThreadedExecutor()
        self.guard = CallbackGuard(lambda text: print(f'rig up: {text}', file=sys.stderr))
        self.nodes: dict[str, object] = {}
        self.failed: dict[str, str] = {}
        try:
            for n in self.plan:
                cls = _resolve(n.spec.factory)
                overrides = [Parameter(k, value=v) for k, v in n.parameters.items()]
                remaps = [a for src, dst in n.remappings for a in ('-r', f'{src}:={dst}')]
                node = cls(namespace=n.namespace or None, parameter_overrides=overrides,
                           cli_args=['--ros-args', *remaps] if remaps else None)
                self.executor.add_node(node)
                self.nodes[n.full_name] = node
        except BaseException:
            self.close()
            raise

    def _on_signal(self, signum, frame):
        self.stop_requested = True

    def node(self, name: str):
        return self.nodes[name if name.startswith('/') else '/' + name]

    def spin_until(self, predicate=lambda: False, timeout: float | None = None) -> bool:
        """Spin all nodes until predicate() holds, timeout passes or a stop is requested. A node that
        fails is reported loudly and the others go on."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.stop_requested and (deadline is None or time.monotonic() < deadline):
            if predicate():
                return True
            self.guard.spin_once(self.executor, 0.05)
            for name, node in self.nodes.items():
                error = getattr(node, 'error', None)
                if error is not None and name not in self.failed:
                    self.failed[name] = f'{type(error).__name__}: {error}'
                    print(f'rig up: {name} FAILED ({self.failed[name]}); the other nodes go on',
                          file=sys.stderr)
        return predicate()

    def close(self) -> None:
        import rclpy

        from rig.node_main import stop_nodes
        stop_nodes(list(self.nodes.values()), self.executor,
                   log=lambda text: print(f'rig up: {text}', file=sys.stderr))
        self.nodes = {}
        rclpy.try_shutdown()

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
    with Graph(args) as g:
        g.spin_until(timeout=args.duration if args.duration > 0 else None)
        failed = dict(g.failed)
    if failed:
        print('rig up: failed nodes: ' + '; '.join(f'{k}: {v}' for k, v in failed.items()), file=sys.stderr)
    return 1 if failed else 0
