"""The macOS backend: ioreg, sysctl, sw_vers, diskutil and system_profiler, each parsed by a pure function.

macOS has no SMBIOS chassis type to read, so a Mac's device class comes from its battery (a
MacBook is a laptop; an iMac or Mac mini stays "unknown" and is modelled like a desktop).
Batteries report mAh only: watt-hours use the pack's cell count × 3.85 V, the nominal voltage of
the lithium-polymer cells Apple fits, because the live voltage would make the inventory change on
every reading.
"""

from __future__ import annotations

import json
import platform
import plistlib
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.platform import command, posix_channel
from agent.platform.base import BatteryDraw, HostFacts, RaplReading, battery, text_or_none
from agent.platform.edid import pnp_id
from agent.platform.macos_session import ioreg_int, parse_hid_idle, parse_ioreg
from agent.protocol import MAX_ITEMS, Battery, Disk, Monitor, OperatingSystem, Smbios
from agent.session.view import SignedIn, SystemIdle

NOMINAL_CELL_VOLTS = 3.85


def parse_sw_vers(text: str) -> str:
    """"macOS 14.4.1 (23E224)" from ``sw_vers`` (tab-aligned "Key: value" lines)."""
    fields = {key.strip(): value.strip() for key, sep, value in (line.partition(":") for line in text.splitlines())
              if sep}
    version = " ".join(part for part in (fields.get("ProductName"), fields.get("ProductVersion")) if part)
    build = fields.get("BuildVersion")
    return f"{version} ({build})" if version and build else version


def ioreg_string(value: str | None) -> str | None:
    """A string property: ``"text"`` or, for device-tree data, ``<"text">``."""
    if value is None:
        return None
    return text_or_none(value.removeprefix("<").removesuffix(">").strip('"'))


def parse_platform_expert(text: str) -> Smbios:
    """The machine's identity from ``ioreg -rd1 -c IOPlatformExpertDevice``."""
    properties = parse_ioreg(text)
    uuid = ioreg_string(properties.get("IOPlatformUUID"))
    return Smbios(vendor=ioreg_string(properties.get("manufacturer")),
                  model=ioreg_string(properties.get("model")),
                  serial=ioreg_string(properties.get("IOPlatformSerialNumber")),
                  uuid=uuid.lower() if uuid else None)


def parse_diskutil_list(text: str) -> tuple[str, ...]:
    """Whole-disk identifiers from ``diskutil list -plist physical``."""
    return tuple(str(name) for name in plistlib.loads(text.encode()).get("WholeDisks", []))


def parse_diskutil_info(text: str) -> Disk | None:
    """One disk from ``diskutil info -plist diskN``; None for external and virtual disks."""
    info: dict[str, Any] = plistlib.loads(text.encode())
    size = info.get("TotalSize") or info.get("Size")
    if not info.get("Internal") or info.get("VirtualOrPhysical") == "Virtual" or not size:
        return None
    solid = info.get("SolidState")
    return Disk(name=text_or_none(info.get("MediaName")) or str(info.get("DeviceIdentifier", "disk")),
                size_bytes=int(size), ssd=solid if isinstance(solid, bool) else None)


def _cell_count(battery_data: str) -> int | None:
    cells = re.search(r'"CellVoltage"=\(([^)]*)\)', battery_data)
    if cells:
        return len([cell for cell in cells.group(1).split(",") if cell.strip()])
    qmax = set(re.findall(r'"QmaxCell(\d+)"', battery_data))
    return len(qmax) or None


def _battery_data_int(battery_data: str, key: str) -> int | None:
    match = re.search(rf'"{key}"=(\d+)', battery_data)
    return int(match.group(1)) if match else None


def parse_smart_battery(text: str) -> Battery | None:
    """Design and full-charge capacity from ``ioreg -rn AppleSmartBattery``; None without a battery.

    Apple silicon reports MaxCapacity as a percentage and the mAh as AppleRawMaxCapacity; older
    Intel Macs report mAh in MaxCapacity itself.
    """
    properties = parse_ioreg(text)
    if not properties or properties.get("BatteryInstalled") == "No":
        return None
    battery_data = properties.get("BatteryData", "")
    design_mah = ioreg_int(properties.get("DesignCapacity")) or _battery_data_int(battery_data, "DesignCapacity")
    max_capacity = ioreg_int(properties.get("MaxCapacity"))
    full_mah = (ioreg_int(properties.get("AppleRawMaxCapacity"))
                or (max_capacity if max_capacity and max_capacity > 100 else None)
                or ioreg_int(properties.get("NominalChargeCapacity")))
    cells = _cell_count(battery_data)
    volts = cells * NOMINAL_CELL_VOLTS if cells else None
    return battery("InternalBattery-0",
                   design_wh=round(design_mah * volts / 1000, 3) if design_mah and volts else None,
                   full_wh=round(full_mah * volts / 1000, 3) if full_mah and volts else None)


def parse_battery_draw(text: str) -> BatteryDraw | None:
    """The draw from ``ioreg -rn AppleSmartBattery``: InstantAmperage (mA, negative when draining) × Voltage (mV)."""
    properties = parse_ioreg(text)
    if not properties or properties.get("BatteryInstalled") == "No":
        return None
    if properties.get("ExternalConnected") != "No":
        return BatteryDraw(discharging=False, detail="InternalBattery-0 on external power")
    amperage = ioreg_int(properties.get("InstantAmperage")) or ioreg_int(properties.get("Amperage"))
    voltage = ioreg_int(properties.get("Voltage"))
    if amperage is None or not voltage:
        return BatteryDraw(discharging=True, detail="InternalBattery-0 reports no rate")
    return BatteryDraw(discharging=True, watts=abs(amperage) * voltage / 1e6,
                       detail="InternalBattery-0 amperage×voltage")


