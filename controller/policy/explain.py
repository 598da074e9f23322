"""What `caretaker policy check` and `caretaker policy explain` need beyond the engine: the device as the
register knows it, the time as a person types it, and decisions and policy sets as text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from agent.protocol import AgentSchedule
from controller.policy.engine import context
from controller.policy.loader import PolicySet
from controller.policy.model import Activity, Decision, DeviceFacts
from controller.policy.store import ActiveSet
from controller.policy.walltime import instant, zone
from controller.register.facts import device_facts
from controller.register.models import Device, Site
from controller.register.models import Report as ReportRow

_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?([+-]\d{2}:?\d{2}|Z)?")


def facts_for(session: Session, device: Device, active: ActiveSet, activity: Activity | None = None,
              tags: tuple[str, ...] | None = None, group: str | None = None) -> DeviceFacts:
    """The device as its agent's schedule is compiled (register.facts: rooms and tags by their sources and
    ``active``'s placement rules), with the operator's what-if ``tags``/``group`` replacing them when given."""
    found = device_facts(device, session.get(Site, device.site_id), active.placement, activity=activity)
    if tags is not None:
        found = replace(found, tags=tags)
    if group is not None:
        found = replace(found, group=group)
    return found


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


def site_zone(active: ActiveSet, device: DeviceFacts) -> ZoneInfo:
    return context(active.policies, active.calendars, device).tz


def parse_moment(text: str, tz: ZoneInfo) -> datetime:
    """ "2026-02-16 18:30" on the site's wall clock, or with an offset ("2026-02-16T18:30+00:00")."""
    if not _MOMENT.fullmatch(text.strip()):
        raise ValueError(f"{text!r} is not a time: write YYYY-MM-DD HH:MM, e.g. 2026-02-16 18:30")
    value = datetime.fromisoformat(text.strip())
    return value if value.tzinfo is not None else instant(value.date(), value.time(), tz)


def render(decision: Decision, device: DeviceFacts, reported: ReportedProcesses | None = None,
           what_if: tuple[str, ...] = ()) -> list[str]:
    """``what_if``: the facts the operator replaced (tags, group), said so, since the agent is not told them."""
    at = decision.at
    lines = [
        f"Device    {device.device_id}  {device.hostname}  ({device.device_class}, site {device.site}, "
        f"room {device.group or '-'}, tags {', '.join(device.tags) or '-'})",
        *([f"What if   {' and '.join(what_if)} as given on the command line, not as stored: the device's agent "
           "gets the stored ones"] if what_if else []),
        f"At        {at:%a %Y-%m-%d %H:%M} {at.tzname()} ({at:%z})",
        *([f"Reported  {reported.describe()}"] if reported is not None else []),
        f"Decision  {decision.summary}",
        "Because",
    ]
    width = max(len(rule.step) for rule in decision.rules) if decision.rules else 0
    lines.extend(f"  {rule.step:<{width}}  {rule.text}" + (f"  [{rule.source}]" if rule.source else "")
                 for rule in decision.rules)
    return lines


@dataclass(frozen=True)
class ScheduleLine:
    """One window the agent receives, in the site's time as well as the UTC it is sent in."""

    local_start: datetime
    local_end: datetime
    start: datetime
    end: datetime
    intent: str
    action: str | None
    mode: str | None
    reason: str  # the rule that produced it, as the agent logs it: "exam_window: GCSE", "out_of_hours"


def schedule_lines(schedule: AgentSchedule, since: datetime, days: int) -> list[ScheduleLine]:
    """The windows of ``schedule`` that overlap ``days`` days from the local midnight of ``since``."""
    tz = zone(schedule.timezone)
    first = instant(since.astimezone(tz).date(), time(0), tz)
    last = instant(first.date() + timedelta(days=days), time(0), tz)
    return [ScheduleLine(w.start.astimezone(tz), w.end.astimezone(tz), w.start, w.end, w.intent.value,
                         w.action.value if w.action else None, w.mode.value if w.mode else None, w.reason)
            for w in schedule.windows if w.end > first and w.start < last]


def summary(policy_set: PolicySet, warnings: Sequence[str] = ()) -> list[str]:
    """What the set holds, then ``warnings`` (policy/warnings.py), then the ok line."""
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
    files = Counter(rule.source.rsplit(":", 1)[0] for rule in policy_set.placement)
    lines.extend(f"{path}: {count} placement rule(s)" for path, count in files.items())
    lines.extend(f"note: {note}" for note in policy_set.notes)
    lines.extend(f"warning: {warning}" for warning in warnings)
    lines.append(f"ok: {len(policy_set.policies)} policy(ies) and {len(policy_set.calendars)} calendar(s) in "
                 f"{len(policy_set.files)} file(s)")
    return lines
