"""The package layers and the absence of import cycles, read from the source (every import statement,
including those deferred inside functions, since a deferred import hides a cycle, it does not remove it).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Each package may import its own layer and those below (a lower number).
LAYERS = {'rig_base': 0, 'rig_learn': 1, 'rig_sim': 1, 'rig_perception': 2, 'rig_policy': 2,
          'rig_trainer': 2, 'rig': 3, 'bench': 4}
#: Packages that must not import ROS (the learning core and the simulation), beyond their node modules.
NO_ROS = {'rig_learn': (), 'rig_sim': ('rig_sim.bridge_node', 'rig_sim.cell_node')}
ROS_ROOTS = ('rclpy', 'launch', 'launch_ros', 'ament_index_python', 'sensor_msgs', 'geometry_msgs',
             'std_msgs', 'std_srvs', 'builtin_interfaces', 'trajectory_msgs', 'control_msgs', 'rig_base.msgs',
             'rig_base.image_msgs', 'rig_base.qos', 'rig_base.node_main', 'rig_base.ros_params')


def _modules() -> dict[str, Path]:
    found = {}
    for root, prefix in ((REPO / 'src', ''), (REPO, '')):
        packages = [p for p in root.iterdir() if p.is_dir() and p.name in LAYERS]
        for package in packages:
            for path in package.rglob('*.py'):
                parts = path.relative_to(root).with_suffix('').parts
                if parts[-1] == '__init__':
                    parts = parts[:-1]
                found[prefix + '.'.join(parts)] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules `name` imports (absolute names; relative imports resolved)."""
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = '.'.join(anchor + ([base] if base else []))
            submodules = {f'{base}.{alias.name}' for alias in node.names} & known
            out.update(submodules)
            if len(submodules) < len(node.names):   # names defined in `base` itself
                out.add(base)
    return out


MODULES = _modules()
GRAPH = {name: {m for m in _imports(name, path, set(MODULES)) if m in MODULES and m != name}
         for name, path in MODULES.items()}
ALL_IMPORTS = {name: _imports(name, path, set(MODULES)) for name, path in MODULES.items()}


def test_the_source_tree_is_what_the_layers_name():
    assert {'rig_base.config', 'rig_learn.learner', 'rig.cli', 'bench.bench_learn'} <= set(MODULES)


@pytest.mark.parametrize('name', sorted(MODULES))
def test_a_module_imports_only_its_own_layer_and_those_below(name):
    own = LAYERS[name.split('.')[0]]
    above = sorted(m for m in GRAPH[name] if LAYERS[m.split('.')[0]] > own)
    assert not above, f'{name} (layer {own}) imports {above} from a higher layer'


@pytest.mark.parametrize('package', sorted(NO_ROS))
def test_the_learning_core_and_the_simulation_import_no_ros(package):
    offenders = {}
    for name, imports in ALL_IMPORTS.items():
        if name.split('.')[0] != package or name in NO_ROS[package]:
            continue
        ros = sorted(m for m in imports if m.split('.')[0] in ROS_ROOTS or m in ROS_ROOTS)
        if ros:
            offenders[name] = ros
    assert not offenders, f'ROS imported by {package}: {offenders}'


def test_there_is_no_import_cycle():
    # Tarjan's strongly connected components over every import, deferred ones included.
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not cycles, f'import cycles: {cycles}'


def test_the_cycle_check_finds_a_cycle():
    """The check above can fail: a package importing its own __init__ that imports it back is a cycle."""
    saved = {k: set(v) for k, v in GRAPH.items()}
    try:
        GRAPH['rig_base.config'].add('rig_base.resources')
        GRAPH['rig_base.resources'].add('rig_base.config')
        with pytest.raises(AssertionError, match='import cycles'):
            test_there_is_no_import_cycle()
    finally:
        GRAPH.clear()
        GRAPH.update(saved)
