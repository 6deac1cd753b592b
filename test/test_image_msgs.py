"""sensor_msgs/Image <-> numpy and latent messages: encodings, padding, byte order, bad input."""
import array

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from rclpy.time import Time
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from rig_base.image_msgs import UnsupportedImage, image_to_numpy, latent_to_msg, msg_to_latent, numpy_to_image
from rig_base.msgs import operator_episode_end

RNG = np.random.default_rng(0)


def rgb_frame(height=4, width=5):
    return RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)


def raw_image(pixels: np.ndarray, encoding: str, pad: int = 0, data_type=bytes) -> Image:
    """An Image built by hand, the way a foreign driver might: rows padded with `pad` junk bytes."""
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    padded = np.concatenate([rows, np.full((height, pad), 0xAB, np.uint8)], axis=1)
    raw = padded.tobytes()
    data = {bytes: raw, list: list(raw), array.array: array.array('B', raw)}[data_type]
    msg = Image(height=height, width=width, encoding=encoding, step=rows.shape[1] + pad)
    msg.data = data
    return msg


def test_rgb8_round_trip_and_metadata():
    frame = rgb_frame()
    msg = numpy_to_image(frame, 'rgb8', stamp=Time(seconds=3, nanoseconds=5), frame_id='camera')
    assert (msg.height, msg.width, msg.step, msg.encoding) == (4, 5, 15, 'rgb8')
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (3, 5, 'camera')
    np.testing.assert_array_equal(image_to_numpy(msg), frame)


def test_survives_serialisation_as_received_from_dds():
    frame = rgb_frame()
    msg = deserialize_message(serialize_message(numpy_to_image(frame, 'rgb8')), Image)
    np.testing.assert_array_equal(image_to_numpy(msg), frame)


def test_bgr8_is_returned_as_rgb():
    frame = rgb_frame()
    msg = numpy_to_image(np.ascontiguousarray(frame[:, :, ::-1]), 'bgr8')
    np.testing.assert_array_equal(image_to_numpy(msg), frame)


@pytest.mark.parametrize('data_type', [bytes, list, array.array])
def test_padded_rows_and_any_data_container(data_type):
    frame = rgb_frame(3, 7)
    out = image_to_numpy(raw_image(frame, 'rgb8', pad=11, data_type=data_type))
    np.testing.assert_array_equal(out, frame)


def test_mono8_is_replicated_to_three_channels():
    gray = RNG.integers(0, 256, (3, 4), dtype=np.uint8)
    out = image_to_numpy(raw_image(gray[:, :, None], 'mono8', pad=4))
    assert out.shape == (3, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray)


@pytest.mark.parametrize('encoding,order', [('rgba8', [0, 1, 2]), ('bgra8', [2, 1, 0])])
def test_four_channel_encodings_drop_alpha(encoding, order):
    pixels = RNG.integers(0, 256, (2, 3, 4), dtype=np.uint8)
    np.testing.assert_array_equal(image_to_numpy(raw_image(pixels, encoding)), pixels[:, :, order])


def test_result_is_a_writable_copy():
    msg = raw_image(rgb_frame(), 'rgb8')   # bytes: a read-only buffer
    out = image_to_numpy(msg)
    out[:] = 0
    assert image_to_numpy(msg).any()


@pytest.mark.parametrize('encoding', ['yuv422', '16UC1', 'bayer_rggb8', '', 'RGB8'])
def test_unsupported_encodings_raise_value_error(encoding):
    msg = raw_image(rgb_frame(), 'rgb8')
    msg.encoding = encoding
    with pytest.raises(UnsupportedImage, match='encoding'):
        image_to_numpy(msg)
    assert issubclass(UnsupportedImage, ValueError)


def test_inconsistent_sizes_raise():
    short = raw_image(rgb_frame(), 'rgb8')
    short.data = short.data[:-1]
    with pytest.raises(UnsupportedImage, match='bytes'):
        image_to_numpy(short)
    narrow_step = raw_image(rgb_frame(), 'rgb8')
    narrow_step.step = 14
    with pytest.raises(UnsupportedImage, match='step'):
        image_to_numpy(narrow_step)
    with pytest.raises(UnsupportedImage, match='empty'):
        image_to_numpy(Image(height=0, width=5, encoding='rgb8', step=15))
    assert image_to_numpy(Image(height=1, width=1, encoding='rgb8', step=3, data=[1, 2, 3])).tolist() == [[[1, 2, 3]]]


