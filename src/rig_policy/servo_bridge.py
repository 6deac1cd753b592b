"""Start MoveIt Servo so that it accepts rig's twist commands (`rig/cmd` remapped to
`/servo_node/delta_twist_cmds`).

MoveIt Servo ignores twists until told to take them, and the way to tell it changed:
  - Jazzy and later (servo_node of MoveIt 2.10+): `~/switch_command_type`
    (moveit_msgs/srv/ServoCommandType, command_type TWIST = 1), then `~/pause_servo`
    (std_srvs/SetBool, data false) to make sure it is not paused;
  - Humble: `~/start_servo` (std_srvs/Trigger).
moveit_msgs has no PyPI wheel, so its service type is imported only when the Jazzy path runs; without
it (a pip-only machine) a clear error says to source the ROS install that runs MoveIt.

  python -m rig_policy.servo_bridge --distro jazzy --servo-node /servo_node
  ros2 run rig servo_start --distro humble
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

import rclpy
from rclpy.utilities import remove_ros_args
from std_srvs.srv import SetBool, Trigger

SERVO_TWIST = 1     # moveit_msgs/srv/ServoCommandType TWIST


class ServoStartError(RuntimeError):
    """MoveIt Servo could not be switched to twist commands; the message says why."""


def servo_command_type():
    """moveit_msgs/srv/ServoCommandType, imported on demand (not installable from PyPI)."""
    try:
        return importlib.import_module('moveit_msgs.srv').ServoCommandType
    except (ImportError, AttributeError) as e:
        raise ServoStartError(
            'moveit_msgs.srv.ServoCommandType is not importable: source the ROS 2 install that runs MoveIt '
            '(e.g. `source /opt/ros/jazzy/setup.bash`, package ros-jazzy-moveit-msgs) before starting Servo '
            f'({e})') from e


def _call(node, srv_type, name: str, request, timeout_s: float):
    client = node.create_client(srv_type, name)
    try:
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise ServoStartError(f'service {name} not available after {timeout_s:g} s: is servo_node running, '
                                  'under that name?')
        future = client.call_async(request)
        rclpy.spin_until_future_complete(node, future, timeout_sec=timeout_s)
        if not future.done():
            raise ServoStartError(f'service {name} did not answer within {timeout_s:g} s')
        return future.result()
    finally:
        node.destroy_client(client)


def start_servo(node, servo_node: str = '/servo_node', distro: str | None = None, timeout_s: float = 10.0,
                unpause: bool = True) -> str:
    """Switch Servo at `servo_node` to twist commands; returns what was done, raises ServoStartError."""
    distro = (distro or os.environ.get('ROS_DISTRO') or 'jazzy').lower()
    base = servo_node.rstrip('/')
    if distro in ('humble', 'iron'):
        name = f'{base}/start_servo'
        result = _call(node, Trigger, name, Trigger.Request(), timeout_s)
        if not result.success:
            raise ServoStartError(f'{name} refused: {result.message!r}')
        return f'{name}: started ({result.message})'
    srv = servo_command_type()
    name = f'{base}/switch_command_type'
    result = _call(node, srv, name, srv.Request(command_type=SERVO_TWIST), timeout_s)
    if not result.success:
        raise ServoStartError(f'{name} refused TWIST (check the servo parameters: command_in_type, frames)')
    done = f'{name}: TWIST'
    if unpause:
        pause = f'{base}/pause_servo'
        answer = _call(node, SetBool, pause, SetBool.Request(data=False), timeout_s)
        if not answer.success:
            raise ServoStartError(f'{pause} (unpause) refused: {answer.message!r}')
        done += f'; {pause}: unpaused'
    return done


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    parser = argparse.ArgumentParser(prog='servo_start', description=__doc__.splitlines()[0])
    parser.add_argument('--servo-node', default='/servo_node', help='fully qualified name of servo_node')
    parser.add_argument('--distro', default=None, help='humble, iron, jazzy, ... (default: $ROS_DISTRO or jazzy)')
    parser.add_argument('--timeout', type=float, default=10.0, help='seconds to wait for each service')
    parser.add_argument('--no-unpause', action='store_true', help='Jazzy: do not call ~/pause_servo false')
    args = parser.parse_args(remove_ros_args(argv)[1:])
    rclpy.init(args=argv)
    try:
        node = rclpy.create_node('servo_start')
        print(start_servo(node, args.servo_node, args.distro, args.timeout, unpause=not args.no_unpause))
        return 0
    except ServoStartError as e:
        print(f'servo_start: {e}', file=sys.stderr)
        return 2
    finally:
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
