"""What `caretaker policy check` and `caretaker policy explain` need beyond the engine: the device as the
register knows it, the time as a person types it, and decisions and policy sets as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from controller.policy.engine import context
from controller.policy.loader import PolicySet
from controller.policy.model import Activity, Decision, DeviceFacts
from controller.policy.walltime import instant
from controller.register.devices import DeviceDetail, NotFound, device_detail, list_devices
from controller.register.models import Report as ReportRow

_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?([+-]\d{2}:?\d{2}|Z)?")


def find_device(session: Session, reference: str) -> DeviceDetail:
    """A device by register id, or by hostname (case-insensitive) when that is unambiguous."""
    if reference.isdigit():
        return device_detail(session, int(reference))
    rows = [r for r in list_devices(session) if r.hostname.casefold() == reference.casefold()]
    if not rows:
        raise NotFound(f"no device with id or hostname {reference!r}")
    if len(rows) > 1:
        raise NotFound(f"{len(rows)} devices are called {reference!r}: give the id "
                       f"({', '.join(str(r.id) for r in rows)})")
    return device_detail(session, rows[0].id)


def facts(detail: DeviceDetail, tags: tuple[str, ...] = (), group: str | None = None,
          activity: Activity | None = None) -> DeviceFacts:
    """The register has no tags or rooms yet, so the caller passes them in."""
    device = detail.device
    return DeviceFacts(device_id=str(device.id), hostname=device.hostname, site=device.site,
                       device_class=device.device_class, tags=tags, group=group, activity=activity)


@dataclass(frozen=True)
class ReportedProcesses:
    """What the device's agent last said about the processes its policy waits on."""

    at: datetime
    watched: tuple[str, ...]
    running: tuple[str, ...]

    def describe(self) -> str:
        state = f"{', '.join(self.running)} running" if self.running else "none running"
        return f"{', '.join(self.watched)}: {state}, as the agent reported at {self.at:%Y-%m-%d %H:%M %Z}"


def reported_processes(session: Session, device_id: str) -> ReportedProcesses | None:
    """The latest report in which the device's agent looked for its policy's ``processes_absent`` names."""
    row = session.exec(select(ReportRow).where(ReportRow.device_id == int(device_id),
                                               col(ReportRow.processes_watched).is_not(None))
                       .order_by(col(ReportRow.end).desc()).limit(1)).first()
    if row is None:
        return None
    return ReportedProcesses(row.end, tuple(row.processes_watched or ()), tuple(row.processes_running or ()))


def activity(idle_minutes: float | None, cpu_percent: float | None, sessions: int | None,
             processes: list[str] | None, reported: ReportedProcesses | None = None) -> Activity | None:
    """What the operator says the device is doing; None when they say nothing, so the agent decides.

    The processes come from the agent's latest report unless the operator names them: nobody at a
    desk knows what runs on a classroom PC, and its agent reports exactly the names the policy waits on.
    """
    if processes is not None:
        return Activity(idle_minutes, cpu_percent, sessions, tuple(processes))
    if reported is not None:
        return Activity(idle_minutes, cpu_percent, sessions, reported.running, reported.watched)
    if idle_minutes is None and cpu_percent is None and sessions is None:
        return None
    return Activity(idle_minutes, cpu_percent, sessions)


def site_zone(policy_set: PolicySet, device: DeviceFacts) -> ZoneInfo:
    return context(policy_set.policies, policy_set.calendars, device).tz


def parse_moment(text: str, tz: ZoneInfo) -> datetime:
    """ "2026-02-16 18:30" on the site's wall clock, or with an offset ("2026-02-16T18:30+00:00")."""
    if not _MOMENT.fullmatch(text.strip()):
        raise ValueError(f"{text!r} is not a time: write YYYY-MM-DD HH:MM, e.g. 2026-02-16 18:30")
    value = datetime.fromisoformat(text.strip())
    return value if value.tzinfo is not None else instant(value.date(), value.time(), tz)


def render(decision: Decision, device: DeviceFacts, reported: ReportedProcesses | None = None) -> list[str]:
    at = decision.at
    lines = [
        f"Device    {device.device_id}  {device.hostname}  ({device.device_class}, site {device.site}, "
        f"group {device.group or '-'}, tags {', '.join(device.tags) or '-'})",
        f"At        {at:%a %Y-%m-%d %H:%M} {at.tzname()} ({at:%z})",
        *([f"Reported  {reported.describe()}"] if reported is not None else []),
        f"Decision  {decision.summary}",
        "Because",
    ]
    width = max(len(rule.step) for rule in decision.rules) if decision.rules else 0
    lines.extend(f"  {rule.step:<{width}}  {rule.text}" + (f"  [{rule.source}]" if rule.source else "")
                 for rule in decision.rules)
    return lines


def summary(policy_set: PolicySet) -> list[str]:
    lines = []
    for policy in policy_set.policies:
        what = (f"{policy.power.action} out of hours, mode {policy.power.mode}" if policy.power
                else "exceptions only")
        extras = [f"{len(items)} {label}" for label, items in (
            ("never-power-down", policy.never_power_down), ("exam window(s)", policy.exam_windows),
            ("override(s)", policy.overrides), ("maintenance window(s)", policy.maintenance)) if items]
        lines.append(f"{policy.source}: policy {policy.name!r} ({policy.applies_to.describe()}): {what}"
                     + (f"; {', '.join(extras)}" if extras else ""))
    for calendar in policy_set.calendars.values():
        lines.append(f"{calendar.source}: calendar {calendar.name!r} ({calendar.nation}, {calendar.covers}): "
                     f"{len(calendar.terms)} term(s), {len(calendar.inset_days)} INSET day(s)")
    lines.extend(f"note: {note}" for note in policy_set.notes)
    lines.append(f"ok: {len(policy_set.policies)} policy(ies) and {len(policy_set.calendars)} calendar(s) in "
                 f"{len(policy_set.files)} file(s)")
    return lines
