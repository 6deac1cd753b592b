"""The one `main()` every rig node executable uses: spin until SIGINT/SIGTERM, then stop cleanly.

rclpy's own signal handlers shut the context down at SIGINT, after which a node can no longer publish
its last words (the zero command, the end of an episode). Here signals only set a flag, the loop
notices it within 0.1 s, the node's `stop()`/`stop_arm()` runs while ROS is still up, then it is
destroyed and the context shut down.
"""
from __future__ import annotations

import signal
import sys
from typing import Callable

from rig.config import ConfigError


def run_node(factory: Callable[[], object], name: str, args=None) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop: list[bool] = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    node = None
    executor = SingleThreadedExecutor()  # one executor for the node's life: no wait-set rebuild per message
    try:
        node = factory()
        executor.add_node(node)
        while not stop and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ConfigError, ValueError) as exc:
        print(f'{name}: bad configuration: {exc}', file=sys.stderr)
        return 2
    finally:
        if node is not None:
            for method in ('stop_arm', 'stop'):
                if hasattr(node, method):
                    try:
                        getattr(node, method)()
                    except Exception as exc:  # noqa: BLE001 - the context may already be gone
                        print(f'{name}: {method} failed: {exc}', file=sys.stderr)
            executor.remove_node(node)
            node.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown()
    return 0