def parse_displays(text: str) -> tuple[Monitor, ...]:
    """Monitors from ``system_profiler SPDisplaysDataType -json``.

    The vendor id is the EDID manufacturer code in hex. Only the un-prefixed serial key carries the
    monitor's real serial; the "_"-prefixed one is an internal number.
    """
    found = []
    for adapter in json.loads(text).get("SPDisplaysDataType", []):
        for display in adapter.get("spdisplays_ndrvs", []):
            try:
                vendor = pnp_id(int(display.get("_spdisplays_display-vendor-id", ""), 16))
            except ValueError:
                vendor = None
            found.append(Monitor(vendor=vendor, model=text_or_none(display.get("_name")),
                                 serial=text_or_none(display.get("spdisplays_display-serial-number"))))
    return tuple(found[:MAX_ITEMS])


def parse_hardware_ports(text: str) -> tuple[str, ...] | None:
    """Devices of ``networksetup -listallhardwareports`` that have a hardware address (not bridges)."""
    devices = []
    device = None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Device":
            device = value.strip()
        elif key.strip() == "Ethernet Address" and device:
            if value.strip() != "N/A":
                devices.append(device)
            device = None
    return tuple(devices) or None


def _disks() -> tuple[Disk, ...]:
    listing = command.run(["diskutil", "list", "-plist", "physical"])
    found = []
    for identifier in parse_diskutil_list(listing) if listing else ():
        info = command.run(["diskutil", "info", "-plist", identifier])
        disk = parse_diskutil_info(info) if info else None
        if disk is not None:
            found.append(disk)
    return tuple(found[:MAX_ITEMS])


def _smart_battery() -> str:
    return command.run(["ioreg", "-rn", "AppleSmartBattery"]) or ""


def host_facts(root: Path) -> HostFacts:
    platform_expert = parse_platform_expert(command.run(["ioreg", "-rd1", "-c", "IOPlatformExpertDevice"]) or "")
    displays = command.run(["system_profiler", "SPDisplaysDataType", "-json"])
    battery = parse_smart_battery(_smart_battery())
    try:
        monitors = parse_displays(displays) if displays else ()
    except (ValueError, AttributeError):
        monitors = ()
    try:
        disks = _disks()
    except (ValueError, plistlib.InvalidFileException):
        disks = ()
    return HostFacts(
        os=OperatingSystem(name="Darwin", version=text_or_none(parse_sw_vers(command.run(["sw_vers"]) or "")) or "",
                           kernel=platform.release(), arch=platform.machine()),
        machine_id=platform_expert.uuid,
        cpu_model=text_or_none(command.run(["sysctl", "-n", "machdep.cpu.brand_string"])) or "",
        smbios=platform_expert,
        disks=disks,
        batteries=(battery,) if battery else (),
        monitors=monitors,
        physical_nics=parse_hardware_ports(command.run(["networksetup", "-listallhardwareports"]) or ""),
    )


def signed_in_from_users(users: Iterable[Any]) -> tuple[SignedIn, ...]:
    """Sessions from psutil's ``users()`` (utmpx): the console's GUI sessions and terminal sessions.

    Terminal windows of the console's user are theirs and covered by their helper; a session with a
    host came over the network.
    """
    return tuple(SignedIn(user=user.name, session=user.terminal or "console", remote=bool(user.host),
                          since=datetime.fromtimestamp(user.started, UTC) if user.started else None)
                 for user in users if user.name)


def signed_in(root: Path) -> tuple[SignedIn, ...]:
    import psutil

    return signed_in_from_users(psutil.users())


def system_idle(root: Path) -> SystemIdle:
    """HIDIdleTime counts input from every keyboard and mouse, the login window's included."""
    return SystemIdle(parse_hid_idle(command.run(["ioreg", "-r", "-d", "1", "-c", "IOHIDSystem"]) or ""),
                      "HIDIdleTime")


def session_listener(address: str) -> posix_channel.UnixListener:
    return posix_channel.UnixListener(Path(address))


def slept_seconds() -> float:
    """CLOCK_MONOTONIC keeps counting through sleep on macOS; CLOCK_UPTIME_RAW stops."""
    uptime = time.CLOCK_UPTIME_RAW  # type: ignore[attr-defined]  # macOS only
    return max(0.0, time.clock_gettime(time.CLOCK_MONOTONIC) - time.clock_gettime(uptime))


def rapl(root: Path) -> RaplReading | None:
    return None  # macOS offers package power only through powermetrics, which needs root and samples for seconds


def has_rapl(root: Path) -> bool:
    return False



def has_battery(root: Path) -> bool:
    return parse_smart_battery(_smart_battery()) is not None


def battery_draw(root: Path) -> BatteryDraw | None:
    return parse_battery_draw(_smart_battery())


def on_battery(root: Path) -> bool:
    """IOPowerSources through psutil: cheaper than the ioreg read of ``battery_draw``, and asked every minute."""
    import psutil

    battery = psutil.sensors_battery()
    return battery is not None and battery.power_plugged is False
