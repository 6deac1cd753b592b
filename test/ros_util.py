"""Helpers for tests that run real rclpy nodes in separate processes over DDS (loopback only)."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

REPO = Path(__file__).resolve().parents[1]


def node_env() -> dict:
    env = dict(os.environ)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env.setdefault('MUJOCO_GL', 'egl')
    env['PYTHONPATH'] = os.pathsep.join([str(REPO / 'src'), env.get('PYTHONPATH', '')]).rstrip(os.pathsep)
    env['PYTHONUNBUFFERED'] = '1'
    return env


def ros_args(params: dict | None = None, namespace: str | None = None,
             remaps: dict | None = None) -> list[str]:
    args = ['--ros-args']
    for k, v in (params or {}).items():
        if isinstance(v, bool):
            v = 'true' if v else 'false'
        args += ['-p', f'{k}:={v}']
    if namespace:
        args += ['-r', f'__ns:={namespace}']
    for a, b in (remaps or {}).items():
        args += ['-r', f'{a}:={b}']
    return args


@contextlib.contextmanager
def spawn_node(module: str, params: dict | None = None, namespace: str | None = None,
               remaps: dict | None = None, log_path: Path | None = None) -> Iterator[subprocess.Popen]:
    """Run `python -m module --ros-args ...` in its own process; SIGINT it (clean shutdown) at exit.

    Output goes to `log_path` (or a pipe-less temp file) so a chatty node never blocks on a full pipe.
    """
    cmd = [sys.executable, '-m', module] + ros_args(params, namespace, remaps)
    log = open(log_path, 'w+') if log_path else open(os.devnull, 'w')
    proc = subprocess.Popen(cmd, env=node_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def spin_until(node, predicate: Callable[[], bool], timeout: float, executor=None) -> bool:
    """Spin `node` until predicate() is true or `timeout` seconds pass; returns predicate()."""
    import rclpy
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if executor is not None:
            executor.spin_once(timeout_sec=0.05)
        else:
            rclpy.spin_once(node, timeout_sec=0.05)
    return predicate()


@contextlib.contextmanager
def rclpy_node(name: str, namespace: str) -> Iterator:
    """An rclpy node in this test process (rclpy initialised around it), for probing other nodes."""
    import rclpy
    rclpy.init()
    node = rclpy.create_node(name, namespace=namespace)
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
