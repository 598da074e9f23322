"""Wake requests: queue them in paced waves, move them along queued → sent → confirmed (or failed), and
answer what happened. Every step is also an ActionRecord, so the audit log tells the same story.

No clock is read here: callers pass ``now``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from controller.db import upsert
from controller.errors import DomainError
from controller.power.models import WakeRequest, WakeStatus
from controller.power.network import attachments, broadcast_address
from controller.register.devices import NotFound, find_device
from controller.register.labels import placed_devices
from controller.register.models import ActionRecord, Agent, Device, DeviceMac, Site
from controller.register.placement import PlacementRule


class WakeRefused(ValueError, DomainError):
    """The request cannot be carried out as asked (unknown device, site or group)."""


@dataclass(frozen=True)
class WakeConfig:
    per_second: float = 20.0
    port: int = 9
    rewake_seconds: int = 900
    confirm_seconds: int = 600
    attempts: int = 3

    @classmethod
    def from_settings(cls, settings) -> WakeConfig:
        return cls(per_second=settings.wake_per_second, port=settings.wake_port,
                   rewake_seconds=settings.wake_rewake_seconds, confirm_seconds=settings.wake_confirm_seconds,
                   attempts=settings.wake_attempts)


@dataclass(frozen=True)
class Skipped:
    device_id: int
    hostname: str
    why: str


@dataclass(frozen=True)
class Queued:
    wake_id: int
    device_id: int
    hostname: str
    due_at: datetime


@dataclass(frozen=True)
class WaveResult:
    queued: list[Queued]
    skipped: list[Skipped]


def select_devices(session: Session, device: str | None = None, site: str | None = None,
                   group: str | None = None, rules: Sequence[PlacementRule] = ()) -> list[Device]:
    """One device (id or hostname), every device of a site, or of a room (a group, optionally within a site)
    as the register places it with ``rules`` (register/placement.py)."""
    if device is not None:
        try:
            return [find_device(session, device)]
        except NotFound as exc:
            raise WakeRefused(str(exc)) from None
    if site is not None and session.exec(select(Site).where(Site.name == site)).first() is None:
        raise WakeRefused(f"no site {site!r}")
    if site is None and group is None:
        raise WakeRefused("say which devices to wake: a device, --site or --group")
    devices = sorted((p.device for p in placed_devices(session, rules, site, room=group)), key=lambda d: d.id)
    if not devices:
        raise WakeRefused(f"no devices in {'group ' + repr(group) if group else 'site ' + repr(site)}")
    return devices


def _target(session: Session, device: Device) -> tuple[str, str | None] | None:
    """The MAC to wake and its subnet: a NIC with a known subnet first, else any MAC on record."""
    for attachment in attachments(device.inventory):
        return attachment.mac, str(attachment.network)
    mac = session.exec(select(DeviceMac.mac).where(DeviceMac.device_id == device.id).order_by(DeviceMac.mac)).first()
    return (mac, None) if mac else None


def request_wakes(session: Session, devices: Sequence[Device], reason: str, requested_by: str, now: datetime,
                  config: WakeConfig, not_before: datetime | None = None) -> WaveResult:
    """Queue one wake per device, each in its own slot of its site's wave (``config.per_second``).

    A device woken (or being woken) within ``rewake_seconds`` is skipped, as is one with no MAC.
    ``not_before`` schedules the wave for later (a teacher's "at 14:00"): the dispatcher sends nothing
    before a wake's slot.
    """
    start = max(now, not_before) if not_before is not None else now
    recent_since = now - timedelta(seconds=config.rewake_seconds)
    ids = [d.id for d in devices]
    recent = set(session.exec(select(WakeRequest.device_id).where(
        col(WakeRequest.device_id).in_(ids), WakeRequest.status != WakeStatus.FAILED,
        WakeRequest.requested_at >= recent_since)).all()) if ids else set()
    step = timedelta(seconds=1.0 / config.per_second)
    next_slot: dict[int, datetime] = {}
    wakes, skipped = [], []
    for device in devices:
        if device.id in recent:
            skipped.append(Skipped(device.id, device.hostname,
                                   f"woken within the last {config.rewake_seconds // 60} min; not again yet"))
            continue
        target = _target(session, device)
        if target is None:
            skipped.append(Skipped(device.id, device.hostname, "no MAC address known"))
            continue
        if device.site_id not in next_slot:
            next_slot[device.site_id] = _first_free_slot(session, device.site_id, start, step)
        due = next_slot[device.site_id]
        next_slot[device.site_id] = due + step
        wakes.append((device, {"site_id": device.site_id, "device_id": device.id, "mac": target[0],
                               "network": target[1], "status": WakeStatus.QUEUED.value, "reason": reason[:500],
                               "requested_by": requested_by[:100], "requested_at": now, "due_at": due, "attempts": 0}))
    if not wakes:
        return WaveResult([], skipped)
    # Core inserts, batched: a wave of 10,000 built as ORM objects spent most of its time constructing them.
    table = WakeRequest.__table__
    ids = session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True),
                          [row for _, row in wakes]).scalars().all()
    insert_audits(session, [
        audit_values(WakeRef(wake_id, row["site_id"], row["device_id"], row["mac"], row["network"]),
                     WakeStatus.QUEUED, now, f"wake requested: {reason}", requested_by, {})
        for wake_id, (_, row) in zip(ids, wakes, strict=True)])
    return WaveResult([Queued(wake_id, d.id, d.hostname, row["due_at"])
                       for wake_id, (d, row) in zip(ids, wakes, strict=True)], skipped)


WAVE_HORIZON = timedelta(minutes=10)


def _first_free_slot(session: Session, site_id: int, start: datetime, step: timedelta) -> datetime:
    """After the last slot still queued for the site, so two waves requested together share the pace.

    Slots queued for more than ``WAVE_HORIZON`` after ``start`` (a wave scheduled for this afternoon) are
    not in the way of one going out now."""
    last = session.exec(select(func.max(WakeRequest.due_at)).where(
        WakeRequest.site_id == site_id, WakeRequest.status == WakeStatus.QUEUED,
        WakeRequest.due_at < start + WAVE_HORIZON)).one()
    return max(start, last + step) if last is not None else start


@dataclass(frozen=True)
class WakeRef:
    """What an audit line needs to know about a wake: the row itself, or a step's copy of its columns."""

    id: int
    site_id: int
    device_id: int
    mac: str
    network: str | None
    route: str | None = None
    attempts: int = 0
    reroutes: int = 0

    @classmethod
    def of(cls, wake: WakeRequest) -> WakeRef:
        return cls(wake.id, wake.site_id, wake.device_id, wake.mac, wake.network, wake.route, wake.attempts,
                   wake.reroutes)


def audit(session: Session, wake: WakeRequest | WakeRef, outcome: str, at: datetime, reason: str, actor: str,
          **details: object) -> None:
    """The wake's step in the audit log, written once however often the step is tried (see ``insert_audits``)."""
    ref = wake if isinstance(wake, WakeRef) else WakeRef.of(wake)
    insert_audits(session, [audit_values(ref, outcome, at, reason, actor, details)])


def audit_values(wake: WakeRef, outcome: str, at: datetime, reason: str, actor: str, details: dict) -> dict:
    """An ActionRecord row for one step of a wake. The key names the attempt and the reroute, so each real
    step has a key of its own and the same step recorded twice (a retried step, a replayed batch) has one."""
    return {"at": at, "site_id": wake.site_id, "device_id": wake.device_id, "kind": "wake", "outcome": str(outcome),
            "mode": None, "reason": reason[:500], "actor": actor[:100],
            "source_key": f"wake:{wake.id}:{wake.attempts}:{wake.reroutes}:{outcome}",
            "details": {"wake_id": wake.id, "mac": wake.mac, "network": wake.network, "route": wake.route,
                        "attempt": wake.attempts, "reroute": wake.reroutes, **details}}


def insert_audits(session: Session, rows: list[dict]) -> None:
    """Insert-or-ignore on ``source_key``: a step that is tried again must never fail on its own audit line."""
    if not rows:
        return
    session.execute(upsert(session, ActionRecord.__table__).on_conflict_do_nothing(index_elements=["source_key"]),
                    rows)


def mark_sent(session: Session, wake: WakeRequest, by: str, at: datetime, reason: str, **details: object) -> None:
    wake.status = WakeStatus.SENT
    wake.sent_by = by
    wake.sent_at = at
    session.add(wake)
    audit(session, wake, WakeStatus.SENT, at, reason, by, **details)


def mark_failed(session: Session, wake: WakeRequest, at: datetime, why: str) -> None:
    wake.status = WakeStatus.FAILED
    wake.failure = why[:500]
    wake.failed_at = at
    session.add(wake)
    audit(session, wake, WakeStatus.FAILED, at, why, "controller")


def confirm(session: Session, wake: WakeRequest, at: datetime, reported_at: datetime) -> None:
    wake.status = WakeStatus.CONFIRMED
    wake.confirmed_at = at
    session.add(wake)
    audit(session, wake, WakeStatus.CONFIRMED, at, "the device reported in after the wake", "controller",
          reported_at=reported_at.isoformat())


# --- reading ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WakeRow:
    id: int
    site_id: int
    site: str
    device_id: int
    hostname: str
    mac: str
    network: str | None
    status: str
    attempts: int
    route: str | None
    sent_by: str | None
    requested_by: str
    requested_at: datetime
    due_at: datetime
    sent_at: datetime | None
    confirmed_at: datetime | None
    failure: str | None
    relay: str | None  # the relay agent it was given to: "HOSTNAME (agent id)"
    reroutes: int
    outcome: str  # what happened, in words (``describe``)


def list_wakes(session: Session, site: str | None = None, status: str | None = None, limit: int = 200,
               ids: Sequence[int] | None = None) -> list[WakeRow]:
    relay_device = aliased(Device)
    query = (select(WakeRequest, Site.name, Device.hostname, relay_device.hostname)
             .join(Site, col(Site.id) == WakeRequest.site_id)
             .join(Device, col(Device.id) == WakeRequest.device_id)
             .outerjoin(Agent, col(Agent.id) == WakeRequest.relay_agent_id)
             .outerjoin(relay_device, col(relay_device.id) == Agent.device_id))
    if site is not None:
        query = query.where(Site.name == site)
    if status is not None:
        query = query.where(WakeRequest.status == status)
    if ids is not None:
        query = query.where(col(WakeRequest.id).in_(list(ids)))
    rows = session.exec(query.order_by(col(WakeRequest.id).desc()).limit(limit)).all()
    found = []
    for w, site_name, hostname, relay_host in rows:
        relay = f"{relay_host or '?'} (agent {w.relay_agent_id})" if w.relay_agent_id else None
        found.append(WakeRow(w.id, w.site_id, site_name, w.device_id, hostname, w.mac, w.network, w.status, w.attempts,
                             w.route, w.sent_by, w.requested_by, w.requested_at, w.due_at, w.sent_at, w.confirmed_at,
                             w.failure, relay, w.reroutes, describe(w, relay)))
    return found


def describe(wake: WakeRequest, relay: str | None) -> str:
    """What happened to a wake, in the words every surface uses (CLI, API, console)."""
    address = broadcast_address(ipaddress.IPv4Network(wake.network)) if wake.network else "?"
    how = {"direct": f"direct to {address}", "relay": f"via relay {relay} to {address}",
           "broadcast": f"by directed broadcast to {address}"}.get(wake.route or "", "")
    match wake.status:
        case WakeStatus.FAILED:
            return f"failed: {wake.failure}"
        case WakeStatus.CONFIRMED:
            return f"confirmed: the device reported in (sent {how})"
        case WakeStatus.SENT if wake.route == "broadcast":
            return f"sent, unconfirmed: directed broadcast to {address}; only the device reporting in confirms it"
        case WakeStatus.SENT:
            return f"sent {how}; waiting for the device to report in"
        case WakeStatus.ORDERED:
            return f"ordered via relay {relay}, which sends it to {address}"
        case WakeStatus.QUEUED if relay:
            return f"ordered via relay {relay}: it picks the order up with its next report"
        case _:
            return f"queued for {wake.due_at.isoformat(timespec='seconds')}"


def settled(row: WakeRow) -> bool:
    """Whether the controller has done its part of the wake yet (routed it: sent, ordered or failed)."""
    return row.status != WakeStatus.QUEUED or row.relay is not None


CAUSE_FAST_STARTUP = "Windows Fast Startup enabled"
CAUSE_NIC_NOT_ARMED = "NIC not armed for wake"
CAUSE_MODERN_STANDBY = "Modern Standby (no S3 sleep)"
CAUSE_UNKNOWN = "unknown"


def likely_cause(inventory: dict | None) -> str:
    """Why a device probably did not wake, from the readiness its agent reported when it was last up."""
    readiness = (inventory or {}).get("wake") or {}
    causes = [cause for key, cause in (("fast_startup", CAUSE_FAST_STARTUP), ("modern_standby", CAUSE_MODERN_STANDBY))
              if readiness.get(key) is True]
    if readiness.get("nic_armed") is False:
        causes.append(CAUSE_NIC_NOT_ARMED)
    return "; ".join(causes) or CAUSE_UNKNOWN


@dataclass(frozen=True)
class FailedWake:
    device_id: int
    hostname: str
    site_id: int
    site: str
    wake_id: int
    failed_at: datetime | None
    failure: str | None
    cause: str


def failed_wakes(session: Session, site: str | None = None) -> list[FailedWake]:
    """Each device's latest failed wake, with the likely cause (devices whose later wake worked drop out)."""
    latest = (select(WakeRequest.device_id, func.max(WakeRequest.id).label("wake_id"))
              .where(WakeRequest.status != WakeStatus.QUEUED).group_by(WakeRequest.device_id).subquery())
    query = (select(WakeRequest, Device, Site.name).join(latest, col(WakeRequest.id) == latest.c.wake_id)
             .join(Device, col(Device.id) == WakeRequest.device_id).join(Site, col(Site.id) == Device.site_id)
             .where(WakeRequest.status == WakeStatus.FAILED))
    if site is not None:
        query = query.where(Site.name == site)
    rows = session.exec(query.order_by(Site.name, Device.hostname)).all()
    return [FailedWake(d.id, d.hostname, d.site_id, site_name, w.id, w.failed_at, w.failure, likely_cause(d.inventory))
            for w, d, site_name in rows]


def wake_outcomes(session: Session) -> dict[tuple[str, str], int]:
    """Wake requests by (site name, status), for /metrics."""
    rows = session.exec(select(Site.name, WakeRequest.status, func.count())
                        .join(Site, col(Site.id) == WakeRequest.site_id)
                        .group_by(Site.name, WakeRequest.status)).all()
    return {(site, status): count for site, status, count in rows}


def open_device_ids(session: Session) -> frozenset[int]:
    """Devices with a wake in flight: only their reports need checking for a confirmation."""
    return frozenset(session.exec(select(WakeRequest.device_id).distinct().where(
        col(WakeRequest.status).in_([WakeStatus.ORDERED, WakeStatus.SENT]))).all())
