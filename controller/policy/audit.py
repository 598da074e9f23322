"""The power audit log as people read it: every action planned, observed, done, deferred or skipped (with
its reason), and beside them the changes that explain them (a policy edited, a mode switched, a device's
room or tags changed), newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, or_, select

from controller.errors import DomainError
from controller.policy.store import OBJECT_TYPE
from controller.register.models import ActionRecord, ChangeRecord, Device, Site

STAFF_WAKE = "staff_wake"  # staff wake requests (power/staff.py), recorded against their site


class UnknownFilter(LookupError, DomainError):
    pass


@dataclass(frozen=True)
class AuditLine:
    at: datetime
    entry: str  # "action" or "change"
    site: str | None
    site_id: int | None
    device_id: int | None
    hostname: str | None
    kind: str  # shutdown, sleep, wake… for actions; create, update, set_mode… for changes
    outcome: str | None
    mode: str | None
    reason: str
    actor: str
    details: dict | None


def audit_log(session: Session, since: datetime, until: datetime | None = None, device: int | None = None,
              site: str | None = None, site_ids: frozenset[int] | None = None, limit: int = 1000) -> list[AuditLine]:
    """Actions and relevant changes from ``since``; ``site_ids`` limits what a site-bound reader sees."""
    site_id = None
    if site is not None:
        found = session.exec(select(Site).where(Site.name == site)).first()
        if found is None:
            raise UnknownFilter(f"no site called {site!r}")
        site_id = found.id
    if device is not None and session.get(Device, device) is None:
        raise UnknownFilter(f"no device with id {device}")
    names = {s.id: s.name for s in session.exec(select(Site))}
    actions = select(ActionRecord, Device.hostname).outerjoin(Device, Device.id == ActionRecord.device_id).where(
        ActionRecord.at >= since)
    if until is not None:
        actions = actions.where(ActionRecord.at < until)
    if device is not None:
        actions = actions.where(ActionRecord.device_id == device)
    if site_id is not None:
        actions = actions.where(ActionRecord.site_id == site_id)
    if site_ids is not None:
        actions = actions.where(ActionRecord.site_id.in_(site_ids))
    lines = [AuditLine(a.at, "action", names.get(a.site_id), a.site_id, a.device_id, hostname, a.kind, a.outcome,
                       a.mode, a.reason, a.actor, a.details)
             for a, hostname in session.exec(actions.order_by(ActionRecord.at.desc()).limit(limit))]
    lines += _changes(session, since, until, device, site_id, site_ids, names, limit)
    return sorted(lines, key=lambda line: line.at, reverse=True)[:limit]


def _changes(session: Session, since: datetime, until: datetime | None, device: int | None, site_id: int | None,
             site_ids: frozenset[int] | None, names: dict[int, str], limit: int) -> list[AuditLine]:
    devices = select(Device.id, Device.site_id, Device.hostname)
    if device is not None:
        devices = devices.where(Device.id == device)
    if site_id is not None:
        devices = devices.where(Device.site_id == site_id)
    if site_ids is not None:
        devices = devices.where(Device.site_id.in_(site_ids))
    known = {str(i): (s, h) for i, s, h in session.exec(devices)}
    query = select(ChangeRecord).where(ChangeRecord.at >= since, or_(
        ChangeRecord.object_type == OBJECT_TYPE,
        (ChangeRecord.object_type == "device") & ChangeRecord.object_id.in_(list(known)),
        (ChangeRecord.object_type == "site") & ChangeRecord.action.startswith(STAFF_WAKE)))
    if until is not None:
        query = query.where(ChangeRecord.at < until)
    lines = []
    for change in session.exec(query.order_by(ChangeRecord.at.desc()).limit(limit)):
        where, hostname = known.get(change.object_id, (None, None)) if change.object_type == "device" else (None, None)
        subject = f"policy {change.object_id}" if change.object_type == OBJECT_TYPE else f"device {change.object_id}"
        if change.object_type == "site":  # a staff wake request: its site is its object
            where = int(change.object_id) if change.object_id.isdigit() else None
            if device is not None or (site_id is not None and where != site_id) or (
                    site_ids is not None and where not in site_ids):
                continue
            subject = "wake request"
        lines.append(AuditLine(change.at, "change", names.get(where) if where else None, where,
                               int(change.object_id) if change.object_type == "device" else None, hostname,
                               change.action, None, (change.after or {}).get("mode"), f"{subject}: {_summary(change)}",
                               change.actor, {"before": change.before, "after": change.after}))
    return lines


def _summary(change: ChangeRecord) -> str:
    after, before = change.after or {}, change.before or {}
    if "summary" in after:
        return after["summary"]
    keys = sorted(set(after) | set(before))
    return "; ".join(f"{k} {before.get(k)} → {after.get(k)}" for k in keys)[:300] or change.action
