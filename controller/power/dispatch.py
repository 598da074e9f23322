"""The wake dispatcher's step: route each wake whose slot has come, send or hand it on, and retry or give
up on the ones that went quiet.

Routes, best first: ``direct`` when the controller is on the target's subnet (it sends to the subnet's
broadcast address itself); ``relay`` when an elected relay agent is on it (the agent picks the order up
with its next report reply, see ``relaying``); ``broadcast``, a subnet-directed broadcast from the
controller, only for subnets configured as allowing it (routers drop them by default, rightly).

A relay picks its orders up with its next report, so they may arrive together; each order then
carries a delay that spaces them at the site's rate again (see ``relaying.hand_out_orders``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from ipaddress import IPv4Network
from typing import Protocol

from sqlalchemy import and_, bindparam, func, insert, or_
from sqlmodel import Session, col, select

from controller.power.election import Board
from controller.power.models import WakeRequest, WakeStatus
from controller.power.network import broadcast_address, on_any
from controller.power.wake import WakeConfig, audit, audit_values, mark_failed
from controller.register.models import ActionRecord

DIRECT, RELAY, BROADCAST = "direct", "relay", "broadcast"
BATCH = 500  # wakes looked at per step; a wave at any sane pace needs far fewer per 20 ms


class Sender(Protocol):
    def send(self, mac: str, address: str, port: int) -> None: ...


@dataclass(frozen=True)
class Route:
    kind: str
    address: str
    relay_agent_id: str | None = None


@dataclass(frozen=True)
class Routing:
    local: Sequence[IPv4Network]  # the controller's own subnets
    directed: Sequence[IPv4Network]  # subnets a directed broadcast may be sent to

    def route(self, network: str | None, board: Board) -> Route | str:
        """The way to reach ``network``, or why there is none."""
        if network is None:
            return "the device's subnet is unknown (its agent never reported an address with a prefix length)"
        target = ipaddress.IPv4Network(network)
        address = broadcast_address(target)
        if on_any(target, self.local):
            return Route(DIRECT, address)
        relay = board.relay_for(target)
        if relay is not None:
            return Route(RELAY, address, relay.agent_id)
        if on_any(target, self.directed):
            return Route(BROADCAST, address)
        return f"no relay agent has reported recently from {network}, and directed broadcast is not allowed there"


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
    next_due: datetime | None = None  # the earliest slot still waiting, so the dispatcher can sleep till then


def step(session: Session, now: datetime, board: Board, routing: Routing, config: WakeConfig, sender: Sender,
         relay_interval_seconds: int, pacer: SitePacer | None = None, expire: bool = True) -> StepResult:
    """One pass; the caller commits. On PostgreSQL rows are claimed with SKIP LOCKED, so replicas share
    the work (each paces its own releases: run one dispatcher per estate to keep the rate exact)."""
    pacer = pacer or SitePacer(config.per_second)
    result = StepResult()
    relay_grace = timedelta(seconds=3 * relay_interval_seconds + 5)
    if expire:  # timeouts are minutes long: the service checks them once a second, not every step
        _expire(session, now, config, relay_grace, result)
    sites = session.exec(select(WakeRequest.site_id).distinct().where(
        WakeRequest.status == WakeStatus.QUEUED, col(WakeRequest.relay_agent_id).is_(None),
        col(WakeRequest.due_at) <= now)).all()
    batch = _Batch()
    table = WakeRequest.__table__
    for site_id in sorted(sites):
        budget = int((now - pacer.slot(site_id, now)) / pacer.step) + 1
        due = session.execute(select(table.c.id, table.c.site_id, table.c.device_id, table.c.mac, table.c.network,
                                     table.c.attempts).where(
            table.c.site_id == site_id, table.c.status == WakeStatus.QUEUED.value,
            table.c.relay_agent_id.is_(None), table.c.due_at <= now)
            .order_by(table.c.due_at, table.c.id).limit(budget).with_for_update(skip_locked=True)).all()
        for wake in due:
            slot = pacer.slot(site_id, now)
            if slot > now:
                break
            pacer.take(site_id, slot)
            _release(batch, _Due(*wake), routing.route(wake.network, board), now, config, sender, result)
    batch.write(session)
    result.next_due = session.exec(select(func.min(WakeRequest.due_at)).where(
        WakeRequest.status == WakeStatus.QUEUED, col(WakeRequest.relay_agent_id).is_(None),
        col(WakeRequest.due_at) > now)).one()
    return result


@dataclass(frozen=True)
class _Due:
    id: int
    site_id: int
    device_id: int
    mac: str
    network: str | None
    attempts: int


@dataclass
class _Batch:
    """A step's releases, written as one UPDATE and one INSERT (executemany): per-row ORM work was most
    of a step's cost, and a loaded controller then could not keep a wave of hundreds a second."""

    updates: list[dict] = field(default_factory=list)
    audits: list[dict] = field(default_factory=list)

    def add(self, wake: _Due, now: datetime, *, status: str, route: str | None, attempts: int, outcome: str,
            reason: str, sent_by: str | None = None, relay_agent_id: str | None = None,
            failure: str | None = None, **details: object) -> None:
        self.updates.append({"wid": wake.id, "status": status, "route": route, "attempts": attempts,
                             "sent_by": sent_by, "sent_at": now if status == WakeStatus.SENT else None,
                             "relay_agent_id": relay_agent_id, "failure": failure,
                             "failed_at": now if status == WakeStatus.FAILED else None})
        if outcome:
            self.audits.append(audit_values(wake.id, wake.site_id, wake.device_id, wake.mac, wake.network, route,
                                            attempts, outcome, now, reason, sent_by or "controller", details))

    def write(self, session: Session) -> None:
        table = WakeRequest.__table__
        if self.updates:
            session.execute(table.update().where(table.c.id == bindparam("wid")).values(
                {name: bindparam(name) for name in ("status", "route", "attempts", "sent_by", "sent_at",
                                                     "relay_agent_id", "failure", "failed_at")}), self.updates)
        if self.audits:
            session.execute(insert(ActionRecord.__table__), self.audits)


