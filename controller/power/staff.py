"""A teacher's wake button: staff wake the PCs of their own rooms, now or at a time later today.

Who may wake which room is the staff member's grants (``rooms``: site id and room, folded), given by a
network manager (`caretaker user add NAME --role staff --site S --room R`). The same rules serve the
phone page, the API and a timetable system's staff token:

- **Only their rooms.** A room not granted is refused, and the refusal says nothing about what is there.
- **Every request is audited**, granted or refused, as one change record (action ``staff_wake_*``,
  object ``site`` and the site's id), in the same transaction as its wakes; `caretaker audit` lists them.
- **Rate limits** (per hour): each user's or token's requests (refused ones count, so hammering a room
  that is not theirs is slowed too), and all staff wakes of one site. Past either: refused with the
  seconds until the oldest request in the hour ages out (HTTP 429, Retry-After).
- **Safety.** A device in an exam window at the wake's time is not woken (exams are not interrupted),
  nor is one leaving the estate (awaiting disposal, sanitised or disposed). The wakes join the site's
  paced wave (``request_wakes``), so a room never switches on at once.

No clock is read here: callers pass ``now``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from sqlmodel import Session, col, func, select

from controller.lifecycle.models import Asset
from controller.lifecycle.states import LEAVING
from controller.policy.calendar import Calendar
from controller.policy.engine import decide
from controller.policy.model import Basis, Policy
from controller.policy.walltime import instant, zone
from controller.power.models import WakeRequest
from controller.power.wake import Queued, Skipped, WakeConfig, WakeRow, list_wakes, request_wakes
from controller.register.facts import device_facts
from controller.register.labels import placed_devices
from controller.register.models import ChangeRecord, Device, Site
from controller.register.placement import PlacementRule

WINDOW = timedelta(hours=1)
OBJECT_TYPE = "site"


class Verdict(enum.StrEnum):
    QUEUED = "staff_wake_queued"
    REFUSED = "staff_wake_refused"  # not their room, a time that is not later today, nothing to wake
    LIMITED = "staff_wake_limited"  # over a rate limit: does not count towards it again


@dataclass(frozen=True)
class StaffLimits:
    per_user: int = 10
    per_site: int = 60

    @classmethod
    def from_settings(cls, settings) -> StaffLimits:
        return cls(settings.staff_wakes_per_user_per_hour, settings.staff_wakes_per_site_per_hour)


@dataclass(frozen=True)
class StaffRoom:
    site_id: int
    site: str
    room: str
    devices: int


@dataclass
class StaffWake:
    """What happened to one request: ``refused`` (with an HTTP status) or the wakes queued and skipped."""

    site: str
    room: str
    due_at: datetime | None = None
    queued: list[Queued] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    refused: str | None = None
    status: int = 202  # 403 not theirs, 422 a bad time, 409 nothing to wake, 429 limited
    retry_after: int | None = None


def _roomed(session: Session, site_ids: Iterable[int], rules: Sequence[PlacementRule]) -> list[tuple[Device, str]]:
    """The devices of these sites that have a room, with it, as the register resolves it (placement.py)."""
    return [(p.device, p.labels.room_name) for p in placed_devices(session, rules, site_ids=site_ids)
            if p.labels.room_name]


def staff_rooms(session: Session, rooms: frozenset[tuple[int, str]],
                rules: Sequence[PlacementRule] = ()) -> list[StaffRoom]:
    """The rooms granted, with how many devices the register has in each (0: nobody has set the room yet)."""
    sites = {s.id: s.name for s in session.exec(select(Site).where(col(Site.id).in_({s for s, _ in rooms})))}
    counts: dict[tuple[int, str], int] = {}
    names: dict[tuple[int, str], str] = {}
    for device, room in _roomed(session, sites, rules):
        site_id = device.site_id
        key = (site_id, room.strip().casefold())
        if key in rooms:
            counts[key] = counts.get(key, 0) + 1
            names.setdefault(key, room)
    return sorted((StaffRoom(site_id, sites.get(site_id, "?"), names.get((site_id, room), room),
                             counts.get((site_id, room), 0)) for site_id, room in rooms),
                  key=lambda r: (r.site, r.room.casefold()))


def wake_room(session: Session, actor: str, rooms: frozenset[tuple[int, str]], site: str, room: str,
              at: time | None, now: datetime, config: WakeConfig, limits: StaffLimits,
              policies: Sequence[Policy] = (), calendars: Mapping[str, Calendar] | None = None,
              rules: Sequence[PlacementRule] = ()) -> StaffWake:
    """Wake every device in ``room`` at ``site`` now, or at ``at`` (the site's wall clock) later today."""
    result = StaffWake(site=site, room=room)
    site_row = session.exec(select(Site).where(Site.name == site)).first()
    wanted = room.strip().casefold()
    if site_row is None or (site_row.id, wanted) not in rooms:
        _audit(session, actor, site_row, result, now, at, Verdict.REFUSED,
               "not one of your rooms", 403)
        return result
    wait = _over_limit(session, actor, site_row.id, now, limits)
    if wait is not None:
        who, seconds = wait
        _audit(session, actor, site_row, result, now, at, Verdict.LIMITED,
               f"too many wake requests {who} in the last hour; try again in {seconds} s", 429)
        result.retry_after = seconds
        return result
    tz = zone(site_row.timezone or "Europe/London")
    due = now if at is None else instant(now.astimezone(tz).date(), at, tz)
    if at is not None and due < now - timedelta(minutes=1):
        _audit(session, actor, site_row, result, now, at, Verdict.REFUSED,
               f"{at:%H:%M} has passed today; give a later time, or wake now", 422)
        return result
    devices = sorted((d for d, name in _roomed(session, [site_row.id], rules) if name.strip().casefold() == wanted),
                     key=lambda d: d.id)
    if not devices:
        _audit(session, actor, site_row, result, now, at, Verdict.REFUSED, f"no devices in {room}", 409)
        return result
    wakeable, skipped = _safe(session, devices, site_row, due, policies, calendars or {}, rules)
    reason = f"{actor} woke {room}" + (f" for {at:%H:%M}" if at is not None else "")
    wave = request_wakes(session, wakeable, reason, actor, now, config, not_before=due)
    result.due_at, result.queued, result.skipped = due, wave.queued, skipped + wave.skipped
    if not result.queued:
        why = "; ".join(f"{s.hostname}: {s.why}" for s in result.skipped)
        _audit(session, actor, site_row, result, now, at, Verdict.REFUSED, f"nothing to wake: {why}", 409)
        return result
    _audit(session, actor, site_row, result, now, at, Verdict.QUEUED, reason, 202)
    return result


def _safe(session: Session, devices: list[Device], site: Site, due: datetime, policies: Sequence[Policy],
          calendars: Mapping[str, Calendar], rules: Sequence[PlacementRule]) -> tuple[list[Device], list[Skipped]]:
    """The devices a wake may reach at ``due``; the others with why not (an exam window, leaving the estate)."""
    leaving = set(session.exec(select(Asset.device_id).where(
        col(Asset.device_id).in_([d.id for d in devices]), col(Asset.state).in_([s.value for s in LEAVING])))) \
        if devices else set()
    wakeable, skipped = [], []
    for device in devices:
        if device.id in leaving:
            skipped.append(Skipped(device.id, device.hostname, "leaving the estate (awaiting disposal or disposed)"))
            continue
        if policies:
            decision = decide(policies, calendars, device_facts(device, site, rules), due)
            if decision.basis is Basis.EXAM_WINDOW:
                skipped.append(Skipped(device.id, device.hostname, f"exam window {decision.label!r} at "
                                                                   f"{decision.at:%H:%M}: not woken"))
                continue
        wakeable.append(device)
    return wakeable, skipped


def _over_limit(session: Session, actor: str, site_id: int, now: datetime,
                limits: StaffLimits) -> tuple[str, int] | None:
    """Which limit a new request would pass, and the whole seconds until it would not; None if neither."""
    since = now - WINDOW
    mine = select(ChangeRecord.at).where(
        ChangeRecord.actor == actor, col(ChangeRecord.action).in_([Verdict.QUEUED, Verdict.REFUSED]),
        ChangeRecord.at >= since)
    site = select(ChangeRecord.at).where(
        ChangeRecord.action == Verdict.QUEUED, ChangeRecord.object_type == OBJECT_TYPE,
        ChangeRecord.object_id == str(site_id), ChangeRecord.at >= since)
    for who, query, limit in (("from you", mine, limits.per_user), ("for this site", site, limits.per_site)):
        count = session.exec(select(func.count()).select_from(query.subquery())).one()
        if count >= limit:
            oldest = session.exec(query.order_by(col(ChangeRecord.at)).offset(count - limit)).first()
            return who, max(1, math.ceil((oldest + WINDOW - now).total_seconds()))
    return None


def _audit(session: Session, actor: str, site: Site | None, result: StaffWake, now: datetime, at: time | None,
           verdict: Verdict, why: str, status: int) -> None:
    if verdict is not Verdict.QUEUED:
        result.refused, result.status = why, status
    session.add(ChangeRecord(
        at=now, actor=actor[:100], action=verdict.value, object_type=OBJECT_TYPE,
        object_id=str(site.id) if site else "-",
        after={"summary": f"{result.room}: {why}"[:300], "site": result.site[:100], "room": result.room[:100],
               "at": f"{at:%H:%M}" if at else "now", "status": status,
               "wakes": [q.wake_id for q in result.queued],
               "skipped": [f"{s.hostname}: {s.why}" for s in result.skipped][:50]}))


def room_wakes(session: Session, rooms: frozenset[tuple[int, str]], limit: int = 50,
               rules: Sequence[PlacementRule] = ()) -> list[WakeRow]:
    """The latest wakes of the devices in these rooms, each with what happened to it (``describe``)."""
    ids = [d.id for d, room in _roomed(session, {s for s, _ in rooms}, rules)
           if (d.site_id, room.strip().casefold()) in rooms]
    if not ids:
        return []
    wake_ids = session.exec(select(WakeRequest.id).where(col(WakeRequest.device_id).in_(ids))
                            .order_by(col(WakeRequest.id).desc()).limit(limit)).all()
    return list_wakes(session, limit=limit, ids=wake_ids) if wake_ids else []
