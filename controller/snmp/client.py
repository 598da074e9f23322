"""The small interface every SNMP client offers: GET some OIDs, GETNEXT past some, WALK a subtree.

The poller talks only to this protocol, so unit tests pass an in-memory agent
(``controller.snmp.memory``) and production passes the pysnmp implementation
(``controller.snmp.pysnmp_client``). Values come back in a neutral form that keeps the SNMP type,
because the type decides how a counter wraps.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from controller.snmp.credentials import Credential


class Kind(enum.StrEnum):
    INTEGER = "integer"
    OCTETS = "octets"
    OID = "oid"
    IPADDRESS = "ipaddress"
    COUNTER32 = "counter32"
    GAUGE32 = "gauge32"
    TIMETICKS = "timeticks"
    COUNTER64 = "counter64"
    OPAQUE = "opaque"


#: Where an unsigned counter goes back to zero; gauges and integers stick or reset instead.
WRAPS_AT: dict[Kind, int] = {Kind.COUNTER32: 2**32, Kind.COUNTER64: 2**64}


@dataclass(frozen=True)
class Value:
    """One variable as the agent sent it: integers for the numeric types, bytes for octet strings,
    dotted strings for OIDs and IP addresses."""

    kind: Kind
    raw: int | bytes | str

    def text(self) -> str:
        if isinstance(self.raw, bytes):
            return self.raw.decode("utf-8", errors="replace").replace("\x00", "").strip()
        return str(self.raw)


@dataclass(frozen=True)
class Target:
    """Where and how to ask: the timeout and retries bound how long one unanswered request can take
    ((retries + 1) × timeout)."""

    host: str
    credential: Credential
    port: int = 161
    timeout: float = 1.0
    retries: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.timeout <= 30 or not 0 <= self.retries <= 5:
            raise ValueError("SNMP timeout must be in (0, 30] seconds and retries in [0, 5]")

    @property
    def worst_case_seconds(self) -> float:
        return self.timeout * (self.retries + 1)


class SnmpError(Exception):
    """The agent answered with an error, or the request could not be made."""


class SnmpTimeout(SnmpError):
    """No answer: a dead host, a filtered port, or (SNMPv2c) a community the agent does not accept."""


class SnmpAuthError(SnmpError):
    """An SNMPv3 agent refused the user, its digest or its privacy key."""


class SnmpClient(Protocol):
    async def get(self, target: Target, oids: Sequence[str]) -> dict[str, Value]:
        """The OIDs the agent has a value for; absent ones (noSuchObject/noSuchInstance) are left out."""
        ...

    async def next(self, target: Target, oids: Sequence[str]) -> dict[str, tuple[str, Value]]:
        """For each OID asked, the first variable after it (any subtree), keyed by the OID asked; one
        past the end of the agent's MIB is left out. Which subtrees a device has costs one request."""
        ...

    async def walk(self, target: Target, prefix: str, max_rows: int = 5000) -> list[tuple[str, Value]]:
        """Every variable under ``prefix`` in OID order, at most ``max_rows`` of them."""
        ...

    async def walk_many(self, target: Target, prefixes: Sequence[str],
                        max_rows: int = 5000) -> dict[str, list[tuple[str, Value]]]:
        """``walk`` of each prefix, in as few requests as the client can manage."""
        ...

    async def get_and_walk(self, target: Target, oids: Sequence[str],
                           prefixes: Sequence[str]) -> tuple[dict[str, Value], dict[str, list[tuple[str, Value]]]]:
        """``get`` of ``oids`` and ``walk_many`` of ``prefixes``, in as few requests as the client can manage."""
        ...
