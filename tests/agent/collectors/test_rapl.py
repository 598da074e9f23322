"""RAPL: which zones count, how a wrapped counter is read, and what an unprivileged agent reports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.collectors import rapl
from agent.platform.base import RaplCounter

from .conftest import SYSFS

RANGE = 262_143_328_850  # max_energy_range_uj of a typical client package


def counter(energy_uj: int, max_range: int = RANGE) -> RaplCounter:
    return RaplCounter(zone="intel-rapl:0", name="package-0", energy_uj=energy_uj, max_energy_range_uj=max_range)


@pytest.mark.parametrize(("before", "after", "expected_uj"), [
    pytest.param(1_000_000, 31_000_000, 30_000_000, id="counting up"),
    pytest.param(5_000, 5_000, 0, id="no energy"),
    pytest.param(RANGE - 2_000_000, 3_000_000, 5_000_000, id="wrapped past max_energy_range_uj"),
    pytest.param(RANGE, 0, 0, id="wrapped exactly at the top"),
])
def test_energy_between_counts_across_one_wrap(before: int, after: int, expected_uj: int) -> None:
    assert rapl.energy_between(counter(before), counter(after)) == expected_uj


def test_laptop_counts_package_and_dram_but_not_subzones_psys_or_mmio() -> None:
    reading = rapl.collect(SYSFS / "thinkpad-t14")

    assert reading.status == "ok"
    assert [(c.zone, c.name) for c in reading.counters] == [("intel-rapl:0", "package-0"), ("intel-rapl:0:2", "dram")]
    assert reading.counters[0].energy_uj == 48215342917
    assert reading.counters[0].max_energy_range_uj == RANGE


def test_two_socket_server_counts_each_package_and_its_dram() -> None:
    reading = rapl.collect(SYSFS / "poweredge-r740")

    assert [c.name for c in reading.counters] == ["package-0", "dram", "package-1", "dram"]
    assert {c.max_energy_range_uj for c in reading.counters if c.name == "dram"} == {65712999613}


def test_machine_without_powercap_does_not_support_rapl() -> None:
    assert rapl.supported(SYSFS / "optiplex-7070") is False
    assert rapl.supported(SYSFS / "thinkpad-t14") is True


def test_counter_that_wrapped_between_readings_gives_the_true_energy(machine: Callable[[str], Path]) -> None:
    root = machine("poweredge-r740")
    package = root / "sys/class/powercap/intel-rapl:0"
    (package / "energy_uj").write_text(f"{RANGE - 1_500_000}\n")
    before = rapl.collect(root)
    (package / "energy_uj").write_text("2500000\n")
    after = rapl.collect(root)

    # 1.5 J up to the top of the range, then 2.5 J after starting again from zero.
    assert rapl.energy_between(before.counters[0], after.counters[0]) == 4_000_000


def test_root_only_counters_are_reported_as_a_permission_problem_not_zero(
        unprivileged_machine: Callable[[str, list[str]], Path], run_unprivileged: Callable[..., Any]) -> None:
    root = unprivileged_machine("thinkpad-t14", ["sys/class/powercap/intel-rapl:0/energy_uj",
                                                 "sys/class/powercap/intel-rapl:0:2/energy_uj"])

    reading = run_unprivileged(rapl.collect, root)

    assert reading.status == "unavailable: permission"
    assert reading.counters == ()


def test_one_unreadable_zone_is_named_and_the_readable_package_still_counts(
        unprivileged_machine: Callable[[str, list[str]], Path], run_unprivileged: Callable[..., Any]) -> None:
    root = unprivileged_machine("thinkpad-t14", ["sys/class/powercap/intel-rapl:0:2/energy_uj"])

    reading = run_unprivileged(rapl.collect, root)

    assert reading.status == "ok"
    assert [(c.zone, c.name) for c in reading.counters] == [("intel-rapl:0", "package-0")]
    assert reading.unreadable == ("dram (intel-rapl:0:2): permission",)


def test_a_zone_that_reads_garbage_is_left_out_by_name(machine: Callable[[str], Path]) -> None:
    root = machine("poweredge-r740")  # a copy of the real capture, one counter overwritten
    (root / "sys/class/powercap/intel-rapl:1/energy_uj").write_text("not a number\n")

    reading = rapl.collect(root)

    assert [c.name for c in reading.counters] == ["package-0", "dram", "dram"]
    assert reading.unreadable == ("package-1 (intel-rapl:1): unreadable counter",)


def test_unprivileged_agent_reads_counters_it_is_allowed_to(
        unprivileged_machine: Callable[[str, list[str]], Path], run_unprivileged: Callable[..., Any]) -> None:
    # The same run without the restriction: proves the test above fails for the mode, not the sandbox.
    root = unprivileged_machine("thinkpad-t14", [])

    reading = run_unprivileged(rapl.collect, root)

    assert reading.status == "ok"
    assert len(reading.counters) == 2
