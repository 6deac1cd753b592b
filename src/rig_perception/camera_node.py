"""Camera node: one node, three sources, publishing `camera/image_raw` (rgb8) for the rest of rig.

`driver` selects the source:
  - `realsense`: an Intel RealSense colour stream through pyrealsense2 (serial, mode, exposure);
  - `opencv`: a UVC/V4L2 camera (index or /dev path) or a video file (paced, optionally looped);
  - `topic`: frames of an existing driver (realsense2_camera, v4l2_camera, usb_cam) subscribed with
    sensor-data QoS, cropped/resized and re-published, their capture stamps kept.

Frames go out at `rate_hz` (0: every frame) stamped with their capture time, optionally cropped
(`output: crop`) or cropped and shrunk to the VAE input (`output: preprocess`) with the shared
`PreprocessConfig`. Frames that should have been published but were not (the source fell behind
the rate, or stalled) are counted: a throttled warning and `camera/dropped_frames` (std_msgs/UInt64,
total since start, 1 Hz).

Capture runs in its own thread, so a camera that stalls or vanishes never blocks the executor: the
thread reports a clear error and reopens the device with exponential backoff, while the node keeps
answering (parameters, shutdown). Run:
`python -m rig_perception.camera_node --ros-args --params-file config/camera_realsense.yaml`
"""
from __future__ import annotations

import dataclasses
import math
import sys
import threading
import time

import rclpy
from builtin_interfaces.msg import Time as TimeMsg
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import UInt64

from rig_base.config import ConfigError
from rig_base.image_msgs import UnsupportedImage, image_to_numpy, numpy_to_image
from rig_base.msgs import stamp_from_seconds, stamp_seconds
from rig_base.node_main import run_node
from rig_base.qos import CAMERA_PUBLISHER_QOS, CAMERA_SUBSCRIBER_QOS, COUNTER_QOS
from rig_base.ros_params import declare_dataclass_parameters
from rig_perception.drivers import CameraError, EndOfStream, make_driver
from rig_perception.preprocess import CropOutsideFrame, PreprocessConfig, crop_box, preprocess

NODE_NAME = 'camera'
DRIVERS = ('realsense', 'opencv', 'topic')
OUTPUTS = ('raw', 'crop', 'preprocess')
LOG_THROTTLE_S = 5.0


@dataclasses.dataclass
class CameraConfig:
    """Parameters of the camera node (one ROS parameter each; `preprocess.*` nested)."""
    driver: str = 'opencv'
    device: str = '0'
    loop: bool = False
    serial: str = ''
    width: int = 640
    height: int = 480
    fps: float = 30.0
    auto_exposure: bool = True
    exposure: float = 0.0
    input_topic: str = '/camera/camera/color/image_raw'
    rate_hz: float = 0.0
    frame_id: str = 'camera_color_optical_frame'
    output: str = 'raw'
    preprocess: PreprocessConfig = dataclasses.field(default_factory=PreprocessConfig)
    read_timeout_s: float = 2.0
    retry_initial_s: float = 0.5
    retry_max_s: float = 10.0

    def __post_init__(self):
        if self.driver not in DRIVERS:
            raise ConfigError(f'driver must be one of {DRIVERS}, got {self.driver!r}')
        if self.output not in OUTPUTS:
            raise ConfigError(f'output must be one of {OUTPUTS}, got {self.output!r}')
        if self.rate_hz < 0 or self.fps < 0:
            raise ConfigError('rate_hz and fps must be >= 0')
        if self.read_timeout_s <= 0 or not 0 < self.retry_initial_s <= self.retry_max_s:
            raise ConfigError('need read_timeout_s > 0 and 0 < retry_initial_s <= retry_max_s')

    def driver_kwargs(self) -> dict:
        if self.driver == 'realsense':
            return dict(serial=self.serial, width=self.width, height=self.height, fps=self.fps,
                        auto_exposure=self.auto_exposure, exposure=self.exposure,
                        timeout_s=self.read_timeout_s)
        return dict(device=self.device, width=self.width, height=self.height, fps=self.fps, loop=self.loop,
                    timeout_s=self.read_timeout_s, auto_exposure=self.auto_exposure, exposure=self.exposure)


