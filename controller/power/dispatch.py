"""The wake dispatcher's step: route each wake whose slot has come, send or hand it on, and route again,
retry or give up on the ones that went quiet.

Routes, best first: ``direct`` when the controller is on the target's subnet (it sends to the subnet's
broadcast address itself); ``relay`` when an elected relay agent on it is reporting (the agent picks
the order up with its next report reply, see ``relaying``); ``broadcast``, a subnet-directed broadcast
from the controller, only for subnets configured as allowing it (routers drop them by default, rightly).

A wake its relay does not send (the relay went quiet before picking it up, or never said it sent it)
is routed again without that relay: to the standby, then by directed broadcast where allowed, else it
fails with the reason. Each relay is passed over once per wake, so this ends.

One wake never stops the others: each is expired in a savepoint of its own, and a batch of releases
whose write fails is written again wake by wake. A wake on which the step fails is logged with its id,
counted (``StepResult.errors``, exported by /metrics), tried again a little later, and failed with the
error once it has failed ``WakeConfig.attempts`` times. Audit lines are insert-or-ignore on a key that
names the attempt and the reroute, so a step tried again can never fail on its own audit line.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from ipaddress import IPv4Network
from typing import Protocol

from sqlalchemy import bindparam, func, update
from sqlmodel import Session, col, select

from controller.power.election import Board, Candidate
from controller.power.models import WakeRequest, WakeStatus
from controller.power.network import broadcast_address, on_any
from controller.power.wake import WakeConfig, WakeRef, audit, audit_values, insert_audits, mark_failed

log = logging.getLogger(__name__)
BATCH = 500  # wakes looked at per step; a wave at any sane pace needs far fewer per 20 ms
MAX_ERROR_BACKOFF = timedelta(seconds=60)


class Via(enum.StrEnum):
    DIRECT = "direct"
    RELAY = "relay"
    BROADCAST = "broadcast"


class Outcome(enum.StrEnum):
    """Audit outcomes of the dispatcher's own steps (the others are ``WakeStatus`` values)."""

    REROUTED = "rerouted"
    RETRIED = "retried"


class Sender(Protocol):
    def send(self, mac: str, address: str, port: int) -> None: ...


@dataclass(frozen=True)
class Route:
    kind: Via
    address: str
    relay: Candidate | None = None


@dataclass(frozen=True)
class Hold:
    """No relay can take the wake this moment, but one is only late: try again in ``seconds``."""

    seconds: float


@dataclass(frozen=True)
class Routing:
    local: Sequence[IPv4Network]  # the controller's own subnets
    directed: Sequence[IPv4Network]  # subnets a directed broadcast may be sent to

    def route(self, network: str | None, board: Board, now: datetime, passed_over: Iterable[str] = (),
              target_device: int | None = None) -> Route | Hold | str:
        """The way to reach ``network``, a moment to wait for a late relay, or why there is none. Relays in
        ``passed_over`` had this wake and did not send it; ``target_device`` is the device being woken, which
        never relays its own wake."""
        if network is None:
            return "the device's subnet is unknown (its agent never reported an address with a prefix length)"
        target = ipaddress.IPv4Network(network)
        address = broadcast_address(target)
        if on_any(target, self.local):
            return Route(Via.DIRECT, address)
        relay = board.relay_for(target, now, passed_over, target_device)
        if relay is not None:
            return Route(Via.RELAY, address, relay)
        if board.late(target, now, passed_over, target_device):
            return Hold(board.timing.interval.total_seconds() / 4)
        if on_any(target, self.directed):
            return Route(Via.BROADCAST, address)
        tried = ", ".join(board.name(a) for a in passed_over)
        if tried:
            return (f"the relay agent(s) given it did not send it ({tried}); no other relay agent on {network} is "
                    "awake and reporting, and directed broadcast is not allowed there")
        return f"no relay agent on {network} is awake and reporting, and directed broadcast is not allowed there"


class SitePacer:
    """At most ``per_second`` wakes released per site, however late their slots are.

    Slots are given at request time, but a wave that took seconds to queue, or a controller restarted
    mid-wave, finds many slots already past; releasing those at once is the inrush waves exist to
    prevent. The pacer keeps each site's next free moment in this process. ``slack`` is how far behind
    a site may fall and still catch up: enough to cover the gap between two dispatcher steps, small
    enough that catching up is never more than half a second's worth of wakes.
    """

    def __init__(self, per_second: float, slack: timedelta = timedelta(seconds=0.5)) -> None:
        self.step = timedelta(seconds=1.0 / per_second)
        self._slack = max(slack, self.step)
        self._next: dict[int, datetime] = {}

    def slot(self, site_id: int, now: datetime) -> datetime:
        """The earliest moment the site's next wake may go (idle time is not saved up as a burst)."""
        return max(self._next.get(site_id, now), now - self._slack)

    def take(self, site_id: int, slot: datetime) -> None:
        self._next[site_id] = slot + self.step


