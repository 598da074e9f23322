"""What the machine is: psutil's portable view joined with what the OS backend reads.

User names are collected because the sampler may be configured to send them; it removes them
from the inventory otherwise, so nothing here decides what leaves the device.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from agent import __version__
from agent.platform.facts import host_facts
from agent.protocol import MAX_ITEMS, Cpu, DeviceClass, Inventory, Nic

PROVIDES = Inventory

LAPTOP_CHASSIS = frozenset({8, 9, 10, 14, 31, 32})  # portable, laptop, notebook, sub notebook, convertible, detachable
SERVER_CHASSIS = frozenset({17, 23, 28})  # main server chassis, rack mount, blade
DESKTOP_CHASSIS = frozenset({3, 4, 5, 6, 7, 13, 15, 16, 35, 36})  # desktop … tower, all in one, mini PC, stick PC


def device_class(chassis_type: int | None, has_battery: bool) -> DeviceClass:
    """The class the power model and policies use, from the SMBIOS chassis type (DMTF DSP0134 7.4.1).

    Codes outside the three sets ("Other", "Unknown", tablets) say nothing, so a battery decides.
    """
    if chassis_type in LAPTOP_CHASSIS:
        return DeviceClass.LAPTOP
    if chassis_type in SERVER_CHASSIS:
        return DeviceClass.SERVER
    if chassis_type in DESKTOP_CHASSIS:
        return DeviceClass.DESKTOP
    return DeviceClass.LAPTOP if has_battery else DeviceClass.UNKNOWN


def normalise_mac(address: str) -> str | None:
    """Lower-case, colon-separated; None for the all-zero address of loopback and tunnels."""
    mac = address.replace("-", ":").lower()
    return None if not mac or set(mac) <= {"0", ":"} else mac


def nics(addresses: Mapping[str, Iterable[Any]], stats: Mapping[str, Any], link_speeds: Mapping[str, int],
         physical: Collection[str] | None) -> tuple[Nic, ...]:
    """NICs with a hardware address, from psutil's ``net_if_addrs`` and ``net_if_stats`` shapes.

    Only ``physical`` ones when the OS backend can tell them apart. The backend's link speed wins
    over psutil's, which reports 0 when it cannot tell.
    """
    found = []
    for name in sorted(addresses):
        if physical is not None and name not in physical:
            continue
        entries = list(addresses[name])
        macs = [normalise_mac(entry.address) for entry in entries if entry.family == psutil.AF_LINK]
        mac = next((m for m in macs if m), None)
        if mac is None:
            continue
        v4 = [entry for entry in entries if entry.family == socket.AF_INET][:MAX_ITEMS]
        ipv4 = tuple(entry.address for entry in v4)
        ipv6 = tuple(str(ipaddress.ip_address(entry.address.split("%", 1)[0]))
                     for entry in entries if entry.family == socket.AF_INET6)
        reported = stats[name].speed if name in stats else 0
        speed = link_speeds.get(name) or (reported if reported > 0 else None)
        found.append(Nic(name=name, mac=mac, ipv4=ipv4, ipv6=ipv6[:MAX_ITEMS], speed_mbps=speed,
                         ipv4_prefixes=_prefixes(v4)))
    return tuple(found[:MAX_ITEMS])


def _prefixes(entries: list[Any]) -> tuple[int, ...]:
    """Prefix lengths of the addresses, or none at all when any netmask is unknown (they pair by position)."""
    masks = [getattr(entry, "netmask", None) for entry in entries]
    if not all(masks):
        return ()
    return tuple(ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen for mask in masks)


def supported(root: Path) -> bool:
    return True


def change_signal(hostname: str, boot_time: float, addresses: Mapping[str, Iterable[Any]]) -> tuple:
    """What tells, cheaply, that the host facts may have changed: a reboot, another NIC, another name."""
    macs = sorted((name, entry.address) for name, entries in addresses.items() for entry in entries
                  if entry.family == psutil.AF_LINK)
    return hostname, int(boot_time // 60), tuple(macs)


def collect(root: Path) -> Inventory:
    hostname, boot_time, addresses = socket.gethostname(), psutil.boot_time(), psutil.net_if_addrs()
    facts = host_facts(root, change_signal(hostname, boot_time, addresses))
    names = tuple(sorted({user.name for user in psutil.users() if user.name}))
    return Inventory(
        hostname=hostname,
        os=facts.os,
        device_class=device_class(facts.smbios.chassis_type, bool(facts.batteries)),
        machine_id=facts.machine_id,
        cpu=Cpu(model=facts.cpu_model, cores=psutil.cpu_count(logical=False) or 0,
                threads=psutil.cpu_count(logical=True) or 0),
        memory_bytes=psutil.virtual_memory().total,
        disks=facts.disks,
        nics=nics(addresses, psutil.net_if_stats(), dict(facts.link_speeds), facts.physical_nics),
        smbios=facts.smbios,
        batteries=facts.batteries,
        monitors=facts.monitors,
        boot_time=datetime.fromtimestamp(boot_time, UTC),
        user_count=len(names),
        user_names=names[:MAX_ITEMS],
        agent_version=__version__,
    )
