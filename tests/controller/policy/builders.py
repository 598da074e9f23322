"""Hand-built policies, calendars and devices for the engine and schedule specifications.

Dates are from the 2025-26 school year at an English community school (Europe/London):
spring term 5 January to 27 March 2026 with half term 16-20 February and an INSET day on 5 January;
summer term 13 April to 21 July 2026 with half term 25-29 May. The clocks go forward on Sunday
29 March 2026 and back on Sunday 25 October 2026.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from controller.policy.calendar import Calendar, DateSpan, Nation
from controller.policy.model import (
    WEEKDAYS,
    Action,
    Activity,
    DeviceFacts,
    IdleRule,
    Mode,
    Policy,
    PowerRule,
    Selector,
    TimeRange,
    WeeklyHours,
)
from controller.policy.walltime import instant, zone

LONDON = zone("Europe/London")
SITE = "Hillside Primary"


def local(text: str) -> datetime:
    """ "2026-02-16 18:30" on the wall clock in London."""
    value = datetime.fromisoformat(text)
    return instant(value.date(), value.time(), LONDON)


def time_range(text: str) -> TimeRange:
    start, end = (int(part[:2]) * 60 + int(part[3:]) for part in text.split("-"))
    return TimeRange(start, end)


def weekly(weekdays: str | None = "08:30-16:00", **days: str) -> WeeklyHours:
    """Monday to Friday ``weekdays``; named days (``saturday="09:00-13:00"``) override."""
    table = [(time_range(weekdays),) if weekdays and i < 5 else () for i in range(7)]
    for name, text in days.items():
        table[WEEKDAYS.index(name)] = () if text == "closed" else tuple(time_range(t) for t in text.split(","))
    return WeeklyHours(tuple(table), "test.yaml:10")


def school_calendar(name: str = "la-2025-26", nation: Nation = Nation.ENGLAND, **changes) -> Calendar:
    base = Calendar(
        name=name, nation=nation, covers=DateSpan(date(2025, 8, 1), date(2026, 8, 31)),
        terms=(DateSpan(date(2025, 9, 4), date(2025, 12, 19), "Autumn term"),
               DateSpan(date(2026, 1, 5), date(2026, 3, 27), "Spring term"),
               DateSpan(date(2026, 4, 13), date(2026, 7, 21), "Summer term")),
        half_terms=(DateSpan(date(2025, 10, 27), date(2025, 10, 31), "Autumn half term"),
                    DateSpan(date(2026, 2, 16), date(2026, 2, 20), "Spring half term"),
                    DateSpan(date(2026, 5, 25), date(2026, 5, 29), "Summer half term")),
        inset_days=(DateSpan(date(2026, 1, 5), date(2026, 1, 5), "INSET day"),),
    )
    return replace(base, **changes)


CALENDARS = {"la-2025-26": school_calendar()}


def power(**changes) -> PowerRule:
    base = PowerRule(hours=weekly(), idle=IdleRule(minutes_without_input=20, cpu_below_percent=10),
                     action=Action.SHUTDOWN, mode=Mode.OBSERVE, calendars=("la-2025-26",))
    return replace(base, **changes)


def policy(name: str = "hillside", applies_to: Selector | None = None, **changes) -> Policy:
    base = Policy(name=name, applies_to=applies_to or Selector(sites=(SITE,)), power=power(),
                  source=f"{name}.yaml:1")
    return replace(base, **changes)


def device(**changes) -> DeviceFacts:
    base = DeviceFacts(device_id="7", hostname="HILL-R01-PC01", site=SITE, device_class="desktop")
    return replace(base, **changes)


IDLE = Activity(idle_minutes=45, cpu_percent=2, sessions=0, processes=())
IN_USE = Activity(idle_minutes=1, cpu_percent=35, sessions=1, processes=("WINWORD.EXE",))