@dataclass
class StepResult:
    sent: int = 0
    handed_to_relays: int = 0
    failed: int = 0
    retried: int = 0
    rerouted: int = 0
    held: int = 0  # waiting a moment for a relay that is late
    errors: int = 0  # wakes the step failed on (each logged with its id)
    next_due: datetime | None = None  # the earliest slot still waiting, so the dispatcher can sleep till then


def step(session: Session, now: datetime, board: Board, routing: Routing, config: WakeConfig, sender: Sender,
         pacer: SitePacer | None = None, expire: bool = True) -> StepResult:
    """One pass; the caller commits. On PostgreSQL rows are claimed with SKIP LOCKED, so replicas share
    the work (each paces its own releases: run one dispatcher per estate to keep the rate exact)."""
    _begin_writing(session)
    pacer = pacer or SitePacer(config.per_second)
    result = StepResult()
    if expire:  # timeouts are seconds to minutes long: the service checks them once a second, not every step
        _expire(session, now, board, config, result)
    sites = session.exec(select(WakeRequest.site_id).distinct().where(
        WakeRequest.status == WakeStatus.QUEUED, col(WakeRequest.relay_agent_id).is_(None),
        col(WakeRequest.due_at) <= now)).all()
    batch = _Batch()
    table = WakeRequest.__table__
    for site_id in sorted(sites):
        budget = int((now - pacer.slot(site_id, now)) / pacer.step) + 1
        due = session.execute(select(table.c.id, table.c.site_id, table.c.device_id, table.c.mac, table.c.network,
                                     table.c.attempts, table.c.reroutes, table.c.passed_over, table.c.due_at).where(
            table.c.site_id == site_id, table.c.status == WakeStatus.QUEUED.value,
            table.c.relay_agent_id.is_(None), table.c.due_at <= now)
            .order_by(table.c.due_at, table.c.id).limit(budget).with_for_update(skip_locked=True)).all()
        for wake in due:
            slot = pacer.slot(site_id, now)
            if slot > now:
                break
            pacer.take(site_id, slot)
            due_wake = _Due(*wake)
            _guarded(session, due_wake.id, "release", now, config, result, lambda w=due_wake: _release(
                batch, w, routing.route(w.network, board, now, w.passed_over or (), w.device_id), now, config, sender,
                result), savepoint=False)
    batch.write(session, now, config, result)
    result.next_due = session.exec(select(func.min(WakeRequest.due_at)).where(
        WakeRequest.status == WakeStatus.QUEUED, col(WakeRequest.relay_agent_id).is_(None),
        col(WakeRequest.due_at) > now)).one()
    return result


def _begin_writing(session: Session) -> None:
    """Per-wake savepoints need a real transaction around them. SQLite's driver opens one only at the first
    write, and a SAVEPOINT outside one would commit on release; so the step takes the write lock first
    (BEGIN IMMEDIATE: no snapshot taken by a read can go stale before the first write, either)."""
    connection = session.connection()
    if connection.dialect.name == "sqlite" and not connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _guarded(session: Session, wake_id: int, stage: str, now: datetime, config: WakeConfig, result: StepResult,
             work: Callable[[], object], savepoint: bool = True) -> bool:
    """``work`` for one wake, in a savepoint of its own; if it raises, the wake's error is recorded and the
    step goes on with the others. Returns whether the work was done."""
    try:
        if savepoint:
            with session.begin_nested():
                work()
        else:
            work()
        return True
    except Exception as exc:
        log.exception("wake %d: the dispatcher's %s step failed; the other wakes carry on", wake_id, stage)
        result.errors += 1
        with session.begin_nested():
            _record_error(session, wake_id, now, config, exc, result)
        return False


def _record_error(session: Session, wake_id: int, now: datetime, config: WakeConfig, exc: Exception,
                  result: StepResult) -> None:
    """Try again a little later (backing off), or, at ``config.attempts`` errors, fail with the error."""
    wake = session.get(WakeRequest, wake_id, populate_existing=True)
    if wake is None or wake.status in (WakeStatus.CONFIRMED, WakeStatus.FAILED):
        return
    wake.errors += 1
    if wake.errors >= config.attempts:
        mark_failed(session, wake, now, f"the wake dispatcher failed on this wake {wake.errors} times; "
                                        f"last: {type(exc).__name__}: {exc}")
        result.failed += 1
        return
    wake.due_at = now + min(timedelta(seconds=2 ** wake.errors), MAX_ERROR_BACKOFF)
    session.add(wake)
    session.flush()


