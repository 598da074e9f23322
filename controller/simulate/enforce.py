"""What a virtual agent's enforcer does with the schedule the controller sent it, interval by interval.

The rules are the real agent's (agent/enforcer.py), applied to a machine whose day is simulated: in a
power-down window, once the machine has been there for the site's stagger offset and is idle as the
schedule says (no input for ``minutes_without_input``, nobody signed in if asked), the window's mode
decides: observe records once per window; passive skips while someone is signed in and looks again
after ``retry_minutes``; warn counts down for a signed-in user, who defers by using the machine (up to
``max_deferrals`` times); force, and warn or passive with nobody signed in, act. Every decision becomes
a PowerAction with the window's end as ``until``, reported on the next report, as the real agent does.

A machine a policy powered down stays off (or asleep, for ``sleep``) until someone next uses it: the
next moment its own day has it active, when a person would switch it on. A maintenance window wakes a
machine that is off or asleep (Windows' maintenance wake timers; the schedule keeps it on) and it goes
back to its state afterwards; a wake order from a relay switches it on until a policy or its user
switches it off again.

Pure, given the device, the schedule and the state: the same interval asked twice gives the same
answer, which is how a resumed simulation rebuilds an unacknowledged report exactly.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from agent.protocol import (
    ActionOutcome,
    AgentSchedule,
    EnforcementMode,
    IdleCriteria,
    PowerAction,
    PowerActionKind,
    PowerState,
    ScheduleIntent,
    ScheduleWindow,
)
from controller.simulate.estate import Behaviour, Segment, day_plan, left_running, segments_between, since_input

TICK = timedelta(minutes=1)  # the real enforcer looks every minute
SIGNED_IN_WITHIN = timedelta(hours=2)  # a session stays signed in this long after the last input (estate.py)
MAINTENANCE = "maintenance"  # the reason a schedule gives a maintenance window (Basis.MAINTENANCE)
LOOK_AHEAD_DAYS = 14
QUIET_CPU_PERCENT = 5.0  # the most an idle simulated machine uses (estate.report_for: 1-5%)


@dataclass(frozen=True)
class Countdown:
    window: str  # the window's start, ISO
    warned_at: datetime
    deadline: datetime
    deferrals: int = 0


@dataclass(frozen=True)
class EnforcerState:
    """What the agent's enforcer keeps between ticks (agent/enforcer.py keeps the same in its state file)."""

    overrides: tuple[Segment, ...] = ()  # states a policy or a wake imposed, later ones winning
    handled: str | None = None  # the window already observed or acted on
    retry_after: datetime | None = None
    countdown: Countdown | None = None
    pending: tuple[PowerAction, ...] = ()  # not yet on a report

    def to_json(self) -> dict:
        return {"overrides": [[s.start.isoformat(), s.end.isoformat(), s.state.value] for s in self.overrides],
                "handled": self.handled, "retry_after": _iso(self.retry_after),
                "countdown": None if self.countdown is None else [
                    self.countdown.window, self.countdown.warned_at.isoformat(), self.countdown.deadline.isoformat(),
                    self.countdown.deferrals]}

    @classmethod
    def from_json(cls, data: dict) -> EnforcerState:
        countdown = data.get("countdown")
        return cls(overrides=tuple(Segment(datetime.fromisoformat(a), datetime.fromisoformat(b), PowerState(s))
                                   for a, b, s in data.get("overrides", ())),
                   handled=data.get("handled"),
                   retry_after=datetime.fromisoformat(data["retry_after"]) if data.get("retry_after") else None,
                   countdown=Countdown(countdown[0], datetime.fromisoformat(countdown[1]),
                                       datetime.fromisoformat(countdown[2]), countdown[3]) if countdown else None)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass
class _Run:
    """One interval being worked through: the state as it changes, and the machine's pieces under it."""

    b: Behaviour
    schedule: AgentSchedule
    state: EnforcerState
    start: datetime
    end: datetime
    pieces: list[Segment] = field(default_factory=list)

    def refresh(self) -> None:
        self.pieces = overlay(list(segments_between(self.b, self.start, self.end)), self.state.overrides,
                              self.start, self.end)

    def state_at(self, at: datetime) -> PowerState:
        return next((p.state for p in self.pieces if p.start <= at < p.end), PowerState.OFF)

    def next_awake(self, at: datetime) -> datetime | None:
        return next((max(p.start, at) for p in self.pieces if p.awake and p.end > at), None)

    def record(self, window: ScheduleWindow, outcome: ActionOutcome, reason: str, at: datetime) -> None:
        action = PowerAction(at=at, kind=window.action or PowerActionKind.SHUTDOWN, outcome=outcome,
                             mode=window.mode or EnforcementMode.OBSERVE, reason=reason[:500], until=window.end,
                             policy=self.schedule.policy)
        self.state = dataclasses.replace(self.state, pending=(*self.state.pending, action))


