"""Camera drivers with the real libraries (OpenCV video files, a pyrealsense2 software device) and the
camera node in its own process over DDS; no camera hardware needed."""
from __future__ import annotations

import argparse
import signal
import threading
import time

import cv2
import numpy as np
import pytest
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_util import REPO, spawn_node, spin_until
from sensor_msgs.msg import Image
from std_msgs.msg import UInt64

from rig_base import qos
from rig_base.image_msgs import image_to_numpy, numpy_to_image
from rig_base.ros_params import dataclass_from_yaml_params
from rig_perception import calibrate_view
from rig_perception.camera_node import CameraConfig
from rig_perception.drivers import CameraError, EndOfStream, FrameTimeout, OpenCVDriver, RealSenseDriver

W, H = 64, 48
# Frame i is COLOURS[i % 3] (RGB): channel order errors show as red <-> blue swaps.
COLOURS = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255)], dtype=np.uint8)


def colour_index(rgb: np.ndarray) -> int:
    """Which of COLOURS an image is (asserting it is clearly one of them)."""
    mean = rgb.reshape(-1, 3).mean(axis=0)
    distances = np.linalg.norm(COLOURS - mean, axis=1)
    assert distances.min() < 40, f'frame colour {mean} is none of {COLOURS.tolist()}'
    return int(distances.argmin())


@pytest.fixture(scope='module')
def video(tmp_path_factory) -> str:
    """30 frames cycling red, green, blue, written (BGR, as OpenCV does) as MJPG at 30 fps."""
    path = str(tmp_path_factory.mktemp('video') / 'colours.avi')
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 30.0, (W, H))
    assert writer.isOpened()
    for i in range(30):
        rgb = np.broadcast_to(COLOURS[i % 3], (H, W, 3))
        writer.write(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope='module')
def ros_context():
    rclpy.init()
    yield
    rclpy.try_shutdown()


# -- OpenCV driver --------------------------------------------------------------------------------

def test_opencv_driver_reads_file_in_rgb_order_paced_and_looped(video):
    driver = OpenCVDriver(video, fps=100.0, loop=True)
    driver.open()
    try:
        frames = [driver.read() for _ in range(35)]     # past the end: loops
    finally:
        driver.close()
    assert all(rgb.shape == (H, W, 3) and rgb.dtype == np.uint8 for rgb, _ in frames)
    assert [colour_index(rgb) for rgb, _ in frames[:30]] == [i % 3 for i in range(30)]
    assert colour_index(frames[30][0]) == 0                     # back to the first frame
    stamps = np.array([t for _, t in frames])
    assert abs(stamps[-1] - time.time()) < 1.0
    assert np.median(np.diff(stamps)) == pytest.approx(0.01, abs=0.004)   # paced to fps


def test_opencv_driver_end_of_file_and_missing_sources(video, tmp_path):
    driver = OpenCVDriver(video, fps=1000.0, loop=False)
    driver.open()
    with pytest.raises(EndOfStream):
        for _ in range(31):
            driver.read()
    driver.close()
    with pytest.raises(CameraError, match='does not exist'):
        OpenCVDriver('/dev/video99').open()
    with pytest.raises(CameraError, match='does not exist'):
        OpenCVDriver(str(tmp_path / 'nope.avi')).open()


# -- RealSense driver through a pyrealsense2 software device --------------------------------------

class SoftwareCamera:
    """A pyrealsense2 software_device with one rgb8 colour stream, fed from a thread."""

    def __init__(self, rs, fps=60, skip_every=0):
        self.rs = rs
        self.device = rs.software_device()
        self.device.register_info(rs.camera_info.serial_number, '000111')
        self.sensor = self.device.add_sensor('RGB Camera')
        intr = rs.intrinsics()
        intr.width, intr.height, intr.fx, intr.fy, intr.ppx, intr.ppy = W, H, 50.0, 50.0, W / 2, H / 2
        intr.model, intr.coeffs = rs.distortion.none, [0.0] * 5
        stream = rs.video_stream()
        stream.type, stream.index, stream.uid = rs.stream.color, 0, 1
        stream.width, stream.height, stream.fps, stream.bpp, stream.fmt = W, H, fps, 3, rs.format.rgb8
        stream.intrinsics = intr
        self.profile = self.sensor.add_video_stream(stream).as_video_stream_profile()
        self.sensor.add_option(rs.option.enable_auto_exposure, rs.option_range(0, 1, 1, 1), True)
        self.fps, self.skip_every = fps, skip_every
        self.pushed_stamps: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        number = 0
        while not self._stop.is_set():
            number += 1
            if self.skip_every and number % self.skip_every == 0:
                number += 1                                  # the camera "loses" a frame
            pixels = np.ascontiguousarray(np.broadcast_to(COLOURS[number % 3], (H, W, 3)))
            frame = self.rs.software_video_frame()
            frame.pixels, frame.stride, frame.bpp = pixels, W * 3, 3
            frame.timestamp = time.time() * 1000.0
            frame.domain = self.rs.timestamp_domain.system_time
            frame.frame_number, frame.profile = number, self.profile
            self.pushed_stamps.append(frame.timestamp / 1000.0)
            self.sensor.on_video_frame(frame)
            time.sleep(1.0 / self.fps)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()


