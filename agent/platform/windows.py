"""The Windows backend: CIM through one PowerShell call for inventory, kernel32 through ctypes for the
cheap per-interval questions, Terminal Services for who is signed in.

Inventory is a single PowerShell run printing JSON (PowerShell starts slowly; one start per
inventory, not one per class) and :func:`parse_host_facts` turns that JSON into facts, so it is
tested on Linux from captured output. ``ConvertTo-Json`` writes a one-element result as a bare
object and an empty one as null; the parser accepts all three shapes.

ctypes.windll exists only on Windows; it is touched inside functions, so this module imports
anywhere and its parsers run in the Linux test suite.
"""

from __future__ import annotations

import ctypes
import json
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agent.platform import command, windows_channel, windows_wts
from agent.platform.base import (
    BatteryDraw,
    HostFacts,
    RaplReading,
    battery,
    chassis_type,
    text_or_none,
)
from agent.protocol import MAX_ITEMS, Battery, Disk, Monitor, OperatingSystem, Smbios
from agent.session.view import SignedIn, SystemIdle

CREATE_NO_WINDOW = 0x08000000  # keeps a console window from flashing up on the user's desktop
POWERSHELL = ("powershell.exe", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-Command")

INVENTORY_SCRIPT = r"""
$ErrorActionPreference = 'SilentlyContinue'
[Console]::OutputEncoding = [Text.Encoding]::UTF8
function Cim($Class, $Namespace = 'root/cimv2') { Get-CimInstance -Namespace $Namespace -ClassName $Class }
[ordered]@{
  os = Cim Win32_OperatingSystem | Select-Object Caption, Version
  product = Cim Win32_ComputerSystemProduct | Select-Object Vendor, Name, Version, IdentifyingNumber, UUID
  enclosure = Cim Win32_SystemEnclosure | Select-Object ChassisTypes
  processor = Cim Win32_Processor | Select-Object Name
  disks = Cim MSFT_PhysicalDisk 'root/Microsoft/Windows/Storage' | Select-Object FriendlyName, Size, MediaType, BusType
  batteryStatic = Cim BatteryStaticData 'root/wmi' | Select-Object InstanceName, DesignedCapacity
  batteryFull = Cim BatteryFullChargedCapacity 'root/wmi' | Select-Object InstanceName, FullChargedCapacity
  monitors = Cim WmiMonitorID 'root/wmi' | Select-Object ManufacturerName, UserFriendlyName, SerialNumberID
  physicalNics = @(Get-NetAdapter -Physical | Select-Object -ExpandProperty Name)
  machineGuid = (Get-ItemProperty -Path 'HKLM:\SOFTWARE\Microsoft\Cryptography' -Name MachineGuid).MachineGuid
} | ConvertTo-Json -Depth 4 -Compress
"""

BATTERY_STATUS_SCRIPT = r"""
$ErrorActionPreference = 'SilentlyContinue'
Get-CimInstance -Namespace root/wmi -ClassName BatteryStatus |
  Select-Object InstanceName, Discharging, PowerOnline, DischargeRate | ConvertTo-Json -Compress
"""

MEDIA_TYPE_HDD, MEDIA_TYPE_SSD, MEDIA_TYPE_SCM = 3, 4, 5  # MSFT_PhysicalDisk.MediaType
BUS_TYPE_USB = 7  # MSFT_PhysicalDisk.BusType: plug-in disks are not the machine's own
AC_OFFLINE, AC_ONLINE = 0, 1  # SYSTEM_POWER_STATUS.ACLineStatus
NO_SYSTEM_BATTERY, BATTERY_STATUS_UNKNOWN = 128, 255  # SYSTEM_POWER_STATUS.BatteryFlag


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _first(value: Any) -> dict[str, Any]:
    items = [item for item in _as_list(value) if isinstance(item, dict)]
    return items[0] if items else {}


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def decode_wmi_string(codes: Any) -> str | None:
    """WmiMonitorID strings are arrays of character codes padded with zeros."""
    if not isinstance(codes, list):
        return text_or_none(codes)
    return text_or_none("".join(chr(code) for code in codes if isinstance(code, int) and 0 < code < 0x110000))


def _smbios(product: dict[str, Any], enclosure: dict[str, Any]) -> Smbios:
    vendor = text_or_none(product.get("Vendor"))
    model = text_or_none(product.get("Name"))
    if vendor and vendor.upper() == "LENOVO" and text_or_none(product.get("Version")):
        model = text_or_none(product.get("Version"))  # Lenovo: Name is the machine type code
    uuid = text_or_none(product.get("UUID"))
    chassis = _as_list(enclosure.get("ChassisTypes"))
    return Smbios(vendor=vendor, model=model, serial=text_or_none(product.get("IdentifyingNumber")),
                  uuid=uuid.lower() if uuid else None, chassis_type=chassis_type(_int(chassis[0]) if chassis else None))


def _disks(entries: Iterable[Any]) -> tuple[Disk, ...]:
    found = []
    for entry in entries:
        size = _int(entry.get("Size"))
        if not size or _int(entry.get("BusType")) == BUS_TYPE_USB:
            continue
        media = _int(entry.get("MediaType"))
        ssd = True if media in (MEDIA_TYPE_SSD, MEDIA_TYPE_SCM) else False if media == MEDIA_TYPE_HDD else None
        found.append(Disk(name=text_or_none(entry.get("FriendlyName")) or "disk", size_bytes=size, ssd=ssd))
    return tuple(found[:MAX_ITEMS])


def _batteries(static: Iterable[Any], full: Iterable[Any]) -> tuple[Battery, ...]:
    """Design capacity and full-charge capacity come from two classes, joined by InstanceName (mWh)."""
    full_by_name = {entry.get("InstanceName"): _int(entry.get("FullChargedCapacity")) for entry in full}
    found = []
    for entry in static:
        name = text_or_none(entry.get("InstanceName")) or "battery"
        design = _int(entry.get("DesignedCapacity"))
        full_mwh = full_by_name.get(entry.get("InstanceName"))
        found.append(battery(name, design_wh=design / 1000 if design else None,
                             full_wh=full_mwh / 1000 if full_mwh else None))
    return tuple(found[:MAX_ITEMS])


def _monitors(entries: Iterable[Any]) -> tuple[Monitor, ...]:
    found = [Monitor(vendor=decode_wmi_string(entry.get("ManufacturerName")),
                     model=decode_wmi_string(entry.get("UserFriendlyName")),
                     serial=decode_wmi_string(entry.get("SerialNumberID"))) for entry in entries]
    return tuple(found[:MAX_ITEMS])


def _physical_nics(names: Any) -> tuple[str, ...] | None:
    """Get-NetAdapter -Physical names, which are the interface aliases psutil uses.

    None when the query gave nothing (Get-NetAdapter is missing before Windows 8): keep every NIC.
    """
    return tuple(name for name in _as_list(names) if isinstance(name, str)) or None


def parse_host_facts(text: str, arch: str) -> HostFacts:
    """Facts from the inventory script's JSON; ``arch`` is the interpreter's view of the machine."""
    data = json.loads(text)
    os_entry = _first(data.get("os"))
    caption, version = text_or_none(os_entry.get("Caption")), text_or_none(os_entry.get("Version"))
    return HostFacts(
        os=OperatingSystem(name="Windows", version=" ".join(part for part in (caption, version) if part),
                           kernel=version or "", arch=arch),
        machine_id=text_or_none(data.get("machineGuid")),
        cpu_model=text_or_none(_first(data.get("processor")).get("Name")) or "",
        smbios=_smbios(_first(data.get("product")), _first(data.get("enclosure"))),
        disks=_disks(item for item in _as_list(data.get("disks")) if isinstance(item, dict)),
        batteries=_batteries([item for item in _as_list(data.get("batteryStatic")) if isinstance(item, dict)],
                             [item for item in _as_list(data.get("batteryFull")) if isinstance(item, dict)]),
        monitors=_monitors(item for item in _as_list(data.get("monitors")) if isinstance(item, dict)),
        physical_nics=_physical_nics(data.get("physicalNics")),
    )


def parse_battery_status(text: str) -> BatteryDraw:
    """The draw from root/wmi BatteryStatus JSON: DischargeRate is in mW, per battery."""
    entries = [item for item in _as_list(json.loads(text)) if isinstance(item, dict)]
    discharging = [entry for entry in entries if entry.get("Discharging") is True]
    if not discharging:
        return BatteryDraw(discharging=False, detail="BatteryStatus not discharging")
    rates = [_int(entry.get("DischargeRate")) for entry in discharging]
    watts = None if None in rates else sum(rate for rate in rates if rate is not None) / 1000
    return BatteryDraw(discharging=True, watts=watts, detail="BatteryStatus DischargeRate")


def battery_present(battery_flag: int) -> bool:
    return battery_flag not in (NO_SYSTEM_BATTERY, BATTERY_STATUS_UNKNOWN)


def _powershell(script: str) -> str | None:
    return command.run([*POWERSHELL, script], timeout=60, creationflags=CREATE_NO_WINDOW)


def host_facts(root: Path) -> HostFacts:
    output = _powershell(INVENTORY_SCRIPT)
    try:
        return parse_host_facts(output or "", platform.machine())
    except (ValueError, AttributeError):
        return HostFacts(os=OperatingSystem(name="Windows", version=platform.version(),
                                            kernel=platform.version(), arch=platform.machine()))


class _SystemPowerStatus(ctypes.Structure):
    _fields_ = [("ACLineStatus", ctypes.c_ubyte), ("BatteryFlag", ctypes.c_ubyte),
                ("BatteryLifePercent", ctypes.c_ubyte), ("SystemStatusFlag", ctypes.c_ubyte),
                ("BatteryLifeTime", ctypes.c_uint32), ("BatteryFullLifeTime", ctypes.c_uint32)]


def signed_in(root: Path) -> tuple[SignedIn, ...]:
    return windows_wts.signed_in_sessions(windows_wts.Win32Wts())


def system_idle(root: Path) -> SystemIdle:
    """Nothing a service can read: GetLastInputInfo in session 0 sees session 0's input, which nobody
    gives, and no call reports input at the sign-in screen to a service. The desk then counts idle from
    the last sign-out it saw (agent.session.view)."""
    return SystemIdle(None, "")


def session_listener(address: str) -> windows_channel.PipeListener:
    wts = windows_wts.Win32Wts()
    return windows_channel.PipeListener(windows_channel.Win32Pipes(), wts.user, address)


def slept_seconds() -> float:
    """GetTickCount64 counts sleep and hibernation; QueryUnbiasedInterruptTime (100 ns units) does not."""
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    kernel32.GetTickCount64.restype = ctypes.c_uint64
    unbiased = ctypes.c_uint64()
    if not kernel32.QueryUnbiasedInterruptTime(ctypes.byref(unbiased)):
        return 0.0
    return max(0.0, kernel32.GetTickCount64() / 1000 - unbiased.value / 1e7)


def _power_status() -> _SystemPowerStatus | None:
    status = _SystemPowerStatus()
    if not ctypes.windll.kernel32.GetSystemPowerStatus(ctypes.byref(status)):  # type: ignore[attr-defined]
        return None
    return status


def rapl(root: Path) -> RaplReading | None:
    return None  # Windows exposes no RAPL counters without a third-party kernel driver


def has_rapl(root: Path) -> bool:
    return False



def has_battery(root: Path) -> bool:
    status = _power_status()
    return status is not None and battery_present(status.BatteryFlag)


def on_battery(root: Path) -> bool:
    """GetSystemPowerStatus: a battery present and the AC line offline (no PowerShell: asked every minute)."""
    status = _power_status()
    return status is not None and battery_present(status.BatteryFlag) and status.ACLineStatus == AC_OFFLINE


def battery_draw(root: Path) -> BatteryDraw | None:
    status = _power_status()
    if status is None or not battery_present(status.BatteryFlag):
        return None
    if status.ACLineStatus == AC_ONLINE:
        return BatteryDraw(discharging=False, detail="AC line online")
    output = _powershell(BATTERY_STATUS_SCRIPT)
    try:
        return parse_battery_status(output or "")
    except ValueError:
        return BatteryDraw(discharging=status.ACLineStatus == AC_OFFLINE, detail="BatteryStatus unreadable")
