"""Episode bags: written closed-when-visible, read back with rosbags, aligned by stamps, corruption reported."""
from __future__ import annotations

import json

import numpy as np
import pytest
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer

from rig_base.image_msgs import numpy_to_image
from rig_trainer.bags import TYPESTORE, BagError, EpisodeBagWriter, list_closed_bags, read_episodes


def _stamp(t_ns):
    from builtin_interfaces.msg import Time
    return Time(sec=t_ns // 10**9, nanosec=t_ns % 10**9)


def _frame(i, size=8):
    img = np.zeros((size, size, 3), np.uint8)
    img[..., 0] = i  # frame index readable from the pixels
    img[0, 0] = (1, 2, 3)
    return img


def _twist(t_ns, vx, frame='base_link'):
    from geometry_msgs.msg import TwistStamped
    msg = TwistStamped()
    msg.header.stamp = _stamp(t_ns)
    msg.header.frame_id = frame
    msg.twist.linear.x = vx
    return msg


def _event(kind, episode, **extra):
    from std_msgs.msg import String
    return String(data=json.dumps({'event': kind, 'episode': episode, 'goal_source': 'imagined', **extra}))


def write_lockstep_episode(writer, episode, t0, steps=5, **start):
    """frame i at t0+i*10ms; command i (vx = i/10) at t0+i*10ms+3ms: it answers frame i. `start`: more
    fields of the start event (action_scale, ...)."""
    ms = 1_000_000
    writer.write('rig/episode', t0 - ms, serialize_message(_event('start', episode, **start)))
    for i in range(steps + 1):
        t = t0 + i * 10 * ms
        writer.write('camera/image_raw', t, serialize_message(numpy_to_image(_frame(i), 'rgb8', stamp=_stamp(t))))
        if i < steps:
            writer.write('rig/cmd', t + 3 * ms, serialize_message(_twist(t + 3 * ms, i / 10)))
    writer.write('rig/episode', t0 + (steps + 1) * 10 * ms, serialize_message(_event('end', episode)))


def test_written_bag_is_invisible_until_closed_and_reads_back(tmp_path):
    w = EpisodeBagWriter(tmp_path, 'actor0_ep000001')
    write_lockstep_episode(w, 1, t0=10**9)
    assert list_closed_bags(tmp_path) == []
    path = w.close()
    assert list_closed_bags(tmp_path) == [path]
    assert (path / 'metadata.yaml').read_text().count('version: 9') == 1
    [ep] = read_episodes(path)
    assert ep.key.endswith('/1')
    assert ep.images.shape == (6, 8, 8, 3) and ep.images.dtype == np.uint8
    assert tuple(ep.images[0, 0, 0]) == (1, 2, 3), 'colour order must survive the round trip'
    assert ep.num_transitions == 5
    # command i answers frame i and leads to frame i+1
    np.testing.assert_array_equal(ep.images[ep.obs_index, 1, 1, 0], np.arange(5))
    np.testing.assert_array_equal(ep.images[ep.next_obs_index, 1, 1, 0], np.arange(1, 6))
    np.testing.assert_allclose(ep.velocities[:, 0], np.arange(5) / 10, atol=1e-6)
    assert [e['event'] for e in ep.events] == ['start', 'end']


def test_two_episodes_in_one_bag_are_split_by_events(tmp_path):
    w = EpisodeBagWriter(tmp_path, 'two')
    write_lockstep_episode(w, 7, t0=10**9)
    write_lockstep_episode(w, 8, t0=2 * 10**9, steps=3)
    [a, b] = read_episodes(w.close())
    assert (a.num_transitions, b.num_transitions) == (5, 3)
    assert a.key != b.key


def test_episodes_carry_the_scales_their_start_event_records(tmp_path):
    """The policy's start event says what its commands are made with; an episode without says nothing."""
    w = EpisodeBagWriter(tmp_path, 'scales')
    write_lockstep_episode(w, 1, t0=10**9, action_scale=0.01, control_rate_hz=10.0, action_dim=2)
    write_lockstep_episode(w, 2, t0=2 * 10**9)                       # recorded before the policy said them
    write_lockstep_episode(w, 3, t0=3 * 10**9, action_scale=0.02, control_rate_hz=20)
    a, b, c = read_episodes(w.close())
    assert (a.action_scale, a.control_rate_hz, a.action_dim) == (0.01, 10.0, 2)
    assert (b.action_scale, b.control_rate_hz, b.action_dim) == (None, None, None)
    assert (c.action_scale, c.control_rate_hz, c.action_dim) == (0.02, 20.0, None)
    assert isinstance(c.control_rate_hz, float)
    # A bag without episode events (ros2 bag record without a rig policy) records none.
    w = EpisodeBagWriter(tmp_path, 'no_events')
    _write_frames(w, [_frame(i) for i in range(3)])
    [ep] = read_episodes(w.close())
    assert (ep.action_scale, ep.control_rate_hz, ep.action_dim) == (None, None, None)


@pytest.mark.parametrize('start', [{'action_scale': 0.01}, {'action_scale': -0.01, 'control_rate_hz': 10.0},
                                   {'action_scale': '0.01', 'control_rate_hz': 10.0},
                                   {'action_scale': 0.01, 'control_rate_hz': float('inf')},
                                   {'action_scale': 0.01, 'control_rate_hz': 10.0, 'action_dim': 2.5}])
def test_scales_that_cannot_be_right_make_the_bag_unusable(tmp_path, start):
    """Commands of unknown size cannot become actions: the bag is reported, not guessed at."""
    w = EpisodeBagWriter(tmp_path, 'bad_scales')
    write_lockstep_episode(w, 1, t0=10**9, **start)
    with pytest.raises(BagError, match='start event records'):
        read_episodes(w.close())


def test_ros2_bag_record_style_bag_with_namespaces_is_ingested(tmp_path):
    """A bag as `ros2 bag record` makes it: MCAP, namespaced topics, no episode events, rosbags types."""
    path = tmp_path / 'rosbag2_2026_11_29-10_00_00'
    ms = 1_000_000
    Image = TYPESTORE.types['sensor_msgs/msg/Image']
    Twist = TYPESTORE.types['geometry_msgs/msg/TwistStamped']
    Header = TYPESTORE.types['std_msgs/msg/Header']
    Time = TYPESTORE.types['builtin_interfaces/msg/Time']
    Vector3 = TYPESTORE.types['geometry_msgs/msg/Vector3']
    TwistT = TYPESTORE.types['geometry_msgs/msg/Twist']
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {}
        for ns in ('/env0', '/env1'):
            conns[ns, 'img'] = writer.add_connection(f'{ns}/camera/image_raw', Image.__msgtype__, typestore=TYPESTORE)
            conns[ns, 'cmd'] = writer.add_connection(f'{ns}/rig/cmd', Twist.__msgtype__, typestore=TYPESTORE)
        for ns, sign in (('/env0', 1), ('/env1', -1)):
            for i in range(4):
                t = 10**9 + i * 10 * ms
                hdr = Header(stamp=Time(sec=t // 10**9, nanosec=t % 10**9), frame_id='cam')
                bgr = _frame(i)[..., ::-1].copy()  # a bgr8 camera
                img = Image(header=hdr, height=8, width=8, encoding='bgr8', is_bigendian=0, step=24,
                            data=bgr.reshape(-1))
                writer.write(conns[ns, 'img'], t, TYPESTORE.serialize_cdr(img, Image.__msgtype__))
                if i < 3:
                    tc = t + 2 * ms
                    chdr = Header(stamp=Time(sec=tc // 10**9, nanosec=tc % 10**9), frame_id='base_link')
                    tw = Twist(header=chdr, twist=TwistT(linear=Vector3(x=sign * 0.1, y=0.0, z=0.0),
                                                         angular=Vector3(x=0.0, y=0.0, z=0.0)))
                    writer.write(conns[ns, 'cmd'], tc, TYPESTORE.serialize_cdr(tw, Twist.__msgtype__))
    assert list_closed_bags(tmp_path) == [path]
    eps = read_episodes(path)
    assert sorted(e.key.split('/')[1] for e in eps) == ['env0', 'env1']
    for e in eps:
        assert e.num_transitions == 3
        assert tuple(e.images[0, 0, 0]) == (1, 2, 3), 'bgr8 must be converted to rgb'
    assert {round(float(e.velocities[0, 0]), 3) for e in eps} == {0.1, -0.1}


def test_corrupt_and_truncated_bags_raise_bag_error(tmp_path):
    w = EpisodeBagWriter(tmp_path, 'good')
    write_lockstep_episode(w, 1, t0=10**9)
    good = w.close()
    mcap = next(good.glob('*.mcap'))
    data = mcap.read_bytes()

    truncated = tmp_path / 'truncated'
    truncated.mkdir()
    (truncated / 'metadata.yaml').write_text((good / 'metadata.yaml').read_text())
    (truncated / mcap.name).write_bytes(data[: len(data) // 2])
    with pytest.raises(BagError, match='truncated'):
        read_episodes(truncated)

    garbage = tmp_path / 'garbage'
    garbage.mkdir()
    (garbage / 'metadata.yaml').write_text('rosbag2_bagfile_information: {version: 9, storage_identifier: mcap')
    with pytest.raises(BagError, match='garbage'):
        read_episodes(garbage)
    # The good bag is untouched by its neighbours' corruption.
    assert read_episodes(good)[0].num_transitions == 5


def test_non_finite_commands_are_dropped(tmp_path):
    w = EpisodeBagWriter(tmp_path, 'nan')
    ms = 1_000_000
    for i in range(3):
        t = 10**9 + i * 10 * ms
        w.write('camera/image_raw', t, serialize_message(numpy_to_image(_frame(i), 'rgb8', stamp=_stamp(t))))
    w.write('rig/cmd', 10**9 + 3 * ms, serialize_message(_twist(10**9 + 3 * ms, float('nan'))))
    w.write('rig/cmd', 10**9 + 13 * ms, serialize_message(_twist(10**9 + 13 * ms, 0.2)))
    [ep] = read_episodes(w.close())
    assert ep.num_transitions == 1 and ep.obs_index[0] == 1


def _write_frames(writer, images, t0=10**9):
    """Frame messages i at t0+i*10ms (an Image, or an image array as rgb8) and command i (vx = i/10)
    3 ms later; returns nothing: read back with read_episodes."""
    ms = 1_000_000
    for i, im in enumerate(images):
        t = t0 + i * 10 * ms
        msg = im if not isinstance(im, np.ndarray) else numpy_to_image(im, 'rgb8')
        msg.header.stamp = _stamp(t)
        writer.write('camera/image_raw', t, serialize_message(msg))
        if i < len(images) - 1:
            writer.write('rig/cmd', t + 3 * ms, serialize_message(_twist(t + 3 * ms, i / 10)))


def test_unusable_frames_are_dropped_counted_and_break_the_chain(tmp_path):
    """One bad frame used to make the whole bag a BagError; now only it (and its transitions) go."""
    short = numpy_to_image(_frame(3), 'rgb8')
    short.data = short.data[:-5]                               # data does not fill step * height
    yuv = numpy_to_image(_frame(5), 'rgb8')
    yuv.encoding = 'yuv422'                                    # no camera encoding we decode
    mono = numpy_to_image(_frame(1)[..., 0], 'mono8')          # converted, kept
    bgr = numpy_to_image(_frame(2)[..., ::-1].copy(), 'bgr8')  # converted, kept
    frames = [_frame(0), mono, bgr, short, _frame(4), yuv, _frame(6), _frame(7)]
    w = EpisodeBagWriter(tmp_path, 'bad_frames')
    _write_frames(w, frames)
    [ep] = read_episodes(w.close())
    assert ep.dropped_frames == {'malformed': 1, 'unsupported_encoding': 1}
    assert ep.images.shape == (6, 8, 8, 3)
    np.testing.assert_array_equal(ep.images[:, 1, 1, 0], [0, 1, 2, 4, 6, 7])
    # commands 0, 1 and 6 lead from a kept frame to the next kept one; 2..5 touch a dropped frame
    np.testing.assert_array_equal(ep.images[ep.obs_index, 1, 1, 0], [0, 1, 6])
    np.testing.assert_array_equal(ep.images[ep.next_obs_index, 1, 1, 0], [1, 2, 7])
    np.testing.assert_allclose(ep.velocities[:, 0], [0.0, 0.1, 0.6], atol=1e-6)


def test_a_frame_of_another_size_is_resized_to_the_learner_size_or_dropped(tmp_path):
    frames = [_frame(i) for i in range(6)]
    frames[2] = _frame(2, size=16)
    w = EpisodeBagWriter(tmp_path, 'sizes')
    _write_frames(w, frames)
    bag = w.close()
    # As the trainer reads it: every frame at the learner's size, none lost.
    [ep] = read_episodes(bag, image_size=4)
    assert ep.images.shape == (6, 4, 4, 3) and ep.dropped_frames == {}
    assert ep.num_transitions == 5
    np.testing.assert_array_equal(ep.images[:, 2, 2, 0], np.arange(6))
    # Raw: frames keep their size; the odd one cannot share the episode's array and is dropped.
    [raw] = read_episodes(bag)
    assert raw.images.shape == (5, 8, 8, 3) and raw.dropped_frames == {'other_size': 1}
    np.testing.assert_array_equal(raw.images[raw.obs_index, 1, 1, 0], [0, 3, 4])
    np.testing.assert_array_equal(raw.images[raw.next_obs_index, 1, 1, 0], [1, 4, 5])


def test_an_episode_without_a_usable_frame_still_reports_its_drops(tmp_path):
    frames = []
    for i in range(4):
        msg = numpy_to_image(_frame(i), 'rgb8')
        msg.encoding = '16UC1'
        frames.append(msg)
    w = EpisodeBagWriter(tmp_path, 'all_bad')
    _write_frames(w, frames)
    [ep] = read_episodes(w.close())
    assert ep.num_transitions == 0 and len(ep.images) == 0
    assert ep.dropped_frames == {'unsupported_encoding': 4}
