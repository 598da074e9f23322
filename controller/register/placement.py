"""Where a device is: its room and tags, resolved from four sources in one documented precedence.

1. by hand (`caretaker device set`, the API, the console);
2. the asset register CSV (its ``room`` and ``tags`` columns);
3. placement rules (``placement:`` in a policy-directory file), computed on every read so a rule
   change applies at once;
4. the labels the agent reports from its own config file.

A device has one room: the first source that gives one. Tags add up from every source, except a tag
removed by hand, which stays removed whatever else supplies it. Each value keeps the source that gave it,
so `caretaker device show` can say why a device is in a room.

"Group" in policy selectors (``groups:``) means the room: there is one notion, not two.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_GROUP_REFERENCE = re.compile(r"\{(\d+)\}")


class Source(StrEnum):
    """Where a room or tag came from, in precedence order."""

    HAND = "hand"
    REGISTER = "register"
    RULE = "rule"
    AGENT = "agent"


@dataclass(frozen=True)
class Described:
    """What placement rules may look at: what the device says it is and where the register has it."""

    hostname: str
    device_class: str
    site: str
    addresses: tuple[Address, ...] = ()
    agent_tags: tuple[str, ...] = ()
    agent_room: str | None = None


@dataclass(frozen=True)
class PlacementRule:
    """Devices matching every criterion given (any value within one) get ``room`` and ``tags``.

    ``room`` may name the hostname regex's groups as ``{1}``, so ``IT(\\d+)-PC\\d+`` → ``IT Suite {1}``
    places 2,000 PCs named ``IT3-PC14`` with one rule."""

    name: str
    room: str | None = None
    tags: tuple[str, ...] = ()
    hostnames: tuple[str, ...] = ()  # globs, case-insensitive: HALL-*
    hostname_regex: re.Pattern | None = None  # full match, case-insensitive
    subnets: tuple[Network, ...] = ()
    device_classes: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    agent_tags: tuple[str, ...] = ()  # labels the agent reports from its own config file
    source: str = ""

    def place(self, device: Described) -> str | bool | None:
        """False when the rule does not match; else the room it gives (None: tags only)."""
        host = device.hostname.casefold()
        if self.hostnames and not any(fnmatch.fnmatchcase(host, g.casefold()) for g in self.hostnames):
            return False
        found = self.hostname_regex.fullmatch(device.hostname) if self.hostname_regex else None
        if self.hostname_regex is not None and found is None:
            return False
        if self.subnets and not any(a in n for a in device.addresses for n in self.subnets if a.version == n.version):
            return False
        if self.device_classes and device.device_class.casefold() not in _folded(self.device_classes):
            return False
        if self.sites and device.site.casefold() not in _folded(self.sites):
            return False
        if self.agent_tags and not _folded(device.agent_tags) & _folded(self.agent_tags):
            return False
        if self.room is None or found is None:
            return self.room
        return _GROUP_REFERENCE.sub(lambda m: found.group(int(m[1])) or "", self.room)


def _folded(values: Iterable[str]) -> set[str]:
    return {v.strip().casefold() for v in values}


@dataclass(frozen=True)
class Sourced:
    """One value with where it came from (``detail``: the rule's name and file:line, for rules)."""

    value: str
    source: Source
    detail: str = ""

    def describe(self) -> str:
        return f"{self.value} ({self.source}{': ' + self.detail if self.detail else ''})"


@dataclass(frozen=True)
class Labels:
    room: Sourced | None
    tags: tuple[Sourced, ...]
    untagged: tuple[str, ...] = ()  # removed by hand: no source may add them back

    @property
    def tag_names(self) -> tuple[str, ...]:
        return tuple(t.value for t in self.tags)

    @property
    def room_name(self) -> str | None:
        return self.room.value if self.room else None


@dataclass(frozen=True)
class Stored:
    """The sources the register keeps for one device (the columns of ``Device``)."""

    hand_room: str | None = None
    hand_tags: tuple[str, ...] = ()
    hand_untags: tuple[str, ...] = ()
    register_room: str | None = None
    register_tags: tuple[str, ...] = ()


def resolve(stored: Stored, device: Described, rules: Sequence[PlacementRule]) -> Labels:
    """The one answer to "which room and tags does this device have": every surface asks here."""
    rooms: list[Sourced] = []
    tags: list[Sourced] = []
    if stored.hand_room:
        rooms.append(Sourced(stored.hand_room, Source.HAND))
    tags.extend(Sourced(t, Source.HAND) for t in stored.hand_tags)
    if stored.register_room:
        rooms.append(Sourced(stored.register_room, Source.REGISTER))
    tags.extend(Sourced(t, Source.REGISTER) for t in stored.register_tags)
    for rule in rules:
        room = rule.place(device)
        if room is False:
            continue
        detail = f"{rule.name}, {rule.source}" if rule.source else rule.name
        if room:
            rooms.append(Sourced(room, Source.RULE, detail))
        tags.extend(Sourced(t, Source.RULE, detail) for t in rule.tags)
    if device.agent_room:
        rooms.append(Sourced(device.agent_room, Source.AGENT))
    tags.extend(Sourced(t, Source.AGENT) for t in device.agent_tags)
    removed = _folded(stored.hand_untags)
    kept: dict[str, Sourced] = {}
    for tag in tags:
        key = tag.value.strip().casefold()
        if key and key not in removed:
            kept.setdefault(key, tag)  # the first is the highest-precedence source
    return Labels(rooms[0] if rooms else None, tuple(kept.values()), tuple(stored.hand_untags))


def addresses_of(inventory: dict | None) -> tuple[Address, ...]:
    """The IP addresses in an agent's stored inventory (wire form), for subnet rules."""
    found: list[Address] = []
    for nic in (inventory or {}).get("nics") or []:
        for text in (*(nic.get("ipv4") or ()), *(nic.get("ipv6") or ())):
            try:
                found.append(ipaddress.ip_address(str(text).split("%")[0].split("/")[0]))
            except ValueError:
                continue
    return tuple(found)
