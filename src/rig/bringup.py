"""`rig up`: bring up a node graph in one process, as a component container would (pip-only machines).

    rig up sim --task reach --namespaces env0 env1 --practice --duration 600
    rig up robot --arm ur5e --dry-run

The nodes, their parameter files and the argument -> parameter mapping come from `rig.graph`, the
same source the launch files use. All nodes share one executor; the trainer trains in its own thread.
Ctrl-C (or --duration) stops the arm first (zero command), closes open episode bags, then exits.
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
    for name, default in graph.ARGUMENTS.items():
        if name != 'namespace':
            parser.add_argument(f'--{name.replace("_", "-")}', dest=name, default=default,
                                help=f'(default: {default!r})')
    parser.add_argument('--namespaces', nargs='*', default=[''],
                        help='one actor per namespace (sim: bridge + encoder + policy + filter + recorder '
                             'each), all feeding one trainer')
    parser.add_argument('--practice', action='store_true', help='start the actors in practice mode')
    parser.add_argument('--no-trainer', action='store_true', help='leave the trainer out')
    parser.add_argument('--duration', type=float, default=0.0, help='stop after this many seconds (0: run)')
    parser.add_argument('--params-file', action='append', default=[],
                        help='extra parameter file(s), applied after the graph\'s own')
    parser.add_argument('--dry-run', action='store_true', help='check the configuration, print the graph, exit')


def plan(args) -> list[tuple[graph.NodeSpec, str, dict]]:
    """(spec, namespace, argument parameters) for every node to start."""
    values = {name: getattr(args, name, '') for name in graph.ARGUMENTS}
    out = []
    for ns in args.namespaces:
        ns = '/' + ns.strip('/') if ns.strip('/') else ''
        for spec in graph.GRAPHS[args.graph]:
            if spec.per_actor:
                params = graph.argument_parameters(spec, values)
                if spec.name == 'policy' and args.practice:
                    params['practice_on_start'] = True
                if spec.name == 'recorder' and ns:
                    params['actor'] = ns.strip('/')
                out.append((spec, ns, params))
    if not args.no_trainer:
        out += [(spec, '', graph.argument_parameters(spec, values))
                for spec in graph.GRAPHS[args.graph] if not spec.per_actor]
    return out


def parameter_files(args) -> list[str]:
    """The graph's parameter files, then the user's --params-file ones (later files win)."""
    return [str(p) for p in graph.parameter_files(args.graph, args.arm, args.camera)] + list(args.params_file)


def check(args, nodes) -> list[str]:
    """Problems with the configuration: every section of every parameter file must name a node of
    the graph and fit that node's declared parameters (names and types)."""
    import yaml

    from rig.ros_params import dataclass_from_yaml_params
    problems = []
    files = parameter_files(args)
    config_of = {}
    for spec, _, _ in nodes:
        try:
            _resolve(spec.factory)
            config_of[spec.name] = _resolve(spec.config)
        except Exception as exc:  # noqa: BLE001 - report every broken node, not just the first
            problems.append(f'{spec.name}: cannot load {spec.factory}: {exc}')
    known = {spec.name for spec in graph.GRAPHS[args.graph]}
    for f in files:
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


def describe(nodes) -> str:
    lines = []
    for spec, ns, params in nodes:
        shown = ', '.join(f'{k}={v}' for k, v in params.items())
        lines.append(f'  {(ns or "") + "/" + spec.name:<28} {spec.executable:<14} {shown}')
    return '\n'.join(lines)


class Graph:
    """A composed graph: its nodes in one executor. `with Graph(args) as g: g.spin_until(...)`."""

    def __init__(self, args, extra_ros_args: list[str] | None = None):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from rclpy.signals import SignalHandlerOptions

        self.plan = plan(args)
        ros_args = (['--ros-args'] + [a for f in parameter_files(args) for a in ('--params-file', f)]
                    + (extra_ros_args or []))
        # Our own SIGINT handling: the arm must get its zero command before the context goes down.
        rclpy.init(args=ros_args, signal_handler_options=SignalHandlerOptions.NO)
        self.stop_requested = False
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        self.executor = SingleThreadedExecutor()
        self.nodes: dict[str, object] = {}
        try:
            for spec, ns, params in self.plan:
                cls = _resolve(spec.factory)
                overrides = [Parameter(k, value=v) for k, v in params.items()]
                node = cls(namespace=ns or None, parameter_overrides=overrides)
                self.executor.add_node(node)
                self.nodes[f'{ns}/{spec.name}'] = node
        except BaseException:
            self.close()
            raise

    def _on_signal(self, signum, frame):
        self.stop_requested = True

    def node(self, name: str):
        return self.nodes[name if name.startswith('/') else '/' + name]

    def spin_until(self, predicate=lambda: False, timeout: float | None = None) -> bool:
        """Spin all nodes until predicate() holds, timeout passes or a stop is requested."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.stop_requested and (deadline is None or time.monotonic() < deadline):
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=0.05)
            for name, node in self.nodes.items():
                if getattr(node, 'error', None) is not None:
                    raise RuntimeError(f'{name} failed: {node.error}')
        return predicate()

    def close(self) -> None:
        import rclpy
        shutdown(list(self.nodes.values()), self.executor)
        self.nodes = {}
        rclpy.try_shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run(args) -> int:
    nodes_plan = plan(args)
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
    return 0


def shutdown(nodes, executor) -> None:
    """Stop the arm first, then let episode bags close, then tear down."""
    for node in nodes:
        for method in ('stop', 'stop_arm'):
            if hasattr(node, method):
                try:
                    getattr(node, method)()
                except Exception as exc:  # noqa: BLE001 - keep stopping the others
                    print(f'{node.get_name()}: {method} failed: {exc}', file=sys.stderr)
    end = time.monotonic() + 0.5
    while time.monotonic() < end:  # deliver the last messages (end events, zero commands)
        executor.spin_once(timeout_sec=0.05)
    for node in reversed(nodes):
        executor.remove_node(node)
        node.destroy_node()
    executor.shutdown()