def test_out_of_range_list_data_raises():
    msg = Image(height=1, width=1, encoding='mono8', step=1)
    msg._data = [300]   # bypass the message's own check, as a hand-made object could
    with pytest.raises(UnsupportedImage, match='0..255'):
        image_to_numpy(msg)


def test_numpy_to_image_rejects_wrong_shape_or_dtype():
    with pytest.raises(UnsupportedImage, match='shape'):
        numpy_to_image(np.zeros((4, 5), np.uint8), 'rgb8')
    with pytest.raises(UnsupportedImage, match='dtype'):
        numpy_to_image(np.zeros((4, 5, 3), np.float32), 'rgb8')
    with pytest.raises(UnsupportedImage, match='encoding'):
        numpy_to_image(np.zeros((4, 5, 3), np.uint8), 'yuv422')
    assert numpy_to_image(np.zeros((4, 5), np.uint8), 'mono8').step == 5


def test_latent_round_trip():
    mean = RNG.normal(size=8).astype(np.float32)
    logvar = RNG.normal(size=8).astype(np.float32)
    header = Header(frame_id='camera')
    header.stamp.sec = 7
    msg = latent_to_msg(mean, logvar, header)
    assert (msg.encoding, msg.height, msg.width, msg.step) == ('32FC1', 2, 8, 32)
    assert (msg.header.stamp.sec, msg.header.frame_id) == (7, 'camera')
    got_mean, got_logvar = msg_to_latent(deserialize_message(serialize_message(msg), Image))
    np.testing.assert_array_equal(got_mean, mean)
    np.testing.assert_array_equal(got_logvar, logvar)


def test_big_endian_latent_is_decoded():
    values = np.array([[1.5, -2.0, 3.25], [0.0, -1.0, 0.5]], dtype='>f4')
    msg = Image(height=2, width=3, encoding='32FC1', is_bigendian=1, step=12,
                data=array.array('B', values.tobytes()))
    mean, logvar = msg_to_latent(msg)
    np.testing.assert_array_equal(mean, [1.5, -2.0, 3.25])
    np.testing.assert_array_equal(logvar, [0.0, -1.0, 0.5])


def test_bad_latents_raise():
    with pytest.raises(ValueError, match='NaN'):
        latent_to_msg(np.array([np.nan, 0.0]), np.zeros(2), Header())
    with pytest.raises(ValueError, match='equal'):
        latent_to_msg(np.zeros(3), np.zeros(2), Header())
    msg = latent_to_msg(np.zeros(3), np.zeros(3), Header())
    values = np.frombuffer(bytes(msg.data), '<f4').copy()
    values[4] = np.inf
    msg.data = array.array('B', values.tobytes())
    with pytest.raises(UnsupportedImage, match='NaN or inf'):
        msg_to_latent(msg)
    with pytest.raises(UnsupportedImage, match='height 2'):
        msg_to_latent(numpy_to_image(np.zeros((3, 4), np.float32), '32FC1'))
    with pytest.raises(UnsupportedImage, match='encoding'):
        msg_to_latent(numpy_to_image(np.zeros((2, 4, 3), np.uint8), 'rgb8'))


def test_an_operator_goal_is_measured_at_the_end_of_its_own_episode():
    """The end of the episode a new goal interrupted (or of a practice one) is not that goal's end."""
    events = [{'event': 'start', 'episode': 7, 'goal_source': 'operator'}]   # the old goal's episode
    since = len(events)
    events += [{'event': 'end', 'episode': 7, 'steps': 12}]                   # ended by the new goal
    assert operator_episode_end(events, since) is None
    events += [{'event': 'start', 'episode': 8, 'goal_source': 'operator'}]
    assert operator_episode_end(events, since) is None
    events += [{'event': 'end', 'episode': 8, 'steps': 100}]
    assert operator_episode_end(events, since) == {'event': 'end', 'episode': 8, 'steps': 100}
    practice = [{'event': 'start', 'episode': 1, 'goal_source': 'imagined'}, {'event': 'end', 'episode': 1}]
    assert operator_episode_end(practice, 0) is None
