"""The macOS backend's parsers, fed captured ioreg, sw_vers, diskutil, networksetup and system_profiler output."""

from __future__ import annotations

import pytest

from agent.platform import macos
from agent.platform.base import BatteryDraw
from agent.protocol import Battery, Disk, Monitor, Smbios

from .conftest import FIXTURES

MACOS = FIXTURES / "macos"


def captured(source: str, name: str) -> str:
    return (MACOS / source / name).read_text()


@pytest.mark.parametrize(("machine", "version"), [
    ("macbook-air-m2.txt", "macOS 14.4.1 (23E224)"),
    ("imac-2019.txt", "Mac OS X 10.15.7 (19H2026)"),
])
def test_os_version_from_sw_vers(machine: str, version: str) -> None:
    assert macos.parse_sw_vers(captured("sw_vers", machine)) == version


@pytest.mark.parametrize(("machine", "smbios"), [
    ("macbook-air-m2.txt", Smbios(vendor="Apple Inc.", model="Mac14,2", serial="FX2GQLVFJT",
                                  uuid="8a1c2e3d-4f5b-5c6d-9e7f-0a1b2c3d4e5f")),
    ("imac-2019.txt", Smbios(vendor="Apple Inc.", model="iMac19,1", serial="C02ZK1ABJV40",
                             uuid="3b5c7e1a-22d4-5f6e-8a9b-0c1d2e3f4a5b")),
])
def test_identity_from_the_platform_expert(machine: str, smbios: Smbios) -> None:
    assert macos.parse_platform_expert(captured("ioreg-platform", machine)) == smbios


def test_apple_silicon_battery_capacity_uses_raw_mah_and_cell_count() -> None:
    battery = macos.parse_smart_battery(captured("ioreg-smartbattery", "macbook-air-m2-discharging.txt"))

    # 3 cells × 3.85 V: 4563 mAh design (Apple rates this pack 52.6 Wh), 3897 mAh now.
    assert battery == Battery(name="InternalBattery-0", design_wh=52.703, full_wh=45.01)


def test_intel_battery_capacity_has_mah_in_max_capacity() -> None:
    battery = macos.parse_smart_battery(captured("ioreg-smartbattery", "macbook-pro-2019-charging.txt"))

    assert battery is not None
    assert battery.design_wh == pytest.approx(5088 * 11.55 / 1000, abs=0.001)
    assert battery.full_wh == pytest.approx(4631 * 11.55 / 1000, abs=0.001)


@pytest.mark.parametrize(("machine", "draw"), [
    ("macbook-air-m2-discharging.txt",
     BatteryDraw(discharging=True, watts=pytest.approx(1.412 * 12.35), detail="InternalBattery-0 amperage×voltage")),
    ("macbook-pro-2019-charging.txt",
     BatteryDraw(discharging=False, watts=None, detail="InternalBattery-0 on external power")),
])
def test_battery_draw_only_when_off_external_power(machine: str, draw: BatteryDraw) -> None:
    assert macos.parse_battery_draw(captured("ioreg-smartbattery", machine)) == draw


def test_a_mac_without_a_battery_reports_none() -> None:
    assert macos.parse_smart_battery("") is None
    assert macos.parse_battery_draw("") is None


def test_monitors_from_system_profiler() -> None:
    monitors = macos.parse_displays(captured("system_profiler-displays", "macbook-air-m2-with-dell.json"))

    assert monitors == (Monitor(vendor="APP", model="Color LCD", serial=None),
                        Monitor(vendor="DEL", model="DELL P2419H", serial="7MT0191R1SLL"))


def test_internal_disks_from_diskutil() -> None:
    assert macos.parse_diskutil_list(captured("diskutil", "macbook-air-m2-list.plist")) == ("disk0", "disk4")
    assert macos.parse_diskutil_info(captured("diskutil", "macbook-air-m2-info-disk0.plist")) == Disk(
        name="APPLE SSD AP0512Z", size_bytes=500277790720, ssd=True)
    assert macos.parse_diskutil_info(captured("diskutil", "imac-2019-info-disk0.plist")) == Disk(
        name="APPLE HDD ST1000DM003", size_bytes=1000204886016, ssd=False)


def test_external_usb_disk_is_not_inventoried() -> None:
    assert macos.parse_diskutil_info(captured("diskutil", "macbook-air-m2-info-disk4.plist")) is None


def test_hardware_ports_are_the_nics_with_a_hardware_address() -> None:
    ports = macos.parse_hardware_ports(captured("networksetup", "macbook-air-m2.txt"))

    assert ports == ("en0", "bridge0", "en1", "en2")  # not the iPhone USB port without an address


def test_seconds_since_input_from_hid_idle_time() -> None:
    assert macos.parse_hid_idle(captured("ioreg-hidsystem", "macbook-air-m2.txt")) == pytest.approx(184.262745833)


@pytest.mark.parametrize(("printed", "value"), [
    ("4563", 4563),
    ("18446744073709550204", -1412),  # ioreg prints negative 64-bit integers unsigned
    ("Yes", None),
    (None, None),
])
def test_ioreg_integers(printed: str | None, value: int | None) -> None:
    assert macos.ioreg_int(printed) == value
