"""The Windows backend's parsers, fed the JSON its PowerShell scripts print on real machine types."""

from __future__ import annotations

import pytest

from agent.platform import windows, windows_session
from agent.platform.base import BatteryDraw
from agent.protocol import Battery, Disk, Monitor, OperatingSystem, Smbios

from .conftest import FIXTURES

WINDOWS = FIXTURES / "windows"


def facts(machine: str) -> windows.HostFacts:
    return windows.parse_host_facts((WINDOWS / "inventory" / f"{machine}.json").read_text(), arch="AMD64")


def test_desktop_with_two_monitors_and_a_usb_stick() -> None:
    desktop = facts("optiplex-7090")

    assert desktop.os == OperatingSystem(name="Windows", version="Microsoft Windows 11 Education 10.0.22631",
                                         kernel="10.0.22631", arch="AMD64")
    assert desktop.machine_id == "b2f0c3a1-7d54-4e8a-9c61-3e2f1a0b9d87"
    assert desktop.cpu_model == "11th Gen Intel(R) Core(TM) i5-11500 @ 2.70GHz"
    assert desktop.smbios == Smbios(vendor="Dell Inc.", model="OptiPlex 7090", serial="8GK4TL3",
                                    uuid="4c4c4544-0047-4b10-8034-b8c04f544c33", chassis_type=3)
    assert desktop.disks == (Disk(name="PC SN530 NVMe WDC 256GB", size_bytes=256060514304, ssd=True),
                             Disk(name="ST1000DM010-2EP102", size_bytes=1000204886016, ssd=False))
    assert desktop.batteries == ()
    assert desktop.monitors == (Monitor(vendor="DEL", model="DELL P2419H", serial="7MT0191R1SLL"),
                                Monitor(vendor="DEL", model="DELL P2419H", serial="7MT0193A2KLL"))
    assert desktop.physical_nics == ("Ethernet",)


def test_laptop_whose_queries_each_returned_one_bare_object() -> None:
    laptop = facts("thinkpad-x13")

    assert laptop.smbios.model == "ThinkPad X13 Gen 1"  # Lenovo's Name is the machine type 20T2S00500
    assert laptop.smbios.chassis_type == 10
    assert laptop.disks == (Disk(name="SAMSUNG MZVLB512HBJQ-000L7", size_bytes=512110190592, ssd=True),)
    assert laptop.batteries == (Battery(name="ACPI\\PNP0C0A\\1_0", design_wh=48.0, full_wh=41.23),)
    assert laptop.monitors == (Monitor(vendor="LEN", model=None, serial="0"),)
    assert laptop.physical_nics == ("Wi-Fi",)


def test_virtual_machine_with_empty_queries_keeps_every_nic() -> None:
    guest = facts("hyper-v-guest")

    assert guest.os.version == "Microsoft Windows Server 2022 Standard 10.0.20348"
    assert guest.cpu_model == "Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz"
    assert (guest.disks, guest.batteries, guest.monitors) == ((), (), ())
    assert guest.physical_nics is None


@pytest.mark.parametrize(("codes", "text"), [
    ([68, 69, 76, 76, 32, 80, 50, 52, 49, 57, 72, 0, 0], "DELL P2419H"),
    ([0] * 13, None),
    ("already text", "already text"),
    (None, None),
])
def test_wmi_monitor_strings_are_zero_padded_character_codes(codes: object, text: str | None) -> None:
    assert windows.decode_wmi_string(codes) == text


@pytest.mark.parametrize(("capture", "draw"), [
    ("thinkpad-x13-discharging", BatteryDraw(discharging=True, watts=9.321, detail="BatteryStatus DischargeRate")),
    ("two-batteries-discharging", BatteryDraw(discharging=True, watts=6.1, detail="BatteryStatus DischargeRate")),
    ("thinkpad-x13-charging", BatteryDraw(discharging=False, watts=None, detail="BatteryStatus not discharging")),
])
def test_battery_draw_from_battery_status(capture: str, draw: BatteryDraw) -> None:
    text = (WINDOWS / "battery-status" / f"{capture}.json").read_text()

    assert windows.parse_battery_status(text) == draw


@pytest.mark.parametrize(("earlier", "later", "milliseconds"), [
    (1_000, 61_000, 60_000),
    (2**32 - 5_000, 10_000, 15_000),  # GetTickCount wrapped after 49.7 days up
])
def test_idle_milliseconds_across_tick_count_wrap(earlier: int, later: int, milliseconds: int) -> None:
    assert windows_session.ticks_between(earlier, later) == milliseconds


@pytest.mark.parametrize(("flag", "present"), [(0, True), (8, True), (128, False), (255, False)])
def test_battery_presence_from_system_power_status(flag: int, present: bool) -> None:
    assert windows.battery_present(flag) is present
