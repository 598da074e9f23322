"""A device's decisions for the next days as a schedule the agent can carry out without the controller.

The schedule is the engine's decision, asked at every instant where it could change (local midnights,
the edges of school hours, wake times, exam and maintenance windows, overrides), with neighbours that
say the same merged. So the schedule and `caretaker policy explain` can never disagree.

Times are aware datetimes in the site's zone: 07:30 stays 07:30 on the wall across the March and
October clock changes, a time the October night repeats happens once (the first time), and a time
the March night skips happens when the clocks jump (walltime.py). Compare and subtract them in UTC:
Python compares datetimes that share a zone by their wall time (``Window.duration`` does this).

Wakes are sent only where the device should already be off: for the wake-before-school time and for
maintenance windows. School hours without a wake time leave switching on to the people in the room.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from controller.energy.intensity import IntensityPeriod, lowest_carbon_window
from controller.policy.calendar import Calendar
from controller.policy.engine import Context, Span, context, decide_in, spans_on
from controller.policy.model import (
    Action,
    Basis,
    DaytimeSleep,
    Decision,
    DeviceFacts,
    IdleRule,
    Intent,
    Mode,
    Policy,
    WarningSettings,
)
from controller.policy.walltime import instant, minutes_after_midnight

MAX_DAYS = 31
_WAKE_BASES = (Basis.WAKE_BEFORE_SCHOOL, Basis.MAINTENANCE)
_EXCEPTION_BASES = (Basis.NEVER_POWER_DOWN, Basis.OVERRIDE, Basis.EXAM_WINDOW)


@dataclass(frozen=True)
class Window:
    """From ``start`` up to ``end`` the device should be on, or off once idle (``intent``), because of ``basis``."""

    start: datetime
    end: datetime
    intent: Intent
    basis: Basis
    label: str
    action: Action | None
    mode: Mode | None
    daytime_sleep: DaytimeSleep | None = None  # keep on, but sleep once idle this long (school hours only)
    until_updates_done: bool = False  # a maintenance window that ends once the OS updates are in

    @property
    def duration(self) -> timedelta:
        # In UTC: subtracting datetimes that share a zone gives wall-clock time, an hour out on change nights.
        return self.end.astimezone(UTC) - self.start.astimezone(UTC)


@dataclass(frozen=True)
class Wake:
    at: datetime
    basis: Basis
    label: str


@dataclass(frozen=True)
class Schedule:
    device_id: str
    timezone: str
    start: datetime
    end: datetime
    policy: str | None
    idle: IdleRule | None  # the agent judges idleness locally with this
    warning: WarningSettings | None
    retry_minutes: int | None
    windows: tuple[Window, ...]  # back to back from start to end
    wakes: tuple[Wake, ...]

    @property
    def power_down_windows(self) -> tuple[Window, ...]:
        return tuple(w for w in self.windows if w.intent is Intent.POWER_DOWN)

    @property
    def maintenance_windows(self) -> tuple[Window, ...]:
        return tuple(w for w in self.windows if w.basis is Basis.MAINTENANCE)

    @property
    def exceptions(self) -> tuple[Window, ...]:
        return tuple(w for w in self.windows if w.basis in _EXCEPTION_BASES)


def compile_schedule(policies: Sequence[Policy], calendars: Mapping[str, Calendar], device: DeviceFacts,
                     start: datetime, days: int = 7, intensity: Sequence[IntensityPeriod] = ()) -> Schedule:
    """The schedule for ``device`` from ``start`` (aware) for ``days`` days of the site's calendar.

    ``intensity`` is the grid's carbon forecast for the site, if any: carbon-aware maintenance windows
    move to its lowest-carbon stretch, and keep their fixed start where it does not reach."""
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError(f"naive datetime {start.isoformat()} has no time zone")
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"a schedule covers 1 to {MAX_DAYS} days, not {days}")
    ctx = context(policies, calendars, replace(device, activity=None))
    begin = start.astimezone(ctx.tz)
    end = instant(begin.date() + timedelta(days=days), begin.timetz().replace(tzinfo=None), ctx.tz)
    if intensity:
        ctx = replace(ctx, placed=place_maintenance(ctx, begin, end, intensity))
    # Instants are kept in UTC until the end: aware datetimes sharing a zone compare by wall time,
    # which would merge the two 01:30s of the October night.
    first, last = begin.astimezone(UTC), end.astimezone(UTC)
    moments = [first, *sorted(m for m in _edges(ctx, begin, end) if first < m < last)]
    windows = _merge(ctx, [(moment, decide_in(ctx, moment)) for moment in moments], last)
    power = ctx.winner.power if ctx.winner else None
    school_wakes = [s for day in _days(begin, end) for s in spans_on(ctx, day) if s.basis is Basis.WAKE_BEFORE_SCHOOL
                    and first <= s.start.astimezone(UTC) < last]
    return Schedule(
        device_id=device.device_id, timezone=ctx.tz.key, start=begin, end=end,
        policy=ctx.winner.name if ctx.winner else None, idle=power.idle if power else None,
        warning=power.warning if power and power.mode is Mode.WARN else None,  # daytime sleep warns the same way
        retry_minutes=power.retry_minutes if power and power.mode is Mode.PASSIVE else None,
        windows=windows, wakes=_wakes(windows, school_wakes))


def place_maintenance(ctx: Context, begin: datetime, end: datetime,
                      intensity: Sequence[IntensityPeriod]) -> dict[tuple[str, date], datetime]:
    """For each carbon-aware maintenance window on each day of the schedule, the start of its
    lowest-carbon stretch inside ``between`` (a day the forecast does not cover keeps the fixed start)."""
    placed: dict[tuple[str, date], datetime] = {}
    day = begin.date()
    while day <= end.date():
        for window, tz in ctx.maintenance:
            if window.carbon_aware is None or day.weekday() not in window.weekdays:
                continue
            earliest = minutes_after_midnight(day, window.carbon_aware.start, tz)
            latest = minutes_after_midnight(day, window.carbon_aware.end, tz)
            chosen = lowest_carbon_window(intensity, earliest, latest, timedelta(minutes=window.minutes))
            if chosen is not None:
                placed[window.name, day] = chosen.astimezone(tz)
        day += timedelta(days=1)
    return placed


def _edges(ctx: Context, begin: datetime, end: datetime) -> set[datetime]:
    """Every instant (in UTC) at which the decision may change: the engine's spans, midnights and overrides."""
    edges: set[datetime] = set()
    day = begin.date() - timedelta(days=1)
    while day <= end.date() + timedelta(days=1):
        edges.add(instant(day, time(0), ctx.tz).astimezone(UTC))
        for span in spans_on(ctx, day):
            edges.update((span.start.astimezone(UTC), span.end.astimezone(UTC)))
        day += timedelta(days=1)
    for override in ctx.overrides:
        edges.update(m.astimezone(UTC) for m in (override.starts, override.expires) if m is not None)
    return edges


