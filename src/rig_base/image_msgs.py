"""sensor_msgs/Image <-> numpy without cv_bridge (not on PyPI), and the latent message of docs/interfaces.md.

Camera drivers differ: rgb8 (RealSense, v4l2_camera), bgr8 (OpenCV-based drivers), mono8; rows may be
padded (`step` > width * channels); `data` arrives as `array.array` from rclpy, as bytes or a list
elsewhere. Anything this module cannot interpret raises `UnsupportedImage`, a ValueError, so a node
can log and drop one bad frame instead of dying.
"""
from __future__ import annotations

import array
from typing import Any

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

# encoding -> (channels, dtype, index order that turns the channels into RGB, or None for mono)
_ENCODINGS: dict[str, tuple[int, str, tuple[int, ...] | None]] = {
    'rgb8': (3, 'u1', (0, 1, 2)),
    'bgr8': (3, 'u1', (2, 1, 0)),
    'rgba8': (4, 'u1', (0, 1, 2)),
    'bgra8': (4, 'u1', (2, 1, 0)),
    'mono8': (1, 'u1', None),
    '32FC1': (1, 'f4', None),
}
CAMERA_ENCODINGS = ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8')
LATENT_ENCODING = '32FC1'


class UnsupportedImage(ValueError):
    """An Image message this module cannot interpret (encoding, sizes or values)."""


def _buffer(data: Any) -> np.ndarray:
    """Message `data` as a flat uint8 array, without copying where the type allows it."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise UnsupportedImage(f'image data has dtype {data.dtype}, expected uint8')
        return data.reshape(-1)
    if isinstance(data, (bytes, bytearray, memoryview)) or (isinstance(data, array.array)
                                                             and data.typecode == 'B'):
        return np.frombuffer(data, dtype=np.uint8)
    try:
        out = np.asarray(data, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise UnsupportedImage(f'image data of type {type(data).__name__} is not a byte sequence') from e
    if out.size and (out.min() < 0 or out.max() > 255):
        raise UnsupportedImage('image data holds values outside 0..255')
    return out.astype(np.uint8)


def _pixels(msg: Image, encodings: tuple[str, ...]) -> tuple[np.ndarray, tuple[int, ...] | None]:
    """Height x width x channels view of `msg` (padding dropped, native byte order) and its RGB order."""
    if msg.encoding not in encodings:
        raise UnsupportedImage(f'unsupported image encoding {msg.encoding!r}; supported: {list(encodings)}')
    channels, dtype_char, order = _ENCODINGS[msg.encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    itemsize = np.dtype(dtype_char).itemsize
    row_bytes = width * channels * itemsize
    if height <= 0 or width <= 0:
        raise UnsupportedImage(f'empty image ({height}x{width})')
    if step < row_bytes:
        raise UnsupportedImage(f'step {step} is smaller than width*channels*itemsize = {row_bytes}')
    data = _buffer(msg.data)
    if data.size != step * height:
        raise UnsupportedImage(f'image data has {data.size} bytes, expected step*height = {step * height}')
    rows = data.reshape(height, step)[:, :row_bytes]
    dtype = np.dtype(dtype_char).newbyteorder('>' if msg.is_bigendian else '<')
    if itemsize > 1:
        rows = np.ascontiguousarray(rows)
    pixels = rows.view(dtype).reshape(height, width, channels)
    return pixels.astype(dtype.newbyteorder('='), copy=False), order


def image_to_numpy(msg: Image) -> np.ndarray:
    """Camera image as a new, writable height x width x 3 uint8 RGB array (mono is replicated)."""
    pixels, order = _pixels(msg, CAMERA_ENCODINGS)
    if order is None:
        return np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, list(order)])


def _to_header(stamp: Any, frame_id: str) -> Header:
    header = Header(frame_id=frame_id)
    if stamp is not None:
        header.stamp = stamp.to_msg() if hasattr(stamp, 'to_msg') else stamp
    return header


def numpy_to_image(image: np.ndarray, encoding: str = 'rgb8', stamp: Any = None,
                   frame_id: str = '') -> Image:
    """Image message of `image`, whose channels are already in `encoding` order (no colour conversion).

    `stamp`: builtin_interfaces/Time or rclpy.time.Time (None leaves it zero). Accepts H x W for
    single-channel encodings.
    """
    if encoding not in _ENCODINGS:
        raise UnsupportedImage(f'unsupported image encoding {encoding!r}; supported: {list(_ENCODINGS)}')
    channels, dtype_char, _ = _ENCODINGS[encoding]
    image = np.asarray(image)
    if image.ndim == 2 and channels == 1:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] != channels:
        raise UnsupportedImage(f'{encoding} needs height x width x {channels}, got shape {image.shape}')
    if image.dtype != np.dtype(dtype_char):
        raise UnsupportedImage(f'{encoding} needs dtype {np.dtype(dtype_char)}, got {image.dtype}')
    height, width = image.shape[:2]
    little = np.ascontiguousarray(image, dtype=np.dtype(dtype_char).newbyteorder('<'))
    return Image(header=_to_header(stamp, frame_id), height=height, width=width, encoding=encoding,
                 is_bigendian=0, step=width * channels * little.itemsize,
                 data=array.array('B', little.tobytes()))


def latent_to_msg(mean: np.ndarray, logvar: np.ndarray, header: Header) -> Image:
    """`rig/latent` message: 32FC1, height 2 (row 0 mean, row 1 log-variance), width = latent dim."""
    mean = np.asarray(mean, dtype=np.float32).reshape(-1)
    logvar = np.asarray(logvar, dtype=np.float32).reshape(-1)
    if mean.shape != logvar.shape or mean.size == 0:
        raise ValueError(f'latent mean {mean.shape} and log-variance {logvar.shape} must be equal, non-empty')
    if not (np.isfinite(mean).all() and np.isfinite(logvar).all()):
        raise ValueError('latent holds NaN or inf')
    msg = numpy_to_image(np.stack([mean, logvar]), LATENT_ENCODING)
    msg.header = header
    return msg


def msg_to_latent(msg: Image) -> tuple[np.ndarray, np.ndarray]:
    """(mean, log-variance) float32 vectors of a `rig/latent` message; UnsupportedImage if malformed."""
    if msg.height != 2:
        raise UnsupportedImage(f'latent message needs height 2 (mean, log-variance), got {msg.height}')
    pixels, _ = _pixels(msg, (LATENT_ENCODING,))
    values = pixels[:, :, 0].astype(np.float32)
    if not np.isfinite(values).all():
        raise UnsupportedImage('latent message holds NaN or inf')
    return values[0].copy(), values[1].copy()
