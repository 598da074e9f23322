"""Maintenance windows: what became of each device in one: woken, updated, powered down (the audit of
"wake, keep on until the updates are in, then power down"), and the wakes that failed, with their likely
cause.

The windows are the policy engine's own (``spans_on``, confirmed by ``decide_in``, so an exam window
that cancels maintenance cancels it here too); what happened comes from the wake requests and the audit
log: the agents' update states (kind "updates"), their power actions and deferrals. The wakes themselves
are queued by the scheduled-wake job (power/scheduled.py) from the compiled schedules, like every wake a
schedule promises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from controller.energy.accounting import jsonable
from controller.policy.calendar import Calendar
from controller.policy.engine import context, decide_in, spans_on
from controller.policy.model import Basis, Policy
from controller.power.models import WakeRequest, WakeStatus
from controller.power.wake import likely_cause
from controller.register.facts import device_facts
from controller.register.models import ActionRecord, Device, Site, UpdateState
from controller.register.placement import PlacementRule
from controller.timeutil import as_utc

POWER_DOWN_KINDS = ("shutdown", "sleep", "hibernate")
WAKE_LEAD = timedelta(hours=1)  # a wake sent up to this long before the window counts as the window's
POWER_DOWN_GRACE = timedelta(hours=2)  # the power-down after the window: idle criteria and stagger take time


class MaintenanceError(LookupError):
    pass


@dataclass
class DeviceInWindow:
    window: str
    start: datetime  # UTC
    end: datetime
    site: str
    device_id: int
    hostname: str
    woken: str  # confirmed, failed, sent, queued, ordered, or "not woken"
    wake_failure: str | None  # what the wake service said
    wake_cause: str | None  # the likely cause the agent's readiness points to, for a failed wake
    updated: str  # installed, installing, reboot_pending, none_seen
    update_detail: str
    powered_down: str  # "shutdown done at 02:47", "failed", "not yet"
    deferred_for_updates: int  # power-downs the agent put off while updates installed


@dataclass
class MaintenanceAudit:
    since: datetime
    until: datetime
    devices: list[DeviceInWindow]

    @property
    def wake_failures(self) -> list[DeviceInWindow]:
        return [d for d in self.devices if d.woken == WakeStatus.FAILED]

    def to_json(self) -> dict[str, object]:
        return jsonable({"since": self.since, "until": self.until, "devices": [asdict(d) for d in self.devices],
                         "wake_failures": [asdict(d) for d in self.wake_failures]})


def _windows(session: Session, policies: Sequence[Policy], calendars: Mapping[str, Calendar],
             placement: Sequence[PlacementRule], since: datetime, until: datetime, site: str | None = None):
    """(device, site, window name, start, end) for each maintenance window in force starting in [since, until)."""
    if not any(p.maintenance for p in policies):
        return
    query = select(Device, Site).join(Site, col(Site.id) == Device.site_id)
    if site is not None:
        query = query.where(Site.name == site)
    for device, at_site in session.exec(query.order_by(Site.name, Device.hostname)).all():
        ctx = context(policies, calendars, device_facts(device, at_site, placement))
        if not ctx.maintenance:
            continue
        day = since.astimezone(ctx.tz).date() - timedelta(days=1)
        while day <= until.astimezone(ctx.tz).date():
            for span in spans_on(ctx, day):
                start, end = span.start.astimezone(UTC), span.end.astimezone(UTC)
                if (span.basis is Basis.MAINTENANCE and since <= start < until
                        and decide_in(ctx, start).basis is Basis.MAINTENANCE):
                    yield device, at_site, span.label, start, end
            day += timedelta(days=1)


def maintenance_audit(session: Session, policies: Sequence[Policy], calendars: Mapping[str, Calendar],
                      placement: Sequence[PlacementRule], since: datetime, until: datetime, window: str | None = None,
                      site: str | None = None) -> MaintenanceAudit:
    """Every device's maintenance windows that start in [since, until), and what became of it in each."""
    if site is not None and session.exec(select(Site).where(Site.name == site)).first() is None:
        raise MaintenanceError(f"no site called {site!r}")
    names = {m.name for p in policies for m in p.maintenance}
    if window is not None and window not in names:
        raise MaintenanceError(f"no maintenance window called {window!r}; the policies have: "
                               f"{', '.join(sorted(names)) or 'none'}")
    since, until = as_utc(since), as_utc(until)
    return MaintenanceAudit(since, until, [
        _what_happened(session, device, at_site, name, start, end)
        for device, at_site, name, start, end in _windows(session, policies, calendars, placement, since, until, site)
        if window in (None, name)])


def _what_happened(session: Session, device: Device, site: Site, name: str, start: datetime,
                   end: datetime) -> DeviceInWindow:
    wake = session.exec(select(WakeRequest).where(
        WakeRequest.device_id == device.id, col(WakeRequest.due_at) >= start - WAKE_LEAD,
        col(WakeRequest.due_at) < end).order_by(col(WakeRequest.id).desc())).first()
    failed = wake is not None and wake.status == WakeStatus.FAILED
    actions = session.exec(select(ActionRecord).where(
        ActionRecord.device_id == device.id, col(ActionRecord.at) >= start,
        col(ActionRecord.at) < end + POWER_DOWN_GRACE).order_by(col(ActionRecord.at), col(ActionRecord.id))).all()
    states = [a for a in actions if a.kind == "updates" and as_utc(a.at) < end]
    seen = [a.outcome for a in states]
    if UpdateState.INSTALLING in seen:
        after = seen[len(seen) - 1 - seen[::-1].index(UpdateState.INSTALLING):]
        updated = "installing" if after[-1] == UpdateState.INSTALLING else "installed"
    else:
        updated = UpdateState.REBOOT_PENDING.value if UpdateState.REBOOT_PENDING in seen else "none_seen"
    downs = [a for a in actions if a.kind in POWER_DOWN_KINDS and a.outcome in ("done", "failed")]
    powered = (f"{downs[0].kind} {downs[0].outcome} at {as_utc(downs[0].at):%H:%M} UTC" if downs else "not yet")
    deferred = sum(1 for a in actions if a.kind in POWER_DOWN_KINDS and a.outcome == "deferred"
                   and (a.details or {}).get("deferred_for") == "updates_installing")
    return DeviceInWindow(
        window=name, start=start, end=end, site=site.name, device_id=device.id, hostname=device.hostname,
        woken=wake.status if wake is not None else "not woken", wake_failure=wake.failure if failed else None,
        wake_cause=likely_cause(device.inventory) if failed else None, updated=updated,
        update_detail=states[-1].reason if states else "", powered_down=powered, deferred_for_updates=deferred)