def _merge(ctx: Context, decisions: list[tuple[datetime, Decision]], end: datetime) -> tuple[Window, ...]:
    windows: list[Window] = []
    for_updates = {m.name for m, _ in ctx.maintenance if m.until_updates_done}
    for (moment, decision), following in zip(decisions, [*(m for m, _ in decisions[1:]), end], strict=True):
        window = Window(moment.astimezone(ctx.tz), following.astimezone(ctx.tz), decision.intent, decision.basis,
                        decision.label, decision.action, decision.mode, decision.daytime_sleep,
                        decision.basis is Basis.MAINTENANCE and decision.label in for_updates)
        last = windows[-1] if windows else None
        if last is not None and _same(last, window):
            windows[-1] = replace(last, end=window.end)
        else:
            windows.append(window)
    return tuple(windows)


def _same(a: Window, b: Window) -> bool:
    return (a.intent, a.basis, a.label, a.action, a.mode, a.daytime_sleep) == (
        b.intent, b.basis, b.label, b.action, b.mode, b.daytime_sleep)


def _days(begin: datetime, end: datetime) -> list[date]:
    return [begin.date() + timedelta(days=n) for n in range((end.date() - begin.date()).days + 1)]


def _wakes(windows: tuple[Window, ...], school_wakes: Sequence[Span]) -> tuple[Wake, ...]:
    """A wake where a window that wants the device on follows a power-down window; and the wake before
    school on an exam day, which an exam window keeping the device on from midnight would otherwise hide
    (a Hall PC shut down over the weekend must be on for a Monday exam)."""
    found = [Wake(w.start, w.basis, w.label) for previous, w in itertools.pairwise(windows)
             if w.basis in _WAKE_BASES and previous.intent is Intent.POWER_DOWN]
    for span in school_wakes:
        moment = span.start.astimezone(UTC)
        window = next((w for w in windows if w.start.astimezone(UTC) <= moment < w.end.astimezone(UTC)), None)
        if window is not None and window.basis is Basis.EXAM_WINDOW and _off_before(windows, window):
            found.append(Wake(span.start, Basis.WAKE_BEFORE_SCHOOL, span.label))
    return tuple(sorted(found, key=lambda w: w.at.astimezone(UTC)))


def _off_before(windows: tuple[Window, ...], window: Window) -> bool:
    """Whether the device may be off when ``window`` begins: the window before it powers devices down, or
    the schedule begins with it (what came before is not known here; waking a device that is on is harmless)."""
    index = windows.index(window)
    return index == 0 or windows[index - 1].intent is Intent.POWER_DOWN
