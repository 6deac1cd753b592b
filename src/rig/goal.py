"""`rig goal`: give the robot a goal image (docs/interfaces.md: rig/goal_image, latched).

    rig goal IMAGE.png [--namespace /env0]     # an image file (any size; the encoder crops/resizes)
    rig goal --from-sim [--namespace /env0]    # ask the sim bridge to render one (sim/sample_goal)

The image is published reliable + transient local and the command waits until the encoder has it
(acknowledged), so a goal is never lost to discovery timing.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import cv2
import rclpy
from rclpy.duration import Duration
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from rig_base import qos
from rig_base.image_msgs import numpy_to_image


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('image', nargs='?', help='goal image file (PNG, JPEG)')
    parser.add_argument('--from-sim', action='store_true', help='have the sim bridge render a goal')
    parser.add_argument('--namespace', default='', help='namespace of the actor (e.g. /env0)')
    parser.add_argument('--timeout', type=float, default=20.0, help='seconds to wait for the graph')
    parser.add_argument('--hold', type=float, default=0.0,
                        help='keep publishing the latched goal for this many seconds (late joiners)')


def load_image(path: str):
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f'cannot read an image from {path!r}')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def run(args) -> int:
    if bool(args.image) == bool(args.from_sim):
        print('rig goal: give either an IMAGE file or --from-sim', file=sys.stderr)
        return 2
    image = None
    if args.image:
        try:
            image = load_image(args.image)
        except FileNotFoundError as exc:
            print(f'rig goal: {exc}', file=sys.stderr)
            return 2



    rclpy.init()
    node = rclpy.create_node('rig_goal', namespace=args.namespace or None)
    try:
        if args.from_sim:
            client = node.create_client(Trigger, 'sim/sample_goal')
            if not client.wait_for_service(timeout_sec=args.timeout):
                print(f'rig goal: no {node.get_namespace().rstrip("/")}/sim/sample_goal service', file=sys.stderr)
                return 1
            future = client.call_async(Trigger.Request())
            rclpy.spin_until_future_complete(node, future, timeout_sec=args.timeout)
            if not future.done() or not future.result().success:
                print('rig goal: the sim bridge did not render a goal', file=sys.stderr)
                return 1
            print(f'goal from sim: {json.loads(future.result().message)}')
            return 0
        pub = node.create_publisher(Image, 'rig/goal_image', qos.GOAL_IMAGE_QOS)
        deadline = time.monotonic() + args.timeout
        while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        if pub.get_subscription_count() == 0:
            print('rig goal: nobody subscribes to rig/goal_image (is the encoder running?)', file=sys.stderr)
            return 1
        pub.publish(numpy_to_image(image, 'rgb8', stamp=node.get_clock().now().to_msg(), frame_id='goal'))
        acked = pub.wait_for_all_acked(Duration(seconds=args.timeout))
        end = time.monotonic() + args.hold
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
        print(f'goal {args.image} ({image.shape[1]}x{image.shape[0]}) sent'
              + ('' if acked else ' (not acknowledged by every subscriber)'))
        return 0 if acked else 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
