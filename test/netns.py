"""Several "hosts" on one machine: Linux network namespaces joined by a switch (a bridge in a namespace
of its own), for tests of rig across machines over real DDS (ROS2_NOTES.md, "Discovery").

    with Hosts(['learner', 'actor1']) as hosts:
        hosts.popen('learner', [...])         # a process on that host
        hosts.link_down('actor1')             # unplug its cable; link_up() plugs it in again

Each host gets one interface with a private address (10.<net>.0.<i>/24) used only inside these
namespaces, and `lo`. DDS runs over UDPv4 only (FASTDDS_BUILTIN_TRANSPORTS): namespaces share
/dev/shm, and Fast DDS's shared-memory transport would otherwise carry data between "hosts" past
the network (it did: a message still arrived with the cable out). Discovery uses ROS_STATIC_PEERS
(every host's address) with ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET. The namespaces are deleted on exit,
whatever happened; processes still running in them are killed first.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return 'network namespaces need root (CI runs as root)'
    if not shutil.which('ip'):
        return 'the ip tool (iproute2) is not installed'
    return None


def _ip(*args: str) -> None:
    r = subprocess.run(['ip', *args], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")


class Hosts:
    def __init__(self, names: list[str]):
        self.tag = f'rig{os.getpid() % 100000}'
        self.net = 100 + os.getpid() % 100         # 10.<net>.0.0/24, private to these namespaces
        self.names = list(names)
        self.switch = f'{self.tag}sw'
        self.ns = {name: f'{self.tag}{name}' for name in self.names}
        self.address = {name: f'10.{self.net}.0.{i + 1}' for i, name in enumerate(self.names)}
        self.port = {name: f'p{i}' for i, name in enumerate(self.names)}
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> 'Hosts':
        try:
            _ip('netns', 'add', self.switch)
            _ip('-n', self.switch, 'link', 'add', 'br0', 'type', 'bridge')
            _ip('-n', self.switch, 'link', 'set', 'br0', 'up')
            for name in self.names:
                ns, port = self.ns[name], self.port[name]
                _ip('netns', 'add', ns)
                _ip('-n', self.switch, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
                _ip('-n', self.switch, 'link', 'set', port, 'master', 'br0', 'up')
                _ip('-n', ns, 'addr', 'add', f'{self.address[name]}/24', 'dev', 'eth0')
                _ip('-n', ns, 'link', 'set', 'eth0', 'up')
                _ip('-n', ns, 'link', 'set', 'lo', 'up')
                _ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0')
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def env(self, base: dict) -> dict:
        """`base` with DDS set for these hosts: UDPv4 only, static peers, one domain for all."""
        env = dict(base)
        env.update(ROS_AUTOMATIC_DISCOVERY_RANGE='SUBNET', FASTDDS_BUILTIN_TRANSPORTS='UDPv4',
                   ROS_STATIC_PEERS=';'.join(self.address.values()))
        return env

    def argv(self, host: str, argv: list[str]) -> list[str]:
        """`argv` run on `host` (`ip netns exec` execs it: the process is the command itself)."""
        return ['ip', 'netns', 'exec', self.ns[host], *argv]

    def link_down(self, host: str) -> None:
        _ip('-n', self.switch, 'link', 'set', self.port[host], 'down')

    def link_up(self, host: str) -> None:
        _ip('-n', self.switch, 'link', 'set', self.port[host], 'up')

    def run(self, host: str, argv: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(host, argv), **kw)

    def close(self) -> None:
        for name in reversed(self.names + ['']):
            ns = self.ns.get(name, self.switch)
            pids = subprocess.run(['ip', 'netns', 'pids', ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            if pids:
                time.sleep(0.2)
            subprocess.run(['ip', 'netns', 'delete', ns], capture_output=True)