def advance(b: Behaviour, schedule: AgentSchedule | None, state: EnforcerState, start: datetime, end: datetime
            ) -> tuple[list[Segment], EnforcerState]:
    """The machine's states over [start, end) under its schedule, and the enforcer's state after it."""
    state = _forget(state, start)
    run = _Run(b, schedule, state, start, end) if schedule is not None else None
    if run is None or start >= schedule.valid_until:  # no schedule, or a stale one: nothing is enforced
        return overlay(list(segments_between(b, start, end)), state.overrides, start, end), state
    _maintenance_wakes(run)
    run.refresh()
    for window in schedule.windows:
        if window.intent is not ScheduleIntent.POWER_DOWN or window.end <= start or window.start >= end:
            continue
        _enforce_window(run, window, min(window.end, end, schedule.valid_until))
    return run.pieces, run.state


def _forget(state: EnforcerState, start: datetime) -> EnforcerState:
    """Overrides that ended before this interval are history: drop them so the state stays small."""
    kept = tuple(o for o in state.overrides if o.end > start)
    return state if kept == state.overrides else dataclasses.replace(state, overrides=kept)


def _maintenance_wakes(run: _Run) -> None:
    """A machine off or asleep when a maintenance window starts is woken for it and returns afterwards."""
    added = []
    for window in run.schedule.windows:
        if (window.intent is ScheduleIntent.KEEP_ON and window.reason.startswith(MAINTENANCE)
                and run.start <= window.start < run.end and window.end > window.start):
            natural = overlay(list(segments_between(run.b, window.start, window.start + TICK)), run.state.overrides,
                              window.start, window.start + TICK)
            if not any(p.awake for p in natural):
                added.append(Segment(window.start, window.end, PowerState.IDLE))
    if added:
        run.state = dataclasses.replace(run.state, overrides=(*run.state.overrides, *added))


def _enforce_window(run: _Run, window: ScheduleWindow, until: datetime) -> None:
    """The enforcer's ticks in one power-down window, jumping over the time the machine is off."""
    key = window.start.isoformat()
    grid = window.start + timedelta(seconds=run.schedule.start_offset_seconds)  # the site's stagger
    mode = window.mode or EnforcementMode.OBSERVE
    at = _on_tick(max(grid, run.start), grid)
    while at < until:
        if run.state.handled == key and mode is EnforcementMode.OBSERVE:
            return
        awake_at = run.next_awake(at)
        if awake_at is None:
            return
        at = max(at, _on_tick(awake_at, grid))
        if run.state.retry_after is not None and at < run.state.retry_after:
            at = _on_tick(run.state.retry_after, grid)
            continue
        if at >= until:
            return
        countdown = run.state.countdown
        if countdown is not None and countdown.window == key:
            _count_down(run, window, countdown, at)
        elif run.state_at(at) in _AWAKE:
            idle, why = _idle(run.b, run.schedule.idle, run.state_at(at), at)
            if idle:
                _decide(run, window, mode, why, at)
        at += TICK


_AWAKE = (PowerState.ACTIVE, PowerState.IDLE)


