"""Crop + INTER_AREA resize of camera frames to the VAE input size."""
import numpy as np
import pytest

from rig_base.config import ConfigError, from_dict
from rig_perception.preprocess import CropOutsideFrame, PreprocessConfig, crop_box, preprocess


def test_full_frame_is_resized_to_square_uint8():
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    out = preprocess(frame, PreprocessConfig(size=48))
    assert out.shape == (48, 48, 3) and out.dtype == np.uint8 and out.flags.c_contiguous


def test_crop_selects_the_configured_rectangle():
    frame = np.zeros((100, 120, 3), np.uint8)
    frame[10:40, 50:80] = (200, 100, 50)   # a 30 x 30 patch at x=50, y=10
    out = preprocess(frame, PreprocessConfig(crop_x=50, crop_y=10, crop_width=30, crop_height=30, size=30))
    assert (out == (200, 100, 50)).all()
    # One pixel further right and the crop picks up background.
    shifted = preprocess(frame, PreprocessConfig(crop_x=51, crop_y=10, crop_width=30, crop_height=30, size=30))
    assert not shifted[:, -1].any()


def test_zero_width_height_extend_to_the_frame_edge():
    assert crop_box(100, 120, PreprocessConfig(crop_x=20, crop_y=10)) == (20, 10, 100, 90)
    assert crop_box(100, 120, PreprocessConfig()) == (0, 0, 120, 100)


def test_inter_area_averages_when_shrinking():
    checker = (np.indices((96, 96)).sum(axis=0) % 2 * 255).astype(np.uint8)
    frame = np.repeat(checker[:, :, None], 3, axis=2)
    out = preprocess(frame, PreprocessConfig(size=48))
    assert set(np.unique(out)) <= {127, 128}   # nearest/linear sampling would alias to 0 or 255


@pytest.mark.parametrize('cfg', [
    PreprocessConfig(crop_x=100, crop_width=30),             # runs past the right edge
    PreprocessConfig(crop_y=90, crop_height=20),             # past the bottom
    PreprocessConfig(crop_x=120),                             # starts at the edge: nothing left
    PreprocessConfig(crop_y=500),
])
def test_crop_outside_the_frame_is_a_clear_error(cfg):
    with pytest.raises(CropOutsideFrame, match='does not fit a 120x100 frame'):
        preprocess(np.zeros((100, 120, 3), np.uint8), cfg)


def test_bad_input_and_config():
    with pytest.raises(ValueError, match='H x W x 3 uint8'):
        preprocess(np.zeros((10, 10), np.uint8), PreprocessConfig())
    with pytest.raises(ValueError, match='H x W x 3 uint8'):
        preprocess(np.zeros((10, 10, 3), np.float32), PreprocessConfig())
    with pytest.raises(ConfigError):
        PreprocessConfig(crop_x=-1)
    with pytest.raises(ConfigError):
        PreprocessConfig(size=0)
    assert from_dict(PreprocessConfig, {'crop_width': 64, 'size': 64}).crop_width == 64
