"""Warnings before they bite: things in a valid policy set that will quietly do nothing, or the wrong thing.

`caretaker policy check` and the console's validate print them; none of them fails the check.
- an exception (never_power_down, exam window, override) that matches no device in the register: usually
  a room or tag nobody set, so a signage PC or an exam hall would be powered down after all;
- a policy's calendars that have ended or end within 30 days: days after the end are unknown to the
  calendar and are treated as school days (so school hours apply in the summer holiday);
- terms that overlap within a calendar (usually a typo in a date).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import date, timedelta

from controller.policy.calendar import Calendar
from controller.policy.model import DeviceFacts, Selector

ENDING_SOON = timedelta(days=30)


def policy_warnings(policies, calendars: dict[str, Calendar], today: date,
                    devices: Sequence[DeviceFacts] | None) -> list[str]:
    """``devices``: the register as the schedules see it (None: no database, so selectors are not checked)."""
    found: list[str] = []
    if devices is not None:
        for policy in policies:
            named: list[tuple[str, Selector, str]] = [("never_power_down", s, s.source)
                                                      for s in policy.never_power_down]
            named += [(f"exam window {e.name!r}", e.selector, e.source) for e in policy.exam_windows]
            named += [(f"override {o.name!r}", o.selector, o.source) for o in policy.overrides]
            for label, selector, source in named:
                applies = [d for d in devices if policy.applies_to.matches(d)]
                if not any(selector.matches(d) for d in applies):
                    found.append(f"{source}: {label} ({selector.describe()}) matches no device in the register "
                                 f"among the {len(applies)} policy {policy.name!r} applies to: set rooms and tags "
                                 "with `caretaker device set`, the register CSV or placement rules")
    used: set[str] = set()
    for policy in policies:
        if policy.power is None or not policy.power.calendars:
            continue
        chosen = [calendars[name] for name in policy.power.calendars if name in calendars]
        used.update(policy.power.calendars)
        ending = _ending(max(c.covers.last for c in chosen), today) if chosen else None
        if ending:
            found.append(f"{policy.source}: policy {policy.name!r}: its calendars {ending}")
    for calendar in calendars.values():
        if calendar.name not in used and (ending := _ending(calendar.covers.last, today)):
            found.append(f"{calendar.source}: calendar {calendar.name!r} {ending}")
        found.extend(overlapping_terms(calendar))
    return found


def _ending(last: date, today: date) -> str | None:
    after = "days after it are treated as school days: add next year's calendar"
    if last < today:
        return f"ended on {last} ({(today - last).days} day(s) ago); {after}"
    if last - today <= ENDING_SOON:
        return f"end on {last} (in {(last - today).days} day(s)); {after}"
    return None


def overlapping_terms(calendar: Calendar) -> list[str]:
    terms = sorted(calendar.terms, key=lambda t: t.first)
    return [f"{later.source or calendar.source}: calendar {calendar.name!r}: term {later.name or later} "
            f"({later.first} to {later.last}) overlaps {earlier.name or earlier} ({earlier.first} to {earlier.last})"
            for earlier, later in itertools.pairwise(terms) if later.first <= earlier.last]

