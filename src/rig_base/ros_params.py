"""ROS parameters from configuration dataclasses, so a node's parameters and its config are one thing.

`declare_dataclass_parameters` declares one described, statically typed ROS parameter per dataclass
field (nested dataclasses become dotted names, tuples/lists become arrays) and reads the values back
into a new, validated dataclass. Parameters are read-only unless named `live`: those are validated and
applied when set at run time (`ros2 param set`), so a set that succeeds always takes effect.
`dataclass_from_yaml_params` checks a ROS parameter file
(`node_name: ros__parameters: {...}`) against the same dataclass without starting a node, because
launch files cannot run here and a type slip (`1` for a DOUBLE) would only show when the node starts.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, TypeVar

import yaml
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException, ParameterUninitializedException
from rclpy.parameter import Parameter

from rig_base.config import ConfigError, from_dict

T = TypeVar('T')

# Parameters every rclpy node has; allowed in parameter files without a dataclass field.
STANDARD_PARAMETERS = {'use_sim_time': 'BOOL'}

_SCALAR_TYPES = {bool: 'BOOL', int: 'INTEGER', float: 'DOUBLE', str: 'STRING'}
_ARRAY_TYPES = {bool: 'BOOL_ARRAY', int: 'INTEGER_ARRAY', float: 'DOUBLE_ARRAY', str: 'STRING_ARRAY'}


@dataclasses.dataclass(frozen=True)
class ParameterSpec:
    """One dataclass field as a ROS parameter: dotted name, ROS type name, default, container type."""
    name: str
    type_name: str           # rclpy.Parameter.Type member name, e.g. 'DOUBLE_ARRAY'
    default: Any             # None: declared typed but unset (Optional field)
    container: type | None   # tuple or list for arrays, else None


def _strip_optional(hint: Any) -> tuple[Any, bool]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0], True
    return hint, False


def _spec(name: str, hint: Any, default: Any) -> ParameterSpec:
    hint, optional = _strip_optional(hint)
    origin = typing.get_origin(hint)
    if hint in _SCALAR_TYPES:
        if default is None and not optional:
            raise ConfigError(f'parameter {name!r}: no default and not Optional')
        return ParameterSpec(name, _SCALAR_TYPES[hint], default, None)
    if origin in (tuple, list) or hint in (tuple, list):
        container = origin or hint
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        element = args[0] if args and all(a is args[0] for a in args) else None
        if element is None and default:
            element = type(default[0])
        if element not in _ARRAY_TYPES:
            raise ConfigError(f'parameter {name!r}: cannot map {hint!r} to a ROS array type '
                              '(use tuple[float, ...], tuple[int, ...], tuple[str, ...] or tuple[bool, ...])')
        return ParameterSpec(name, _ARRAY_TYPES[element], default, container)
    raise ConfigError(f'parameter {name!r}: type {hint!r} has no ROS parameter equivalent')


def parameter_specs(cls: type, prefix: str = '') -> Iterator[ParameterSpec]:
    """The ROS parameters dataclass `cls` maps to (defaults taken from the class)."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        name = prefix + field.name
        if dataclasses.is_dataclass(hint):
            yield from parameter_specs(hint, name + '.')
            continue
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = None
        yield _spec(name, hint, default)


def _flat_values(cfg: Any, prefix: str = '') -> dict[str, Any]:
    out = {}
    for field in dataclasses.fields(cfg):
        value = getattr(cfg, field.name)
        if dataclasses.is_dataclass(value):
            out.update(_flat_values(value, prefix + field.name + '.'))
        else:
            out[prefix + field.name] = value
    return out


def _nest(flat: Mapping[str, Any]) -> dict:
    nested: dict = {}
    for name, value in flat.items():
        *parents, leaf = name.split('.')
        d = nested
        for p in parents:
            d = d.setdefault(p, {})
        d[leaf] = value
    return nested


def _typed_default(spec: ParameterSpec, value: Any) -> Any:
    """The value as rclpy must see it for the declared type (floats stay floats, arrays become lists)."""
    if spec.type_name == 'DOUBLE':
        return float(value)
    if spec.type_name == 'DOUBLE_ARRAY':
        return [float(v) for v in value]
    if spec.container is not None:
        return list(value)
    return value


def _field_value(spec: ParameterSpec, value: Any) -> Any:
    """A parameter value as the dataclass field holds it (rclpy gives arrays as lists or array.array)."""
    if spec.container is not None and value is not None:
        return spec.container(value)
    return value


