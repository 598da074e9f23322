"""The SNMP register: targets and their devices, and each poll's compact reading.

Registration is idempotent: a device is found again by its serial (the same PDU moved to another
address stays one device), else by the target it was registered at; only then is a Device created.
A stack (or an access-point cluster) is one target whose first chassis is the target's device and
whose other chassis are devices of their own (``SnmpUnit``), each with its serial and model: assets
are counted by the box, while the readings stay with the target. Every function works inside the
caller's session, so a poll's reading and its status land together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from controller.register import changes
from controller.register.models import Device, Site
from controller.snmp.credentials import RememberedCredentials
from controller.snmp.loads import DEVICE, poll_loads, to_json
from controller.snmp.models import SnmpReading, SnmpTarget, SnmpUnit
from controller.snmp.oids import key as oids_key
from controller.snmp.profiles import DeviceKind
from controller.snmp.readings import Chassis, DevicePoll

#: The register's device class for each profile kind; "host" is any other SNMP agent, class unknown.
DEVICE_CLASS = {DeviceKind.PRINTER: "printer", DeviceKind.SWITCH: "switch", DeviceKind.PDU: "pdu",
                DeviceKind.UPS: "ups", DeviceKind.ACCESS_POINT: "access_point", DeviceKind.HOST: "unknown"}
_FIELDS = ("hostname", "device_class", "vendor", "model", "serial")


def register(session: Session, poll: DevicePoll, site: Site, actor: str) -> SnmpTarget:
    """The target for a successful poll, with its device, created or found again."""
    target = target_at(session, poll.address, poll.port)
    device = _find_device(session, poll, target)
    identity = poll.identity
    hostname = (identity.sys_name if identity else None) or poll.address
    if device is None:
        device = _create(session, actor, Device(
            site_id=site.id, hostname=hostname, device_class=DEVICE_CLASS.get(poll.kind or "", "unknown"),
            vendor=identity.vendor if identity else None, model=identity.model if identity else None,
            serial=identity.serial if identity else None, first_seen=poll.at, last_seen=poll.at))
    if target is None:
        target = SnmpTarget(site_id=site.id, address=poll.address, port=poll.port)
        session.add(target)
    target.device_id = device.id
    target.profile, target.kind, target.credential = poll.profile, poll.kind, poll.credential
    session.flush()
    for unit in poll.chassis[1:]:
        _register_unit(session, target, device, unit, poll, actor)
    return target


def units_of(session: Session, target: SnmpTarget) -> list[int]:
    """The devices of a target's further units, in unit order."""
    rows = session.exec(select(SnmpUnit).where(SnmpUnit.target_id == target.id))
    return [row.device_id for row in sorted(rows, key=lambda r: oids_key(r.unit))]


def _register_unit(session: Session, target: SnmpTarget, main: Device, unit: Chassis, poll: DevicePoll,
                   actor: str) -> None:
    """A stack member's device: the one recorded for its place in the stack, else the one with its
    serial, else a new one named after the stack and the unit."""
    known = session.get(SnmpUnit, (target.id, unit.index))
    device = session.get(Device, known.device_id) if known else None
    if device is None and unit.serial:
        device = session.exec(select(Device).where(Device.serial == unit.serial).order_by(col(Device.id))).first()
    if device is None:
        device = _create(session, actor, Device(
            site_id=main.site_id, hostname=f"{main.hostname} {unit.name or 'unit ' + unit.index}",
            device_class=main.device_class, vendor=main.vendor, model=unit.model, serial=unit.serial,
            first_seen=poll.at, last_seen=poll.at))
    if known is None:
        session.add(SnmpUnit(target_id=target.id, unit=unit.index, device_id=device.id))
    elif known.device_id != device.id:
        known.device_id = device.id
        session.add(known)
    device.last_seen = max(device.last_seen or poll.at, poll.at)
    session.add(device)
    session.flush()


def _create(session: Session, actor: str, device: Device) -> Device:
    session.add(device)
    session.flush()
    changes.record(session, actor, "create", device, after=changes.snapshot(device, _FIELDS))
    return device


def _find_device(session: Session, poll: DevicePoll, target: SnmpTarget | None) -> Device | None:
    serial = poll.identity.serial if poll.identity else None
    if serial:
        found = session.exec(select(Device).where(Device.serial == serial).order_by(col(Device.id))).first()
        if found is not None:
            return found
    return session.get(Device, target.device_id) if target is not None and target.device_id else None


def target_at(session: Session, address: str, port: int) -> SnmpTarget | None:
    return session.exec(select(SnmpTarget).where(SnmpTarget.address == address, SnmpTarget.port == port)).first()


def save_poll(session: Session, target: SnmpTarget, poll: DevicePoll) -> bool:
    """Record how the poll went and, if it read anything, its reading; False if that reading was
    already stored (the same poll saved twice)."""
    target.last_poll_at = poll.at
    if not poll.ok:
        target.last_error = (poll.error or "")[:500]
        session.add(target)
        return False
    target.last_ok_at, target.last_error = poll.at, None
    target.profile, target.kind, target.credential = poll.profile, poll.kind, poll.credential
    session.add(target)
    if target.device_id is not None:
        device = session.get(Device, target.device_id)
        if device is not None and (device.last_seen is None or device.last_seen < poll.at):
            device.last_seen = poll.at
    if session.get(SnmpReading, (target.id, poll.at)) is not None:
        return False
    session.add(reading_of(target.id, poll))
    return True


def reading_of(target_id: int, poll: DevicePoll) -> SnmpReading:
    loads = poll_loads(poll)
    total = loads.get(DEVICE)
    printer, ups = poll.printer, poll.ups
    status = (printer.status if printer else None) or (ups.output_source if ups else None)
    supplies = [{"name": s.description or s.index, "percent": s.percent} | ({"state": s.state} if s.state else {})
                for s in printer.supplies] if printer else None
    return SnmpReading(target_id=target_id, at=poll.at, watts=total.watts if total else None,
                       energy_joules=total.energy.joules if total and total.energy else None,
                       page_count=printer.life_count if printer else None, status=status,
                       loads=to_json(loads) or None, supplies=supplies or None)


@dataclass(frozen=True)
class TargetLine:
    id: int
    site: str
    address: str
    port: int
    device_id: int | None
    hostname: str | None
    kind: str | None
    profile: str | None
    credential: str | None
    last_poll_at: datetime | None
    last_ok_at: datetime | None
    last_error: str | None


def list_targets(session: Session, site: str | None = None) -> list[TargetLine]:
    query = (select(SnmpTarget, Site.name, Device.hostname).join(Site, col(Site.id) == col(SnmpTarget.site_id))
             .outerjoin(Device, col(Device.id) == col(SnmpTarget.device_id)).order_by(col(SnmpTarget.id)))
    if site is not None:
        query = query.where(Site.name == site)
    return [TargetLine(t.id, s, t.address, t.port, t.device_id, h, t.kind, t.profile, t.credential, t.last_poll_at,
                       t.last_ok_at, t.last_error) for t, s, h in session.exec(query)]


def remembered_credentials(targets: Iterable[SnmpTarget]) -> RememberedCredentials:
    """The working credential per address as the register last saw it, so a restarted controller
    asks each device with the credential that worked, not the first configured one."""
    return RememberedCredentials({t.address: t.credential for t in targets if t.credential})
