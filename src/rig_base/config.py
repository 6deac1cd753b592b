"""One configuration source per concern: dataclasses, loaded from YAML, overridable by ROS parameters.

Every subsystem owns a dataclass (e.g. `rig_sim.SimConfig`); this module only knows how to fill a
dataclass from a mapping, strictly: unknown keys are errors, so a typo in a YAML file never passes
silently.
"""
from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

T = TypeVar('T')


class ConfigError(ValueError):
    """A configuration file or override does not fit the dataclass it is meant for."""


def from_dict(cls: type[T], data: Mapping[str, Any] | None, *, where: str = '') -> T:
    """Build dataclass `cls` from `data`, recursing into nested dataclass fields."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f'{where or cls.__name__}: expected a mapping, got {type(data).__name__}')
    fields = {f.name: f for f in dataclasses.fields(cls)}
    data = _without_retired(cls, data, where)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f'{where or cls.__name__}: unknown key(s) {unknown}; known: {sorted(fields)}')
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            value = from_dict(hint, value, where=f'{where}.{name}' if where else name)
        elif isinstance(value, list) and typing.get_origin(hint) is tuple:
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def _without_retired(cls: type, data: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    """`data` less the options `cls.RETIRED` names ({field: (value it had when off, why retired)}): at
    their off value they are dropped, so files and checkpoints written before stay readable; set to
    anything else they are a ConfigError that says why the option went."""
    retired = getattr(cls, 'RETIRED', {})
    if not retired or not set(data) & set(retired):
        return data
    for key in set(data) & set(retired):
        off, why = retired[key]
        if data[key] != off:
            raise ConfigError(f'{where or cls.__name__}.{key} is retired: {why}')
    return {k: v for k, v in data.items() if k not in retired}


def to_dict(obj: Any) -> dict:
    """Plain nested dict (tuples as lists) of a dataclass instance, e.g. for YAML or a checkpoint."""
    def plain(v):
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return plain(dataclasses.asdict(obj))


def load_yaml(cls: type[T], path: str | Path | None = None, section: str | None = None,
              **overrides: Any) -> T:
    """Load `cls` from a YAML file (optionally one top-level `section` of it), then apply overrides."""
    data: dict = {}
    if path is not None:
        with open(path) as f:
            raw = yaml.safe_load(f) or {}
        if section is not None:
            raw = raw.get(section, {}) or {}
        data.update(raw)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return from_dict(cls, data, where=str(path or cls.__name__))