@dataclass(frozen=True)
class _Due:
    id: int
    site_id: int
    device_id: int
    mac: str
    network: str | None
    attempts: int
    reroutes: int
    passed_over: list | None
    due_at: datetime


@dataclass
class _Release:
    update: dict
    audit: dict | None


@dataclass
class _Batch:
    """A step's releases, written as one UPDATE and one INSERT (executemany): per-row ORM work was most
    of a step's cost, and a loaded controller then could not keep a wave of hundreds a second. If that
    write fails, each release is written in a savepoint of its own, so one bad row fails alone."""

    releases: dict[int, _Release] = field(default_factory=dict)

    def add(self, wake: _Due, now: datetime, *, status: str, route: str | None, attempts: int, outcome: str,
            reason: str, sent_by: str | None = None, relay_agent_id: str | None = None,
            failure: str | None = None, due_at: datetime | None = None, **details: object) -> None:
        update_values = {"wid": wake.id, "status": status, "route": route, "attempts": attempts, "sent_by": sent_by,
                         "sent_at": now if status == WakeStatus.SENT else None, "relay_agent_id": relay_agent_id,
                         "failure": failure, "failed_at": now if status == WakeStatus.FAILED else None,
                         "due_at": due_at or wake.due_at}
        ref = WakeRef(wake.id, wake.site_id, wake.device_id, wake.mac, wake.network, route, attempts, wake.reroutes)
        row = audit_values(ref, outcome, now, reason, sent_by or "controller", details) if outcome else None
        self.releases[wake.id] = _Release(update_values, row)

    def write(self, session: Session, now: datetime, config: WakeConfig, result: StepResult) -> None:
        if not self.releases:
            return
        try:
            with session.begin_nested():
                self._write(session, list(self.releases.values()))
            return
        except Exception:
            log.exception("writing %d wake releases together failed; writing them one by one", len(self.releases))
        for wake_id, release in self.releases.items():
            _guarded(session, wake_id, "release", now, config, result, lambda r=release: self._write(session, [r]))

    @staticmethod
    def _write(session: Session, releases: list[_Release]) -> None:
        table = WakeRequest.__table__
        session.execute(update(table).where(table.c.id == bindparam("wid")).values(
            {name: bindparam(name) for name in ("status", "route", "attempts", "sent_by", "sent_at", "relay_agent_id",
                                                 "failure", "failed_at", "due_at")}), [r.update for r in releases])
        insert_audits(session, [r.audit for r in releases if r.audit is not None])


def _release(batch: _Batch, wake: _Due, route: Route | Hold | str, now: datetime, config: WakeConfig,
             sender: Sender, result: StepResult) -> None:
    if isinstance(route, Hold):  # its slot is spent; it goes when the relay is heard from, or fails then
        batch.add(wake, now, status=WakeStatus.QUEUED, route=None, attempts=wake.attempts, outcome="", reason="",
                  due_at=now + timedelta(seconds=route.seconds))
        result.held += 1
        return
    if isinstance(route, str):
        batch.add(wake, now, status=WakeStatus.FAILED, route=None, attempts=wake.attempts,
                  outcome=WakeStatus.FAILED, reason=route, failure=route[:500])
        result.failed += 1
        return
    if route.kind == Via.RELAY:  # handed out with that agent's next reply; audited then
        batch.add(wake, now, status=WakeStatus.QUEUED, route=Via.RELAY, attempts=wake.attempts, outcome="",
                  reason="", relay_agent_id=route.relay.agent_id)
        result.handed_to_relays += 1
        return
    try:
        sender.send(wake.mac, route.address, config.port)
    except (OSError, ValueError) as exc:
        why = f"sending to {route.address}:{config.port} failed: {exc}"
        batch.add(wake, now, status=WakeStatus.FAILED, route=route.kind, attempts=wake.attempts + 1,
                  outcome=WakeStatus.FAILED, reason=why, failure=why[:500])
        result.failed += 1
        return
    if route.kind == Via.BROADCAST:
        reason = (f"sent, unconfirmed: directed broadcast to {route.address}:{config.port} from the controller, "
                  "for the router to forward; only the device reporting in confirms it arrived")
    else:
        reason = f"magic packet sent direct to {route.address}:{config.port} from the controller"
    batch.add(wake, now, status=WakeStatus.SENT, route=route.kind, attempts=wake.attempts + 1,
              outcome=WakeStatus.SENT, reason=reason, sent_by="controller", address=route.address, port=config.port)
    result.sent += 1


