"""`rig` command-line tool. Subcommands live next to what they drive and register here lazily, so
`rig train` never imports rclpy and `rig up` never imports the benchmark code.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, one-line help). Each module provides `add_arguments(parser)` and `run(args)`.
SUBCOMMANDS = {
    'train': ('rig_learn.cli_train', 'train RIG on a simulated task (no ROS)'),
    'eval': ('rig_learn.cli_eval', 're-evaluate a run directory or checkpoint on image goals'),
    'up': ('rig.bringup', 'bring up the node graph without ros2 launch (pip-only machines)'),
    'goal': ('rig.goal', 'publish an operator goal image'),
    'calibrate-view': ('rig_perception.calibrate_view', 'save a PNG showing the crop on a live frame'),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog='rig', description='rig: visual RL with imagined goals (RIG) for ROS 2 arms.',
        epilog="`rig COMMAND --help` for a command's options. In a colcon install: `ros2 run rig rig ...`.")
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name, (_, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ('-h', '--help') or argv[0] not in SUBCOMMANDS:
        parser.print_help()
        return 0 if not argv or argv[0] in ('-h', '--help') else 2
    name = argv[0]
    module_name, help_text = SUBCOMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            print(f'rig {name}: not available in this build ({module_name} missing)', file=sys.stderr)
            return 2
        raise
    sub_parser = argparse.ArgumentParser(prog=f'rig {name}', description=help_text)
    module.add_arguments(sub_parser)
    args = sub_parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except (ValueError, FileNotFoundError) as exc:  # bad configuration or input: say it, no traceback
        print(f'rig {name}: {type(exc).__name__}: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
