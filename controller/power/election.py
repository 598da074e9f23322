"""Relay election: on every subnet, a primary and a standby among the agents heard from recently.

Deterministic, so every controller replica elects the same pair: servers first (they stay on anyway),
then the longest uptime (a machine up for days is likely to stay up), then the lowest device id. A
primary that falls silent drops out of the candidates and its standby becomes primary.

Both primary and standby are kept awake out of hours (``relay_device_ids``): a standby that is asleep
cannot take over at night, which is exactly when wakes are sent.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from ipaddress import IPv4Network

from sqlmodel import Session, col, select

from controller.power.network import attachments
from controller.register.models import Agent, Device


@dataclass(frozen=True)
class Candidate:
    agent_id: str
    device_id: int
    server: bool
    boot_time: datetime | None
    networks: frozenset[IPv4Network]


@dataclass(frozen=True)
class Election:
    network: IPv4Network
    primary: Candidate
    standby: Candidate | None


@dataclass(frozen=True)
class Board:
    """The result of one election, for the whole estate."""

    by_network: dict[IPv4Network, Election] = field(default_factory=dict)

    def relay_for(self, network: IPv4Network) -> Candidate | None:
        election = self.by_network.get(network)
        return election.primary if election else None

    @functools.cached_property  # asked on every ingest reply; a board is replaced, never changed
    def relay_agents(self) -> frozenset[str]:
        return frozenset(c.agent_id for e in self.by_network.values() for c in (e.primary, e.standby) if c)

    @functools.cached_property
    def relay_devices(self) -> frozenset[int]:
        return frozenset(c.device_id for e in self.by_network.values() for c in (e.primary, e.standby) if c)


def _rank(candidate: Candidate) -> tuple:
    boot = candidate.boot_time.timestamp() if candidate.boot_time else float("inf")
    return (not candidate.server, boot, candidate.device_id, candidate.agent_id)


def elect(candidates: Iterable[Candidate]) -> Board:
    per_network: dict[IPv4Network, list[Candidate]] = defaultdict(list)
    for candidate in candidates:
        for network in candidate.networks:
            per_network[network].append(candidate)
    board = {}
    for network, members in per_network.items():
        ranked = sorted(members, key=_rank)
        board[network] = Election(network, ranked[0], ranked[1] if len(ranked) > 1 else None)
    return Board(board)


def candidates(session: Session, now: datetime, silence_seconds: int) -> list[Candidate]:
    """Agents that are not retired and have reported within ``silence_seconds``, with their subnets."""
    since = now - timedelta(seconds=silence_seconds)
    rows = session.exec(select(Agent.id, Device.id, Device.device_class, Device.inventory)
                        .join(Device, col(Device.id) == Agent.device_id)
                        .where(col(Agent.retired_at).is_(None), col(Agent.last_seen) >= since)).all()
    found = []
    for agent_id, device_id, device_class, inventory in rows:
        networks = frozenset(a.network for a in attachments(inventory))
        if networks:
            found.append(Candidate(agent_id, device_id, device_class == "server", _boot_time(inventory), networks))
    return found


def _boot_time(inventory: dict | None) -> datetime | None:
    text = (inventory or {}).get("boot_time")
    return datetime.fromisoformat(text) if text else None


def current_board(session: Session, now: datetime, silence_seconds: int) -> Board:
    return elect(candidates(session, now, silence_seconds))


def relay_device_ids(session: Session, now: datetime, silence_seconds: int) -> frozenset[int]:
    """Devices that must stay awake out of hours because they relay wakes (for the schedule compiler)."""
    return current_board(session, now, silence_seconds).relay_devices


def is_relay(session: Session, device_id: int, now: datetime, silence_seconds: int) -> bool:
    return device_id in relay_device_ids(session, now, silence_seconds)
