"""Camera drivers as plain classes (no ROS): `open()`, `read() -> (rgb, t)`, `close()`.

Kept free of ROS so they can be tested with the real libraries and reused by tools such as
`rig calibrate-view`. Every `read()` returns within its timeout (a stuck device raises `FrameTimeout`
instead of hanging) and yields a new H x W x 3 uint8 RGB array plus the capture time `t` in seconds
since the epoch (the clock ROS stamps use when `use_sim_time` is off).

Errors are `CameraError`s with a message an operator can act on; the camera node turns them into a
retry with backoff.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Protocol

import cv2
import numpy as np


class CameraError(RuntimeError):
    """The camera cannot be opened or stopped delivering; the message says what to check."""


class FrameTimeout(CameraError):
    """No frame arrived within the read timeout (unplugged cable, stalled USB, stopped stream)."""


class EndOfStream(CameraError):
    """A video file ended and looping is off."""


class Driver(Protocol):
    """What the camera node needs from a driver."""
    nominal_fps: float    # frames per second the source is expected to deliver (0: unknown)

    def open(self) -> None: ...
    def read(self) -> tuple[np.ndarray, float]: ...
    def close(self) -> None: ...
    def describe(self) -> str: ...


# -- OpenCV: UVC / V4L2 devices and video files ------------------------------------------------------

def _parse_device(device: str | int) -> tuple[str | int, bool]:
    """(source for cv2.VideoCapture, is_live): an index or /dev path is a camera, anything else a file."""
    if isinstance(device, int):
        return device, True
    text = str(device).strip()
    if text.isdigit():
        return int(text), True
    return text, text.startswith('/dev/')


class OpenCVDriver:
    """A UVC camera through OpenCV's V4L2 backend, or a video file (for tests and replays).

    Files are paced to `fps` (or the file's own rate when `fps` is 0) so they behave like a live
    camera; `loop=True` restarts them at the end. Live cameras are read in a helper thread so that a
    wedged V4L2 read cannot block the caller past `timeout_s`.
    """

    def __init__(self, device: str | int = 0, width: int = 0, height: int = 0, fps: float = 0.0,
                 loop: bool = False, timeout_s: float = 2.0, auto_exposure: bool | None = None,
                 exposure: float = 0.0):
        self.source, self.live = _parse_device(device)
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        self.loop = loop
        self.timeout_s = float(timeout_s)
        self.auto_exposure = auto_exposure
        self.exposure = exposure
        self.nominal_fps = 0.0
        self._cap = None
        self._next_t = 0.0
        self._reader: _ThreadedReader | None = None

    def describe(self) -> str:
        return f'opencv {"camera" if self.live else "file"} {self.source!r}'

    def open(self) -> None:
        if not self.live and not os.path.exists(str(self.source)):
            raise CameraError(f'video file {self.source!r} does not exist')
        if self.live and isinstance(self.source, str) and not os.path.exists(self.source):
            raise CameraError(f'camera device {self.source} does not exist (unplugged? see `ls /dev/video*`)')
        api = cv2.CAP_V4L2 if self.live and os.name == 'posix' else cv2.CAP_ANY
        cap = cv2.VideoCapture(self.source, api)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f'cannot open {self.describe()} (missing, busy, or no permission: '
                              'check `v4l2-ctl --list-devices` and the video group)')
        if self.live:
            if self.width > 0 and self.height > 0:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            if self.fps > 0:
                cap.set(cv2.CAP_PROP_FPS, self.fps)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)    # newest frame, not a backlog
            if self.auto_exposure is not None:
                # V4L2 exposure_auto menu: 3 = aperture priority (auto), 1 = manual.
                cap.set(cv2.CAP_PROP_AUTO_EXPOSURE, 3 if self.auto_exposure else 1)
                if not self.auto_exposure and self.exposure > 0:
                    cap.set(cv2.CAP_PROP_EXPOSURE, self.exposure)
            self.nominal_fps = float(cap.get(cv2.CAP_PROP_FPS) or self.fps or 0.0)
            self._reader = _ThreadedReader(cap)
        else:
            self.nominal_fps = self.fps or float(cap.get(cv2.CAP_PROP_FPS) or 30.0)
        self._cap = cap
        self._next_t = time.time()

    def read(self) -> tuple[np.ndarray, float]:
        if self._cap is None:
            raise CameraError(f'{self.describe()} is not open')
        if self.live:
            bgr, t = self._reader.read(self.timeout_s)
            if bgr is None:
                raise FrameTimeout(f'no frame from {self.describe()} within {self.timeout_s:g} s '
                                   '(disconnected or stalled)')
        else:
            ok, bgr = self._cap.read()
            if not ok and self.loop:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, bgr = self._cap.read()
            if not ok:
                raise EndOfStream(f'{self.describe()} ended')
            # Pace like a live camera: frame k is "captured" at start + k / fps.
            self._next_t = max(self._next_t + 1.0 / self.nominal_fps, time.time() - 1.0)
            delay = self._next_t - time.time()
            if delay > 0:
                time.sleep(delay)
            t = time.time()
        if bgr.ndim == 2:
            return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB), t
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), t

    def close(self) -> None:
        if self._reader is not None:
            self._reader.stop()
            self._reader = None
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class _ThreadedReader:
    """Reads a live VideoCapture in a daemon thread; `read(timeout)` waits for the next new frame."""

    def __init__(self, cap):
        self._cap = cap
        self._cond = threading.Condition()
        self._frame = None
        self._t = 0.0
        self._seq = 0
        self._taken = 0
        self._stop = False
        self._failed = False
        self._thread = threading.Thread(target=self._run, name='opencv-capture', daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            ok = self._cap.grab()
            t = time.time()      # grab() returns once the frame is in: closest host time to capture
            frame = self._cap.retrieve()[1] if ok else None
            with self._cond:
                if frame is None:
                    self._failed = True
                    self._cond.notify_all()
                    return
                self._frame, self._t = frame, t
                self._seq += 1
                self._cond.notify_all()

    def read(self, timeout: float):
        with self._cond:
            self._cond.wait_for(lambda: self._seq > self._taken or self._failed or self._stop, timeout)
            if self._seq <= self._taken:
                return None, 0.0
            self._taken = self._seq
            return self._frame, self._t

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=1.0)   # a wedged grab() is left behind in its daemon thread


# -- Intel RealSense (pyrealsense2) -----------------------------------------------------------------

class RealSenseDriver:
    """Colour stream of an Intel RealSense camera through pyrealsense2's sensor API.

    The sensor API (open a colour profile, start into a `syncer`, `try_wait_for_frames`) is used
    rather than `pipeline` because it behaves the same for a real camera and for a
    `pyrealsense2.software_device` (which `pipeline` cannot select), so the tests exercise this very
    code. Pass `device` to use a given `rs.device`; otherwise the camera is found by serial number
    (empty: the only/first one).
    """

    def __init__(self, serial: str = '', width: int = 640, height: int = 480, fps: int = 30,
                 auto_exposure: bool = True, exposure: float = 0.0, timeout_s: float = 2.0, device=None):
        self.serial = str(serial)
        self.width, self.height, self.fps = int(width), int(height), int(round(fps))
        self.auto_exposure = auto_exposure
        self.exposure = exposure
        self.timeout_s = float(timeout_s)
        self.nominal_fps = float(self.fps)
        self.lost_frames = 0          # gaps in the camera's frame counter (USB bandwidth, CPU load)
        self._device = device
        self._sensor = None
        self._syncer = None
        self._last_number = None

    def describe(self) -> str:
        return f'realsense {self.serial or "(first found)"} {self.width}x{self.height}@{self.fps}'

    @staticmethod
    def _rs():
        try:   # deferred: only RealSense cameras need it, and its wheel is not on every platform
            import pyrealsense2 as rs  # noqa: PLC0415
        except ImportError as e:
            raise CameraError(f'pyrealsense2 is not usable ({e}); pip install pyrealsense2 '
                              '(it needs libusb-1.0 on the system)') from e
        return rs

    def _find_device(self, rs):
        if self._device is not None:
            return self._device
        devices = list(rs.context().query_devices())
        serials = [d.get_info(rs.camera_info.serial_number) for d in devices]
        if not devices:
            raise CameraError('no RealSense camera found (USB3 cable? `rs-enumerate-devices`; '
                              'another process such as realsense2_camera may hold it)')
        if not self.serial:
            return devices[0]
        if self.serial not in serials:
            raise CameraError(f'RealSense {self.serial} not found; connected: {serials}')
        return devices[serials.index(self.serial)]

    def open(self) -> None:
        rs = self._rs()
        device = self._find_device(rs)
        choice = None
        modes = []
        for sensor in device.query_sensors():
            for profile in sensor.get_stream_profiles():
                if profile.stream_type() != rs.stream.color or not profile.is_video_stream_profile():
                    continue
                video = profile.as_video_stream_profile()
                modes.append(f'{video.width()}x{video.height()}@{profile.fps()} {profile.format()}')
                if (video.width(), video.height(), profile.fps(), profile.format()) == \
                        (self.width, self.height, self.fps, rs.format.rgb8):
                    choice = (sensor, profile)
                    break
            if choice:
                break
        if choice is None:
            raise CameraError(f'{self.describe()}: no rgb8 colour mode {self.width}x{self.height}@{self.fps}; '
                              f'available: {sorted(set(modes))}')
        sensor, profile = choice
        if sensor.supports(rs.option.enable_auto_exposure):
            sensor.set_option(rs.option.enable_auto_exposure, 1.0 if self.auto_exposure else 0.0)
            if not self.auto_exposure and self.exposure > 0 and sensor.supports(rs.option.exposure):
                sensor.set_option(rs.option.exposure, float(self.exposure))
        syncer = rs.syncer(1)           # queue of 1: always the newest frame
        sensor.open(profile)
        try:
            sensor.start(syncer)
        except Exception:
            sensor.close()
            raise
        self._sensor, self._syncer, self._last_number = sensor, syncer, None

    def read(self) -> tuple[np.ndarray, float]:
        rs = self._rs()
        if self._syncer is None:
            raise CameraError(f'{self.describe()} is not open')
        ok, frames = self._syncer.try_wait_for_frames(int(self.timeout_s * 1000))
        if not ok:
            raise FrameTimeout(f'no frame from {self.describe()} within {self.timeout_s:g} s '
                               '(unplugged, or USB bandwidth exhausted)')
        frame = frames.first_or_default(rs.stream.color)
        if not frame:
            raise FrameTimeout(f'{self.describe()}: frameset without a colour frame')
        number = frame.get_frame_number()
        if self._last_number is not None and number > self._last_number + 1:
            self.lost_frames += number - self._last_number - 1
        self._last_number = number
        # Copy: the SDK recycles the frame's memory once the frame is released.
        rgb = np.array(np.asanyarray(frame.get_data()), dtype=np.uint8, copy=True)
        domain = frame.get_frame_timestamp_domain()
        if domain in (rs.timestamp_domain.system_time, rs.timestamp_domain.global_time):
            t = frame.get_timestamp() / 1000.0     # host-clock milliseconds of the capture
        else:
            t = time.time()                         # camera clock only: arrival time is the best guess
        return rgb, t

    def close(self) -> None:
        sensor, self._sensor, self._syncer = self._sensor, None, None
        if sensor is not None:
            for action in (sensor.stop, sensor.close):
                try:
                    action()
                except RuntimeError:
                    pass    # already stopped, or the device is gone: nothing left to release


def make_driver(kind: str, **kwargs) -> Driver:
    """Driver by name ('opencv' or 'realsense') with keyword settings of that driver's class."""
    if kind == 'opencv':
        return OpenCVDriver(**kwargs)
    if kind == 'realsense':
        return RealSenseDriver(**kwargs)
    raise ValueError(f'unknown camera driver {kind!r}; use opencv or realsense (or topic, in the node)')