def _validated(cls: type[T], flat: Mapping[str, Any], where: str) -> T:
    """`cls` from flat dotted values: `from_dict` (so `__post_init__` runs), then `validate()` if it has one."""
    try:
        cfg = from_dict(cls, _nest(flat), where=where)
        validate = getattr(cfg, 'validate', None)
        if callable(validate):
            validate()
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:   # a dataclass's own check, e.g. BridgeConfig.validate
        raise ConfigError(f'{where}: {exc}' if where else str(exc)) from exc
    return cfg


def declare_dataclass_parameters(node, cfg: T, descriptions: Mapping[str, str], *,
                                 read_only: bool = False, live: Iterable[str] = (), attr: str = 'cfg') -> T:
    """Declare one described ROS parameter per field of dataclass instance `cfg`; return the values read back.

    Defaults come from `cfg` (so a YAML-loaded config can seed them); overrides (`-p`, parameter files)
    win. Every field needs a description and every description a field, so none goes undocumented and
    a renamed field cannot leave a stale description. The returned dataclass is built with
    `rig_base.config.from_dict`, so its own validation (`__post_init__`, and `validate()` if it has one)
    runs on the final values.

    A node reads its parameters once, into the dataclass, so a parameter may only change at run time
    if the node reads it from there at use time. Hence every parameter is declared read-only
    (`ros2 param set` answers "Trying to set a read-only parameter") except those named in `live`
    (dotted names). Those can be set at run time: one on-set callback builds a new dataclass from the
    current one with the new values, validates it as above, and either refuses the change with the
    error as the reason (`ros2 param set` prints "Setting parameter failed: <reason>"; the old value
    stays) or stores it in `node.<attr>` and calls `node.on_parameters_changed(old_cfg, new_cfg)`
    if the node has one. Types need no check: the parameters are statically typed, rclpy refuses a
    value of another type. `read_only=True` (e.g. safety limits: restart to change) allows no `live`.
    """

    specs = list(parameter_specs(type(cfg)))
    names = {s.name for s in specs}
    missing = sorted(names - set(descriptions))
    unknown = sorted(set(descriptions) - names)
    if missing or unknown:
        raise ConfigError(f'{type(cfg).__name__} parameter descriptions: missing {missing}, unknown {unknown}')
    live = frozenset(live)
    if live - names:
        raise ConfigError(f'{type(cfg).__name__}: live parameters {sorted(live - names)} are not fields')
    if read_only and live:
        raise ConfigError(f'{type(cfg).__name__}: read_only=True and live parameters {sorted(live)}')
    values = _flat_values(cfg)
    read: dict[str, Any] = {}
    for spec in specs:
        param_type = Parameter.Type[spec.type_name]
        descriptor = ParameterDescriptor(name=spec.name, type=param_type.value,
                                         description=descriptions[spec.name],
                                         read_only=spec.name not in live)
        value = values[spec.name]
        # rclpy types a default from its value, and an empty list would become a BYTE_ARRAY: declare
        # None and empty arrays typed but unset instead (read back below as the dataclass value).
        unset = value is None or (spec.container is not None and len(value) == 0)
        try:
            node.declare_parameter(spec.name, param_type if unset else _typed_default(spec, value), descriptor)
        except InvalidParameterTypeException as e:
            hint = ' (write floats with a decimal point, e.g. 1.0)' if 'DOUBLE' in spec.type_name else ''
            raise ConfigError(f'parameter {spec.name!r} must be {spec.type_name}{hint}: {e}') from e
        try:
            got = node.get_parameter(spec.name).value
        except ParameterUninitializedException:
            got = value
        read[spec.name] = _field_value(spec, got)
    result = _validated(type(cfg), read, f'{node.get_name()} parameters')
    if live:
        # Registered after the declarations: rclpy runs on-set callbacks for declarations too.
        node.add_on_set_parameters_callback(_LiveParameters(node, result, {s.name: s for s in specs}, attr))
    return result


