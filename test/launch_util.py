"""Run the user's commands with the real ROS 2 tooling: `ros2 launch`, `ros2 topic/param/node`, `rig up`.

The Jazzy `launch`, `launch_ros` and `ros2` CLI come from ../shared/ros2_tooling (installed into .venv by
`make test`); the package is built with colcon into a temporary workspace, as a user builds it. Where
neither the tooling nor a ROS 2 install is present the tests skip with a one-line reason.

Facts these helpers build on (../shared/ros2_tooling/README.md): the venv prefix must be on
AMENT_PREFIX_PATH; a background process must get SIGINT at its default (start_new_session +
SIG_DFL); Ctrl-C goes to the whole process group (killpg); launch gives each process 5 s after SIGINT
and logs `process has finished cleanly` or `process has died [... exit code ...]`.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import yaml
from ros_util import REPO, node_env

VENV_BIN = Path(sys.executable).parent

# Fast learning settings, so a graph practises, trains and publishes checkpoints within a minute.
FAST_TRAINER = """/**/trainer:
  ros__parameters:
    learn_set: ['vae.pretrain_images=200', 'vae.pretrain_steps=20', 'rl.updates_per_step=0.2',
                'rl.learning_starts=0']
    checkpoint_every_updates: 50
"""


def tooling_missing() -> str | None:
    """Why the real launch/ros2 CLI cannot run here, or None."""
    if not (VENV_BIN / 'ros2').exists() and not shutil.which('ros2'):
        return 'the ros2 CLI and launch are not installed (../shared/ros2_tooling absent; `make test` installs it)'
    try:
        import launch_ros  # noqa: F401
    except ImportError as exc:
        return f'launch_ros is not importable: {exc}'
    return None


def build_workspace(root: Path) -> dict:
    """colcon-build the package into root/ws (as `colcon build --packages-select rig`); the environment
    `source install/setup.bash` would give, plus the venv prefix on AMENT_PREFIX_PATH."""
    ws = root / 'ws'
    (ws / 'src').mkdir(parents=True, exist_ok=True)
    link = ws / 'src' / 'rig'
    if not link.exists():
        link.symlink_to(REPO)
    env = node_env()
    env.pop('PYTHONPATH', None)   # the installed package, not the source tree, as a user runs it
    r = subprocess.run([sys.executable, '-m', 'colcon', 'build', '--packages-select', 'rig',
                        '--build-base', str(ws / 'build'), '--install-base', str(ws / 'install')],
                       cwd=ws, env=env, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f'colcon build failed:\n{r.stdout}\n{r.stderr}')
    install = ws / 'install'
    site = next((install / 'rig' / 'lib').glob('python3*/site-packages'))
    env['AMENT_PREFIX_PATH'] = os.pathsep.join([str(install / 'rig'), str(VENV_BIN.parent)])
    env['PYTHONPATH'] = str(site)
    env['PATH'] = os.pathsep.join([str(VENV_BIN), env.get('PATH', '')])
    env['RCUTILS_COLORIZED_OUTPUT'] = '0'
    env['ROS_LOG_DIR'] = str(root / 'ros_log')
    return env


# Verbs that count what is in the ROS graph: asked without the CLI's daemon, whose cache can still hold
# a node of the previous test for a while (a stale extra subscriber on /joint_states was seen), and
# given 5 s of discovery of their own: with 2 s a fresh CLI participant saw only a part of a 6-node
# graph in 4 of 6 tries (it hears some participants only from their periodic announcements, 3 s
# apart in Fast DDS); with 5 s it saw all of it in 6 of 6.
_NO_DAEMON = {('topic', 'info'), ('topic', 'list'), ('node', 'list')}
_SPIN_S = '5'


def ros2(env: dict, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    argv = list(args) + (['--no-daemon', '--spin-time', _SPIN_S] if tuple(args[:2]) in _NO_DAEMON else [])
    return subprocess.run([str(VENV_BIN / 'ros2'), *argv], env=env, capture_output=True, text=True,
                          timeout=timeout)


class Running:
    """A command started as a terminal would start it; `interrupt()` is Ctrl-C (SIGINT to the group)."""

    def __init__(self, argv: list[str], env: dict, log_path: Path, cwd: Path | None = None):
        self.log_path = log_path
        self._log = open(log_path, 'w')
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True,
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.stopped_in: float | None = None

    def text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors='replace')

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f'exited (rc {self.proc.returncode}) while waiting for {what}:\n'
                                     + self.text()[-6000:])
            time.sleep(0.5)
        raise AssertionError(f'timed out after {timeout:.0f} s waiting for {what}:\n' + self.text()[-6000:])

    def wait_for_log(self, pattern: str, timeout: float, count: int = 1) -> None:
        self.wait_for(lambda: len(re.findall(pattern, self.text())) >= count, timeout, repr(pattern))

    def interrupt(self, timeout: float = 30.0) -> int:
        """Ctrl-C: SIGINT to the process group; returns the exit code; records how long it took."""
        t0 = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=timeout)
        finally:
            self.stopped_in = time.monotonic() - t0
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._log.close()


def stop_report(log: str) -> str:
    """Where a `rig up` stop spent its time, as each `rig up` process logged it."""
    return ' | '.join(re.findall(r'rig up: stopped in .*', log)) or '(no stop report in the log)'


@contextlib.contextmanager
def running(argv: list[str], env: dict, log_path: Path, cwd: Path | None = None):
    r = Running(argv, env, log_path, cwd)
    try:
        yield r
    finally:
        r.kill()


def ros2_launch(env: dict, launch_file: str, *arguments: str, log_path: Path):
    return running([str(VENV_BIN / 'ros2'), 'launch', 'rig', launch_file, *arguments], env, log_path)


def launch_exits(log: str) -> dict[str, str]:
    """process name -> 'clean' or the death line, from `ros2 launch`'s own log."""
    out = {}
    for m in re.finditer(r'\[INFO\] \[([\w-]+)\]: process has finished cleanly', log):
        out[m.group(1)] = 'clean'
    for m in re.finditer(r'\[ERROR\] \[([\w-]+)\]: process has died (.*)', log):
        out[m.group(1)] = m.group(2)
    for m in re.finditer(r"\[ERROR\] \[([\w-]+)\]: process\[.*?\] failed to terminate", log):
        out[m.group(1)] = 'escalated past SIGINT'
    return out


