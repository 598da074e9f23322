"""Which subnet a machine is on, and whether the controller is on it too: the facts that route a wake.

Pure functions over the inventory the agent reported (``Nic.ipv4`` with ``ipv4_prefixes``), except
``interface_networks``, which reads this host's own interfaces.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network

import psutil


@dataclass(frozen=True)
class Attachment:
    """One NIC of a device on one IPv4 subnet."""

    mac: str
    network: IPv4Network


def attachments(inventory: dict | None) -> list[Attachment]:
    """Every (MAC, subnet) the stored inventory names; addresses without a prefix length say no subnet."""
    return nic_attachments((inventory or {}).get("nics", ()))


def nic_attachments(nics: Iterable[dict] | None) -> list[Attachment]:
    """``attachments`` of the inventory's ``nics`` alone (the relay election reads only those)."""
    found = []
    for nic in nics or ():
        mac = nic.get("mac")
        for address, prefix in zip(nic.get("ipv4", ()), nic.get("ipv4_prefixes", ()), strict=False):
            if mac:
                found.append(Attachment(mac, ipaddress.IPv4Network(f"{address}/{prefix}", strict=False)))
    return found


def parse_networks(texts: Iterable[str]) -> list[IPv4Network]:
    """CIDR strings from settings; a host address with a prefix ("10.1.2.3/24") means its network."""
    return [ipaddress.IPv4Network(text.strip(), strict=False) for text in texts if text.strip()]


def interface_networks() -> list[IPv4Network]:
    """The subnets of this host's own IPv4 addresses (loopback included: harmless, as no NIC reports it)."""
    networks = []
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family == socket.AF_INET and entry.netmask:
                networks.append(ipaddress.IPv4Network(f"{entry.address}/{entry.netmask}", strict=False))
    return networks


def on_any(network: IPv4Network, networks: Sequence[IPv4Network]) -> bool:
    return any(network.overlaps(other) for other in networks)


def broadcast_address(network: IPv4Network) -> str:
    """Where a magic packet for ``network`` goes: its broadcast address (a /32 or /31 has none, so itself)."""
    return str(network.broadcast_address)
