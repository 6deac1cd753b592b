"""Episodes as rosbag2 directories (MCAP), written and read with `rosbags` (no ROS import).

Writing: `EpisodeBagWriter` records into `<data_dir>/.partial/<name>` and renames the finished bag into
`<data_dir>/<name>` only after `metadata.yaml` is written, so a bag that is visible is a closed bag and a
crash never leaves a half-written bag where the trainer looks.

Reading: `read_episodes()` turns a bag (ours, or one made by `ros2 bag record` of the same topics, under
any namespace) into `Episode`s: frames and the commands between them, aligned by header stamps. A bag
that cannot be read raises `BagError` with the reason; the caller logs it and moves on. A single frame
that cannot be used does not spoil its bag: it is dropped, counted by reason in `Episode.dropped_frames`,
and no transition spans it. An episode also says what its policy's start event recorded of the
action scale and control rate its commands were made with (`Episode.action_scale`, ...), so that the
trainer turns them back into the policy's actions (docs/interfaces.md, "Scales").
"""
from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from rig_base.image_msgs import CAMERA_ENCODINGS, UnsupportedImage, image_to_numpy
from rig_base.msgs import stamp_ns, twist_velocity
from rig_perception.preprocess import PreprocessConfig, preprocess

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)

#: Topic (relative name) -> message type, as recorded per episode (docs/interfaces.md, "Bags").
RECORDED_TOPICS = {
    'camera/image_raw': 'sensor_msgs/msg/Image',
    'rig/cmd': 'geometry_msgs/msg/TwistStamped',
    'rig/episode': 'std_msgs/msg/String',
    'rig/ee_pose': 'geometry_msgs/msg/PoseStamped',
}
PARTIAL_DIR = '.partial'
BAG_VERSION = 9  # what Jazzy's rosbag2 writes


class BagError(RuntimeError):
    """A bag that cannot be used (corrupt, truncated, missing topics); says which and why."""


class EpisodeBagWriter:
    """One closed-when-visible rosbag2 MCAP directory of serialized (CDR) messages."""

    def __init__(self, data_dir: str | Path, name: str, topics: dict[str, str] | None = None):
        self.data_dir = Path(data_dir)
        self.final_path = self.data_dir / name
        if self.final_path.exists():
            raise FileExistsError(f'bag {self.final_path} already exists')
        partial_root = self.data_dir / PARTIAL_DIR
        partial_root.mkdir(parents=True, exist_ok=True)
        self.partial_path = partial_root / name
        if self.partial_path.exists():
            shutil.rmtree(self.partial_path)
        self._writer = Writer(self.partial_path, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections = {}
        self.messages = 0
        for topic, msgtype in (topics or RECORDED_TOPICS).items():
            self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=TYPESTORE)

    def write(self, topic: str, t_ns: int, cdr: bytes) -> None:
        self._writer.write(self._connections[topic], int(t_ns), cdr)
        self.messages += 1

    def close(self) -> Path:
        """Finish the bag (metadata.yaml) and make it visible to the trainer in one rename."""
        self._writer.close()
        os.replace(self.partial_path, self.final_path)
        return self.final_path

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            shutil.rmtree(self.partial_path, ignore_errors=True)