class _LiveParameters:
    """The on-set callback of `declare_dataclass_parameters`: validate, then apply, or refuse with a reason."""

    def __init__(self, node, cfg: Any, specs: Mapping[str, ParameterSpec], attr: str):
        self.node, self.cls, self.specs, self.attr = node, type(cfg), specs, attr
        self.cfg = cfg   # the node's config, should node.<attr> not hold one (yet)

    def __call__(self, parameters):
        mine = [p for p in parameters if p.name in self.specs]   # e.g. use_sim_time is not ours
        if not mine:
            return SetParametersResult(successful=True)
        old = getattr(self.node, self.attr, None)
        if not isinstance(old, self.cls):
            old = self.cfg
        flat = _flat_values(old)
        for p in mine:
            flat[p.name] = _field_value(self.specs[p.name], p.value)
        try:
            new = _validated(self.cls, flat, '')
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        setattr(self.node, self.attr, new)
        self.cfg = new
        hook = getattr(self.node, 'on_parameters_changed', None)
        if callable(hook):
            try:
                hook(old, new)
            except Exception as exc:  # noqa: BLE001 - the node could not apply it: keep the old config
                setattr(self.node, self.attr, old)
                self.cfg = old
                return SetParametersResult(successful=False, reason=f'{type(exc).__name__}: {exc}')
        before = _flat_values(old)
        changes = ', '.join(f'{p.name} {before[p.name]!r} -> {flat[p.name]!r}' for p in mine)
        self.node.get_logger().info(f'parameters changed: {changes}')
        return SetParametersResult(successful=True)


def _yaml_type_name(value: Any) -> str | None:
    """The ROS parameter type rcl's YAML parser gives `value` (as PyYAML loaded it)."""
    if type(value) in _SCALAR_TYPES:
        return _SCALAR_TYPES[type(value)]
    if isinstance(value, list) and value:
        kinds = {type(v) for v in value}
        if len(kinds) == 1 and next(iter(kinds)) in _ARRAY_TYPES:
            return _ARRAY_TYPES[next(iter(kinds))]
    return None


def _flatten_yaml(data: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
    out = {}
    for key, value in data.items():
        name = f'{prefix}{key}'
        if isinstance(value, Mapping):
            out.update(_flatten_yaml(value, name + '.'))
        else:
            out[name] = value
    return out


def ros_params_section(source: str | Path | Mapping[str, Any], node_name: str) -> dict[str, Any]:
    """Flat `{dotted name: value}` of a ROS parameter file for `node_name`.

    Sections merge in rcl's order of generality: `/**`, then `/**/node_name`, `node_name`, `/node_name`.
    Prefer `/**/node_name`: a bare `node_name` key matches only the root namespace, so a node launched
    under `/env0` would silently run on its defaults.
    """
    if isinstance(source, Mapping):
        data, where = source, node_name
    else:
        with open(source) as f:
            data = yaml.safe_load(f) or {}
        where = str(source)
    if not isinstance(data, Mapping):
        raise ConfigError(f'{where}: expected a mapping of node names')
    node_keys = ('/**/' + node_name, node_name, '/' + node_name)
    keys = [k for k in ('/**',) + node_keys if k in data]
    if not set(keys) & set(node_keys):
        raise ConfigError(f'{where}: no section for node {node_name!r} (found {sorted(data)}); '
                          f'use /**/{node_name} so it applies in any namespace')
    flat: dict[str, Any] = {}
    for key in keys:
        section = data[key]
        if not isinstance(section, Mapping) or set(section) != {'ros__parameters'}:
            raise ConfigError(f'{where}: {key!r} must hold exactly one key, ros__parameters')
        flat.update(_flatten_yaml(section['ros__parameters'] or {}))
    return flat


def dataclass_from_yaml_params(cls: type[T], source: str | Path | Mapping[str, Any], node_name: str) -> T:
    """Build `cls` from a ROS parameter file the way the node would declare it, or raise ConfigError.

    Checks what rclpy would only find at startup: unknown names, and YAML values whose ROS type differs
    from the declared one (an INTEGER `1` for a DOUBLE parameter, a mixed list). Standard parameters
    such as `use_sim_time` are allowed and dropped.
    """
    flat = ros_params_section(source, node_name)
    specs = {s.name: s for s in parameter_specs(cls)}
    problems = []
    values = {}
    for name, value in flat.items():
        got = _yaml_type_name(value)
        if name in STANDARD_PARAMETERS and name not in specs:
            if got != STANDARD_PARAMETERS[name]:
                problems.append(f'{name}: {got} given, {STANDARD_PARAMETERS[name]} expected')
            continue
        if name not in specs:
            problems.append(f'{name}: unknown parameter (known: {sorted(specs)})')
            continue
        if got != specs[name].type_name:
            problems.append(f'{name}: YAML value {value!r} is {got}, parameter is {specs[name].type_name}')
            continue
        values[name] = value
    if problems:
        raise ConfigError(f'{source if not isinstance(source, Mapping) else node_name}: ' + '; '.join(problems))
    return _validated(cls, values, f'{node_name} ros__parameters')
