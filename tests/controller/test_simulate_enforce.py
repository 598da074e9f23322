"""The simulated enforcer, interval by interval, against the schedule a controller would send: the modes
act as agent/enforcer.py's do, on the simulator's own day of a machine (controller/simulate/estate.py)."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from agent.protocol import (
    ActionOutcome,
    AgentSchedule,
    DeviceClass,
    EnforcementMode,
    IdleCriteria,
    PowerActionKind,
    PowerState,
    ScheduleIntent,
    ScheduleWindow,
    WarningSettings,
)
from controller.simulate.enforce import EnforcerState, advance, next_use
from controller.simulate.estate import build_estate, plan_sites, segments_between

LONDON = ZoneInfo("Europe/London")
TUESDAY = date(2026, 11, 17)
PEOPLE = [d for d in build_estate(plan_sites(300, 3), seed=1) if d.device_class is not DeviceClass.SERVER]


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=LONDON)


def schedule(mode: EnforcementMode) -> AgentSchedule:
    """School hours 08:00-16:30 on Tuesday, then power down (shutdown) until 08:00 on Wednesday."""
    start, close, reopen = at(TUESDAY, 0), at(TUESDAY, 16, 30), at(TUESDAY + timedelta(days=1), 8)
    return AgentSchedule(
        version="test", timezone="Europe/London", valid_until=at(TUESDAY + timedelta(days=2), 0), policy="test",
        windows=(ScheduleWindow(start, close, ScheduleIntent.KEEP_ON, reason="school_hours"),
                 ScheduleWindow(close, reopen, ScheduleIntent.POWER_DOWN, PowerActionKind.SHUTDOWN, mode,
                                reason="out_of_hours")),
        idle=IdleCriteria(minutes_without_input=20), warning=WarningSettings(10, 10, 2))


def evening(device, mode: EnforcementMode):
    """Tuesday 16:00-24:00 in five-minute intervals: (every piece, every action)."""
    state, pieces, actions = EnforcerState(), [], []
    start = at(TUESDAY, 16)
    while start < at(TUESDAY + timedelta(days=1), 0):
        got, state = advance(device.behaviour, schedule(mode), state, start, start + timedelta(minutes=5))
        pieces += got
        actions += state.pending
        state = EnforcerState(state.overrides, state.handled, state.retry_after, state.countdown)
        start += timedelta(minutes=5)
    return pieces, actions


def left_on(device) -> bool:
    return any(p.awake for p in segments_between(device.behaviour, at(TUESDAY, 22), at(TUESDAY, 23)))


def test_observe_mode_records_once_per_window_and_changes_nothing():
    device = next(d for d in PEOPLE if left_on(d))
    pieces, actions = evening(device, EnforcementMode.OBSERVE)
    assert [a.outcome for a in actions] == [ActionOutcome.OBSERVED]
    assert actions[0].until == at(TUESDAY + timedelta(days=1), 8)
    assert any(p.awake and p.start >= at(TUESDAY, 22) for p in pieces)  # still on: observe acts on nothing


def test_force_mode_shuts_a_machine_left_on_down_once_idle_and_it_stays_off_until_next_used():
    device = next(d for d in PEOPLE if left_on(d))
    pieces, actions = evening(device, EnforcementMode.FORCE)
    (done,) = [a for a in actions if a.outcome is ActionOutcome.DONE]
    assert done.at >= at(TUESDAY, 16, 30) and done.kind is PowerActionKind.SHUTDOWN
    assert all(p.state is PowerState.OFF for p in pieces if p.start >= done.at)
    assert next_use(device.behaviour, done.at) >= at(TUESDAY + timedelta(days=1), 7, 30)


def test_warn_mode_warns_a_signed_in_user_who_defers_by_working_then_acts():
    """Someone still at a machine after 16:30 is warned once it has been idle 20 minutes; using it in the
    countdown defers by 10 minutes, at most twice; then it shuts down."""
    warned = []
    for device in PEOPLE:
        _, actions = evening(device, EnforcementMode.WARN)
        if any(a.outcome is ActionOutcome.WARNED for a in actions):
            warned.append(actions)
    assert warned, "nobody was signed in after school"
    for actions in warned:
        assert actions[0].outcome is ActionOutcome.WARNED
        deferrals = [a for a in actions if a.outcome is ActionOutcome.DEFERRED]
        assert len(deferrals) <= 2 * sum(a.outcome is ActionOutcome.WARNED for a in actions)
        for previous, action in itertools.pairwise(actions):
            if action.outcome is ActionOutcome.DONE and previous.outcome in (ActionOutcome.WARNED,
                                                                              ActionOutcome.DEFERRED):
                assert action.at - previous.at >= timedelta(minutes=10)  # the countdown ran out first
    assert any(any(a.outcome is ActionOutcome.DEFERRED for a in actions) for actions in warned)
    assert any(actions[-1].outcome is ActionOutcome.DONE and "warned;" in actions[-1].reason for actions in warned)