def _expire(session: Session, now: datetime, board: Board, config: WakeConfig, result: StepResult) -> None:
    """Wakes their relay did not send: route again without it. Sent but never reported in: retry, up to
    ``config.attempts``, then fail. Each wake in a savepoint of its own."""
    live = sorted(c.agent_id for e in board.by_network.values() for c in e.relays if board.live(c, now))
    unclaimed = session.exec(select(WakeRequest).where(
        WakeRequest.status == WakeStatus.QUEUED, col(WakeRequest.relay_agent_id).is_not(None),
        col(WakeRequest.relay_agent_id).not_in(live)).order_by(WakeRequest.id)
        .limit(BATCH).with_for_update(skip_locked=True)).all()
    for wake in unclaimed:
        _guarded(session, wake.id, "reroute", now, config, result,
                 lambda w=wake: _reroute(session, w, now, _why_unclaimed(board, w.relay_agent_id, now), result))
    unsent = session.exec(select(WakeRequest).where(
        WakeRequest.status == WakeStatus.ORDERED, col(WakeRequest.due_at) < now - board.timing.silence)
        .order_by(WakeRequest.id).limit(BATCH).with_for_update(skip_locked=True)).all()
    for wake in unsent:
        relay = board.known.get(wake.relay_agent_id)
        if relay is not None and board.live(relay, now) and wake.due_at >= now - board.timing.silence \
                - board.timing.interval:
            continue  # still reporting, only behind: one more report to say it sent it (else a duplicate goes out)
        _guarded(session, wake.id, "reroute", now, config, result, lambda w=wake: _unsent(session, w, now, board,
                                                                                           config, result))
    unconfirmed = session.exec(select(WakeRequest).where(
        WakeRequest.status == WakeStatus.SENT,
        col(WakeRequest.sent_at) < now - timedelta(seconds=config.confirm_seconds))
        .order_by(WakeRequest.id).limit(BATCH).with_for_update(skip_locked=True)).all()
    for wake in unconfirmed:
        _guarded(session, wake.id, "retry", now, config, result, lambda w=wake: _unconfirmed(session, w, now, config,
                                                                                              result))


def _why_unclaimed(board: Board, agent_id: str, now: datetime) -> str:
    relay = board.known.get(agent_id)
    again = "did not pick the order up; routing again without it"
    if relay is None:
        return f"relay agent {agent_id} has not reported for a long time and {again}"
    silent = board.silent_for(relay, now)
    if silent > board.timing.silence:
        return (f"relay {relay.describe()} has not reported for {silent.total_seconds():.0f} s (relays report every "
                f"{board.timing.interval.total_seconds():g} s) and {again}")
    why = "its last report says it is asleep" if not relay.awake else "it powers down soon, or another took over"
    return f"relay {relay.describe()} is no longer elected ({why}) and {again}"


def _unsent(session: Session, wake: WakeRequest, now: datetime, board: Board, config: WakeConfig,
            result: StepResult) -> None:
    name = board.name(wake.relay_agent_id)
    if wake.attempts >= config.attempts:
        mark_failed(session, wake, now, f"relay {name} never said it sent it, after {wake.attempts} attempt(s)")
        result.failed += 1
        return
    late = (now - wake.due_at).total_seconds()
    _reroute(session, wake, now, f"relay {name} took the order but has not said it sent it, {late:.0f} s after its "
                                 "time; routing again without it", result)


def _unconfirmed(session: Session, wake: WakeRequest, now: datetime, config: WakeConfig, result: StepResult) -> None:
    if wake.attempts >= config.attempts:
        within = (f"{config.confirm_seconds // 60} min" if config.confirm_seconds % 60 == 0
                  else f"{config.confirm_seconds} s")
        mark_failed(session, wake, now, f"no report from the device within {within} of the wake, after "
                                        f"{wake.attempts} attempt(s)")
        result.failed += 1
        return
    _requeue(wake, now)
    session.add(wake)
    audit(session, wake, Outcome.RETRIED, now, "no report from the device yet; trying again", "controller")
    result.retried += 1


def _reroute(session: Session, wake: WakeRequest, now: datetime, why: str, result: StepResult) -> None:
    relay = wake.relay_agent_id
    wake.passed_over = [*(wake.passed_over or []), relay]
    wake.reroutes += 1
    _requeue(wake, now)
    session.add(wake)
    audit(session, wake, Outcome.REROUTED, now, why, "controller", relay_agent_id=relay)
    result.rerouted += 1


def _requeue(wake: WakeRequest, now: datetime) -> None:
    wake.status = WakeStatus.QUEUED
    wake.route = None
    wake.relay_agent_id = None
    wake.ordered_at = None
    wake.due_at = now