DESCRIPTIONS = {
    'driver': 'frame source: realsense (pyrealsense2), opencv (UVC/V4L2 device or video file), '
              'topic (re-publish another driver\'s image topic)',
    'device': 'opencv: camera index ("0"), device path (/dev/video2) or video file path',
    'loop': 'opencv video file: restart at the end instead of stopping',
    'serial': 'realsense: serial number of the camera (empty: the first one found)',
    'width': 'capture width in pixels (realsense mode; opencv camera request; files keep their own)',
    'height': 'capture height in pixels (realsense mode; opencv camera request; files keep their own)',
    'fps': 'capture rate: realsense mode, opencv camera request, pace of a video file (0: the file\'s own)',
    'auto_exposure': 'camera auto exposure on (true) or off (false, then exposure applies)',
    'exposure': 'manual exposure when auto_exposure is false (realsense: microseconds; V4L2: device units; '
                '0: leave as is)',
    'input_topic': 'topic driver: source image topic (subscribed best effort, sensor data)',
    'rate_hz': 'publish rate; frames in between are skipped (0: publish every frame)',
    'frame_id': 'header.frame_id of published images (opencv/realsense; topic keeps the source\'s)',
    'output': 'raw: full frame; crop: the preprocess crop only; preprocess: crop and shrink to preprocess.size',
    'preprocess.crop_x': 'left edge of the crop in source pixels',
    'preprocess.crop_y': 'top edge of the crop in source pixels',
    'preprocess.crop_width': 'crop width in pixels (0: to the right edge)',
    'preprocess.crop_height': 'crop height in pixels (0: to the bottom edge)',
    'preprocess.size': 'output side in pixels for output=preprocess (square)',
    'read_timeout_s': 'a read that gets no frame for this long counts as a disconnect (reconnect)',
    'retry_initial_s': 'first wait before reopening a camera that failed; doubles on each failure',
    'retry_max_s': 'longest wait between reopen attempts',
}
#: Settable at run time (`ros2 param set`, e.g. while calibrating the view): the crop, read at each
#: frame. The rest is read-only: driver, device, topics, rate and output are set up at start.
LIVE_PARAMETERS = ('preprocess.crop_x', 'preprocess.crop_y', 'preprocess.crop_width', 'preprocess.crop_height')


class DropCounter:
    """Counts publish slots that got no fresh frame: gaps in capture time beyond 1.5 periods."""

    def __init__(self, period: float):
        self.period = period
        self.dropped = 0
        self._last_t: float | None = None

    def frame(self, t: float) -> int:
        """Register a published frame captured at `t`; returns how many were dropped before it."""
        lost = 0
        if self._last_t is not None and self.period > 0:
            gap = t - self._last_t
            if gap > 1.5 * self.period:
                lost = int(round(gap / self.period)) - 1
        self._last_t = t
        self.dropped += lost
        return lost


