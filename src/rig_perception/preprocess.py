"""Camera frame -> VAE input: crop to the workspace, shrink to a small square (e.g. 48 x 48).

Shared by the camera nodes, the encoder node and the trainer (which preprocesses recorded frames the
same way), so it depends on numpy and OpenCV only. Colour order is fixed upstream
(`image_msgs.image_to_numpy` always yields RGB).
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from rig_base.config import ConfigError


@dataclasses.dataclass
class PreprocessConfig:
    """Crop rectangle in source pixels (width/height 0 = to the frame's right/bottom edge) and output size."""
    crop_x: int = 0
    crop_y: int = 0
    crop_width: int = 0
    crop_height: int = 0
    size: int = 48

    def __post_init__(self):
        if min(self.crop_x, self.crop_y, self.crop_width, self.crop_height) < 0:
            raise ConfigError(f'crop values must be >= 0: {self}')
        if self.size <= 0:
            raise ConfigError(f'output size must be > 0, got {self.size}')


class CropOutsideFrame(ValueError):
    """The configured crop does not fit the frame it is applied to."""


def crop_box(frame_height: int, frame_width: int, cfg: PreprocessConfig) -> tuple[int, int, int, int]:
    """(x, y, width, height) of the crop in a frame of the given size; CropOutsideFrame if it does not fit."""
    width = cfg.crop_width or frame_width - cfg.crop_x
    height = cfg.crop_height or frame_height - cfg.crop_y
    if width <= 0 or height <= 0 or cfg.crop_x + width > frame_width or cfg.crop_y + height > frame_height:
        raise CropOutsideFrame(
            f'crop x={cfg.crop_x} y={cfg.crop_y} width={cfg.crop_width} height={cfg.crop_height} '
            f'does not fit a {frame_width}x{frame_height} frame')
    return cfg.crop_x, cfg.crop_y, width, height


def preprocess(rgb: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Crop and resize an H x W x 3 uint8 RGB frame to cfg.size x cfg.size x 3 uint8 (INTER_AREA).

    A non-square crop is stretched to the square; choose a square crop to keep proportions.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f'expected an H x W x 3 uint8 image, got shape {rgb.shape} dtype {rgb.dtype}')
    x, y, width, height = crop_box(rgb.shape[0], rgb.shape[1], cfg)
    cropped = rgb[y:y + height, x:x + width]
    if cropped.shape[:2] == (cfg.size, cfg.size):
        return np.ascontiguousarray(cropped)
    # INTER_AREA averages the source pixels under each output pixel: no aliasing when shrinking.
    return cv2.resize(np.ascontiguousarray(cropped), (cfg.size, cfg.size), interpolation=cv2.INTER_AREA)
