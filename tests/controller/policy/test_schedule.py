"""Schedules the agent enforces offline: windows, wakes, exceptions, and the clock changes both ways."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from controller.policy.engine import decide
from controller.policy.model import (
    Basis,
    ExamWindow,
    Intent,
    MaintenanceWindow,
    Mode,
    Override,
    Policy,
    Selector,
    WarningSettings,
)
from controller.policy.schedule import compile_schedule
from controller.policy.walltime import instant
from tests.controller.policy.builders import CALENDARS, LONDON, device, local, policy, power, time_range

UPDATES = MaintenanceWindow("Windows updates", Selector(), (2,), time(2, 0), 90)  # Wednesdays
SCHOOL = policy(power=power(wake_before_school=time(7, 30)), maintenance=(UPDATES,))
ALL_WEEKDAYS = policy(power=power(wake_before_school=time(7, 30), calendars=()))  # clock tests: no holidays


def schedule(policies: list[Policy], start: str, days: int, **device_changes):
    return compile_schedule(policies, CALENDARS, device(**device_changes), local(start), days)


def windows(found) -> list[tuple[str, str, str]]:
    return [(f"{w.start:%a %H:%M}", f"{w.end:%a %H:%M}", w.basis.value) for w in found.windows]


def test_a_school_week_with_a_wake_time_and_a_maintenance_window():
    week = schedule([SCHOOL], "2026-02-09 00:00", 7)  # Monday, spring term
    assert windows(week) == [
        ("Mon 00:00", "Mon 07:30", "out_of_hours"),
        ("Mon 07:30", "Mon 08:30", "wake_before_school"),
        ("Mon 08:30", "Mon 16:00", "school_hours"),
        ("Mon 16:00", "Tue 07:30", "out_of_hours"),
        ("Tue 07:30", "Tue 08:30", "wake_before_school"),
        ("Tue 08:30", "Tue 16:00", "school_hours"),
        ("Tue 16:00", "Wed 02:00", "out_of_hours"),
        ("Wed 02:00", "Wed 03:30", "maintenance"),
        ("Wed 03:30", "Wed 07:30", "out_of_hours"),
        ("Wed 07:30", "Wed 08:30", "wake_before_school"),
        ("Wed 08:30", "Wed 16:00", "school_hours"),
        ("Wed 16:00", "Thu 07:30", "out_of_hours"),
        ("Thu 07:30", "Thu 08:30", "wake_before_school"),
        ("Thu 08:30", "Thu 16:00", "school_hours"),
        ("Thu 16:00", "Fri 07:30", "out_of_hours"),
        ("Fri 07:30", "Fri 08:30", "wake_before_school"),
        ("Fri 08:30", "Fri 16:00", "school_hours"),
        ("Fri 16:00", "Mon 00:00", "out_of_hours"),  # the weekend is one power-down window
    ]
    assert [f"{w.at:%a %H:%M} {w.basis}" for w in week.wakes] == [
        "Mon 07:30 wake_before_school", "Tue 07:30 wake_before_school", "Wed 02:00 maintenance",
        "Wed 07:30 wake_before_school", "Thu 07:30 wake_before_school", "Fri 07:30 wake_before_school"]
    assert [(f"{w.start:%a %H:%M}", w.action.value) for w in week.power_down_windows][:2] == [
        ("Mon 00:00", "shutdown"), ("Mon 16:00", "shutdown")]
    assert [f"{w.start:%a %H:%M}" for w in week.maintenance_windows] == ["Wed 02:00"]


def test_windows_run_back_to_back_from_start_to_end():
    found = schedule([SCHOOL], "2026-02-12 13:17", 5)
    assert found.windows[0].start == found.start == local("2026-02-12 13:17")
    assert found.windows[-1].end == found.end == local("2026-02-17 13:17")
    assert all(a.end == b.start for a, b in zip(found.windows, found.windows[1:], strict=False))


def test_no_wakes_in_half_term_but_maintenance_still_wakes():
    half_term = schedule([SCHOOL], "2026-02-14 00:00", 9)  # Saturday before half term to the Sunday after
    assert [f"{w.at:%a %d %H:%M}" for w in half_term.wakes] == ["Wed 18 02:00"]
    assert [f"{w.start:%a %d %H:%M}" for w in half_term.windows if w.basis is Basis.SCHOOL_HOURS] == []


EXAMS = ExamWindow("Mocks", Selector(groups=("E12",)), date(2026, 3, 2), date(2026, 3, 13), time_range("08:00-17:30"))
OPEN_EVENING = Override("Open evening", Selector(), Intent.KEEP_ON, starts=local("2026-03-05 17:00"),
                        expires=local("2026-03-05 21:30"))
BACKUPS = MaintenanceWindow("Backups", Selector(), (6,), time(1, 0), 90)  # Sundays, across both clock changes


@pytest.mark.parametrize(("policies", "start"), [
    ([replace(SCHOOL, exam_windows=(EXAMS,), overrides=(OPEN_EVENING,))], "2026-03-02 00:00"),
    ([replace(ALL_WEEKDAYS, maintenance=(BACKUPS,))], "2026-03-26 00:00"),
    ([replace(ALL_WEEKDAYS, maintenance=(BACKUPS,))], "2026-10-22 00:00"),
], ids=["exams-and-an-override", "clocks-forward", "clocks-back"])
def test_the_schedule_matches_the_decision_at_every_moment(policies, start):
    found = schedule(policies, start, 8, group="E12")
    moment = found.start.astimezone(UTC)  # stepping in UTC: wall-clock arithmetic would skip or repeat an hour
    while moment < found.end:
        (window,) = [w for w in found.windows if w.start <= moment < w.end]
        decision = decide(policies, CALENDARS, device(group="E12"), moment)
        assert (window.intent, window.basis, window.label) == (decision.intent, decision.basis, decision.label)
        moment += timedelta(minutes=10)


def test_exam_days_have_no_maintenance_and_exceptions_are_listed():
    all_day = ExamWindow("GCSE", Selector(groups=("Sports Hall",)), local("2026-05-13 00:00").date(),
                         local("2026-05-13 00:00").date())
    found = schedule([replace(SCHOOL, exam_windows=(all_day,))], "2026-05-11 00:00", 7, group="Sports Hall")
    assert [f"{w.at:%a %H:%M}" for w in found.wakes if w.basis is Basis.MAINTENANCE] == []
    assert [(f"{w.start:%a %H:%M}", f"{w.end:%a %H:%M}", w.label) for w in found.exceptions] == [
        ("Wed 00:00", "Thu 00:00", "GCSE")]


def test_an_override_is_an_exception_window_with_exact_edges():
    found = schedule([replace(SCHOOL, overrides=(Override("Open evening", Selector(), Intent.KEEP_ON,
                                                          starts=local("2026-02-10 17:00"),
                                                          expires=local("2026-02-10 21:30")),))],
                     "2026-02-10 00:00", 1)
    (window,) = found.exceptions
    assert (window.start, window.end, window.basis) == (local("2026-02-10 17:00"), local("2026-02-10 21:30"),
                                                        Basis.OVERRIDE)


def test_a_never_power_down_device_is_never_woken_or_powered_down():
    servers = Policy("always-on", Selector(), never_power_down=(Selector(device_classes=("server",)),))
    found = schedule([SCHOOL, servers], "2026-02-09 00:00", 7, device_class="server")
    assert [(w.intent, w.basis) for w in found.windows] == [(Intent.KEEP_ON, Basis.NEVER_POWER_DOWN)]
    assert (found.power_down_windows, found.wakes) == ((), ())


def test_the_schedule_carries_what_the_agent_needs_to_judge_idleness():
    warn = schedule([policy(power=power(mode=Mode.WARN, warning=WarningSettings(5, 15, 3)))], "2026-02-09 00:00", 1)
    assert (warn.policy, warn.idle, warn.warning, warn.retry_minutes) == (
        "hillside", SCHOOL.power.idle, WarningSettings(5, 15, 3), None)
    passive = schedule([policy(power=power(mode=Mode.PASSIVE, retry_minutes=20))], "2026-02-09 00:00", 1)
    assert (passive.warning, passive.retry_minutes) == (None, 20)
    nothing = schedule([], "2026-02-09 00:00", 1)
    assert (nothing.policy, nothing.idle, [w.basis for w in nothing.windows]) == (None, None, [Basis.NO_POLICY])


# --- clock changes (Europe/London: forward 2026-03-29 01:00 GMT, back 2026-10-25 02:00 BST) ----------

def test_seven_thirty_stays_seven_thirty_on_the_wall_when_the_clocks_go_forward():
    found = schedule([ALL_WEEKDAYS], "2026-03-27 00:00", 4)  # Friday to Monday
    friday, monday = found.wakes
    assert (friday.at.isoformat(), monday.at.isoformat()) == ("2026-03-27T07:30:00+00:00", "2026-03-30T07:30:00+01:00")
    assert (friday.at.astimezone(UTC).time(), monday.at.astimezone(UTC).time()) == (time(7, 30), time(6, 30))


def test_seven_thirty_stays_seven_thirty_on_the_wall_when_the_clocks_go_back():
    found = schedule([ALL_WEEKDAYS], "2026-10-23 00:00", 4)
    friday, monday = found.wakes
    assert (friday.at.isoformat(), monday.at.isoformat()) == ("2026-10-23T07:30:00+01:00", "2026-10-26T07:30:00+00:00")
    weekend = next(w for w in found.windows if f"{w.start:%a %H:%M}" == "Fri 16:00")
    assert f"{weekend.end:%a %H:%M}" == "Mon 07:30"
    assert weekend.duration == timedelta(days=2, hours=16, minutes=30)  # Sunday has 25 hours


def test_a_time_the_october_night_repeats_happens_once_the_first_time():
    sunday = MaintenanceWindow("Backups", Selector(), (6,), time(1, 30), 60)
    found = schedule([replace(ALL_WEEKDAYS, maintenance=(sunday,))], "2026-10-24 12:00", 2)
    (window,) = found.maintenance_windows
    assert (window.start.isoformat(), window.end.isoformat()) == ("2026-10-25T01:30:00+01:00",
                                                                  "2026-10-25T01:30:00+00:00")  # 60 minutes later
    assert [w.at.isoformat() for w in found.wakes if w.basis is Basis.MAINTENANCE] == ["2026-10-25T01:30:00+01:00"]
    # Both 01:45s are inside it; the decision agrees with the schedule on either side of the change.
    first, second = datetime(2026, 10, 25, 0, 45, tzinfo=UTC), datetime(2026, 10, 25, 1, 45, tzinfo=UTC)
    verdicts = [decide([replace(ALL_WEEKDAYS, maintenance=(sunday,))], CALENDARS, device(), t).basis
                for t in (first, second)]
    assert verdicts == [Basis.MAINTENANCE, Basis.OUT_OF_HOURS]


def test_a_time_the_march_night_skips_happens_when_the_clocks_jump():
    sunday = MaintenanceWindow("Backups", Selector(), (6,), time(1, 30), 90)
    found = schedule([replace(ALL_WEEKDAYS, maintenance=(sunday,))], "2026-03-28 12:00", 2)
    (window,) = found.maintenance_windows
    # 01:30 does not exist: it runs at 02:00 BST (01:00 UTC) and lasts its 90 minutes.
    assert (window.start.isoformat(), window.end.isoformat()) == ("2026-03-29T02:00:00+01:00",
                                                                  "2026-03-29T03:30:00+01:00")


def test_every_window_of_a_year_is_aware_and_in_site_time():
    found = compile_schedule([SCHOOL], CALENDARS, device(), datetime(2026, 3, 20, tzinfo=UTC), 31)
    assert {w.start.tzname() for w in found.windows} == {"GMT", "BST"}
    assert all(w.start.utcoffset() is not None for w in found.windows)


@pytest.mark.parametrize(("day", "wall", "expected"), [
    ("2026-03-29", time(0, 59), "2026-03-29T00:59:00+00:00"),
    ("2026-03-29", time(1, 0), "2026-03-29T02:00:00+01:00"),  # skipped: the moment the clocks jump
    ("2026-03-29", time(1, 59), "2026-03-29T02:00:00+01:00"),
    ("2026-03-29", time(2, 0), "2026-03-29T02:00:00+01:00"),
    ("2026-10-25", time(0, 59), "2026-10-25T00:59:00+01:00"),
    ("2026-10-25", time(1, 0), "2026-10-25T01:00:00+01:00"),  # repeated: the first time
    ("2026-10-25", time(1, 59), "2026-10-25T01:59:00+01:00"),
    ("2026-10-25", time(2, 0), "2026-10-25T02:00:00+00:00"),
])
def test_wall_times_on_the_nights_the_clocks_change(day, wall, expected):
    assert instant(date.fromisoformat(day), wall, LONDON).isoformat() == expected


@pytest.mark.parametrize("days", [0, 32])
def test_a_schedule_covers_one_to_31_days(days):
    with pytest.raises(ValueError, match="1 to 31 days"):
        schedule([SCHOOL], "2026-02-09 00:00", days)


def test_a_naive_start_is_refused():
    with pytest.raises(ValueError, match="no time zone"):
        compile_schedule([SCHOOL], CALENDARS, device(), datetime(2026, 2, 9), 7)


def test_an_exam_monday_keeps_its_wake_before_school_after_a_weekend_powered_down():
    """A whole-day exam window keeps the hall on from midnight, so no window starts at 07:30; the wake that
    brings up PCs shut down over the weekend must still be there (it was lost before)."""
    monday = local("2026-05-11 00:00").date()
    exams = ExamWindow("GCSE maths", Selector(groups=("Hall",)), monday, monday)
    found = schedule([replace(SCHOOL, exam_windows=(exams,))], "2026-05-09 00:00", 4, group="Hall")
    assert [(f"{w.at:%a %H:%M}", w.basis) for w in found.wakes if w.at.date() == monday] == [
        ("Mon 07:30", Basis.WAKE_BEFORE_SCHOOL)]
    assert [(f"{w.start:%a %H:%M}", f"{w.end:%a %H:%M}", w.basis) for w in found.exceptions] == [
        ("Mon 00:00", "Tue 00:00", Basis.EXAM_WINDOW)]
    library = schedule([replace(SCHOOL, exam_windows=(exams,))], "2026-05-09 00:00", 4, group="Library")
    assert [(f"{w.at:%a %H:%M}", w.basis) for w in library.wakes if w.at.date() == monday] == [
        ("Mon 07:30", Basis.WAKE_BEFORE_SCHOOL)]
