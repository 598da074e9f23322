"""Protocol objects for tests: realistic defaults, overridable per test."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from agent.protocol import (
    PROTOCOL_VERSION,
    Activity,
    DeviceClass,
    EnergySample,
    EnrollRequest,
    Inventory,
    Nic,
    OperatingSystem,
    PowerMethod,
    PowerState,
    Report,
    ReportBatch,
    Smbios,
    to_wire,
)

# Recent and on an hour boundary: the controller refuses reports from the future or over 400 days old.
T0 = (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)


def inventory(hostname: str = "HILL-R12-PC07", serial: str | None = "CZC1234XYZ",
              macs: tuple[str, ...] = ("00:1a:2b:3c:4d:5e",), machine_id: str | None = "8f1c0c3a9b2e4d7f",
              uuid: str | None = "4c4c4544-0038-4d10-8052-b2c04f4e4e31", **changes) -> Inventory:
    base = Inventory(
        hostname=hostname,
        os=OperatingSystem("Windows", "11 Education 23H2", "10.0.22631", "AMD64"),
        device_class=DeviceClass.DESKTOP,
        machine_id=machine_id,
        smbios=Smbios(vendor="Dell Inc.", model="OptiPlex 7010", serial=serial, uuid=uuid, chassis_type=3),
        nics=tuple(Nic(f"eth{i}", mac, ("10.12.0.7",)) for i, mac in enumerate(macs)),
        memory_bytes=16 * 2**30,
    )
    return dataclasses.replace(base, **changes)


def report(seq: int, start: datetime = T0, seconds: float = 300, watts: float = 45.0,
           state: PowerState = PowerState.IDLE, with_inventory: Inventory | None = None) -> Report:
    return Report(
        seq=seq, start=start, end=start + timedelta(seconds=seconds),
        activity=Activity(state=state, cpu_percent=4.0, idle_seconds=1200.0, idle_source="GetLastInputInfo"),
        energy=(EnergySample(PowerMethod.MODEL, state, seconds, watts * seconds, detail="desktop model"),),
        inventory=with_inventory,
    )


def consecutive(first_seq: int, count: int, start: datetime = T0, seconds: float = 300, **kw) -> list[Report]:
    return [report(first_seq + i, start + timedelta(seconds=seconds * i), seconds, **kw) for i in range(count)]


def batch_json(reports: list[Report]) -> dict:
    return to_wire(ReportBatch(PROTOCOL_VERSION, tuple(reports)))


def enroll_json(token: str, inv: Inventory | None = None) -> dict:
    return to_wire(EnrollRequest(PROTOCOL_VERSION, token, inv or inventory()))