def test_realsense_driver_with_software_device():
    rs = pytest.importorskip('pyrealsense2')
    cam = SoftwareCamera(rs, fps=60, skip_every=5)
    driver = RealSenseDriver(width=W, height=H, fps=60, auto_exposure=False, timeout_s=0.3, device=cam.device)
    driver.open()
    try:
        assert cam.sensor.get_option(rs.option.enable_auto_exposure) == 0.0   # option applied
        cam.start()
        frames = [driver.read() for _ in range(12)]
        for rgb, t in frames:
            assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
            colour_index(rgb)
            assert min(abs(t - s) for s in cam.pushed_stamps) < 1e-3    # the capture stamp, in seconds
        assert driver.lost_frames >= 1                                   # frame-number gaps counted
        cam.stop()
        start = time.monotonic()
        with pytest.raises(FrameTimeout, match='no frame'):
            for _ in range(3):                      # a frame may still be queued
                driver.read()
        assert time.monotonic() - start < 2.0       # never hangs
    finally:
        cam.stop() if cam._thread.is_alive() else None
        driver.close()
    # A mode the camera does not offer is a clear error listing what it does offer.
    with pytest.raises(CameraError, match=f'available: .*{W}x{H}@60'):
        RealSenseDriver(width=1280, height=720, fps=30, device=cam.device).open()


# -- calibrate-view -----------------------------------------------------------------------------------

def test_calibrate_view_writes_png(video, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    calibrate_view.add_arguments(parser)
    out = tmp_path / 'view.png'
    args = parser.parse_args(['--driver', 'opencv', '--device', video, '--crop', '8,4,40,40',
                              '--size', '16', '--out', str(out)])
    assert calibrate_view.run(args) == 0
    panel = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    assert panel.shape == (H, W + 8 + H, 3)            # frame | gap | enlarged VAE input
    assert tuple(panel[4, 20]) == (0, 255, 0)           # rectangle edge, top
    assert colour_index(panel[:, W + 8:]) == 0          # first frame is red
    assert 'crop_x: 8' in capsys.readouterr().out
    bad = parser.parse_args(['--device', video, '--crop', '40,40,64,64', '--out', str(tmp_path / 'x.png')])
    assert calibrate_view.run(bad) == 1                 # crop outside the frame: message, no PNG


# -- camera node over DDS -----------------------------------------------------------------------------

class Listener:
    """Subscribes as rig's nodes do (best effort, depth 1) and, for checks of frame order, reliable with a
    deep queue: on a loaded machine a starved best-effort subscriber loses frames by design, which
    would say nothing about the camera node."""

    def __init__(self, namespace: str):
        self.node = rclpy.create_node('camera_test_listener', namespace=namespace)
        self.images: list[tuple[Image, float]] = []
        self.as_rig_nodes: list[Image] = []
        self.dropped: list[int] = []
        self.node.create_subscription(Image, 'camera/image_raw',
                                      lambda m: self.images.append((m, time.time())),
                                      QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE))
        self.node.create_subscription(Image, 'camera/image_raw', self.as_rig_nodes.append, qos.CAMERA_SUBSCRIBER_QOS)
        self.node.create_subscription(UInt64, 'camera/dropped_frames', lambda m: self.dropped.append(m.data), 10)

    def close(self):
        self.node.destroy_node()


