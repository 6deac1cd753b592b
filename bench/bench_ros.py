"""Lockstep steps/s through ROS: the sim bridge in its own process, a command publisher in this one.

Each step is a full round trip over DDS: publish a TwistStamped on rig/cmd, the bridge steps MuJoCo,
renders and publishes the frame, and this process receives it. Reports steps/s and the median and p99
step latency; writes bench/results/ros/lockstep.json.

    python -m bench.bench_ros [--task reach] [--steps 2000]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from bench.layout import REPO, ROS, SCHEMAS


def run(task: str, arm: str, steps: int, warmup: int = 50) -> dict:
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    os.environ.setdefault('ROS_DOMAIN_ID', str(90 + os.getpid() % 10))
    os.environ.setdefault('MUJOCO_GL', 'egl')
    # deferred: rclpy and the ROS messages, after the DDS settings above (and --help stays fast)
    import rclpy  # noqa: PLC0415
    from geometry_msgs.msg import TwistStamped  # noqa: PLC0415
    from rclpy.executors import SingleThreadedExecutor  # noqa: PLC0415
    from sensor_msgs.msg import Image  # noqa: PLC0415

    from rig_base import qos  # noqa: PLC0415

    env = dict(os.environ, PYTHONPATH=str(REPO / 'src'))
    bridge = subprocess.Popen(
        [sys.executable, '-m', 'rig_sim.bridge_node', '--ros-args', '-p', f'task:={task}', '-p', f'arm:={arm}',
         '-p', 'mode:=lockstep', '-r', '__ns:=/bench'],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    rclpy.init()
    node = rclpy.create_node('bench_cmd', namespace='/bench')
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    received = [0]
    node.create_subscription(Image, 'camera/image_raw', lambda m: received.__setitem__(0, received[0] + 1),
                             qos.CAMERA_SUBSCRIBER_QOS)
    pub = node.create_publisher(TwistStamped, 'rig/cmd', qos.COMMAND_QOS)
    rng = np.random.default_rng(0)
    msg = TwistStamped()
    msg.header.frame_id = 'base_link'

    def one_step(timeout=5.0) -> float:
        v = rng.uniform(-0.2, 0.2, 2)
        msg.twist.linear.x, msg.twist.linear.y = float(v[0]), float(v[1])
        msg.header.stamp = node.get_clock().now().to_msg()
        n = received[0]
        t0 = time.perf_counter()
        pub.publish(msg)
        deadline = t0 + timeout
        while received[0] == n:
            executor.spin_once(timeout_sec=0.01)
            if time.perf_counter() > deadline:
                raise TimeoutError('bridge did not answer')
        return time.perf_counter() - t0

    try:
        # Discovery: keep poking until the bridge answers.
        t_start = time.time()
        while True:
            try:
                one_step(timeout=0.5)
                break
            except TimeoutError as exc:
                if bridge.poll() is not None or time.time() - t_start > 60:
                    raise RuntimeError('sim bridge did not come up') from exc
        for _ in range(warmup):
            one_step()
        lat = []
        t0 = time.perf_counter()
        for _ in range(steps):
            lat.append(one_step())
        wall = time.perf_counter() - t0
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        bridge.send_signal(signal.SIGINT)
        try:
            bridge.wait(10)
        except subprocess.TimeoutExpired:
            bridge.kill()
    lat_ms = np.array(lat) * 1e3
    return {
        'schema': SCHEMAS['ros'], 'task': task, 'arm': arm, 'steps': steps,
        'steps_per_s': steps / wall,
        'latency_ms_median': float(np.median(lat_ms)),
        'latency_ms_p99': float(np.percentile(lat_ms, 99)),
        'target_steps_per_s': 300,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', default='reach')
    parser.add_argument('--arm', default='sawyer')
    parser.add_argument('--steps', type=int, default=2000)
    args = parser.parse_args(argv)
    result = run(args.task, args.arm, args.steps)
    ROS.mkdir(parents=True, exist_ok=True)
    (ROS / 'lockstep.json').write_text(json.dumps(result, indent=2))
    print(f"lockstep through ROS ({result['task']}/{result['arm']}): {result['steps_per_s']:.0f} steps/s "
          f"(target >= {result['target_steps_per_s']}), step latency median "
          f"{result['latency_ms_median']:.2f} ms, p99 {result['latency_ms_p99']:.2f} ms")
    return 0


if __name__ == '__main__':
    sys.exit(main())
