"""rig_sim: the MuJoCo task suite of rig (reach, push, door) for the Sawyer and UR5e arms.

Plain Python and MuJoCo, no ROS: `RigScene` is the low-level scene the ROS sim bridge
(`rig_sim.bridge_node`) drives; `make_env` gives goal-conditioned gymnasium environments with image
observations (ids rig/Reach-v0, rig/Push-v0, rig/Door-v0); `make_vector_env` runs a batch of them
in worker processes. See docs/tasks.md.
"""
import os

# Headless offscreen rendering by default (MuJoCo would otherwise try GLFW, which needs a display).
# Must happen before mujoco is imported; an explicit MUJOCO_GL (e.g. osmesa) still wins.
os.environ.setdefault('MUJOCO_GL', 'egl')

from rig_sim.arms import ARMS  # noqa: E402
from rig_sim.config import SimConfig  # noqa: E402
from rig_sim.envs import make_env  # noqa: E402
from rig_sim.scene import RigScene  # noqa: E402
from rig_sim.tasks import TASKS  # noqa: E402
from rig_sim.vector import make_vector_env  # noqa: E402

__all__ = ['ARMS', 'TASKS', 'RigScene', 'SimConfig', 'make_env', 'make_vector_env']
