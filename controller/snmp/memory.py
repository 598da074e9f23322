"""An SNMP client that answers from memory, for tests and for replaying device recordings.

Each address holds an agent: its variables (often read from a snmpsim ``.snmprec`` recording) and
the credentials it accepts. It behaves like a real agent where the poller's logic depends on it:
a wrong v2c community is silently ignored (the request times out), a wrong v3 key is refused, and
an address with no agent never answers. Timeouts take the target's real worst case, so
concurrency can be tested.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from controller.snmp import oids
from controller.snmp.client import Kind, SnmpAuthError, SnmpTimeout, Target, Value
from controller.snmp.credentials import CommunityCredential, Credential, UsmCredential

_TAGS = {"2": Kind.INTEGER, "4": Kind.OCTETS, "6": Kind.OID, "64": Kind.IPADDRESS, "65": Kind.COUNTER32,
         "66": Kind.GAUGE32, "67": Kind.TIMETICKS, "68": Kind.OPAQUE, "70": Kind.COUNTER64}


def parse_snmprec(text: str) -> dict[str, Value]:
    """Variables from snmpsim's ``OID|TAG|VALUE`` lines (a tag ending in ``x`` means hex octets)."""
    values: dict[str, Value] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            oid, tag, raw = line.split("|", 2)
        except ValueError:
            raise ValueError(f"line {number}: expected OID|TAG|VALUE") from None
        hexed = tag.endswith("x")
        kind = _TAGS.get(tag.removesuffix("x"))
        if kind is None:
            continue  # Null and variation-module tags carry no value to serve
        if kind in (Kind.OCTETS, Kind.OPAQUE):
            value: int | bytes | str = bytes.fromhex(raw) if hexed else raw.encode()
        elif kind in (Kind.OID, Kind.IPADDRESS):
            value = raw
        elif raw.lstrip("-").isascii() and raw.lstrip("-").isdigit():
            value = int(raw)
        else:
            continue  # a number scrubbed into text (okilan_9450g has "6git3159"): snmpsim cannot serve it either
        values[oids.normalize(oid)] = Value(kind, value)
    return values


@dataclass
class MemoryAgent:
    values: Mapping[str, Value]
    communities: frozenset[str] = frozenset()
    users: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # user -> (auth key, priv key)
    delay: float = 0.0  # seconds before each answer, to model a slow device

    def __post_init__(self) -> None:
        self._order = sorted(self.values, key=oids.key)
        self._keys = [oids.key(o) for o in self._order]

    def accepts(self, credential: Credential) -> bool | None:
        """True, False for a refused v3 user, None for a community the agent silently ignores."""
        if isinstance(credential, CommunityCredential):
            return True if credential.community.reveal() in self.communities else None
        keys = self.users.get(credential.user)
        return keys == (credential.auth_key.reveal(), credential.priv_key.reveal())

    def after(self, oid: str) -> list[str]:
        return self._order[bisect.bisect_right(self._keys, oids.key(oid)):]


@dataclass
class Request:
    host: str
    port: int
    credential: str
    operation: str
    oids: tuple[str, ...]


class MemoryClient:
    """The SnmpClient protocol over MemoryAgents keyed by (host, port); it records every request."""

    def __init__(self, agents: Mapping[tuple[str, int], MemoryAgent]) -> None:
        self.agents = dict(agents)
        self.requests: list[Request] = []

    async def get(self, target: Target, oid_list: Sequence[str]) -> dict[str, Value]:
        agent = await self._reach(target, "get", tuple(oid_list))
        return {o: agent.values[o] for o in oid_list if o in agent.values}

    async def next(self, target: Target, oid_list: Sequence[str]) -> dict[str, tuple[str, Value]]:
        agent = await self._reach(target, "next", tuple(oid_list))
        found = {}
        for oid in oid_list:
            following = agent.after(oid)
            if following:
                found[oid] = (following[0], agent.values[following[0]])
        return found

    async def walk(self, target: Target, prefix: str, max_rows: int = 5000) -> list[tuple[str, Value]]:
        agent = await self._reach(target, "walk", (prefix,))
        rows = []
        for oid in agent.after(prefix):
            if not oids.is_under(oid, prefix) or len(rows) >= max_rows:
                break
            rows.append((oid, agent.values[oid]))
        return rows

    async def walk_many(self, target: Target, prefixes: Sequence[str],
                        max_rows: int = 5000) -> dict[str, list[tuple[str, Value]]]:
        """One recorded walk per prefix, so tests see (and can fail) each subtree on its own."""
        return {prefix: await self.walk(target, prefix, max_rows) for prefix in prefixes}

    async def get_and_walk(self, target: Target, oid_list: Sequence[str],
                           prefixes: Sequence[str]) -> tuple[dict[str, Value], dict[str, list[tuple[str, Value]]]]:
        values = await self.get(target, oid_list) if oid_list else {}
        return values, (await self.walk_many(target, prefixes) if prefixes else {})

    async def _reach(self, target: Target, operation: str, asked: tuple[str, ...]) -> MemoryAgent:
        self.requests.append(Request(target.host, target.port, target.credential.name, operation, asked))
        agent = self.agents.get((target.host, target.port))
        verdict = agent.accepts(target.credential) if agent else None
        if verdict is None:
            await asyncio.sleep(target.worst_case_seconds)
            raise SnmpTimeout(f"no answer from {target.host}:{target.port}")
        if agent.delay:
            await asyncio.sleep(agent.delay)
        if not verdict:
            user = target.credential.user if isinstance(target.credential, UsmCredential) else "?"
            raise SnmpAuthError(f"{target.host} refused SNMPv3 user {user}")
        return agent