@pytest.mark.ros
def test_camera_node_publishes_video_frames(ros_context, video, tmp_path):
    ns = '/cam_video'
    listener = Listener(ns)
    try:
        with spawn_node('rig_perception.camera_node',
                        {'driver': 'opencv', 'device': video, 'loop': True, 'fps': 30.0,
                         'frame_id': 'test_optical_frame'},
                        namespace=ns, log_path=tmp_path / 'camera.log') as proc:
            assert spin_until(listener.node, lambda: len(listener.images) >= 20 and listener.dropped
                              and listener.as_rig_nodes, 20.0), (tmp_path / 'camera.log').read_text()
            assert proc.poll() is None
    finally:
        listener.close()
    msgs = [m for m, _ in listener.images]
    assert all(m.encoding == 'rgb8' and (m.width, m.height) == (W, H) for m in msgs)
    assert all(m.header.frame_id == 'test_optical_frame' for m in msgs)
    # Consecutive frames follow the red -> green -> blue cycle (none lost, none swapped).
    indices = [colour_index(image_to_numpy(m)) for m in msgs]
    assert all((b - a) % 3 == 1 for a, b in zip(indices, indices[1:])), indices
    stamps = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in msgs])
    arrivals = np.array([t for _, t in listener.images])
    assert np.all(np.diff(stamps) > 0)
    assert np.all(stamps <= arrivals) and np.all(arrivals - stamps < 1.0)   # capture time, just before
    assert np.median(np.diff(stamps)) == pytest.approx(1 / 30, abs=0.01)


@pytest.mark.ros
def test_camera_node_missing_device_retries_and_shuts_down(ros_context, tmp_path):
    log = tmp_path / 'camera.log'
    with spawn_node('rig_perception.camera_node',
                    {'driver': 'opencv', 'device': '/dev/video99', 'retry_initial_s': 0.2, 'retry_max_s': 0.4},
                    namespace='/cam_missing', log_path=log) as proc:
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline and log.read_text().count('cannot open') < 3:
            time.sleep(0.2)
        text = log.read_text()
        assert text.count('cannot open') >= 3, text                 # keeps retrying
        assert '/dev/video99 does not exist' in text                 # says what is wrong
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5.0) == 0                          # clean, prompt shutdown


@pytest.mark.ros
def test_topic_driver_republishes_a_cropped_frame(ros_context, tmp_path):
    ns = '/cam_topic'
    listener = Listener(ns)
    source = listener.node.create_publisher(Image, '/upstream/color/image_raw', qos.CAMERA_PUBLISHER_QOS)
    # Quadrants: top-left red, top-right green, bottom blue; sent as bgr8 like OpenCV-based drivers.
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[:H // 2, :W // 2] = COLOURS[0]
    rgb[:H // 2, W // 2:] = COLOURS[1]
    rgb[H // 2:] = COLOURS[2]
    stamp = rclpy.time.Time(seconds=1234, nanoseconds=5678).to_msg()
    msg = numpy_to_image(np.ascontiguousarray(rgb[:, :, ::-1]), 'bgr8', stamp, 'upstream_optical_frame')
    try:
        with spawn_node('rig_perception.camera_node',
                        {'driver': 'topic', 'input_topic': '/upstream/color/image_raw', 'output': 'crop',
                         'preprocess.crop_x': W // 2, 'preprocess.crop_y': 0,
                         'preprocess.crop_width': W // 2, 'preprocess.crop_height': H // 2},
                        namespace=ns, log_path=tmp_path / 'camera.log'):
            def received():
                source.publish(msg)
                return bool(listener.images)
            assert spin_until(listener.node, received, 20.0), (tmp_path / 'camera.log').read_text()
    finally:
        listener.close()
    out, _ = listener.images[-1]
    assert (out.width, out.height, out.encoding) == (W // 2, H // 2, 'rgb8')
    assert colour_index(image_to_numpy(out)) == 1                     # the green quadrant, in RGB
    assert (out.header.stamp.sec, out.header.stamp.nanosec) == (1234, 5678)   # source capture time kept
    assert out.header.frame_id == 'upstream_optical_frame'


@pytest.mark.parametrize('name', ['camera_realsense.yaml', 'camera_uvc.yaml', 'camera_topic.yaml'])
def test_camera_config_files_match_parameters(name):
    cfg = dataclass_from_yaml_params(CameraConfig, REPO / 'config' / name, 'camera')
    assert cfg.driver in name or (cfg.driver == 'opencv' and 'uvc' in name)
