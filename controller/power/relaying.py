"""The wake side of ingest, inside the writer's transaction: relays' "sent" notes, devices reporting in
after a wake (the confirmation), and orders for relay agents to carry in their reply.

Kept cheap for the 99.9 % of batches that have nothing to do with a wake: a device's reports are
looked at only when it is in ``awaiting`` (devices with a wake in flight), and orders are looked up
only for agents that are elected relays.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from agent.protocol import Report, WakeOrder
from controller.power.dispatch import SitePacer
from controller.power.models import WakeRequest, WakeStatus
from controller.power.network import broadcast_address
from controller.power.wake import audit, confirm, mark_sent
from controller.timeutil import as_utc


@dataclass(frozen=True)
class Arrival:
    """One agent's newly stored reports (replays excluded)."""

    agent_id: str
    device_id: int
    reports: tuple[Report, ...]


def note_relayed(session: Session, arrivals: Iterable[Arrival], now: datetime, port: int,
                 name: Callable[[str], str] = lambda agent_id: f"agent {agent_id}") -> None:
    """Wakes a relay says it sent: ORDERED → SENT, by that agent (another agent's word does not count)."""
    for arrival in arrivals:
        ids = sorted({i for r in arrival.reports for i in r.relayed_wakes})
        if not ids:
            continue
        wakes = session.exec(select(WakeRequest).where(
            col(WakeRequest.id).in_(ids), WakeRequest.status == WakeStatus.ORDERED,
            WakeRequest.relay_agent_id == arrival.agent_id)).all()
        for wake in wakes:
            address = broadcast_address(ipaddress.IPv4Network(wake.network))
            mark_sent(session, wake, f"agent:{arrival.agent_id}", now,
                      f"magic packet sent to {address}:{port} by relay {name(arrival.agent_id)}",
                      address=address, port=port, relay_agent_id=arrival.agent_id)


def confirm_arrivals(session: Session, arrivals: Iterable[Arrival], awaiting: frozenset[int], now: datetime) -> None:
    """A device with a wake in flight that reports an interval ending after the packet went out is awake."""
    latest: dict[int, datetime] = {}
    for arrival in arrivals:
        if arrival.device_id in awaiting and arrival.reports:
            end = max(as_utc(r.end) for r in arrival.reports)
            latest[arrival.device_id] = max(end, latest.get(arrival.device_id, end))
    if not latest:
        return
    wakes = session.exec(select(WakeRequest).where(
        col(WakeRequest.device_id).in_(sorted(latest)),
        col(WakeRequest.status).in_([WakeStatus.ORDERED, WakeStatus.SENT]))).all()
    for wake in wakes:
        went_out = wake.sent_at or wake.ordered_at
        if went_out is not None and latest[wake.device_id] > went_out:
            confirm(session, wake, now, latest[wake.device_id])


def hand_out_orders(session: Session, agent_ids: Iterable[str], now: datetime, port: int, limit: int,
                    pacer: SitePacer, name: Callable[[str], str] = lambda agent_id: f"agent {agent_id}",
                    ) -> dict[str, tuple[WakeOrder, ...]]:
    """Queued wakes assigned to these relay agents become orders in their reply (QUEUED → ORDERED).

    Orders gathered since a relay's last report arrive together; each carries a delay that puts it in
    the next free slot of its site (``pacer``, shared by every relay of the controller), so neither one
    relay's batch nor two relays of one site send faster than the site's rate. Each wake's ``due_at``
    becomes the moment its relay is to send it: the dispatcher expects word that it went from then on.
    """
    wanted = sorted(set(agent_ids))
    if not wanted:
        return {}
    wakes = session.exec(select(WakeRequest).where(
        col(WakeRequest.relay_agent_id).in_(wanted), WakeRequest.status == WakeStatus.QUEUED)
        .order_by(WakeRequest.due_at, WakeRequest.id).limit(limit).with_for_update(skip_locked=True)).all()
    orders: dict[str, list[WakeOrder]] = {}
    for wake in wakes:
        send_at = max(pacer.slot(wake.site_id, now), wake.due_at, now)
        pacer.take(wake.site_id, send_at)
        delay = (send_at - now).total_seconds()
        address = broadcast_address(ipaddress.IPv4Network(wake.network))
        wake.status = WakeStatus.ORDERED
        wake.ordered_at = now
        wake.due_at = send_at
        wake.attempts += 1
        session.add(wake)
        audit(session, wake, WakeStatus.ORDERED, now, f"handed to relay {name(wake.relay_agent_id)} to send to "
                                                      f"{address}:{port} in {delay:.2f} s", "controller",
              address=address, port=port, relay_agent_id=wake.relay_agent_id)
        orders.setdefault(wake.relay_agent_id, []).append(
            WakeOrder(wake_id=wake.id, mac=wake.mac, address=address, port=port, delay_seconds=delay))
    return {agent: tuple(found) for agent, found in orders.items()}
