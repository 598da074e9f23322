"""A laptop battery measures the machine only while it discharges, whichever readings its driver offers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agent.collectors import battery
from agent.platform import linux_power
from agent.platform.base import BatteryDraw

from .conftest import SYSFS


def test_discharging_battery_reports_power_now_in_watts() -> None:
    draw = battery.collect(SYSFS / "thinkpad-t14")

    assert draw.discharging is True
    assert draw.watts == pytest.approx(8.123)  # power_now 8123000 µW
    assert draw.detail == "BAT0 power_now"


def test_battery_with_only_current_and_voltage_reports_their_product() -> None:
    draw = battery.collect(SYSFS / "latitude-5490")

    assert draw.discharging is True
    assert draw.watts == pytest.approx(1.523 * 11.823)  # current_now 1523000 µA × voltage_now 11823000 µV
    assert draw.detail == "BAT0 current×voltage"


def test_charging_battery_is_not_a_measurement_of_the_machine() -> None:
    draw = battery.collect(SYSFS / "elitebook-840-g5")

    assert draw.discharging is False
    assert draw.watts is None
    assert "Charging" in draw.detail


def test_desktop_has_no_battery_to_read() -> None:
    assert battery.supported(SYSFS / "optiplex-7070") is False
    assert battery.supported(SYSFS / "latitude-5490") is True


def test_wireless_mouse_battery_is_not_the_machines(machine: Callable[[str], Path]) -> None:
    root = machine("thinkpad-t14")
    (root / "sys/class/power_supply/BAT0/type").write_text("Mains\n")  # leave only the mouse's battery

    assert battery.supported(root) is False


def test_power_now_of_zero_while_discharging_falls_back_to_current_and_voltage() -> None:
    draw = linux_power.supply_draw("BAT1", {"status": "Discharging", "power_now": "0",
                                            "current_now": "-2000000", "voltage_now": "7600000"})

    assert draw.watts == pytest.approx(15.2)  # negative current (some drivers) still means draw
    assert draw.detail == "BAT1 current×voltage"


def test_discharging_battery_without_any_rate_says_so() -> None:
    draw = linux_power.supply_draw("BAT0", {"status": "Discharging", "power_now": None, "current_now": None,
                                            "voltage_now": "11000000"})

    assert draw == BatteryDraw(discharging=True, watts=None, detail="BAT0 reports no rate")


def test_two_batteries_draining_one_at_a_time_add_up() -> None:
    draws = [BatteryDraw(discharging=False, detail="BAT0 Not charging"),
             BatteryDraw(discharging=True, watts=6.5, detail="BAT1 power_now")]

    assert linux_power.combined_draw(draws) == BatteryDraw(discharging=True, watts=6.5, detail="BAT1 power_now")


@pytest.mark.parametrize(("energy_uwh", "charge_uah", "voltage_uv", "expected_wh"), [
    pytest.param(50_500_000, None, 11_520_000, 50.5, id="energy in µWh"),
    pytest.param(None, 3_684_000, 11_400_000, 41.998, id="charge in µAh × design voltage in µV"),
    pytest.param(None, 3_684_000, None, None, id="charge without a voltage"),
    pytest.param(None, None, 11_400_000, None, id="nothing to go on"),
])
def test_battery_capacity_in_watt_hours(energy_uwh: int | None, charge_uah: int | None, voltage_uv: int | None,
                                        expected_wh: float | None) -> None:
    assert linux_power.capacity_wh(energy_uwh, charge_uah, voltage_uv) == (
        pytest.approx(expected_wh) if expected_wh is not None else None)
