"""`rig calibrate-view`: save a PNG of a live frame with the crop drawn on it and the VAE input beside it.

Placing the camera and choosing the crop is done by eye: the crop must hold the whole workspace the
hand and objects move in, and little else. This tool grabs one frame through the same drivers the
camera node uses (or from a running camera topic), draws the crop rectangle, puts the preprocessed
crop (what the VAE sees, enlarged) beside it, and prints the parameter lines to paste into
`config/camera_*.yaml`.

  rig calibrate-view --driver opencv --device /dev/video2 --crop 120,40,400,400 --out view.png
  rig calibrate-view --driver realsense --serial 123456789 --crop 160,60,360,360 --out view.png
  rig calibrate-view --driver topic --topic /camera/camera/color/image_raw --crop ... --out view.png
"""
from __future__ import annotations

import argparse
import sys
import time

import cv2
import numpy as np
import rclpy
from sensor_msgs.msg import Image

from rig_base.config import ConfigError
from rig_base.image_msgs import image_to_numpy
from rig_base.qos import CAMERA_SUBSCRIBER_QOS
from rig_perception.drivers import CameraError, OpenCVDriver, RealSenseDriver, _parse_device
from rig_perception.preprocess import CropOutsideFrame, PreprocessConfig, crop_box, preprocess

RECT_COLOUR = (0, 255, 0)   # RGB


def parse_crop(text: str) -> tuple[int, int, int, int]:
    try:
        values = tuple(int(v) for v in text.split(','))
    except ValueError:
        values = ()
    if len(values) != 4 or min(values) < 0:
        raise argparse.ArgumentTypeError(f'--crop wants x,y,width,height (non-negative integers), got {text!r}')
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--driver', choices=('opencv', 'realsense', 'topic'), default='opencv')
    parser.add_argument('--device', default='0', help='opencv: camera index, /dev/videoN or a video file')
    parser.add_argument('--serial', default='', help='realsense: serial number (empty: first camera)')
    parser.add_argument('--topic', default='/camera/camera/color/image_raw', help='topic driver: image topic')
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--fps', type=float, default=30.0)
    parser.add_argument('--crop', type=parse_crop, default=(0, 0, 0, 0),
                        help='x,y,width,height in source pixels (width/height 0: to the edge)')
    parser.add_argument('--size', type=int, default=48, help='VAE input side in pixels')
    parser.add_argument('--warmup', type=int, default=15,
                        help='frames to discard first so auto exposure settles (live cameras)')
    parser.add_argument('--timeout', type=float, default=5.0, help='seconds to wait for a frame')
    parser.add_argument('--out', default='view.png', help='PNG to write')


def grab_frame(args) -> np.ndarray:
    """One RGB frame from the requested source (CameraError / TimeoutError if none comes)."""
    if args.driver == 'topic':
        return _grab_from_topic(args.topic, args.timeout)
    if args.driver == 'realsense':
        driver = RealSenseDriver(serial=args.serial, width=args.width, height=args.height, fps=args.fps,
                                 timeout_s=args.timeout)
        warmup = args.warmup
    else:
        driver = OpenCVDriver(device=args.device, width=args.width, height=args.height,
                              fps=1000.0, timeout_s=args.timeout)   # a file need not be paced here
        warmup = args.warmup if _parse_device(args.device)[1] else 0
    driver.open()
    try:
        for _ in range(warmup):
            driver.read()
        return driver.read()[0]
    finally:
        driver.close()


def _grab_from_topic(topic: str, timeout: float) -> np.ndarray:

    rclpy.init()
    try:
        node = rclpy.create_node('calibrate_view')
        got: list[Image] = []
        node.create_subscription(Image, topic, got.append, CAMERA_SUBSCRIBER_QOS)
        deadline = time.monotonic() + timeout
        while not got and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        node.destroy_node()
        if not got:
            raise TimeoutError(f'no image on {topic} within {timeout:g} s (`ros2 topic hz {topic}`)')
        return image_to_numpy(got[-1])
    finally:
        rclpy.try_shutdown()


def compose_view(rgb: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Frame with the crop rectangle, and beside it the VAE input enlarged to the frame height."""
    x, y, w, h = crop_box(rgb.shape[0], rgb.shape[1], cfg)
    view = np.ascontiguousarray(rgb.copy())
    thickness = max(1, min(rgb.shape[:2]) // 200)
    cv2.rectangle(view, (x, y), (x + w - 1, y + h - 1), RECT_COLOUR, thickness)
    small = preprocess(rgb, cfg)
    side = rgb.shape[0]
    enlarged = cv2.resize(small, (side, side), interpolation=cv2.INTER_NEAREST)
    gap = np.full((side, 8, 3), 255, np.uint8)
    panel = np.concatenate([view, gap, enlarged], axis=1)
    label = f'crop {x},{y},{w},{h} -> {cfg.size}x{cfg.size}'
    scale = max(0.3, side / 1200)
    for colour, width in (((0, 0, 0), 3), (RECT_COLOUR, 1)):     # outlined: readable on any background
        cv2.putText(panel, label, (5, side - 8), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, width, cv2.LINE_AA)
    return panel


def run(args) -> int:

    try:
        cfg = PreprocessConfig(*args.crop, size=args.size)
        rgb = grab_frame(args)
        panel = compose_view(rgb, cfg)
    except (CameraError, TimeoutError, CropOutsideFrame, ConfigError) as e:
        print(f'rig calibrate-view: {e}', file=sys.stderr)
        return 1
    if not cv2.imwrite(args.out, cv2.cvtColor(panel, cv2.COLOR_RGB2BGR)):
        print(f'rig calibrate-view: could not write {args.out}', file=sys.stderr)
        return 1
    x, y, w, h = crop_box(rgb.shape[0], rgb.shape[1], cfg)
    print(f'wrote {args.out}: {rgb.shape[1]}x{rgb.shape[0]} frame, crop {x},{y},{w},{h}.\n'
          f'camera parameters (config/camera_*.yaml, under ros__parameters):\n'
          f'    preprocess:\n      crop_x: {x}\n      crop_y: {y}\n      crop_width: {w}\n'
          f'      crop_height: {h}\n      size: {cfg.size}')
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='rig calibrate-view', description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