def list_closed_bags(data_dir: str | Path) -> list[Path]:
    """Bag directories under data_dir that are finished (have metadata.yaml), oldest name first."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return []
    bags = [p for p in data_dir.iterdir()
            if p.is_dir() and not p.name.startswith('.') and (p / 'metadata.yaml').is_file()]
    return sorted(bags, key=lambda p: p.name)


@dataclasses.dataclass
class Episode:
    """One episode of one actor: frames, and the command applied between consecutive frames.

    `obs_index[i]`/`next_obs_index[i]` index `images` for the frame a command answered and the frame
    that followed it; `velocities[i]` is that command (m/s, base_link). An episode may have no
    transitions (too few usable frames or commands); it is still returned so that its dropped frames
    are reported.
    """
    key: str                    # unique, stable: '<bag name>/<namespace or root>/<episode id>'
    images: np.ndarray          # (N, H, W, 3) uint8
    image_stamps: np.ndarray    # (N,) int64 ns
    velocities: np.ndarray      # (T, 3) float32
    obs_index: np.ndarray       # (T,) int64
    next_obs_index: np.ndarray  # (T,) int64
    events: list[dict]          # the rig/episode JSON events (goal source, goal latent, ...)
    dropped_frames: dict[str, int] = dataclasses.field(default_factory=dict)  # reason -> frames
    # What the policy that made the episode recorded in its start event: velocity = action *
    # action_scale * control_rate_hz, with action_dim actions. None: not recorded (a bag from before
    # rig recorded them, or one without a rig policy's start event).
    action_scale: float | None = None
    control_rate_hz: float | None = None
    action_dim: int | None = None

    @property
    def num_transitions(self) -> int:
        return len(self.velocities)


def _positive_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def recorded_scales(start: dict | None) -> tuple[float | None, float | None, int | None]:
    """(action_scale, control_rate_hz, action_dim) an episode's start event records (None: not recorded).

    Raises ValueError for values that cannot be right (one of scale and rate without the other, not a
    finite number > 0, an action_dim that is not a positive integer): its commands could not be turned
    back into actions."""
    if not start:
        return None, None, None
    scale, rate, dim = start.get('action_scale'), start.get('control_rate_hz'), start.get('action_dim')
    if (scale is None) != (rate is None) or not all(_positive_number(x) for x in (scale, rate) if x is not None):
        raise ValueError(f'episode {start.get("episode")!r}: start event records action_scale={scale!r} '
                         f'control_rate_hz={rate!r} (both or neither, each a number > 0)')
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
        raise ValueError(f'episode {start.get("episode")!r}: start event records action_dim={dim!r}')
    return (None if scale is None else float(scale)), (None if rate is None else float(rate)), dim


def _split_topic(topic: str) -> tuple[str, str] | None:
    """('/env0', 'camera/image_raw') for '/env0/camera/image_raw'; None if not a recorded topic."""
    for rel in RECORDED_TOPICS:
        if topic.rstrip('/').endswith(rel):
            ns = topic[: len(topic.rstrip('/')) - len(rel)].rstrip('/')
            return ns or '/', rel
    return None


def read_episodes(bag_path: str | Path, image_size: int | None = None) -> list[Episode]:
    """All episodes in a closed bag, per namespace; raises BagError (and nothing else) if the bag is unusable.

    Frames come out RGB whatever the camera's encoding (bgr8, mono8, ... are converted). Frames that
    cannot be decoded (unsupported encoding; step, sizes and data that do not agree) are dropped.
    With `image_size`, every frame is resized to image_size x image_size the way the learner sees
    frames (`rig_perception.preprocess`, whole frame): a frame of another size than its neighbours is
    then as good as they are, and is kept. Without it, frames keep their size, and those of another
    size than most of their episode's are dropped: one episode is one array of frames.
    """
    bag_path = Path(bag_path)
    per_ns: dict[str, dict[str, list]] = {}
    try:
        with AnyReader([bag_path], default_typestore=TYPESTORE) as reader:
            conns = [c for c in reader.connections if _split_topic(c.topic)]
            for conn, t_ns, raw in reader.messages(connections=conns):
                ns, rel = _split_topic(conn.topic)
                msg = reader.deserialize(raw, conn.msgtype)
                per_ns.setdefault(ns, {k: [] for k in RECORDED_TOPICS})[rel].append((t_ns, msg))
    except Exception as exc:  # rosbags raises many types for corrupt/truncated files
        raise BagError(f'{bag_path}: unreadable bag ({type(exc).__name__}: {exc})') from exc

    episodes = []
    for ns, topics in sorted(per_ns.items()):
        try:
            episodes.extend(_episodes_of_namespace(bag_path.name, ns, topics, image_size))
        except Exception as exc:  # messages of unexpected content: the bag is unusable, not the caller
            raise BagError(f'{bag_path}: unusable messages on {ns} ({type(exc).__name__}: {exc})') from exc
    return episodes


def _decode_frame(msg, image_size: int | None) -> tuple[np.ndarray | None, str | None]:
    """(RGB frame, None), or (None, why it is dropped)."""
    try:
        rgb = image_to_numpy(msg)
    except UnsupportedImage:
        return None, 'unsupported_encoding' if msg.encoding not in CAMERA_ENCODINGS else 'malformed'
    if image_size:
        rgb = preprocess(rgb, PreprocessConfig(size=image_size))
    return rgb, None


def _episodes_of_namespace(bag_name: str, ns: str, topics: dict[str, list],
                           image_size: int | None = None) -> list[Episode]:
    frames = [(stamp_ns(msg.header.stamp) or t_ns, *_decode_frame(msg, image_size))
              for t_ns, msg in topics['camera/image_raw']]
    cmds = [(stamp_ns(m.header.stamp) or t, twist_velocity(m))
            for t, m in topics['rig/cmd']]
    events = []
    for t_ns, msg in topics['rig/episode']:
        try:
            event = json.loads(msg.data)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            event['_t_ns'] = t_ns
            events.append(event)

    # Episode windows from start/end events; a bag without events is one episode. A window reaches back
    # to the end of the one before (the bag's start for the first): an episode's first frame, the one
    # after the reset, comes before its start event (the recorder's pre-roll keeps it in the bag).
    starts = [e for e in events if e.get('event') == 'start']
    if starts:
        windows, after = [], -1
        for i, s in enumerate(starts):
            end = next((e['_t_ns'] for e in events if e.get('event') == 'end' and e['_t_ns'] >= s['_t_ns']
                        and e.get('episode') == s.get('episode')), None)
            nxt = starts[i + 1]['_t_ns'] if i + 1 < len(starts) else None
            stop = min(x for x in (end, nxt, 2**63 - 1) if x is not None)
            windows.append((str(s.get('episode', i)), after, stop,
                            [e for e in events if e.get('episode') == s.get('episode')], s))
            after = stop
    else:
        windows = [('0', -1, 2**63 - 1, events, None)]

    frames.sort(key=lambda f: f[0])
    cmds.sort(key=lambda c: c[0])
    out = []
    for episode_id, t0, t1, ep_events, start in windows:     # (t0, t1]
        ep_frames = [f for f in frames if t0 < f[0] <= t1]
        ep_cmds = [c for c in cmds if t0 < c[0] <= t1]
        ep = align(f"{bag_name}/{ns.strip('/') or 'root'}/{episode_id}", ep_frames, ep_cmds, ep_events)
        if ep is not None:
            ep.action_scale, ep.control_rate_hz, ep.action_dim = recorded_scales(start)
            out.append(ep)
    return out


def align(key: str, frames: list, cmds: list, events: list) -> Episode | None:
    """Pair each command with the last frame at or before it and the first frame after it.

    `frames`: (stamp, image, None) or, for a frame that cannot be used, (stamp, None, reason);
    `cmds`: (stamp, velocity); both in stamp order. A command next to a dropped frame is dropped with
    it, so no transition spans a missing frame.
    Several commands between the same two frames (a real-time arm) keep only the last one: it is what
    the arm was doing when the next frame was taken. Non-finite commands are dropped. None if the
    window holds no frame at all.
    """
    if not frames:
        return None
    shapes = collections.Counter(f[1].shape for f in frames if f[1] is not None)
    if len(shapes) > 1:
        common = shapes.most_common(1)[0][0]
        frames = [(t, None, 'other_size') if im is not None and im.shape != common else (t, im, why)
                  for t, im, why in frames]
    stamps = np.array([f[0] for f in frames], dtype=np.int64)
    usable = np.array([f[1] is not None for f in frames])
    pairs: dict[int, np.ndarray] = {}
    for t, v in cmds:
        if not np.all(np.isfinite(v)):
            continue
        i = int(np.searchsorted(stamps, t, side='right')) - 1
        if 0 <= i < len(frames) - 1:
            pairs[i] = v
    idx = np.array([i for i in sorted(pairs) if usable[i] and usable[i + 1]], dtype=np.int64)
    kept = np.flatnonzero(usable)
    new_index = np.cumsum(usable) - 1       # frame i -> its row among the kept frames
    return Episode(
        key=key,
        images=np.stack([frames[i][1] for i in kept]) if kept.size else np.zeros((0, 0, 0, 3), np.uint8),
        image_stamps=stamps[kept],
        velocities=np.array([pairs[i] for i in idx], np.float32).reshape(-1, 3),
        obs_index=new_index[idx],
        next_obs_index=new_index[idx + 1],
        events=events,
        dropped_frames=dict(collections.Counter(f[2] for f in frames if f[1] is None)),
    )
