"""Daytime sleep: a policy asks named rooms or classes to sleep after N idle minutes *during* school hours,
separately on mains and battery, and the compiled schedule carries it to the agent; the safety rules
(never power down, exam windows) still win."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from agent.protocol import DaytimeSleep, EnforcementMode, ScheduleIntent
from controller.policy.engine import decide
from controller.policy.loader import load
from controller.policy.model import Basis, DeviceFacts, Mode
from controller.policy.plan import for_agent, plan
from controller.policy.walltime import zone
from tests.controller.policy.test_loader import problems_in

POLICY = """\
name: hillside
applies_to:
  sites: [Hillside Primary]
school_hours:
  weekdays: "08:30-16:00"
idle:
  minutes_without_input: 20
action: shutdown
mode: warn
daytime_sleep:
  - {groups: [Staff Room, Library], mains_idle_minutes: 20, battery_idle_minutes: 10}
  - {device_classes: [laptop], battery_idle_minutes: 15}
exceptions:
  never_power_down:
    - tags: [signage]
  exam_windows:
    - {name: Mocks, groups: [Library], start: 2026-02-11, end: 2026-02-11, hours: "09:00-12:00"}
"""
TZ = zone("Europe/London")


def facts(group: str | None = "Library", device_class: str = "desktop", tags: tuple[str, ...] = ()) -> DeviceFacts:
    return DeviceFacts("7", "HILL-LIB-07", "Hillside Primary", device_class, tags, group)


@pytest.fixture
def policies(tmp_path):
    (tmp_path / "policy.yaml").write_text(POLICY)
    return load([tmp_path / "policy.yaml"])


def test_the_loader_reads_each_entry_with_its_selector_and_minutes(policies):
    library, laptops = policies.policies[0].power.daytime_sleep
    assert (library.selector.groups, library.mains_idle_minutes, library.battery_idle_minutes) == (
        ("Staff Room", "Library"), 20, 10)
    assert (laptops.selector.device_classes, laptops.mains_idle_minutes, laptops.battery_idle_minutes) == (
        ("laptop",), None, 15)


@pytest.mark.parametrize(("entry", "expected"), [
    ("{groups: [Library]}", "policy.yaml:10:16: daytime_sleep: say when to sleep with mains_idle_minutes, "
                            "battery_idle_minutes or both"),
    ("{groups: [Library], battery_idle_minutes: 0}",
     "policy.yaml:10:58: daytime_sleep.battery_idle_minutes: 0 is out of range (1 to 1440)"),
    ("{rooms: [Library], mains_idle_minutes: 5}", "policy.yaml:10:17: daytime_sleep.rooms: unknown key 'rooms'; "
     "expected one of mains_idle_minutes, battery_idle_minutes, devices, groups, tags, device_classes, sites"),
])
def test_mistakes_in_daytime_sleep_name_their_line_and_key(tmp_path, entry, expected):
    assert problems_in(tmp_path, POLICY.split("daytime_sleep:")[0] + f"daytime_sleep: {entry}\n") == [expected]


def test_school_hours_carry_daytime_sleep_for_the_named_rooms_only(policies):
    at = datetime(2026, 2, 10, 10, 0, tzinfo=TZ)  # a Tuesday in school hours
    library = decide(policies.policies, policies.calendars, facts(), at)
    assert library.basis is Basis.SCHOOL_HOURS and library.mode is Mode.WARN
    assert (library.daytime_sleep.mains_idle_minutes, library.daytime_sleep.battery_idle_minutes) == (20, 10)
    assert "daytime sleep (group Staff Room, Library): after 20 min idle on mains or 10 min idle on battery" \
        in library.summary
    assert decide(policies.policies, policies.calendars, facts(group="Science 2"), at).daytime_sleep is None
    laptop = decide(policies.policies, policies.calendars, facts(group="Science 2", device_class="laptop"), at)
    assert (laptop.daytime_sleep.mains_idle_minutes, laptop.daytime_sleep.battery_idle_minutes) == (None, 15)
    evening = decide(policies.policies, policies.calendars, facts(), at.replace(hour=19))
    assert evening.basis is Basis.OUT_OF_HOURS and evening.daytime_sleep is None


def test_never_power_down_and_exam_windows_win_over_daytime_sleep(policies):
    at = datetime(2026, 2, 11, 10, 0, tzinfo=TZ)  # the mock exam in the library
    assert decide(policies.policies, policies.calendars, facts(), at).basis is Basis.EXAM_WINDOW
    assert decide(policies.policies, policies.calendars, facts(), at).daytime_sleep is None
    signage = decide(policies.policies, policies.calendars, facts(tags=("signage",)), at.replace(day=10))
    assert signage.basis is Basis.NEVER_POWER_DOWN and signage.daytime_sleep is None


def test_the_agents_schedule_carries_daytime_sleep_in_school_hours_windows(policies):
    start = datetime(2026, 2, 10, 0, 0, tzinfo=TZ)
    devices = [facts(), facts(group="Science 2"), facts(tags=("signage",))]
    devices = [DeviceFacts(str(i), f"PC{i}", d.site, d.device_class, d.tags, d.group) for i, d in enumerate(devices)]
    schedules = plan(policies.policies, policies.calendars, devices, start, 2)
    library = for_agent(schedules["0"], "v1", 0)
    (school,) = [w for w in library.windows if w.start == datetime(2026, 2, 10, 8, 30, tzinfo=TZ)]
    assert (school.intent, school.mode, school.daytime_sleep) == (
        ScheduleIntent.KEEP_ON, EnforcementMode.WARN, DaytimeSleep(20, 10))
    assert school.end - school.start == timedelta(hours=7, minutes=30)
    # Wednesday: the exam splits the day; no daytime sleep while it runs.
    wednesday = [w for w in library.windows if w.start.date() == datetime(2026, 2, 11).date()]
    assert [(f"{w.start.astimezone(TZ):%H:%M}", w.daytime_sleep is not None) for w in wednesday
            if w.intent is ScheduleIntent.KEEP_ON] == [("08:30", True), ("09:00", False), ("12:00", True)]
    for other in ("1", "2"):
        assert all(w.daytime_sleep is None for w in for_agent(schedules[other], "v1", 0).windows)


def test_the_published_schema_knows_daytime_sleep_as_the_loader_does():
    from controller.policy import loader
    from tests.controller.policy.test_schema import MINIMAL, POLICY_SCHEMA, errors, keys

    assert sorted(keys(POLICY_SCHEMA, "$defs", "daytime_sleep")) == sorted(loader.DAYTIME_SLEEP_KEYS)
    good = {"groups": ["Library"], "mains_idle_minutes": 20, "battery_idle_minutes": 10}
    assert errors(POLICY_SCHEMA, {**MINIMAL, "daytime_sleep": good}) == []
    assert errors(POLICY_SCHEMA, {**MINIMAL, "daytime_sleep": [good]}) == []
    assert errors(POLICY_SCHEMA, {**MINIMAL, "daytime_sleep": {"groups": ["Library"]}}) != []
    assert errors(POLICY_SCHEMA, {**MINIMAL, "daytime_sleep": {**good, "battery_idle_minutes": 0}}) != []
