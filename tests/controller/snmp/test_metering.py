"""Metered energy from readings over time: registers that reset or wrap, coarse registers, gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from agent.protocol import EnergySample, PowerMethod, PowerState
from controller.snmp.metering import PowerReading, counter_delta, metered_energy
from controller.snmp.readings import EnergyCounter

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KWH = 3.6e6
TENTH_KWH = 0.1 * KWH


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def register(kwh: float, since: str | None = "01/02/2020 13:27:05", wraps: float | None = None,
             step: float = TENTH_KWH) -> EnergyCounter:
    return EnergyCounter(kwh * KWH, wraps, since, step)


def test_a_register_that_counted_up_gives_the_difference():
    assert counter_delta(register(3512.8), register(3513.9), 3600) == pytest.approx(1.1 * KWH)


def test_a_register_that_went_down_was_reset_and_gives_nothing():
    assert counter_delta(register(3512.8), register(0.3), 3600) is None


def test_a_changed_reset_time_is_a_reset_even_if_the_count_went_up():
    assert counter_delta(register(2.0), register(5.0, since="03/04/2026 09:20:45"), 3600) is None


def test_an_unsigned_counter_that_wrapped_is_counted_across_the_wrap():
    top = 2**32 * 3600.0  # a Counter32 of watt-hours
    before = EnergyCounter(top - 1800, top, None, 3600)
    after = EnergyCounter(5400, top, None, 3600)
    assert counter_delta(before, after, 600) == 7200


def test_a_wrap_that_would_need_impossible_power_is_a_reset():
    top = 2**32 * 3600.0
    assert counter_delta(EnergyCounter(10 * 3600, top, None, 3600), EnergyCounter(3600, top, None, 3600), 600) is None


def test_a_register_is_used_when_it_moved_enough_counts_to_be_precise():
    hourly = [PowerReading(at(0), 1140, register(3512.8)), PowerReading(at(60), 1150, register(3514.0))]
    (interval,) = metered_energy(hourly, max_gap=timedelta(hours=2))
    assert interval.joules == pytest.approx(1.2 * KWH) and interval.detail == "energy register"


def test_a_coarse_register_over_a_short_interval_gives_way_to_the_power_readings():
    (interval,) = metered_energy([PowerReading(at(0), 1140, register(3512.8)),
                                  PowerReading(at(5), 1160, register(3512.9))])
    assert interval.joules == pytest.approx(1150 * 300)
    assert interval.detail == "mean of power readings; register too coarse for the interval"


def test_an_interval_with_a_reset_is_measured_by_power_readings():
    (interval,) = metered_energy([PowerReading(at(0), 1000, register(3512.8)),
                                  PowerReading(at(10), 1000, register(0.0, since="03/04/2026 09:20:45"))])
    assert interval.joules == pytest.approx(1000 * 600) and interval.detail.endswith("register reset")


def test_a_register_alone_is_used_even_when_coarse():
    (interval,) = metered_energy([PowerReading(at(0), None, register(10.0)), PowerReading(at(5), None, register(10.1))])
    assert interval.joules == pytest.approx(TENTH_KWH) and interval.detail == "energy register (coarse)"


def test_a_gap_in_the_readings_is_left_unknown_not_invented():
    readings = [PowerReading(at(0), 200), PowerReading(at(5), 200), PowerReading(at(95), 200),
                PowerReading(at(100), 200)]
    assert [(i.start, i.end) for i in metered_energy(readings)] == [(at(0), at(5)), (at(95), at(100))]


def test_readings_arrive_in_any_order_and_a_day_at_steady_power_adds_up():
    readings = [PowerReading(at(m), 1140) for m in range(0, 24 * 60 + 1, 5)]
    intervals = metered_energy(reversed(readings))
    assert sum(i.joules for i in intervals) == pytest.approx(1140 * 86400)
    assert all(a.end == b.start for a, b in pairwise(intervals))


def test_an_interval_becomes_a_metered_energy_sample_for_the_accounting():
    (interval,) = metered_energy([PowerReading(at(0), 100), PowerReading(at(5), 140)])
    sample = interval.sample(PowerState.ACTIVE)
    assert isinstance(sample, EnergySample) and sample.usable
    assert (sample.method, sample.seconds, sample.joules) == (PowerMethod.METERED, 300, 120 * 300)
