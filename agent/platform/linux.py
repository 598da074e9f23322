"""The Linux backend: everything is a file under ``root`` (sysfs, procfs, /etc, utmp) except sleep and logind.

Root-only attributes (the DMI serial and UUID, RAPL counters) are normal to find unreadable when
the agent runs unprivileged; they come back as None or as a status, never as an error.
"""

from __future__ import annotations

import platform
import shlex
import time
from pathlib import Path

from agent.platform import linux_idle, linux_power, posix_channel
from agent.platform.base import BatteryDraw, HostFacts, RaplReading, chassis_type, text_or_none
from agent.platform.edid import parse_edid
from agent.platform.sysfs import read, read_int
from agent.protocol import MAX_ITEMS, Disk, Monitor, OperatingSystem, Smbios
from agent.session.view import SignedIn, SystemIdle

DMI = Path("sys/class/dmi/id")
BLOCK = Path("sys/block")
NET = Path("sys/class/net")
DRM = Path("sys/class/drm")
MAX_LINK_MBPS = 10_000_000  # the protocol's bound: a bigger "speed" is a driver's placeholder
SECTOR_BYTES = 512  # /sys/block/*/size is always in 512-byte sectors, whatever the device's own
MACHINE_ID_FILES = (Path("etc/machine-id"), Path("var/lib/dbus/machine-id"))


def parse_os_release(text: str) -> str:
    """The distribution as people name it, from /etc/os-release (shell-quoted KEY=value lines)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            try:
                fields[key.strip()] = " ".join(shlex.split(value))
            except ValueError:
                fields[key.strip()] = value.strip()
    if fields.get("PRETTY_NAME"):
        return fields["PRETTY_NAME"]
    return " ".join(part for part in (fields.get("NAME"), fields.get("VERSION")) if part)


def parse_cpuinfo(text: str) -> str:
    """The processor's marketing name from /proc/cpuinfo ("model name" on x86, "Model" on many ARM boards)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields.get("model name") or fields.get("Model") or fields.get("Hardware") or ""


def os_info(root: Path) -> OperatingSystem:
    release = read(root / "etc/os-release") or read(root / "usr/lib/os-release") or ""
    return OperatingSystem(name="Linux", version=text_or_none(parse_os_release(release)) or "",
                           kernel=platform.release(), arch=platform.machine())


def machine_id(root: Path) -> str | None:
    for candidate in MACHINE_ID_FILES:
        value = text_or_none(read(root / candidate))
        if value and value != "uninitialized":
            return value
    return None


def smbios(root: Path) -> Smbios:
    dmi = root / DMI
    vendor = text_or_none(read(dmi / "sys_vendor"))
    model = text_or_none(read(dmi / "product_name"))
    version = text_or_none(read(dmi / "product_version"))
    if vendor and vendor.upper() == "LENOVO" and version:
        model = version  # Lenovo puts the machine type code in product_name and the model name here
    uuid = text_or_none(read(dmi / "product_uuid"))
    return Smbios(vendor=vendor, model=model, serial=text_or_none(read(dmi / "product_serial")),
                  uuid=uuid.lower() if uuid else None, chassis_type=chassis_type(read_int(dmi / "chassis_type")))


def disks(root: Path) -> tuple[Disk, ...]:
    """Fixed disks: block devices backed by hardware (not loop, zram or device-mapper) and not removable."""
    base = root / BLOCK
    if not base.is_dir():
        return ()
    found = []
    for device in sorted(base.iterdir()):
        sectors = read_int(device / "size")
        if not (device / "device").exists() or read(device / "removable") == "1" or not sectors:
            continue
        rotational = read(device / "queue/rotational")
        found.append(Disk(name=device.name, size_bytes=sectors * SECTOR_BYTES,
                          ssd=None if rotational not in ("0", "1") else rotational == "0"))
    return tuple(found[:MAX_ITEMS])


def link_speeds(root: Path) -> tuple[tuple[str, int], ...]:
    """Negotiated speeds in Mb/s; a link that is down or virtual reports -1 or refuses the read."""
    base = root / NET
    if not base.is_dir():
        return ()
    speeds = ((nic.name, read_int(nic / "speed")) for nic in sorted(base.iterdir()))
    return tuple((name, speed) for name, speed in speeds if speed and 0 < speed <= MAX_LINK_MBPS)


def physical_nics(root: Path) -> tuple[str, ...] | None:
    """Interfaces with a ``device`` link: real hardware, as opposed to bridges, veths, tunnels and ifb."""
    base = root / NET
    if not base.is_dir():
        return None
    # None rather than nothing when no interface has a device link (containers): keep them all.
    return tuple(nic.name for nic in sorted(base.iterdir()) if (nic / "device").exists()) or None


def monitors(root: Path) -> tuple[Monitor, ...]:
    base = root / DRM
    if not base.is_dir():
        return ()
    found = []
    for connector in sorted(base.iterdir()):
        try:
            edid = (connector / "edid").read_bytes()
        except OSError:
            continue  # cards and render nodes have no EDID; connectors with nothing plugged read empty
        monitor = parse_edid(edid)
        if monitor is not None:
            found.append(monitor)
    return tuple(found[:MAX_ITEMS])


def host_facts(root: Path) -> HostFacts:
    return HostFacts(
        os=os_info(root),
        machine_id=machine_id(root),
        cpu_model=text_or_none(parse_cpuinfo(read(root / "proc/cpuinfo") or "")) or "",
        smbios=smbios(root),
        disks=disks(root),
        batteries=linux_power.batteries(root),
        monitors=monitors(root),
        link_speeds=link_speeds(root),
        physical_nics=physical_nics(root),
    )


def signed_in(root: Path) -> tuple[SignedIn, ...]:
    return linux_idle.signed_in(root)


def system_idle(root: Path) -> SystemIdle:
    return linux_idle.system_idle(root)


def session_listener(address: str) -> posix_channel.UnixListener:
    return posix_channel.UnixListener(Path(address))


def slept_seconds() -> float:
    """CLOCK_BOOTTIME runs through suspend and CLOCK_MONOTONIC stops: their gap is time asleep."""
    return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - time.clock_gettime(time.CLOCK_MONOTONIC))


def rapl(root: Path) -> RaplReading | None:
    return linux_power.rapl(root)


def has_rapl(root: Path) -> bool:
    return linux_power.has_rapl(root)


def has_battery(root: Path) -> bool:
    return linux_power.has_battery(root)


def battery_draw(root: Path) -> BatteryDraw | None:
    return linux_power.battery_draw(root)


def on_battery(root: Path) -> bool:
    """A discharging system battery in sysfs (the reading psutil.sensors_battery makes, under ``root``)."""
    draw = linux_power.battery_draw(root)
    return draw is not None and draw.discharging