def _release(batch: _Batch, wake: _Due, route: Route | str, now: datetime, config: WakeConfig, sender: Sender,
             result: StepResult) -> None:
    if isinstance(route, str):
        batch.add(wake, now, status=WakeStatus.FAILED, route=None, attempts=wake.attempts,
                  outcome=WakeStatus.FAILED, reason=route, failure=route[:500])
        result.failed += 1
        return
    if route.kind == RELAY:  # handed out with that agent's next reply; audited then
        batch.add(wake, now, status=WakeStatus.QUEUED, route=RELAY, attempts=wake.attempts, outcome="",
                  reason="", relay_agent_id=route.relay_agent_id)
        result.handed_to_relays += 1
        return
    try:
        sender.send(wake.mac, route.address, config.port)
    except (OSError, ValueError) as exc:
        why = f"sending to {route.address} failed: {exc}"
        batch.add(wake, now, status=WakeStatus.FAILED, route=route.kind, attempts=wake.attempts + 1,
                  outcome=WakeStatus.FAILED, reason=why, failure=why[:500])
        result.failed += 1
        return
    batch.add(wake, now, status=WakeStatus.SENT, route=route.kind, attempts=wake.attempts + 1,
              outcome=WakeStatus.SENT, reason=f"magic packet sent to {route.address} ({route.kind})",
              sent_by="controller", address=route.address)
    result.sent += 1


def _expire(session: Session, now: datetime, config: WakeConfig, relay_grace: timedelta, result: StepResult) -> None:
    """Relays that never picked up or never said they sent: route again. Sent but never reported in: retry,
    up to ``config.attempts``, then fail."""
    stale_relay = session.exec(select(WakeRequest).where(
        or_(and_(WakeRequest.status == WakeStatus.QUEUED, col(WakeRequest.relay_agent_id).is_not(None),
                 col(WakeRequest.due_at) < now - relay_grace),
            and_(WakeRequest.status == WakeStatus.ORDERED, col(WakeRequest.ordered_at) < now - relay_grace,
                 col(WakeRequest.due_at) < now - relay_grace)))
        .limit(BATCH).with_for_update(skip_locked=True)).all()
    for wake in stale_relay:
        silent = wake.relay_agent_id
        if wake.status == WakeStatus.ORDERED and wake.attempts >= config.attempts:
            mark_failed(session, wake, now, f"relay agent {silent} never confirmed sending, after {wake.attempts} "
                                            "attempt(s)")
            result.failed += 1
            continue
        _requeue(wake, now)
        audit(session, wake, WakeStatus.QUEUED, now, f"relay agent {silent} went quiet; routing again", "controller")
        session.add(wake)
        result.retried += 1
    unconfirmed = session.exec(select(WakeRequest).where(
        WakeRequest.status == WakeStatus.SENT,
        col(WakeRequest.sent_at) < now - timedelta(seconds=config.confirm_seconds))
        .limit(BATCH).with_for_update(skip_locked=True)).all()
    for wake in unconfirmed:
        if wake.attempts >= config.attempts:
            mark_failed(session, wake, now, f"no report from the device within {config.confirm_seconds // 60} min "
                                            f"of the wake, after {wake.attempts} attempt(s)")
            result.failed += 1
            continue
        _requeue(wake, now)
        audit(session, wake, WakeStatus.QUEUED, now, "no report from the device yet; trying again", "controller")
        session.add(wake)
        result.retried += 1


def _requeue(wake: WakeRequest, now: datetime) -> None:
    wake.status = WakeStatus.QUEUED
    wake.route = None
    wake.relay_agent_id = None
    wake.ordered_at = None
    wake.due_at = now
