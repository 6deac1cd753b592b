"""Joint velocity commands as the arm drivers take them: the UR forward velocity controller's
Float64MultiArray (controller joint order), Sawyer's JointState (names + velocity, for the ros1_bridge
relay to intera's JointCommand). Used by the arm adapter and by `rig home`."""
from __future__ import annotations

from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

VELOCITY_TYPES = {'ur': Float64MultiArray, 'sawyer': JointState}


def velocity_message(output: str, names, values, stamp):
    """Joint velocity command for `output` ('ur' or 'sawyer'), values already in `names` order."""
    values = [float(x) for x in values]
    if output == 'ur':
        return Float64MultiArray(data=values)
    msg = JointState(name=list(names), velocity=values)
    msg.header.stamp = stamp
    return msg
