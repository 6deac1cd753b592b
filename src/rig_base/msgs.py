"""Message conversions every node shares: stamps, and `rig/cmd`-style twists <-> linear velocities.

The readers are duck-typed (any object with `.sec`/`.nanosec`, `.twist.linear`), so the same code reads
live rclpy messages and the messages `rosbags` deserialises from a bag.
"""
from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import TwistStamped

_NS = 1_000_000_000


def stamp_ns(stamp) -> int:
    """Nanoseconds of a builtin_interfaces/Time (0 for an unstamped message)."""
    return int(stamp.sec) * _NS + int(stamp.nanosec)


def stamp_seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def stamp_from_seconds(t: float) -> Time:
    sec = math.floor(t)
    return Time(sec=int(sec), nanosec=min(int(round((t - sec) * 1e9)), _NS - 1))


def duration_from_seconds(t: float) -> Duration:
    sec = math.floor(t)
    return Duration(sec=int(sec), nanosec=min(int(round((t - sec) * 1e9)), _NS - 1))


def twist_velocity(msg) -> np.ndarray:
    """The linear velocity (x, y, z) of a TwistStamped, as floats (NaN/inf passed through: callers check)."""
    linear = msg.twist.linear
    return np.array([linear.x, linear.y, linear.z], dtype=float)


def twist_has_angular(msg) -> bool:
    angular = msg.twist.angular
    return bool(angular.x or angular.y or angular.z)


def twist_is_zero(msg) -> bool:
    """True for an all-zero twist: the 'stop' every shutdown ends with."""
    return not (np.any(twist_velocity(msg)) or twist_has_angular(msg))


def velocity_twist(velocity, stamp, frame_id: str) -> TwistStamped:
    """TwistStamped of a linear velocity (angular zero); `velocity` may be shorter than 3 (rest zero)."""
    msg = TwistStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    v = [float(x) for x in velocity] + [0.0] * (3 - len(velocity))
    msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = v[:3]
    return msg


def operator_episode_end(events: list[dict], since: int) -> dict | None:
    """The `end` event (rig/episode JSON) of the first operator episode that *starts* at or after
    `events[since]`, or None while it runs. A new goal ends the episode before it; that end, or any
    other episode's, is not this goal's: an operator (a bench, a demo) that took it would measure the
    arm a moment after giving the goal, and then every later goal one episode late."""
    episode = None
    for e in events[since:]:
        if episode is None and e.get('event') == 'start' and e.get('goal_source') == 'operator':
            episode = e.get('episode')
        elif episode is not None and e.get('event') == 'end' and e.get('episode') == episode:
            return e
    return None
