"""Separate subnets on one Linux machine, for tests that need a routed network: each host is a network
namespace with one ``eth0``, joined by a veth pair to its segment's bridge inside a router namespace
that routes between the segments. Every address lives inside the namespaces; nothing is added to the
machine's own network, and removing the namespaces removes everything.

Broadcasts stay on their segment, as on a real routed network. The router forwards subnet-directed
broadcasts that arrive from a segment made with ``directed_broadcasts_from=True`` (Linux
``bc_forwarding``, which is set on the interface they come in on), as a router configured for
wake-on-LAN from the controller's segment would.

Needs root and iproute2. ``require()`` skips a test with the reason where namespaces cannot be made,
and fails it in CI, which must run it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Network

import pytest

CLONE_NEWNET = 0x40000000


def unavailable() -> str | None:
    """Why network namespaces cannot be made here, or None when they can."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    probe = f"ctprobe-{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace (needs root): {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def require() -> None:
    reason = unavailable()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the network-namespace tests: {reason}")
    pytest.skip(reason)


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@dataclass(frozen=True)
class Segment:
    number: int
    network: IPv4Network

    @property
    def gateway(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def broadcast(self) -> str:
        return str(self.network.broadcast_address)


@dataclass(frozen=True)
class Host:
    namespace: str
    address: str
    mac: str
    segment: Segment


@dataclass
class Topology:
    """Create with ``Topology.build()`` inside a ``with``; every namespace goes when it ends."""

    tag: str
    router: str = ""
    namespaces: list[str] = field(default_factory=list)
    segments: dict[int, Segment] = field(default_factory=dict)

    @classmethod
    @contextlib.contextmanager
    def build(cls) -> Iterator[Topology]:
        topology = cls(tag=f"ct{os.getpid() % 100000}{secrets.token_hex(1)}")
        try:
            topology.router = topology._namespace("rtr")
            topology.write_sysctl(topology.router, "net/ipv4/ip_forward", "1")
            topology.write_sysctl(topology.router, "net/ipv4/conf/all/bc_forwarding", "1")
            yield topology
        finally:
            topology.remove()

    def _namespace(self, short: str) -> str:
        name = f"{self.tag}-{short}"
        _ip("netns", "add", name)
        self.namespaces.append(name)
        _ip("-n", name, "link", "set", "lo", "up")
        return name

    def segment(self, number: int, directed_broadcasts_from: bool = False) -> Segment:
        """10.99.<number>.0/24, its bridge ``br<number>`` in the router, which is .1 on it."""
        segment = Segment(number, IPv4Network(f"10.99.{number}.0/24"))
        bridge = f"br{number}"
        _ip("-n", self.router, "link", "add", bridge, "type", "bridge")
        _ip("-n", self.router, "addr", "add", f"{segment.gateway}/24", "dev", bridge)
        _ip("-n", self.router, "link", "set", bridge, "up")
        if directed_broadcasts_from:
            self.write_sysctl(self.router, f"net/ipv4/conf/{bridge}/bc_forwarding", "1")
        self.segments[number] = segment
        return segment

    def host(self, short: str, segment: Segment, number: int) -> Host:
        """A machine with ``eth0`` at 10.99.<segment>.<number>/24 and a MAC of its own, routed via the router."""
        namespace = self._namespace(short)
        port = f"p{segment.number}x{number}"
        mac = f"02:99:00:00:{segment.number:02x}:{number:02x}"
        address = str(segment.network.network_address + number)
        _ip("link", "add", "name", "eth0", "netns", namespace, "type", "veth", "peer", "name", port,
            "netns", self.router)
        _ip("-n", self.router, "link", "set", port, "master", f"br{segment.number}")
        _ip("-n", self.router, "link", "set", port, "up")
        _ip("-n", namespace, "link", "set", "eth0", "address", mac)
        _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", namespace, "link", "set", "eth0", "up")
        _ip("-n", namespace, "route", "add", "default", "via", segment.gateway)
        return Host(namespace, address, mac, segment)

    def write_sysctl(self, namespace: str, key: str, value: str) -> None:
        with self.inside(namespace), open(f"/proc/sys/{key}", "w") as f:
            f.write(value)

    @staticmethod
    @contextlib.contextmanager
    def inside(namespace: str) -> Iterator[None]:
        """Run this thread in ``namespace`` for the block: sockets made here stay there afterwards."""
        libc = ctypes.CDLL(None, use_errno=True)
        with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{namespace}") as target:
            if libc.setns(target.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {namespace}")
            try:
                yield
            finally:
                if libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back home")

    def udp_listener(self, host: Host, port: int) -> socket.socket:
        """A socket on ``host`` receiving what reaches its port, broadcasts included: a NIC's view of the wire."""
        with self.inside(host.namespace):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("0.0.0.0", port))
        return sock

    def popen(self, host: Host, argv: list[str], **kwargs) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", host.namespace, *argv], **kwargs)

    def run(self, host: Host, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", host.namespace, *argv], **kwargs)

    def remove(self) -> None:
        for namespace in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        self.namespaces.clear()
