"""Sites, devices and agents for the wake tests, with the inventory shape agents report."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from agent.protocol import Inventory, Nic, OperatingSystem, PowerState, WakeReadiness, to_wire
from controller.register.models import Agent, Device, DeviceMac, Site
from controller.register.models import Report as ReportRow
from controller.storage import partitions

MAGIC_HEADER = b"\xff" * 6


def magic(mac: str) -> bytes:
    """What a magic packet for ``mac`` must be, written out independently of the code under test."""
    return MAGIC_HEADER + bytes.fromhex(mac.replace(":", "")) * 16


def site(session: Session, name: str = "Hill Primary") -> Site:
    row = Site(name=name)
    session.add(row)
    session.flush()
    return row


def device(session: Session, at: Site, hostname: str, mac: str, address: str | None = "10.20.0.7", prefix: int = 24,
           room: str | None = None, device_class: str = "desktop", wake: WakeReadiness | None = None,
           boot_time: datetime | None = None) -> Device:
    nic = Nic("eth0", mac, (address,) if address else (), ipv4_prefixes=(prefix,) if address else ())
    inventory = Inventory(hostname=hostname, os=OperatingSystem("Windows", "11"), nics=(nic,), wake=wake,
                          boot_time=boot_time)
    row = Device(site_id=at.id, hostname=hostname, device_class=device_class, room=room,
                 inventory=to_wire(inventory))
    session.add(row)
    session.flush()
    session.add(DeviceMac(mac=mac, device_id=row.id))
    return row


def agent(session: Session, on: Device, agent_id: str, last_seen: datetime, state: PowerState = PowerState.IDLE,
          report_seconds: float = 30.0) -> Agent:
    """An agent that last reported at ``last_seen``, a report of ``report_seconds`` saying ``state``, as
    ingest stores it (a relay's reports are as long as the relay interval; others', the ordinary one)."""
    row = Agent(id=agent_id, device_id=on.id, site_id=on.site_id, secret_hash="0" * 64, last_seen=last_seen,
                last_seq=1, reports=1)
    session.add(row)
    session.flush()
    if partitions.partitioned(session.connection()):  # the partition job makes days around the real today
        partitions.ensure(session.connection(), last_seen, behind_days=1, ahead_days=0)
    session.add(ReportRow(agent_id=agent_id, seq=1, device_id=on.id, end=last_seen, state=state.value,
                          start=last_seen - timedelta(seconds=report_seconds), cpu_percent=2.0, received_at=last_seen))
    session.flush()
    return row


@dataclass
class Listener:
    """A UDP socket on loopback catching magic packets, as a NIC's wake logic would see them."""

    sock: socket.socket

    @classmethod
    def open(cls) -> Listener:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", 0))
        sock.settimeout(2.0)
        return cls(sock)

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def receive(self) -> bytes:
        return self.sock.recvfrom(1024)[0]

    def close(self) -> None:
        self.sock.close()
