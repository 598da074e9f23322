"""Daytime sleep on the agent: in school hours a window with ``daytime_sleep`` sleeps the machine (never shuts it
down) after the battery figure when it runs on battery and the mains figure otherwise, through the same modes,
warnings and deferrals as out-of-hours power-downs. Commands are recorded, never run."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from agent.enforcer import Enforcer, Reading
from agent.platform import linux
from agent.platform.power_actions import for_platform
from agent.protocol import (
    AgentSchedule,
    DaytimeSleep,
    EnforcementMode,
    IdleCriteria,
    ScheduleIntent,
    ScheduleWindow,
    WarningSettings,
)
from tests.agent.sessions import T0
from tests.agent.test_enforcer import Machine, Screens, outcomes

SCHOOL_DAY = ScheduleWindow(T0 - timedelta(hours=2), T0 + timedelta(hours=6), ScheduleIntent.KEEP_ON,
                            mode=EnforcementMode.FORCE, reason="school_hours: 08:30-16:00",
                            daytime_sleep=DaytimeSleep(mains_idle_minutes=20, battery_idle_minutes=10))


def day(window: ScheduleWindow = SCHOOL_DAY, offset: int = 0, warning: WarningSettings | None = None) -> AgentSchedule:
    return AgentSchedule(version="v1", timezone="Europe/London", valid_until=T0 + timedelta(hours=48),
                         policy="hillside", windows=(window,), idle=IdleCriteria(minutes_without_input=30),
                         warning=warning, start_offset_seconds=offset)


class Power:
    def __init__(self) -> None:
        self.battery = False

    def __call__(self) -> bool:
        return self.battery


@pytest.fixture
def power() -> Power:
    return Power()


@pytest.fixture
def machine() -> Machine:
    return Machine(Reading(idle_seconds=12 * 60, cpu_percent=3.0, sessions=1))


@pytest.fixture
def enforcer(tmp_path, machine, power) -> Enforcer:
    return Enforcer(tmp_path / "power-schedule.json", machine.probe, machine.execute, for_platform("linux"),
                    lambda: T0, warnings=Screens(), on_battery=power)


def test_on_battery_it_sleeps_after_the_battery_idle_time_not_the_mains_one(enforcer, machine, power):
    enforcer.update(day())
    enforcer.tick()  # on mains, 12 idle minutes are short of 20
    assert machine.ran == []
    power.battery = True
    enforcer.tick()
    assert machine.ran == [["systemctl", "suspend"]]
    (action,) = enforcer.drain()
    assert outcomes([action]) == [("done", "sleep (force): daytime sleep on battery after 10 min idle: idle 12 min")]
    assert action.kind == "sleep" and action.until == SCHOOL_DAY.end  # savings count asleep time up to here


def test_on_mains_it_waits_for_the_mains_idle_time(enforcer, machine):
    enforcer.update(day())
    machine.reading = Reading(idle_seconds=21 * 60, cpu_percent=3.0, sessions=1)
    enforcer.tick()
    assert machine.ran == [["systemctl", "suspend"]]


def test_a_source_without_a_figure_never_sleeps_and_school_hours_without_daytime_sleep_stay_on(enforcer, machine):
    enforcer.update(day(replace(SCHOOL_DAY, daytime_sleep=DaytimeSleep(battery_idle_minutes=10))))
    machine.reading = Reading(idle_seconds=300 * 60, cpu_percent=0.0, sessions=0)
    enforcer.tick()
    enforcer.update(day(replace(SCHOOL_DAY, daytime_sleep=None)))
    enforcer.tick()
    assert machine.ran == [] and enforcer.drain() == ()


def test_the_site_stagger_is_added_to_the_idle_time(enforcer, machine, power):
    power.battery = True
    enforcer.update(day(offset=180))  # three minutes into the site's order
    enforcer.tick()
    assert machine.ran == []  # 12 minutes idle, 13 needed
    machine.reading = Reading(idle_seconds=13 * 60, cpu_percent=3.0, sessions=1)
    enforcer.tick()
    assert machine.ran == [["systemctl", "suspend"]]


def test_warn_mode_warns_the_signed_in_user_before_a_daytime_sleep(tmp_path, machine, power):
    screens = Screens()
    enforcer = Enforcer(tmp_path / "state.json", machine.probe, machine.execute, for_platform("linux"), lambda: T0,
                        warnings=screens, on_battery=power)
    warn = replace(SCHOOL_DAY, mode=EnforcementMode.WARN)
    enforcer.update(day(warn, warning=WarningSettings(5, 5, 1)))
    power.battery = True
    enforcer.tick()
    assert machine.ran == []
    assert screens.shown[0].message.startswith("This computer will go to sleep in 5 minutes")
    assert outcomes(enforcer.drain())[0][0] == "warned"


def test_linux_reads_its_power_source_from_sysfs(tmp_path):
    supply = tmp_path / "sys" / "class" / "power_supply"
    (supply / "BAT0").mkdir(parents=True)
    (supply / "BAT0" / "type").write_text("Battery\n")
    (supply / "BAT0" / "status").write_text("Discharging\n")
    assert linux.on_battery(tmp_path) is True
    (supply / "BAT0" / "status").write_text("Charging\n")
    assert linux.on_battery(tmp_path) is False
    assert linux.on_battery(tmp_path / "nowhere") is False  # a desktop: no battery, mains
