"""Relay election: on every subnet, a primary and a standby among the agents that are really awake.

A device may relay only if its agent's last report says it is on (active or idle) and came within
``FRESH_INTERVALS`` report intervals, and its compiled schedule powers it down nowhere in the next few
minutes (``relay_power_down_lookahead_seconds``): a PC about to shut down would take its orders with it.

Elected relays report on the short relay interval (their reply says so). A relay on that interval
(its last report covers no more than ``RelayTiming.silence``) is live while it has been heard from
within ``silence`` (an interval and a quarter, or a second more at least): only a live relay is given
wakes, and wakes it holds move on to the standby once it is not. One not heard from for ``gone`` (two
intervals) has gone quiet: it is not a candidate at all, so the next in line becomes standby. In
between it is late, and a new wake waits for it or its standby rather than failing for want of a relay.

Ranked, deterministically, so every controller replica elects the same pair from the same rows:
1. relays already reporting on the relay interval keep the job (no churn from a newcomer);
2. servers, then desktops, then unknown kit, then laptops (they leave the building);
3. the longest uptime (a machine up for days is likely to stay up);
4. among equals, a spread: a hash of the subnet and the agent, so relay duty does not fall on the
   lowest id (the first machine ever enrolled) of every subnet, whatever its state.

Both primary and standby are kept awake out of hours (``Board.relay_devices`` feeds the schedule
compiler): a standby that is asleep cannot take over at night, which is exactly when wakes are sent.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from ipaddress import IPv4Network

from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from agent.protocol import AgentSchedule, EnforcementMode, PowerState, ScheduleIntent
from controller.db import in_batches
from controller.power.network import nic_attachments
from controller.register.models import Agent, Device
from controller.register.models import Report as ReportRow

log = logging.getLogger(__name__)
FRESH_INTERVALS = 2  # a device is on by its report while that report is this many intervals old at most
AWAKE = (PowerState.ACTIVE.value, PowerState.IDLE.value)
_CLASS_ORDER = {"server": 0, "desktop": 1, "unknown": 2, "laptop": 3}


@dataclass(frozen=True)
class RelayTiming:
    """How often relays report, and how long a silence makes one quiet."""

    interval: timedelta

    @property
    def grace(self) -> timedelta:
        """How late a report may be and still count as on time: a quarter interval, or a second at least
        (a busy machine's jitter does not shrink with a short interval)."""
        return max(self.interval / 4, timedelta(seconds=1))

    @property
    def silence(self) -> timedelta:
        """One interval and its grace: a relay silent longer is given no more wakes."""
        return self.interval + self.grace

    @property
    def gone(self) -> timedelta:
        """Two intervals (with a grace after the silence at least): a relay silent this long has gone quiet and
        is no longer a candidate."""
        return max(self.interval * 2, self.silence + self.grace)

    @classmethod
    def from_settings(cls, settings) -> RelayTiming:
        return cls(timedelta(seconds=settings.relay_report_interval_seconds))


@dataclass(frozen=True)
class Candidate:
    agent_id: str
    device_id: int
    hostname: str
    device_class: str
    boot_time: datetime | None
    networks: frozenset[IPv4Network]
    last_seen: datetime
    on_relay_interval: bool = False  # its last report was a short one: it was told it relays
    awake: bool = True  # its last report says it is on (active or idle)
    quiet: bool = False  # on the relay interval, yet silent for ``RelayTiming.gone``

    def describe(self) -> str:
        return f"{self.hostname} (agent {self.agent_id})"


@dataclass(frozen=True)
class Election:
    network: IPv4Network
    primary: Candidate
    standby: Candidate | None

    @property
    def relays(self) -> tuple[Candidate, ...]:
        return (self.primary, self.standby) if self.standby else (self.primary,)


@dataclass(frozen=True)
class Board:
    """The result of one election, for the whole estate, and when each relay was last heard from.

    ``heard`` is refreshed far more often than the election (a cheap query of the relays' last reports),
    so a relay that stops reporting is passed over within its silence, not at the next election.
    """

    by_network: dict[IPv4Network, Election] = field(default_factory=dict)
    timing: RelayTiming = RelayTiming(timedelta(seconds=30))
    heard: Mapping[str, datetime] = field(default_factory=dict)
    known: Mapping[str, Candidate] = field(default_factory=dict)  # every agent looked at, elected or not

    def live(self, candidate: Candidate, now: datetime) -> bool:
        """Reporting as a relay should: on the relay interval, and heard from within the silence (one just
        elected is not live until it has taken to the interval, or its orders would wait for its next report)."""
        return candidate.on_relay_interval and self.silent_for(candidate, now) <= self.timing.silence

    def relay_for(self, network: IPv4Network, now: datetime, passed_over: Iterable[str] = (),
                  target_device: int | None = None) -> Candidate | None:
        """The relay to order a wake from: the primary, else the standby, if live, not passed over for this
        wake, and not the very device to be woken (it reported a moment ago, but it is asleep now)."""
        election = self.by_network.get(network)
        if election is None:
            return None
        skip = set(passed_over)
        return next((c for c in election.relays if c.agent_id not in skip and c.device_id != target_device
                     and self.live(c, now)), None)

    def late(self, network: IPv4Network, now: datetime, passed_over: Iterable[str] = (),
             target_device: int | None = None) -> bool:
        """Whether a relay that could take this wake is only late (on the relay interval, not yet gone quiet):
        worth waiting a moment for, rather than failing the wake."""
        election = self.by_network.get(network)
        skip = set(passed_over)
        return election is not None and any(
            c.agent_id not in skip and c.device_id != target_device and c.on_relay_interval
            and self.silent_for(c, now) <= self.timing.gone for c in election.relays)

    def hearing(self, heard: Mapping[str, datetime]) -> Board:
        return replace(self, heard=heard)

    def name(self, agent_id: str) -> str:
        found = self.known.get(agent_id)
        return found.describe() if found else f"agent {agent_id}"

    def silent_for(self, candidate: Candidate, now: datetime) -> timedelta:
        return now - self.heard.get(candidate.agent_id, candidate.last_seen)

    @functools.cached_property  # asked on every ingest reply; a board is replaced, never changed
    def relay_agents(self) -> frozenset[str]:
        return frozenset(c.agent_id for e in self.by_network.values() for c in e.relays)

    @functools.cached_property
    def relay_devices(self) -> frozenset[int]:
        return frozenset(c.device_id for e in self.by_network.values() for c in e.relays)


def _rank(network: IPv4Network, candidate: Candidate) -> tuple:
    boot = candidate.boot_time.timestamp() if candidate.boot_time else float("inf")
    spread = hashlib.sha256(f"{network}/{candidate.agent_id}".encode()).digest()
    return (not candidate.on_relay_interval, _CLASS_ORDER.get(candidate.device_class, 2), boot, spread)


def elect(candidates: Iterable[Candidate], timing: RelayTiming = RelayTiming(timedelta(seconds=30)),
          powering_down: Callable[[int], bool] = lambda device_id: False) -> Board:
    """Per subnet, the best two candidates awake, not quiet and not ``powering_down`` (asked of the best only,
    best first)."""
    candidates = list(candidates)
    per_network: dict[IPv4Network, list[Candidate]] = defaultdict(list)
    for candidate in candidates:
        if not candidate.awake or candidate.quiet:
            continue
        for network in candidate.networks:
            per_network[network].append(candidate)
    verdicts: dict[int, bool] = {}

    def staying(candidate: Candidate) -> bool:
        if candidate.device_id not in verdicts:
            try:
                verdicts[candidate.device_id] = not powering_down(candidate.device_id)
            except Exception:  # a schedule that cannot be compiled must not leave the subnet without relays
                log.exception("relay election: cannot tell whether device %d powers down soon; taking it as staying",
                              candidate.device_id)
                verdicts[candidate.device_id] = True
        return verdicts[candidate.device_id]

    board = {}
    for network, members in per_network.items():
        chosen = []
        for candidate in sorted(members, key=lambda c: _rank(network, c)):
            if staying(candidate):
                chosen.append(candidate)
                if len(chosen) == 2:
                    break
        if chosen:
            board[network] = Election(network, chosen[0], chosen[1] if len(chosen) > 1 else None)
    return Board(board, timing, known={c.agent_id: c for c in candidates})


@dataclass
class NetworkMemo:
    """Each device's subnets and boot time, as of the inventory version they were read from. An election
    that read and decoded every fresh device's NICs held the GIL for a quarter of a second at 10,000
    devices, on every replica, and stretched the ingest replies waiting behind it (bench/README.md,
    "Ingest"). Kept, only the devices whose inventory has changed since are read."""

    known: dict[int, tuple[int, frozenset[IPv4Network], datetime | None]] = field(default_factory=dict)

    def refresh(self, connection: Connection, versions: Mapping[int, int]) -> None:
        """Read the devices of ``versions`` (device id: inventory version) not known at that version, and
        forget the rest (devices no longer fresh)."""
        stale = sorted(d for d, version in versions.items() if self.known.get(d, (None,))[0] != version)
        inventory = col(Device.inventory)
        for chunk in in_batches(stale):
            for device_id, version, nics, boot_time in connection.execute(
                    select(Device.id, Device.inventory_version, inventory["nics"], inventory["boot_time"].as_string())
                    .where(col(Device.id).in_(chunk))):
                self.known[device_id] = (version, frozenset(a.network for a in nic_attachments(nics)),
                                         datetime.fromisoformat(boot_time) if boot_time else None)
        self.known = {d: self.known[d] for d in versions if d in self.known}


def candidates(session: Session, now: datetime, timing: RelayTiming, report_interval_seconds: int,
               memo: NetworkMemo | None = None) -> list[Candidate]:
    """Agents that are not retired and have reported within ``FRESH_INTERVALS`` ordinary intervals, with
    their subnets, whether their last report says they are on, and whether they have gone quiet (on the
    relay interval, but silent for ``timing.gone``). ``memo`` keeps the subnets from one election to the
    next (without one, every fresh device's are read)."""
    fresh_since = now - timedelta(seconds=FRESH_INTERVALS * report_interval_seconds)
    connection = session.connection()  # rows as tuples: ORM rows cost as much again at 10,000 devices
    rows = connection.execute(
        select(Agent.id, Agent.last_seen, Device.id, Device.hostname, Device.device_class, Device.inventory_version,
               ReportRow.start, ReportRow.end, ReportRow.state)
        .join(Device, col(Device.id) == Agent.device_id)
        .join(ReportRow, (col(ReportRow.agent_id) == Agent.id) & (col(ReportRow.seq) == Agent.last_seq))
        .where(col(Agent.retired_at).is_(None), col(Agent.last_seen) >= fresh_since)).all()
    memo = memo if memo is not None else NetworkMemo()
    memo.refresh(connection, {device_id: version for _, _, device_id, _, _, version, _, _, _ in rows})
    silence, gone = timing.silence, timing.gone
    found = []
    for agent_id, last_seen, device_id, hostname, device_class, _, start, end, state in rows:
        if (known := memo.known.get(device_id)) is None:
            continue  # removed from the register between the two reads
        _, networks, boot_time = known
        short = end - start <= silence
        if networks:
            found.append(Candidate(agent_id, device_id, hostname, device_class, boot_time, networks,
                                   last_seen, short, state in AWAKE, short and now - last_seen > gone))
    return found


def powers_down_soon(schedule: AgentSchedule | None, now: datetime, lookahead: timedelta) -> bool:
    """Whether the schedule has the device power down (for real: observe mode only records) between now
    and ``lookahead`` from now, a window already open included."""
    if schedule is None:
        return False
    until = now + lookahead
    return any(w.intent is ScheduleIntent.POWER_DOWN and w.start < until and w.end > now
               and (w.mode or EnforcementMode.OBSERVE) is not EnforcementMode.OBSERVE for w in schedule.windows)


def current_board(session: Session, now: datetime, timing: RelayTiming, report_interval_seconds: int,
                  powering_down: Callable[[int], bool] = lambda device_id: False,
                  memo: NetworkMemo | None = None) -> Board:
    return elect(candidates(session, now, timing, report_interval_seconds, memo), timing, powering_down)


def last_heard(session: Session, agent_ids: Iterable[str]) -> dict[str, datetime]:
    """When each of these agents last reported (the relays of the board in force)."""
    wanted = sorted(set(agent_ids))
    if not wanted:
        return {}
    return {a: seen for a, seen in session.exec(select(Agent.id, Agent.last_seen)
                                                .where(col(Agent.id).in_(wanted))).all() if seen is not None}
