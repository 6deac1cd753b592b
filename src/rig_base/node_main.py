"""The one `main()` every rig node executable uses, and the one shutdown sequence (`stop_nodes`) that
it and `rig up` share: spin until SIGINT/SIGTERM, then stop cleanly within launch's 5 s grace.

rclpy's own signal handlers shut the context down at SIGINT, after which a node can no longer publish
its last words (the zero command, the end of an episode). Here signals only set a flag, the loop
notices it within 0.1 s, and `stop_nodes` runs while ROS is still up:
1. each node's `stop_arm()` (zero commands first: safety), then its `stop()` (end the episode, ...);
2. the executor keeps spinning until every node's `finished_stopping()` holds (the recorder waits
   for the episode's end event and the final zero command) or `STOP_GRACE_S` passes, and at least
   `DRAIN_S`, so reliable last messages reach their subscribers;
3. the nodes are destroyed, the context shut down (`rig up`), or, in a node executable, the process
   ends right there with its exit code (`os._exit`): tearing down DDS entities while many
   participants leave at once (every process of a launch on Ctrl-C) can deadlock Fast DDS 2.14
   (eProsima/Fast-DDS#6502, open: PDP mutex vs. the event thread), which launch would SIGKILL 15 s
   later. By then every last word is delivered, every bag closed and every checkpoint on disk; the
   OS releases the sockets and Fast DDS reclaims its shared-memory ports on the next start.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
import traceback
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from rig_base.config import ConfigError

#: Longest wait for the nodes' last words; launch SIGTERMs 5 s after SIGINT.
STOP_GRACE_S = 3.5
#: Shortest spin after the last words are sent, so they are delivered before the publishers go.
DRAIN_S = 0.3


def stop_nodes(nodes: list, executor, log: Callable[[str], None] | None = None, destroy: bool = True) -> None:
    """Last words, delivery, teardown: the shutdown of one node (`ros2 run`) or a graph (`rig up`).
    destroy=False stops after the last words (the caller ends the process)."""
    log = log or (lambda text: print(text, file=sys.stderr))
    for node in nodes:
        for method in ('stop_arm', 'stop'):
            if hasattr(node, method):
                try:
                    getattr(node, method)()
                except Exception as exc:  # noqa: BLE001 - keep stopping the others
                    log(f'{_name(node)}: {method} failed: {exc}')
    start = time.monotonic()
    while time.monotonic() - start < STOP_GRACE_S:
        if time.monotonic() - start >= DRAIN_S and all(_finished(node, log) for node in nodes):
            break
        try:
            executor.spin_once(timeout_sec=0.05)
        except Exception as exc:  # noqa: BLE001 - a failing callback must not cut the shutdown short
            log(f'error while stopping: {type(exc).__name__}: {exc}')
    for node in nodes:   # past the grace: force whatever is still open (e.g. close the bag)
        _finished(node, log, force=True)
    if not destroy:
        return
    for node in reversed(nodes):
        try:
            executor.remove_node(node)
            node.destroy_node()
        except Exception as exc:  # noqa: BLE001
            log(f'{_name(node)}: destroy failed: {exc}')
    executor.shutdown(timeout_sec=1.0)


class CallbackGuard:
    """Spins an executor so that a callback that raises (one bad message, a bug on one code path) is
    reported with its traceback and the node goes on: one bad input never takes a node down."""

    def __init__(self, log: Callable[[str], None], throttle_s: float = 5.0):
        self.log, self.throttle_s = log, throttle_s
        self.errors = 0
        self._last: dict[str, float] = {}

    def spin_once(self, executor, timeout_sec: float) -> None:
        try:
            executor.spin_once(timeout_sec=timeout_sec)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - reported below
            if isinstance(exc, ExternalShutdownException):
                raise
            self.errors += 1
            key = f'{type(exc).__name__}: {exc}'[:200]
            now = time.monotonic()
            if now - self._last.get(key, -self.throttle_s) >= self.throttle_s:
                self._last[key] = now
                self.log(f'callback failed ({self.errors} so far), node continues: '
                         + ''.join(traceback.format_exception(exc)).rstrip())


def _finished(node, log, force: bool = False) -> bool:
    check = getattr(node, 'finished_stopping', None)
    if check is None:
        return True
    try:
        return bool(check(force=force))
    except Exception as exc:  # noqa: BLE001
        log(f'{_name(node)}: finished_stopping failed: {exc}')
        return True


def _name(node) -> str:
    try:
        return node.get_fully_qualified_name()
    except Exception:  # noqa: BLE001 - already destroyed
        return type(node).__name__


#: Set by `rig up` for the node processes it starts: the pid they must not outlive.
PARENT_ENV = 'RIG_UP_PARENT_PID'


def stop_with_parent() -> None:
    """A node process started by `rig up` gets SIGINT when `rig up` dies, even by SIGKILL (Linux
    PR_SET_PDEATHSIG), and stops as on Ctrl-C: no orphaned trainer goes on writing checkpoints."""
    parent = os.environ.get(PARENT_ENV)
    if not parent or not sys.platform.startswith('linux'):
        return
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGINT))
    if os.getppid() != int(parent):   # it died before the line above
        os.kill(os.getpid(), signal.SIGINT)


def run_node(factory: Callable[[], object], name: str, args=None) -> int:

    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop: list[bool] = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    stop_with_parent()
    node = None
    executor = SingleThreadedExecutor()  # one executor for the node's life: no wait-set rebuild per message
    code = 0
    try:
        node = factory()
        executor.add_node(node)
        guard = CallbackGuard(lambda text: node.get_logger().error(text))
        while not stop and rclpy.ok():
            guard.spin_once(executor, 0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ConfigError, ValueError) as exc:   # from the constructor: parameters that cannot work
        print(f'{name}: bad configuration: {exc}', file=sys.stderr)
        code = 2
    finally:
        if node is not None:
            stop_nodes([node], executor, log=lambda text: print(f'{name}: {text}', file=sys.stderr),
                       destroy=False)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)   # no DDS teardown: see the module docstring
        executor.shutdown(timeout_sec=1.0)
        rclpy.try_shutdown()
    return code
