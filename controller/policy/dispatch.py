"""The schedule each agent gets with its ingest reply, cached so ingest stays fast.

A device's schedule is compiled at most once per (device, policy-set version, day) and only sent when
the agent does not already hold it (it says which version it holds with each batch), so an ordinary
report costs a dictionary lookup on the event loop. Compiling (a miss) reads the device and its site's
device list from the database, so it runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from agent.protocol import AgentSchedule
from controller.energy.intensity import cached_for_site
from controller.policy.model import DeviceFacts
from controller.policy.plan import Distinctions, context_key, distinctions, for_agent, plan, stagger_offsets
from controller.policy.store import ActiveSet, PolicyStore
from controller.policy.walltime import instant, zone
from controller.register.facts import device_facts
from controller.register.models import ChangeRecord, Device, Site
from controller.timeutil import utcnow

log = logging.getLogger(__name__)


MAX_TEMPLATES = 4096  # wire schedules kept per policy-set version (contexts × days)
OFFSET_DAYS_KEPT = 7
CHANGE_OVERLAP = timedelta(seconds=30)


@dataclass(frozen=True)
class _Cached:
    policy_version: str
    day: date
    relay: bool
    schedule: AgentSchedule


def _placed(facts: DeviceFacts) -> str:
    """The room and tags in the version, so a device placed anew gets its schedule sent again."""
    return f"{zlib.crc32(repr((facts.group, sorted(facts.tags))).encode()):08x}"


def _no_relays() -> frozenset[int]:
    return frozenset()


class SchedulePlanner:
    def __init__(self, store: PolicyStore, engine: Engine, hours: int = 48, per_minute: int = 60,
                 clock: Callable[[], datetime] = utcnow,
                 relays: Callable[[], frozenset[int]] = _no_relays) -> None:
        """``relays`` names the devices elected to relay wakes: they must stay awake out of hours, or a
        subnet's wakes would have nobody to send them (the wake service re-elects every few seconds)."""
        self._store = store
        self._relays = relays
        self._engine = engine
        self._days = max(1, math.ceil(hours / 24)) + 1  # from today's midnight, always ``hours`` ahead
        self._per_minute = per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._schedules: dict[int, _Cached] = {}
        self._offsets: dict[tuple[int, str, date], dict[int, int]] = {}
        self._templates: dict[tuple, AgentSchedule] = {}
        self._templates_for: str | None = None
        self._named: Distinctions | None = None
        self._changes_seen = utcnow()  # when the change log was last read (schedules cached before may be stale)
        self._refreshing: asyncio.Task | None = None  # the policies' reload in flight, shared by replies (_refreshed)

    async def reply(self, device_id: int, held_version: str | None, at: datetime | None = None
                    ) -> AgentSchedule | None:
        """The schedule to send with an ingest reply; None when the agent already holds it, or when there are
        no policies and it holds none (nothing to enforce: older agents and policy-free estates pay nothing).
        ``at``: the past instant a replaying agent asked its schedule from (ingest checked it); None is now."""
        if self._store.due():
            await self._refreshed()
        active = self._store.current()
        if held_version is None and not active.policies:
            return None
        cached = self._schedules.get(device_id)
        if (cached is None or cached.day != (at or self._clock()).date() or cached.policy_version != active.version
                or cached.relay != (device_id in self._relays())):
            try:
                schedule = await asyncio.to_thread(self.schedule_for, device_id, at)
            except Exception:
                # The reports are already stored: a schedule problem must never cost the agent its acknowledgement
                # (it would resend them). It keeps the schedule it holds, and the next reply tries again.
                log.exception("no power schedule for device %d", device_id)
                return None
        else:
            schedule = cached.schedule
        return None if schedule.version == held_version else schedule

    async def _refreshed(self) -> None:
        """Reload the policies and forget relabelled devices' schedules once for every reply that finds them
        due. Each reply in flight used to start its own (64 at the ingest benchmark's ceiling, every two
        seconds: each re-reading the policy files, the switched modes and the change log), which cost a
        twentieth of the controller's time and held up the replies behind them."""
        if self._refreshing is None:
            self._refreshing = asyncio.get_running_loop().create_task(self._refresh())
            self._refreshing.add_done_callback(self._refresh_done)
        await asyncio.shield(self._refreshing)

    async def _refresh(self) -> None:
        await asyncio.to_thread(self._store.refresh)
        await asyncio.to_thread(self.forget_relabelled)

    def _refresh_done(self, _task: asyncio.Task) -> None:
        self._refreshing = None

    def forget_relabelled(self) -> None:
        """Drop the cached schedules of devices changed since the last look (by hand, the register CSV, their
        agent), on this replica or another: the change log records every write to a device, so their next
        report gets a schedule compiled from the room and tags they have now. The look overlaps the last one by
        ``CHANGE_OVERLAP``: a change committed late on another replica is still seen."""
        now = utcnow()
        with Session(self._engine) as session:
            changed = session.exec(select(ChangeRecord.object_id).where(
                ChangeRecord.object_type == "device", col(ChangeRecord.at) > self._changes_seen - CHANGE_OVERLAP)
            ).all()
        with self._lock:
            for object_id in set(changed):
                self._schedules.pop(int(object_id), None)
            self._changes_seen = now

    def schedule_for(self, device_id: int, at: datetime | None = None) -> AgentSchedule:
        """From local midnight of the day holding ``at`` (default now) for ``hours`` ahead and more."""
        active = self._store.current()
        now = at or self._clock()
        today = now.date()
        relay = device_id in self._relays()
        cached = self._schedules.get(device_id)
        if (cached is not None and cached.policy_version == active.version and cached.day == today
                and cached.relay == relay):
            return cached.schedule
        with Session(self._engine) as session:
            device = session.get(Device, device_id)
            if device is None:
                raise LookupError(f"device {device_id} is not in the register")
            site = session.get(Site, device.site_id)
            facts = device_facts(device, site, active.placement, relay)
            offset = self._offset(session, device.site_id, device_id, active.version, today)
            tz = zone(site.timezone or "Europe/London")
            start = instant(now.astimezone(tz).date(), time(0), tz)
            carbon_aware = any(m.carbon_aware for p in active.policies for m in p.maintenance)
            intensity = {site.name: cached_for_site(session, site.postcode, start, start + timedelta(
                days=self._days))} if carbon_aware else None
        schedule = replace(self._template(active, today, facts, start, intensity),
                           version=f"{active.version}-{start:%Y%m%d}-{offset}-{_placed(facts)}"
                                   f"{'-relay' if relay else ''}",
                           start_offset_seconds=offset)
        with self._lock:
            self._schedules[device_id] = _Cached(active.version, today, relay, schedule)
        return schedule

    def _template(self, active: ActiveSet, today: date, facts: DeviceFacts, start: datetime,
                  intensity: dict | None) -> AgentSchedule:
        """The wire schedule shared by every device of one context (their windows are one tuple in memory).

        Under the lock: compiling is CPU-bound anyway, and a version change must not mix two sets' keys."""
        with self._lock:
            # Kept across days (each key holds its day's start), so agents replaying different days share them.
            if self._templates_for != active.version or len(self._templates) > MAX_TEMPLATES:
                self._templates, self._templates_for = {}, active.version
                self._named = distinctions(active.policies)
            key = (start, context_key(facts, self._named), facts.site if intensity else None)
            template = self._templates.get(key)
            if template is None:
                compiled = plan(active.policies, active.calendars, [facts], start, self._days, intensity)
                template = self._templates[key] = for_agent(compiled[facts.device_id], "", 0)
            return template

    def _offset(self, session: Session, site_id: int, device_id: int, version: str, today: date) -> int:
        key = (site_id, version, today)
        offsets = self._offsets.get(key)
        if offsets is None or device_id not in offsets:
            ids = session.exec(select(Device.id).where(Device.site_id == site_id)).all()
            offsets = stagger_offsets(list(ids), self._per_minute)
            with self._lock:
                # Older days' and superseded versions' tables are dropped as new ones arrive (a few days are
                # kept for agents replaying the past).
                for old in sorted(k for k in self._offsets if k[0] == site_id)[:-OFFSET_DAYS_KEPT]:
                    del self._offsets[old]
                self._offsets[key] = offsets
        return offsets[device_id]

