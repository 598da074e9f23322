"""Spreading a report's energy over the hours it covers, and choosing which method to account."""

from datetime import UTC, datetime, timedelta

import pytest

from agent.protocol import Activity, EnergySample, PowerMethod, PowerState, Report
from controller.energy.hourly import BucketKey, add_report, best_samples, hour_shares

MIDNIGHT = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)  # the night the clocks go forward in the UK


def test_an_interval_inside_one_hour_stays_whole():
    assert hour_shares(MIDNIGHT + timedelta(minutes=5), MIDNIGHT + timedelta(minutes=10)) == [(MIDNIGHT, 1.0)]


def test_an_interval_across_an_hour_boundary_is_split_by_time():
    shares = hour_shares(MIDNIGHT + timedelta(minutes=50), MIDNIGHT + timedelta(minutes=70))
    assert shares == [(MIDNIGHT, pytest.approx(0.5)), (MIDNIGHT + timedelta(hours=1), pytest.approx(0.5))]


def test_hours_are_utc_so_the_clock_change_neither_loses_nor_doubles_an_hour():
    from zoneinfo import ZoneInfo

    london = ZoneInfo("Europe/London")
    start = datetime(2026, 3, 29, 0, 30, tzinfo=london)  # 00:30 GMT; at 01:00 GMT it becomes 02:00 BST
    end = datetime(2026, 3, 29, 2, 30, tzinfo=london)  # 01:30 UTC: one real hour later
    shares = hour_shares(start, end)
    assert [h for h, _ in shares] == [MIDNIGHT, MIDNIGHT + timedelta(hours=1)]
    assert sum(s for _, s in shares) == pytest.approx(1.0)


def sample(method: PowerMethod, joules: float | None, status: str = "ok", state=PowerState.IDLE) -> EnergySample:
    return EnergySample(method, state, 300, joules, status=status)


def test_the_most_trusted_usable_method_wins():
    chosen = best_samples([sample(PowerMethod.MODEL, 100.0), sample(PowerMethod.BATTERY, 80.0),
                           sample(PowerMethod.RAPL, None, "unavailable: permission")])
    assert chosen[PowerState.IDLE].method == PowerMethod.BATTERY


def test_awake_and_asleep_time_are_accounted_separately():
    report = Report(
        seq=1, start=MIDNIGHT, end=MIDNIGHT + timedelta(minutes=30),
        activity=Activity(PowerState.IDLE, 2.0, slept_seconds=1200),
        energy=(EnergySample(PowerMethod.MODEL, PowerState.IDLE, 600, 600 * 40.0),
                EnergySample(PowerMethod.MODEL, PowerState.SLEEP, 1200, 1200 * 2.0)),
    )
    buckets = {}
    add_report(report, buckets)
    idle = buckets[BucketKey(MIDNIGHT, PowerState.IDLE, "model")]
    asleep = buckets[BucketKey(MIDNIGHT, PowerState.SLEEP, "model")]
    assert (idle.joules, idle.seconds) == (24000.0, 600)
    assert (asleep.joules, asleep.seconds) == (2400.0, 1200)
