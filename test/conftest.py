"""Test-wide environment: DDS stays on loopback, each pytest run gets its own ROS domain."""
import os
import random

import pytest

os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('MUJOCO_GL', 'egl')
os.environ.setdefault('PYOPENGL_PLATFORM', 'egl')
# A domain per run (inherited by the node subprocesses the tests start) so parallel runs never meet.
os.environ.setdefault('ROS_DOMAIN_ID', str(random.SystemRandom().randint(1, 101)))


def _clean_fastdds_shared_memory() -> None:
    """Node processes end with os._exit (rig_base.node_main: a Fast DDS 2.14 teardown deadlock), which
    leaves their shared-memory segments in /dev/shm (over a thousand after a day of test runs). Fast
    DDS's own tool removes those whose owner is gone; segments in use are kept."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path
    tool = Path(sys.executable).parent / 'fastdds'
    tool = str(tool) if tool.exists() else shutil.which('fastdds')
    if tool:
        subprocess.run([tool, 'shm', 'clean'], capture_output=True, timeout=60)


def pytest_sessionstart(session):
    _clean_fastdds_shared_memory()



@pytest.fixture
def one_thread():
    """torch on one thread for the test (timings and results as on the 2-core CI machine), then back."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
