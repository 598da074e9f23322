"""Activity readings on this machine: CPU counters, sessions and time asleep."""

from __future__ import annotations

import time
from collections import namedtuple
from pathlib import Path

import psutil
import pytest

from agent.collectors import activity
from agent.collectors.activity import ActivityReading

THIS_MACHINE = Path("/")


def reading(busy: float, total: float) -> ActivityReading:
    return ActivityReading(cpu_busy_seconds=busy, cpu_total_seconds=total, idle_seconds=None, idle_source="",
                           sessions=0, slept_seconds=0.0)


def test_cpu_counters_grow_while_the_cpu_works() -> None:
    before = activity.collect(THIS_MACHINE)
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        pass  # keep one CPU busy
    after = activity.collect(THIS_MACHINE)

    assert after.cpu_total_seconds > before.cpu_total_seconds
    assert after.cpu_busy_seconds - before.cpu_busy_seconds >= 0.2
    assert 0 < activity.cpu_percent_between(before, after) <= 100


def test_sessions_are_the_signed_in_users_psutil_sees() -> None:
    assert activity.collect(THIS_MACHINE).sessions == len(psutil.users())


def test_time_asleep_is_boottime_minus_monotonic() -> None:
    slept = activity.collect(THIS_MACHINE).slept_seconds
    gap = time.clock_gettime(time.CLOCK_BOOTTIME) - time.clock_gettime(time.CLOCK_MONOTONIC)

    assert slept >= 0
    assert slept == pytest.approx(max(0.0, gap), abs=0.05)


@pytest.mark.parametrize(("before", "after", "percent"), [
    pytest.param(reading(10, 100), reading(40, 200), 30.0, id="30 of 100 CPU-seconds busy"),
    pytest.param(reading(10, 100), reading(10, 200), 0.0, id="idle"),
    pytest.param(reading(10, 100), reading(110, 200), 100.0, id="flat out"),
    pytest.param(reading(10, 100), reading(10, 100), 0.0, id="no time passed"),
])
def test_cpu_percent_between_readings(before: ActivityReading, after: ActivityReading, percent: float) -> None:
    assert activity.cpu_percent_between(before, after) == pytest.approx(percent)


def test_linux_guest_time_is_not_counted_twice_and_iowait_is_not_work() -> None:
    Times = namedtuple("Times", "user nice system idle iowait irq softirq steal guest guest_nice")

    busy, total = activity.cpu_busy_and_total(Times(50.0, 0.0, 20.0, 100.0, 30.0, 0.0, 0.0, 0.0, 10.0, 0.0))

    assert (busy, total) == (70.0, 200.0)  # user already includes the 10 s of guest time


def test_windows_cpu_times_have_no_iowait_or_guest() -> None:
    Times = namedtuple("Times", "user system idle interrupt dpc")

    assert activity.cpu_busy_and_total(Times(30.0, 10.0, 60.0, 0.0, 0.0)) == (40.0, 100.0)