def param_value(env: dict, node: str, name: str, timeout: float = 30.0) -> str:
    """`ros2 param get NODE NAME`'s value as printed (retried: a busy node may miss one call)."""
    deadline = time.monotonic() + timeout
    while True:
        r = ros2(env, 'param', 'get', node, name)
        m = re.search(r'value is: ?(.*)$', r.stdout.strip())
        if r.returncode == 0 and m:
            return m.group(1).strip()
        if time.monotonic() > deadline:
            raise AssertionError(f'ros2 param get {node} {name} failed: {r.stdout} {r.stderr}')
        time.sleep(1.0)


def echo_json(env: dict, topic: str, timeout: float = 60.0) -> dict:
    """The JSON of one std_msgs/String on a latched (reliable, transient local) topic, read with
    `ros2 topic echo --once` as a user would. The type is given: otherwise the CLI must first discover
    the topic and gives up at once if it has not yet ("does not appear to be published yet", seen in
    `make test`). Lines that are not the message (a lost-message report) are skipped."""
    r = ros2(env, 'topic', 'echo', '--once', '--no-lost-messages', '--qos-durability', 'transient_local',
             '--qos-reliability', 'reliable', '--full-length', topic, 'std_msgs/msg/String', timeout=timeout)
    for line in r.stdout.splitlines():
        if line.startswith('data: '):
            return json.loads(yaml.safe_load(line)['data'])
    raise AssertionError(f'ros2 topic echo {topic} printed no message: {r.stdout!r} {r.stderr!r}')


def topic_counts(env: dict, topic: str) -> tuple[int, int]:
    r = ros2(env, 'topic', 'info', topic)
    pubs = re.search(r'Publisher count: (\d+)', r.stdout)
    subs = re.search(r'Subscription count: (\d+)', r.stdout)
    return (int(pubs.group(1)) if pubs else 0, int(subs.group(1)) if subs else 0)


def bag_summary(bag: Path) -> dict:
    """Events, commands and frame count of one episode bag (read with rosbags, as the trainer does)."""
    from rosbags.highlevel import AnyReader

    from rig_trainer.bags import TYPESTORE
    events, cmds, frames = [], [], 0
    with AnyReader([bag], default_typestore=TYPESTORE) as reader:
        for conn, _, raw in reader.messages():
            if conn.topic.endswith('rig/episode'):
                events.append(json.loads(reader.deserialize(raw, conn.msgtype).data))
            elif conn.topic.endswith('rig/cmd'):
                t = reader.deserialize(raw, conn.msgtype).twist.linear
                cmds.append((t.x, t.y, t.z))
            elif conn.topic.endswith('camera/image_raw'):
                frames += 1
    return {'events': events, 'cmds': cmds, 'frames': frames}


def assert_last_bag_ends_cleanly(data: Path, prefix: str) -> None:
    """The actor's last bag (after Ctrl-C) ends with the policy's shutdown end event and a zero command."""
    from rig_trainer.bags import list_closed_bags
    bags = [b for b in list_closed_bags(data) if b.name.startswith(prefix)]
    assert bags, f'no bags of {prefix}'
    last = bag_summary(bags[-1])
    kinds = [e['event'] for e in last['events']]
    assert kinds[0] == 'start' and kinds[-1] == 'end', (bags[-1].name, last['events'])
    end = last['events'][-1]
    if end.get('reason') != 'shutdown':
        # Ctrl-C came between episodes (during the reset): the last bag is a whole episode, ended normally.
        assert 'reason' not in end and end.get('steps', 0) > 0, end
    else:
        assert last['cmds'] and last['cmds'][-1] == (0.0, 0.0, 0.0), (bags[-1].name, last)
    assert not any((data / '.partial').iterdir()), 'no half-written bag is left behind'