class CameraNode(Node):
    """Publishes `camera/image_raw` from the configured driver; see the module docstring."""

    def __init__(self, cfg: CameraConfig | None = None, **node_kwargs):
        super().__init__(NODE_NAME, **node_kwargs)
        self.cfg: CameraConfig = declare_dataclass_parameters(self, cfg or CameraConfig(), DESCRIPTIONS,
                                                              live=LIVE_PARAMETERS)
        self.pub = self.create_publisher(Image, 'camera/image_raw', CAMERA_PUBLISHER_QOS)
        self.dropped_pub = self.create_publisher(UInt64, 'camera/dropped_frames', COUNTER_QOS)
        self.published = 0
        self._last_pub_t = -math.inf
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self.driver = None
        period = 1.0 / self.cfg.rate_hz if self.cfg.rate_hz > 0 else 0.0
        self.drops = DropCounter(period)
        self.create_timer(1.0, self._report)
        if self.cfg.driver == 'topic':
            self.create_subscription(Image, self.cfg.input_topic, self._on_image, CAMERA_SUBSCRIBER_QOS)
            self.get_logger().info(f're-publishing {self.cfg.input_topic} ({self.cfg.output})')
        else:
            self.driver = make_driver(self.cfg.driver, **self.cfg.driver_kwargs())
            self._thread = threading.Thread(target=self._capture_loop, name='camera-capture', daemon=True)
            self._thread.start()

    # -- frames ---------------------------------------------------------------------------------
    def _due(self, t: float) -> bool:
        """Rate limiting by capture time, with 10 % slack so a 30 fps source gives a steady 10 Hz."""
        if self.cfg.rate_hz <= 0:
            return True
        if t < self._last_pub_t:
            self._last_pub_t = -math.inf        # source clock jumped back (replayed bag, restarted driver)
        if t - self._last_pub_t >= 0.9 / self.cfg.rate_hz:
            self._last_pub_t = t
            return True
        return False

    def _convert(self, rgb):
        if self.cfg.output == 'raw':
            return rgb
        if self.cfg.output == 'crop':
            x, y, w, h = crop_box(rgb.shape[0], rgb.shape[1], self.cfg.preprocess)
            return rgb[y:y + h, x:x + w]
        return preprocess(rgb, self.cfg.preprocess)

    def publish_frame(self, rgb, stamp: TimeMsg, frame_id: str, t: float) -> None:
        with self._lock:
            if not self._due(t) or self._stop.is_set():
                return
            try:
                out = self._convert(rgb)
            except CropOutsideFrame as e:
                self.get_logger().error(f'{e}; fix preprocess.* (rig calibrate-view)',
                                        throttle_duration_sec=LOG_THROTTLE_S)
                return
            lost = self.drops.frame(t)
            if lost:
                self.get_logger().warning(f'{lost} frame(s) dropped ({self.drops.dropped} in total): '
                                          'the camera delivers slower than rate_hz',
                                          throttle_duration_sec=LOG_THROTTLE_S)
            self.pub.publish(numpy_to_image(out, 'rgb8', stamp, frame_id))
            self.published += 1

    def _on_image(self, msg: Image) -> None:
        try:
            rgb = image_to_numpy(msg)
        except UnsupportedImage as e:
            self.get_logger().warning(f'dropping a frame from {self.cfg.input_topic}: {e}',
                                      throttle_duration_sec=LOG_THROTTLE_S)
            return
        stamp = msg.header.stamp
        t = stamp_seconds(stamp)
        if t == 0.0:                             # unstamped source: arrival time is the best we have
            t = time.time()
            stamp = stamp_from_seconds(t)
        self.publish_frame(rgb, stamp, msg.header.frame_id or self.cfg.frame_id, t)

    def _capture_loop(self) -> None:
        """Open, read until an error, close, back off, reopen; until the node stops."""
        log = self.get_logger()
        backoff = self.cfg.retry_initial_s
        while not self._stop.is_set():
            try:
                self.driver.open()
            except CameraError as e:
                log.error(f'cannot open {self.driver.describe()}: {e}; retrying in {backoff:.1f} s')
                self._stop.wait(backoff)
                backoff = min(2 * backoff, self.cfg.retry_max_s)
                continue
            log.info(f'capturing from {self.driver.describe()}')
            if self.drops.period == 0 and self.driver.nominal_fps > 0:
                self.drops.period = 1.0 / self.driver.nominal_fps
            try:
                while not self._stop.is_set():
                    rgb, t = self.driver.read()
                    self.publish_frame(rgb, stamp_from_seconds(t), self.cfg.frame_id, t)
                    backoff = self.cfg.retry_initial_s
            except EndOfStream as e:
                log.info(f'{e}; no more frames (set loop:=true to repeat a video file)')
                return
            except CameraError as e:
                log.error(f'{self.driver.describe()} lost: {e}; reopening in {backoff:.1f} s')
            except Exception as e:   # a driver bug must not kill capture silently
                if self._stop.is_set() or not rclpy.ok():
                    return           # shutting down: the publisher's context is already gone
                log.error(f'capture failed: {type(e).__name__}: {e}; reopening in {backoff:.1f} s')
            finally:
                self.driver.close()
            self._stop.wait(backoff)
            backoff = min(2 * backoff, self.cfg.retry_max_s)

    def _report(self) -> None:
        self.dropped_pub.publish(UInt64(data=self.drops.dropped))

    def stop(self) -> None:
        """Stop capture and release the device (the thread notices within one read timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.cfg.read_timeout_s + 1.0)
            if self._thread.is_alive():
                self.get_logger().warning('capture thread still blocked in the driver; leaving it behind')


def main(args=None) -> int:
    return run_node(CameraNode, NODE_NAME, args)


if __name__ == '__main__':
    sys.exit(main())
