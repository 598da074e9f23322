"""The schedule an agent receives (through plan.for_agent), over a real English school year, and the site
stagger that keeps a site's power-downs under its per-minute limit."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

import pytest

from agent.protocol import AgentSchedule, EnforcementMode, ScheduleIntent, from_wire, to_wire
from controller.policy.model import ExamWindow, Intent, Mode, Override, Selector
from controller.policy.plan import context_key, distinctions, for_agent, plan, stagger_offsets
from controller.policy.schedule import compile_schedule
from tests.controller.policy.builders import CALENDARS, LONDON, device, local, policy, power, time_range

SCHOOL = policy(power=power(wake_before_school=time(7, 30), mode=Mode.WARN))


def received(policies, start: str, days: int = 2, offset: int = 0, **device_changes) -> AgentSchedule:
    """What the agent gets: compiled, converted and through the wire format and back."""
    compiled = compile_schedule(policies, CALENDARS, device(**device_changes), local(start), days)
    return from_wire(AgentSchedule, to_wire(for_agent(compiled, "v1", offset)))


def power_down_at(schedule: AgentSchedule, when: str) -> bool:
    window = schedule.window_at(local(when).astimezone(UTC))
    return window is not None and window.intent is ScheduleIntent.POWER_DOWN


def spans(schedule: AgentSchedule) -> list[tuple[str, str, str]]:
    return [(f"{w.start.astimezone(LONDON):%a %H:%M}", f"{w.end.astimezone(LONDON):%a %H:%M}", w.intent.value)
            for w in schedule.windows]


def test_an_ordinary_term_day_keeps_school_hours_and_powers_down_out_of_hours():
    got = received([SCHOOL], "2026-02-09 00:00", 1)  # Monday in the spring term
    assert spans(got) == [("Mon 00:00", "Mon 07:30", "power_down"), ("Mon 07:30", "Mon 08:30", "keep_on"),
                          ("Mon 08:30", "Mon 16:00", "keep_on"), ("Mon 16:00", "Tue 00:00", "power_down")]
    assert got.windows[0].mode is EnforcementMode.WARN and got.warning.max_deferrals == 2
    assert got.idle.minutes_without_input == 20 and got.idle.cpu_below_percent == 10


def test_half_term_monday_is_off_all_day():
    got = received([SCHOOL], "2026-02-16 00:00", 1)
    assert spans(got) == [("Mon 00:00", "Tue 00:00", "power_down")]


def test_an_inset_day_keeps_school_hours_because_staff_are_in():
    got = received([SCHOOL], "2026-01-05 00:00", 1)  # INSET day opening the spring term
    assert not power_down_at(got, "2026-01-05 10:00") and power_down_at(got, "2026-01-05 18:00")


def test_an_inset_day_is_off_where_the_policy_closes_on_inset_days():
    closed = policy(power=power(open_on_inset_days=False))
    assert power_down_at(received([closed], "2026-01-05 00:00", 1), "2026-01-05 10:00")


def test_a_bank_holiday_in_term_is_off_all_day():
    got = received([SCHOOL], "2026-05-04 00:00", 1)  # Early May bank holiday, summer term
    assert spans(got) == [("Mon 00:00", "Tue 00:00", "power_down")]


def test_the_march_clock_change_keeps_the_wall_clock_hours():
    got = received([policy(power=power(calendars=(), wake_before_school=time(7, 30)))], "2026-03-29 00:00", 2)
    monday = [w for w in got.windows if w.start.astimezone(LONDON).date() == date(2026, 3, 30)]
    assert [f"{w.start.astimezone(LONDON):%H:%M %Z}" for w in monday] == ["07:30 BST", "08:30 BST", "16:00 BST"]
    assert monday[0].start == datetime(2026, 3, 30, 6, 30, tzinfo=UTC)  # an hour earlier in UTC than in winter


def test_the_october_clock_change_keeps_the_wall_clock_hours():
    got = received([policy(power=power(calendars=(), wake_before_school=time(7, 30)))], "2026-10-25 00:00", 2)
    sunday = got.windows[0]
    assert sunday.intent is ScheduleIntent.POWER_DOWN
    assert (sunday.end - sunday.start) == timedelta(hours=32, minutes=30)  # 25-hour Sunday + Monday to 07:30
    monday_wake = got.windows[1]
    assert monday_wake.start == datetime(2026, 10, 26, 7, 30, tzinfo=UTC)  # 07:30 GMT


def test_an_exam_room_window_keeps_the_exam_room_on_into_the_evening():
    exams = ExamWindow("GCSE mocks", Selector(groups=("Exam Hall",)), date(2026, 2, 9), date(2026, 2, 13),
                       time_range("08:00-19:00"))
    school = policy(exam_windows=(exams,))
    hall = received([school], "2026-02-09 00:00", 1, group="Exam Hall")
    classroom = received([school], "2026-02-09 00:00", 1, group="Room 12")
    assert not power_down_at(hall, "2026-02-09 18:30") and power_down_at(classroom, "2026-02-09 18:30")
    assert any(w.reason == "exam_window: GCSE mocks" for w in hall.windows)


def test_an_overridden_device_stays_on_until_the_override_expires():
    keep = Override("Art coursework", Selector(devices=("HILL-ART-PC03",)), Intent.KEEP_ON,
                    expires=local("2026-02-10 21:00"))
    school = policy(overrides=(keep,))
    art = received([school], "2026-02-10 00:00", 1, hostname="HILL-ART-PC03")
    assert not power_down_at(art, "2026-02-10 20:30") and power_down_at(art, "2026-02-10 21:30")
    assert power_down_at(received([school], "2026-02-10 00:00", 1), "2026-02-10 20:30")


def test_a_never_power_down_tag_wins_over_force_mode():
    forced = policy(power=power(mode=Mode.FORCE), never_power_down=(Selector(tags=("server",)),))
    got = received([forced], "2026-02-16 00:00", 1, tags=("server",))
    assert all(w.intent is ScheduleIntent.KEEP_ON for w in got.windows)


def test_an_elected_wake_relay_stays_on_out_of_hours_while_its_neighbours_power_down():
    relay = received([SCHOOL], "2026-02-16 00:00", 1, kept_on_by="wake-on-LAN relay for its subnet")
    neighbour = received([SCHOOL], "2026-02-16 00:00", 1)
    assert spans(relay) == [("Mon 00:00", "Tue 00:00", "keep_on")]
    assert "wake-on-LAN relay" in relay.windows[0].reason
    assert spans(neighbour) == [("Mon 00:00", "Tue 00:00", "power_down")]


def test_a_relay_does_not_share_its_neighbours_compiled_schedule():
    named = distinctions([SCHOOL])
    assert context_key(device(), named) != context_key(device(kept_on_by="wake-on-LAN relay"), named)


def test_devices_alike_share_one_compile_and_get_the_same_windows_as_compiled_alone():
    named = Override("Art", Selector(devices=("HILL-ART-PC03",)), Intent.KEEP_ON, expires=local("2026-02-10 21:00"))
    school = policy(overrides=(named,))
    fleet = [device(device_id=str(i), hostname=f"HILL-R01-PC{i:02d}") for i in range(1, 40)]
    fleet.append(device(device_id="99", hostname="HILL-ART-PC03"))
    planned = plan([school], CALENDARS, fleet, local("2026-02-10 00:00"), 2)
    for facts in (fleet[0], fleet[20], fleet[-1]):
        alone = compile_schedule([school], CALENDARS, facts, local("2026-02-10 00:00"), 2)
        assert planned[facts.device_id] == alone
    keys = {context_key(f, distinctions([school])) for f in fleet}
    assert len(keys) == 2  # the art-room PC named by the override gets its own


@pytest.mark.parametrize(("devices", "limit"), [(600, 60), (61, 60), (1000, 7), (5, 60)])
def test_the_stagger_keeps_every_minute_of_a_site_within_its_power_down_limit(devices, limit):
    offsets = stagger_offsets(list(range(1, devices + 1)), limit)
    window_start = local("2026-02-09 16:00")
    starts = Counter(window_start + timedelta(seconds=offset) for offset in offsets.values())
    assert max(starts.values()) <= limit
    assert len(offsets) == devices and all(offset % 60 == 0 for offset in offsets.values())
    assert len(starts) == -(-devices // limit)  # no more minutes than the limit needs


def test_a_stagger_limit_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        stagger_offsets([1, 2], 0)
