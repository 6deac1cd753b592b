"""Where rig's data files are: `config/` and `sim/`, in a source checkout or an installed package.

One lookup for every caller (graph composition, the trainer, `rig train`, the simulator). The order:
an environment override (`RIG_CONFIG_DIR`, `RIG_SIM_DIR`), the source tree (a checkout or an editable
install), a colcon install prefix (`install/rig/share/rig/...`), the venv of a pip install
(`sys.prefix/share/rig/...`), then the ament index. No ROS import unless the rest fails.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

_HERE = Path(__file__).resolve()
#: kind -> (environment override, a file that marks the right directory)
_KINDS = {'config': ('RIG_CONFIG_DIR', 'sim.yaml'), 'sim': ('RIG_SIM_DIR', 'base.xml')}


def source_root() -> Path:
    """The directory above src/ where this module lives: the checkout's root in a source tree or an
    editable install (in a pip install it is site-packages' parent, which holds no checkout)."""
    return _HERE.parents[2]


def _candidates(kind: str) -> list[Path]:
    env, _ = _KINDS[kind]
    found = [Path(os.environ[env])] if os.environ.get(env) else []
    found += [source_root() / kind]                                  # source tree: src/rig_base/..
    if len(_HERE.parents) > 4:
        found += [_HERE.parents[4] / 'share' / 'rig' / kind]         # <prefix>/lib/python3.x/site-packages
    found += [Path(sys.prefix) / 'share' / 'rig' / kind]
    return found


def share_dir(kind: str) -> Path:
    """The directory of `kind` ('config' or 'sim'); FileNotFoundError naming every place looked in."""
    if kind not in _KINDS:
        raise ValueError(f'unknown resource kind {kind!r}; known: {sorted(_KINDS)}')
    marker = _KINDS[kind][1]
    candidates = _candidates(kind)
    for candidate in candidates:
        if (candidate / marker).is_file():
            return candidate
    try:   # deferred: ament_index_python is only there in a ROS environment
        from ament_index_python.packages import get_package_share_directory  # noqa: PLC0415
        candidate = Path(get_package_share_directory('rig')) / kind
        if (candidate / marker).is_file():
            return candidate
        candidates.append(candidate)
    except Exception:  # noqa: BLE001 - any failure means: not installed through ament
        pass
    raise FileNotFoundError(f'rig {kind}/ files not found in any of {[str(c) for c in candidates]}')


def config_dir() -> Path:
    """config/: the graph's parameter files and the learner YAMLs."""
    return share_dir('config')


def sim_dir() -> Path:
    """sim/: the scene MJCF files."""
    return share_dir('sim')


def learner_config(task: str, suffix: str = '') -> Path | None:
    """config/learn_<task><suffix>.yaml, or None where there is none."""
    path = config_dir() / f'learn_{task}{suffix}.yaml'
    return path if path.is_file() else None


def learner_tasks() -> list[str]:
    """Tasks with a default learner config (config/learn_<task>.yaml)."""
    return sorted(p.stem[6:] for p in config_dir().glob('learn_*.yaml') if '_' not in p.stem[6:])
