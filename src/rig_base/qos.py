"""QoS profiles of the rig topics (docs/interfaces.md, "Topics"), in one place so publishers and subscribers agree.

Rules behind the choices (ROS2_NOTES.md, "QoS"):
- A best-effort subscriber receives from reliable and best-effort publishers alike; a reliable one
  receives nothing from a best-effort publisher. So where a topic may come from third-party drivers
  (cameras, arm state) we publish reliable and subscribe best effort.
- A transient-local subscriber matches only transient-local publishers; a volatile subscriber matches
  both but gets no history. Latched topics are published transient local so late joiners get the
  current value.
- Commands are never transient local: a late joiner would replay a stale command.
"""
from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy


def _profile(depth: int, reliable: bool, latched: bool = False) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def sensor_qos(depth: int = 1) -> QoSProfile:
    """Best effort, volatile: sensor-data semantics with a chosen queue depth.

    Depth 1 by default: a consumer that falls behind should work on the newest frame, not a backlog.
    """
    return _profile(depth, reliable=False)


# Camera frames (`camera/image_raw`). Published reliable so reliable subscribers (`ros2 bag record`,
# RViz defaults) also receive them; shallow so a slow reliable reader cannot build a backlog.
CAMERA_PUBLISHER_QOS = _profile(2, reliable=True)
# Subscribed best effort (sensor data): works with RealSense (reliable), v4l2/usb_cam and the sim alike,
# and a dropped frame is better than a late one.
CAMERA_SUBSCRIBER_QOS = sensor_qos(1)

# `rig/cmd_raw`, `rig/cmd`: reliable (controllers such as MoveIt Servo subscribe reliable), volatile
# (never replay an old command to a late joiner), depth 1 (only the newest command matters).
COMMAND_QOS = _profile(1, reliable=True)

# Latched state: reliable + transient local, depth 1, so a node that starts later still gets the
# current value: `rig/goal_image`, `rig/goal_latent`, `rig/estop`, `rig/checkpoint`.
LATCHED_QOS = _profile(1, reliable=True, latched=True)
GOAL_IMAGE_QOS = LATCHED_QOS
GOAL_LATENT_QOS = LATCHED_QOS
ESTOP_QOS = LATCHED_QOS
CHECKPOINT_QOS = LATCHED_QOS
#: `rig/practice_hold`: the newest hold state reaches a policy that starts late.
PRACTICE_HOLD_QOS = LATCHED_QOS
# Volatile twin of ESTOP_QOS for subscribers: it also hears volatile publishers (a plain
# `ros2 topic pub rig/estop ...`), which a transient-local subscription would silently ignore.
# The safety filter subscribes with both.
ESTOP_VOLATILE_QOS = _profile(1, reliable=True)

# `rig/latent`: reliable so the policy sees every encoded frame while it keeps up; a few deep so a
# short hiccup does not drop frames, yet shallow enough that the policy never acts on old ones.
LATENT_QOS = _profile(5, reliable=True)

# `rig/episode`: reliable, depth 10: episode boundaries are rare and must all reach the recorder.
EPISODE_QOS = _profile(10, reliable=True)

# `rig/reconstruction`: best effort, depth 1: a debug view, never worth a retransmission.
RECONSTRUCTION_QOS = _profile(1, reliable=False)

# `joint_states`, `rig/ee_pose`: published with the ROS default (reliable, depth 10) like arm drivers
# do; subscribed best effort depth 1 so any driver's QoS matches and only the newest state is used.
STATE_PUBLISHER_QOS = _profile(10, reliable=True)
STATE_SUBSCRIBER_QOS = sensor_qos(1)
# The recorder's `rig/ee_pose` (rig's own reliable publishers): reliable, depth 10, every pose kept.
STATE_RECORDER_QOS = _profile(10, reliable=True)

# `camera/dropped_frames` (a running count, 1 Hz): reliable, depth 10, the ROS default.
COUNTER_QOS = _profile(10, reliable=True)
# What the real drivers use, and so the simulated ones (rig_sim.cell_node): ROS 2's system default
# (reliable, volatile, depth 10) for joint_states, commands and the RealSense colour image.
DRIVER_QOS = _profile(10, reliable=True)

# Across hosts (docs/interfaces.md, "Across hosts"). `/rig/checkpoint_bundle`: the newest checkpoint's
# inference part, latched (depth 1) so an actor that joins late gets it at once, reliable.
CHECKPOINT_BUNDLE_QOS = LATCHED_QOS
# `/rig/episode_bags`: closed episodes, reliable, volatile (an unacknowledged one is sent again, so
# no history is needed for late joiners), a few deep so a burst after a link loss is not cut short.
EPISODE_BAG_QOS = _profile(8, reliable=True)
# `/rig/episode_acks`: the learner's answers, reliable, deep enough for every actor's burst.
EPISODE_ACK_QOS = _profile(50, reliable=True)
