"""The device register: creating and updating devices from agent inventory, and reading them back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_
from sqlmodel import Session, col, delete, select

from agent.protocol import Inventory, to_wire
from controller.errors import DomainError
from controller.lifecycle.entry import enter_register
from controller.lifecycle.models import Asset
from controller.register import changes
from controller.register.identity import (
    Fingerprint,
    MatchResult,
    fingerprint_of,
    match,
    normalise_hostname,
    normalise_vendor,
)
from controller.register.labels import set_by_agent
from controller.register.models import Agent, ConflictKind, Device, DeviceMac, EnergyBucket, Site
from controller.timeutil import utcnow

_TRACKED = ("site_id", "hostname", "device_class", "vendor", "model", "serial", "smbios_uuid",
            "machine_id", "os_name", "os_version")


class NotFound(LookupError, DomainError):
    pass


class Ambiguous(NotFound):
    """A hostname (or serial, or asset tag) that several devices answer to."""


def find_device(session: Session, reference: str) -> Device:
    """The device a person names: its register id, else its hostname (case-insensitive), serial or asset
    tag. Every command, route and page that takes a device asks here; a name that fits several devices is
    refused with their ids, so nobody acts on the wrong machine."""
    reference = reference.strip()
    if reference.isdigit() and (device := session.get(Device, int(reference))) is not None:
        return device
    by_tag = select(Asset.device_id).where(Asset.asset_tag == reference)
    found = session.exec(select(Device).where(or_(
        func.lower(Device.hostname) == reference.casefold(), Device.serial == reference,
        col(Device.id).in_(by_tag))).order_by(Device.id)).all()
    if not found:
        raise NotFound(f"no device with id, hostname, serial or asset tag {reference!r}")
    if len(found) > 1:
        raise Ambiguous(f"{len(found)} devices answer to {reference!r}: give the id "
                       f"({', '.join(str(d.id) for d in found)})")
    return found[0]


def stored_fingerprint(session: Session, device: Device) -> Fingerprint:
    macs = session.exec(select(DeviceMac.mac).where(DeviceMac.device_id == device.id)).all()
    return Fingerprint(uuid=device.smbios_uuid, serial=device.serial, machine_id=device.machine_id,
                       macs=frozenset(macs), hostname=normalise_hostname(device.hostname),
                       vendor=normalise_vendor(device.vendor),
                       model=device.model)


def identify(session: Session, fingerprint: Fingerprint) -> MatchResult:
    """Score the devices that share any identifier with ``fingerprint``; none share one → new device."""
    return match(fingerprint, [(d.id, f) for d, f in candidates(session, fingerprint)])


def candidates(session: Session, fingerprint: Fingerprint) -> list[tuple[Device, Fingerprint]]:
    """The devices that share any identifier with ``fingerprint``, each with its stored fingerprint."""
    clauses = []
    if fingerprint.uuid:
        clauses.append(Device.smbios_uuid == fingerprint.uuid)
    if fingerprint.serial:
        clauses.append(Device.serial == fingerprint.serial)
    if fingerprint.machine_id:
        clauses.append(Device.machine_id == fingerprint.machine_id)
    if fingerprint.macs:
        by_mac = select(DeviceMac.device_id).where(col(DeviceMac.mac).in_(sorted(fingerprint.macs)))
        clauses.append(col(Device.id).in_(by_mac))
    found = session.exec(select(Device).where(or_(*clauses)).order_by(Device.id)).all() if clauses else []
    return [(d, stored_fingerprint(session, d)) for d in found]


def create_device(session: Session, site: Site, inventory: Inventory, actor: str,
                  result: MatchResult | None = None) -> Device:
    device = Device(site_id=site.id, hostname=inventory.hostname)
    if result is not None and result.conflict is not None:
        device.conflict_with = result.conflict.device_id
        device.conflict_reason = result.conflict.reason
        device.conflict_kind = ConflictKind.CLONE
    session.add(device)
    session.flush()
    apply_inventory(session, device, inventory, actor, created=True)
    enter_register(session, device, actor)  # an agent-reported machine is in use: it enters as deployed
    return device


def apply_inventory(session: Session, device: Device, inventory: Inventory, actor: str,
                    created: bool = False) -> None:
    """Copy what the agent says the machine is onto the device, logging what changed."""
    before = changes.snapshot(device, _TRACKED)
    fingerprint = fingerprint_of(inventory)
    device.hostname = inventory.hostname
    device.device_class = inventory.device_class.value
    device.vendor = inventory.smbios.vendor
    device.model = inventory.smbios.model
    device.serial = fingerprint.serial
    device.smbios_uuid = fingerprint.uuid
    device.machine_id = fingerprint.machine_id
    device.os_name = inventory.os.name
    device.os_version = inventory.os.version
    reported = to_wire(inventory)
    if reported != device.inventory:
        # Counted in SQL, not from the value read: two replicas applying at once then count twice.
        device.inventory, device.inventory_version = reported, Device.inventory_version + 1
    set_by_agent(session, device, actor, inventory.room, inventory.tags)
    known = set(session.exec(select(DeviceMac.mac).where(DeviceMac.device_id == device.id)).all())
    if known != set(fingerprint.macs):
        session.exec(delete(DeviceMac).where(col(DeviceMac.device_id) == device.id))
        session.add_all(DeviceMac(mac=mac, device_id=device.id) for mac in sorted(fingerprint.macs))
    after = changes.snapshot(device, _TRACKED)
    after["macs"] = sorted(fingerprint.macs)
    before["macs"] = sorted(known)
    if created:
        changes.record(session, actor, "create", device, after=after)
    elif before != after:
        changes.record(session, actor, "update", device, before=_diff(before, after), after=_diff(after, before))


def _diff(a: dict, b: dict) -> dict:
    return {k: v for k, v in a.items() if b.get(k) != v}


@dataclass(frozen=True)
class DeviceRow:
    id: int
    site: str
    hostname: str
    device_class: str
    vendor: str | None
    model: str | None
    serial: str | None
    os: str
    last_seen: datetime | None
    conflict_with: int | None
    conflict_reason: str | None


def list_devices(session: Session, site: str | None = None, conflicts_only: bool = False) -> list[DeviceRow]:
    query = select(Device, Site.name).join(Site, col(Site.id) == Device.site_id)
    if site is not None:
        query = query.where(Site.name == site)
    if conflicts_only:
        query = query.where(col(Device.conflict_with).is_not(None))
    rows = session.exec(query.order_by(Site.name, Device.hostname, Device.id)).all()
    return [_row(device, site_name) for device, site_name in rows]


def _row(device: Device, site_name: str) -> DeviceRow:
    os_text = " ".join(p for p in (device.os_name, device.os_version) if p)
    return DeviceRow(id=device.id, site=site_name, hostname=device.hostname, device_class=device.device_class,
                     vendor=device.vendor, model=device.model, serial=device.serial, os=os_text,
                     last_seen=device.last_seen, conflict_with=device.conflict_with,
                     conflict_reason=device.conflict_reason)


@dataclass(frozen=True)
class EnergyLine:
    state: str
    method: str
    kwh: float
    hours: float


@dataclass(frozen=True)
class AgentLine:
    id: str
    enrolled_at: datetime
    last_seen: datetime | None
    last_seq: int
    reports: int
    retired_at: datetime | None


@dataclass(frozen=True)
class DeviceDetail:
    device: DeviceRow
    macs: list[str]
    inventory: dict | None
    agents: list[AgentLine]
    energy_last_24h: list[EnergyLine]


def device_detail(session: Session, device_id: int, now: datetime | None = None) -> DeviceDetail:
    found = session.exec(select(Device, Site.name).join(Site, col(Site.id) == Device.site_id)
                         .where(Device.id == device_id)).first()
    if found is None:
        raise NotFound(f"no device with id {device_id}")
    device, site_name = found
    since = (now or utcnow()) - timedelta(hours=24)
    energy = session.exec(
        select(EnergyBucket.state, EnergyBucket.method, func.sum(EnergyBucket.joules), func.sum(EnergyBucket.seconds))
        .where(EnergyBucket.device_id == device_id, EnergyBucket.hour >= since)
        .group_by(EnergyBucket.state, EnergyBucket.method).order_by(EnergyBucket.state, EnergyBucket.method)
    ).all()
    agents = session.exec(select(Agent).where(Agent.device_id == device_id).order_by(Agent.enrolled_at)).all()
    macs = session.exec(select(DeviceMac.mac).where(DeviceMac.device_id == device_id).order_by(DeviceMac.mac)).all()
    return DeviceDetail(
        device=_row(device, site_name),
        macs=list(macs),
        inventory=device.inventory,
        agents=[AgentLine(a.id, a.enrolled_at, a.last_seen, a.last_seq, a.reports, a.retired_at) for a in agents],
        energy_last_24h=[EnergyLine(s, m, round(j / 3.6e6, 4), round(sec / 3600, 3)) for s, m, j, sec in energy],
    )