def _on_tick(at: datetime, grid: datetime) -> datetime:
    """``at`` rounded up to the next whole minute after ``grid`` (the enforcer's ticks)."""
    ticks = -((grid - at) // TICK)
    return grid + TICK * max(ticks, 0)


def _idle(b: Behaviour, criteria: IdleCriteria | None, state: PowerState, at: datetime) -> tuple[bool, str]:
    """Judged as agent/enforcer.judge_idle judges a real reading: every criterion given must hold."""
    if state is not PowerState.IDLE:
        return False, "in use"
    quiet = since_input(b, at)
    reasons = [f"no input for {quiet / 60:.0f} min"]
    if criteria is not None:
        if criteria.minutes_without_input is not None and quiet < criteria.minutes_without_input * 60:
            return False, "recent input"
        if criteria.cpu_below_percent is not None:
            if criteria.cpu_below_percent <= QUIET_CPU_PERCENT:
                return False, "cpu busy"
            reasons.append(f"cpu below {criteria.cpu_below_percent:g}%")
        if criteria.no_signed_in_session and _signed_in(b, at):
            return False, "user signed in"
        if criteria.processes_absent and (running := left_running(b, criteria.processes_absent, at)):
            return False, f"{running[0]} running"
    return True, ", ".join(reasons)


def _signed_in(b: Behaviour, at: datetime) -> bool:
    return b.habit is not None and since_input(b, at) < SIGNED_IN_WITHIN.total_seconds()


def _decide(run: _Run, window: ScheduleWindow, mode: EnforcementMode, why: str, at: datetime) -> None:
    signed_in = _signed_in(run.b, at)
    key = window.start.isoformat()
    if mode is EnforcementMode.OBSERVE:
        run.record(window, ActionOutcome.OBSERVED, f"would {window.action}: {why}", at)
        run.state = dataclasses.replace(run.state, handled=key)
    elif mode is EnforcementMode.PASSIVE and signed_in:
        minutes = run.schedule.retry_minutes
        run.record(window, ActionOutcome.SKIPPED, f"skipped: user signed in; retry in {minutes} min ({why})", at)
        run.state = dataclasses.replace(run.state, retry_after=at + timedelta(minutes=minutes))
    elif mode is EnforcementMode.WARN and signed_in:
        minutes = run.schedule.warning.countdown_minutes if run.schedule.warning else 10
        run.record(window, ActionOutcome.WARNED, f"warned the signed-in user: {window.action} in {minutes} min "
                                                 f"({why})", at)
        run.state = dataclasses.replace(run.state, countdown=Countdown(key, at, at + timedelta(minutes=minutes)))
    else:
        _act(run, window, mode, why, at)


def _count_down(run: _Run, window: ScheduleWindow, countdown: Countdown, at: datetime) -> None:
    warning = run.schedule.warning
    allowed = warning.max_deferrals if warning else 2
    touched = since_input(run.b, at) < (at - countdown.warned_at).total_seconds()
    if touched and countdown.deferrals < allowed:
        minutes = warning.deferral_minutes if warning else 10
        deferrals = countdown.deferrals + 1
        run.record(window, ActionOutcome.DEFERRED, f"deferred by user ({deferrals} of {allowed}): {minutes} more min",
                   at)
        run.state = dataclasses.replace(run.state, countdown=Countdown(countdown.window, at,
                                                                       at + timedelta(minutes=minutes), deferrals))
        return
    if at < countdown.deadline:
        return
    suffix = (f"after {countdown.deferrals} deferral(s), the most allowed" if countdown.deferrals >= allowed
              else "countdown ended")
    run.state = dataclasses.replace(run.state, countdown=None)
    _act(run, window, window.mode or EnforcementMode.WARN, f"warned; {suffix}", at)


def _act(run: _Run, window: ScheduleWindow, mode: EnforcementMode, why: str, at: datetime) -> None:
    run.record(window, ActionOutcome.DONE, f"{window.action} ({mode}): {why}", at)
    low = PowerState.SLEEP if window.action is PowerActionKind.SLEEP else PowerState.OFF
    back = next_use(run.b, at) or at + timedelta(days=LOOK_AHEAD_DAYS)
    run.state = dataclasses.replace(run.state, handled=window.start.isoformat(),
                                    retry_after=at + timedelta(minutes=run.schedule.retry_minutes),
                                    overrides=(*run.state.overrides, Segment(at, back, low)))
    run.refresh()


def next_use(b: Behaviour, after: datetime) -> datetime | None:
    """When someone next uses the machine (its own day has it active): a person switches it on then."""
    day = after.astimezone(ZoneInfo(b.timezone)).date()
    for offset in range(LOOK_AHEAD_DAYS):
        for segment in day_plan(b, day + timedelta(days=offset)):
            if segment.state is PowerState.ACTIVE and segment.end > after:
                return max(segment.start, after)
    return None


def woken(state: EnforcerState, b: Behaviour, at: datetime) -> EnforcerState:
    """A magic packet at ``at``: on (idle) until its user's own day takes over, or a policy acts again."""
    back = next_use(b, at) or at + timedelta(days=1)
    return dataclasses.replace(state, overrides=(*state.overrides, Segment(at, max(back, at + TICK),
                                                                           PowerState.IDLE)))


def overlay(pieces: Sequence[Segment], overrides: Sequence[Segment], start: datetime, end: datetime
            ) -> list[Segment]:
    """``pieces`` with each override's state imposed over its span (later overrides win), clipped to
    [start, end) and merged where neighbours agree."""
    relevant = [o for o in overrides if o.end > start and o.start < end]
    if not relevant:
        return list(pieces)
    cuts = sorted({start, end, *(t for o in relevant for t in (o.start, o.end) if start < t < end),
                   *(t for p in pieces for t in (p.start, p.end) if start < t < end)})
    out: list[Segment] = []
    for a, z in itertools.pairwise(cuts):
        state = next((p.state for p in pieces if p.start <= a < p.end), PowerState.OFF)
        for o in relevant:
            if o.start <= a < o.end:
                state = o.state
        if out and out[-1].state is state and out[-1].end == a:
            out[-1] = Segment(out[-1].start, z, state)
        else:
            out.append(Segment(a, z, state))
    return out


