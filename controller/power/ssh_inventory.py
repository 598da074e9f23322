"""Inventory of a host without an agent, from one shell script run over SSH: pure parsing of its output
into the same ``Inventory`` an agent sends, so the register treats both alike.

The script prints sections ("### name") from tools every Linux or macOS host has; a missing tool
leaves its section empty and that fact unknown.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from agent.protocol import MAX_ITEMS, Cpu, DeviceClass, Disk, Inventory, Nic, OperatingSystem, Smbios

SCRIPT = "; ".join([
    "echo '### uname'", "uname -s", "uname -n", "uname -r", "uname -m",
    "echo '### os-release'", "cat /etc/os-release 2>/dev/null",
    "echo '### sw_vers'", "sw_vers -productVersion 2>/dev/null",
    "echo '### cpuinfo'", "cat /proc/cpuinfo 2>/dev/null",
    "echo '### meminfo'", "head -n 1 /proc/meminfo 2>/dev/null",
    "echo '### sysctl'", "sysctl hw.memsize hw.physicalcpu hw.logicalcpu machdep.cpu.brand_string 2>/dev/null",
    "echo '### lsblk'", "lsblk -b -d -n -o NAME,SIZE,ROTA,TYPE 2>/dev/null",
    "echo '### diskutil'", "diskutil info disk0 2>/dev/null",
    "echo '### machine-id'", "cat /etc/machine-id 2>/dev/null",
    "echo '### ip-link'", "ip -o link show 2>/dev/null",
    "echo '### ip-addr'", "ip -o -4 addr show 2>/dev/null",
    "echo '### end'",
])


def sections(text: str) -> dict[str, str]:
    found: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("### "):
            current = line[4:].strip()
            found[current] = []
        elif current is not None:
            found[current].append(line)
    return {name: "\n".join(lines).strip() for name, lines in found.items()}


@dataclass(frozen=True)
class Uname:
    system: str
    node: str
    release: str
    machine: str


def parse_uname(text: str) -> Uname:
    lines = [line.strip() for line in text.splitlines()] + [""] * 4
    return Uname(*lines[:4])


def parse_os_release(text: str) -> str | None:
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    name = values.get("PRETTY_NAME") or values.get("NAME")
    return name.strip().strip('"') if name else None


def parse_cpuinfo(text: str) -> Cpu | None:
    models = re.findall(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    if not models:
        return None
    threads = len(re.findall(r"^processor\s*:", text, re.MULTILINE))
    cores = {(p, c) for p, c in re.findall(r"^physical id\s*:\s*(\d+)\s*\ncore id\s*:\s*(\d+)", text, re.M)}
    per_package = re.findall(r"^cpu cores\s*:\s*(\d+)$", text, re.MULTILINE)
    physical = len(cores) or (int(per_package[0]) if per_package else threads)
    return Cpu(models[0].strip()[:255], physical, threads)


def parse_meminfo(text: str) -> int | None:
    match = re.search(r"MemTotal:\s*(\d+)\s*kB", text)
    return int(match.group(1)) * 1024 if match else None


def parse_sysctl(text: str) -> tuple[Cpu | None, int | None]:
    values = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    values = {k.strip(): v.strip() for k, v in values.items()}
    memory = int(values["hw.memsize"]) if values.get("hw.memsize", "").isdigit() else None
    cpu = None
    if values.get("hw.physicalcpu", "").isdigit() and values.get("hw.logicalcpu", "").isdigit():
        cpu = Cpu(values.get("machdep.cpu.brand_string", "")[:255], int(values["hw.physicalcpu"]),
                  int(values["hw.logicalcpu"]))
    return cpu, memory


def parse_lsblk(text: str) -> tuple[Disk, ...]:
    disks = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == "disk" and parts[1].isdigit():
            disks.append(Disk(parts[0], int(parts[1]), ssd=parts[2] == "0"))
    return tuple(disks[:MAX_ITEMS])


def parse_diskutil(text: str) -> tuple[Disk, ...]:
    size = re.search(r"Disk Size:.*\((\d+) Bytes\)", text)
    if not size:
        return ()
    solid = re.search(r"Solid State:\s*(Yes|No)", text)
    return (Disk("disk0", int(size.group(1)), ssd=(solid.group(1) == "Yes") if solid else None),)


def parse_ip(link_text: str, addr_text: str) -> tuple[Nic, ...]:
    """``ip -o link`` for MACs and ``ip -o -4 addr`` for addresses with their prefix lengths."""
    macs = {}
    for line in link_text.splitlines():
        match = re.match(r"\d+:\s*([^:@\s]+)[^\n]*link/ether\s+([0-9a-f:]{17})", line)
        if match and match.group(2) != "00:00:00:00:00:00":
            macs[match.group(1)] = match.group(2)
    addresses: dict[str, list[ipaddress.IPv4Interface]] = {}
    for line in addr_text.splitlines():
        match = re.match(r"\d+:\s*(\S+)\s+inet\s+(\d+\.\d+\.\d+\.\d+/\d+)", line)
        if match:
            addresses.setdefault(match.group(1), []).append(ipaddress.IPv4Interface(match.group(2)))
    return tuple(Nic(name, mac, tuple(str(a.ip) for a in addresses.get(name, ())),
                     ipv4_prefixes=tuple(a.network.prefixlen for a in addresses.get(name, ())))
                 for name, mac in sorted(macs.items()))[:MAX_ITEMS]


def parse_inventory(text: str) -> Inventory:
    """The whole script's output as an Inventory (class server: hosts managed this way are servers)."""
    found = sections(text)
    uname = parse_uname(found.get("uname", ""))
    if not uname.node:
        raise ValueError("the host did not answer the inventory script (no uname output)")
    if uname.system == "Darwin":
        version = found.get("sw_vers") or uname.release
        cpu, memory = parse_sysctl(found.get("sysctl", ""))
        disks = parse_diskutil(found.get("diskutil", ""))
    else:
        version = parse_os_release(found.get("os-release", "")) or uname.release
        cpu, memory = parse_cpuinfo(found.get("cpuinfo", "")), parse_meminfo(found.get("meminfo", ""))
        disks = parse_lsblk(found.get("lsblk", ""))
    machine_id = found.get("machine-id") or None
    nics = parse_ip(found.get("ip-link", ""), found.get("ip-addr", ""))
    system = OperatingSystem(uname.system, version[:255], uname.release[:255], uname.machine[:255])
    return Inventory(hostname=uname.node[:255], os=system, device_class=DeviceClass.SERVER,
                     machine_id=machine_id[:255] if machine_id else None, cpu=cpu, memory_bytes=memory, disks=disks,
                     nics=nics, smbios=Smbios(), agent_version="ssh")
