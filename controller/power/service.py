"""The controller's wake service: one thread that runs the dispatcher every tick, and the hook ingest
calls inside its transaction. It keeps the current relay election and the set of devices with a wake
in flight in memory, refreshed from the database, so ingest never computes either."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from agent.protocol import WakeOrder
from controller.db import ADVISORY_KEY, session_scope
from controller.jobs.singleton import finished, started
from controller.power import dispatch
from controller.power.election import Board, NetworkMemo, RelayTiming, current_board, last_heard
from controller.power.magic import MagicSender
from controller.power.network import interface_networks, parse_networks
from controller.power.relaying import Arrival, confirm_arrivals, hand_out_orders, note_relayed
from controller.power.wake import WakeConfig, open_device_ids
from controller.timeutil import utcnow

log = logging.getLogger(__name__)
MAX_ORDERS_PER_REPLY = 2000
IDLE_SECONDS = 1.0
_DISPATCHER_LOCK = 0x77616B65  # "wake"
WAKE_DISPATCH = "wake-dispatch"  # its JobRun rows: one per term as leader


class Leadership:
    """Which replica dispatches wakes. Each paces its own releases, so two dispatchers would double a site's
    rate: on PostgreSQL one replica holds a session advisory lock on a connection of its own and dispatches;
    the others only serve ingest (confirmations, relay orders) until it goes away, and its lock with it.
    SQLite has one controller, which always leads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        self._leading = False
        self._term: int | None = None  # this replica's JobRun row while it leads

    def held(self) -> bool:
        if self._engine.dialect.name != "postgresql":
            return True
        try:
            if self._connection is None:
                self._connection = self._engine.connect()
            if self._leading:
                self._connection.execute(text("SELECT 1"))  # a lost connection has lost the lock too
            else:
                self._leading = bool(self._connection.execute(
                    text(f"SELECT pg_try_advisory_lock{ADVISORY_KEY}"), {"k": _DISPATCHER_LOCK}).scalar())
                if self._leading:  # a term as leader is a run of the job: the audit that one leads at a time
                    self._term = started(self._engine, WAKE_DISPATCH, utcnow())
            self._connection.commit()
        except Exception:
            self.release()
            raise
        return self._leading

    def release(self) -> None:
        """Let another replica lead. Closing only returns a pooled connection, lock and all, so unlock first;
        a connection that cannot is discarded, which ends its database session and the lock with it."""
        if self._connection is not None:
            try:
                if self._leading:
                    if self._term is not None:
                        finished(self._engine, self._term, utcnow())
                    self._connection.execute(text(f"SELECT pg_advisory_unlock{ADVISORY_KEY}"), {"k": _DISPATCHER_LOCK})
                    self._connection.commit()
            except Exception:
                self._connection.invalidate()
            self._connection.close()
        self._connection, self._leading, self._term = None, False, None


@dataclass(frozen=True)
class RelayReply:
    """What a relay agent's reply carries beyond the acknowledgement."""

    orders: tuple[WakeOrder, ...]
    report_interval_seconds: int


class WakeService:
    def __init__(self, engine: Engine, settings, sender: dispatch.Sender | None = None,
                 clock: Callable[[], datetime] = utcnow, awaiting_refresh_seconds: float = 1.0,
                 powering_down: Callable[[int, datetime], bool] | None = None) -> None:
        """``powering_down(device_id, now)`` says whether a device's compiled schedule powers it down soon
        (the app factory asks the schedule planner): such a device is not elected relay."""
        self._engine = engine
        self._settings = settings
        self._config = WakeConfig.from_settings(settings)
        self._timing = RelayTiming.from_settings(settings)
        self._powering_down = powering_down or (lambda device_id, now: False)
        self._own_sender = MagicSender() if sender is None else None
        self._sender = sender or self._own_sender
        self._clock = clock
        local = parse_networks(settings.wake_local_networks) or interface_networks()
        self._pacer = dispatch.SitePacer(self._config.per_second)
        self._routing = dispatch.Routing(local, parse_networks(settings.wake_directed_broadcast_networks))
        self._refresh = (settings.relay_election_seconds, awaiting_refresh_seconds)
        self._refreshed = (float("-inf"), float("-inf"))
        self._networks = NetworkMemo()  # the fresh devices' subnets, between elections
        self._expired_at = float("-inf")
        # Quiet relays and overdue wakes are looked for this often: a second, or a quarter of a (short) relay
        # interval, so a silence is acted on soon after the grace it is given.
        self._expire_every = min(1.0, self._timing.interval.total_seconds() / 4)
        # Relays' orders for one site are spaced at its rate across all its relays, not per relay: a site with
        # several subnets, or a standby taking over, must not double it.
        self._relay_pacer = dispatch.SitePacer(self._config.per_second, slack=timedelta(0))
        self.board = Board(timing=self._timing)
        self.awaiting: frozenset[int] = frozenset()
        self.counters = DispatchCounters()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wake-dispatcher", daemon=True)
        self.leadership = Leadership(engine)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if self._own_sender is not None:
            self._own_sender.close()
        self.leadership.release()

    def tick(self) -> dispatch.StepResult:
        """Refresh what is due for a refresh, then, on the leading replica, one dispatcher step, in one
        transaction of its own. The views are refreshed on every replica: each one's ingest confirms wakes and
        feeds relays."""
        now = self._clock()
        moment = time.monotonic()
        expire = moment - self._expired_at >= self._expire_every
        with session_scope(self._engine) as session:
            self._refresh_views(session, now, expire)
        if not self.leadership.held():
            return dispatch.StepResult()
        with session_scope(self._engine) as session:
            result = dispatch.step(session, now, self.board, self._routing, self._config, self._sender,
                                   self._pacer, expire)
        if expire:
            self._expired_at = moment
        self.counters.add(result)
        return result

    def _refresh_views(self, session: Session, now: datetime, hear: bool) -> None:
        board_at, awaiting_at = self._refreshed
        moment = time.monotonic()
        if moment - board_at >= self._refresh[0]:
            self.board = current_board(session, now, self._timing, self._settings.report_interval_seconds,
                                       lambda device_id: self._powering_down(device_id, now), self._networks)
            board_at = moment
        elif hear:  # between elections, when each relay was last heard from: a silence shows within a second
            self.board = self.board.hearing(last_heard(session, self.board.relay_agents))
        if moment - awaiting_at >= self._refresh[1]:
            self.awaiting = open_device_ids(session)
            awaiting_at = moment
        self._refreshed = (board_at, awaiting_at)

    def _run(self) -> None:
        """Step every ``wake_tick_seconds`` while a wave is running; otherwise until the next slot, or a
        second at most, so an idle controller does not open fifty transactions a second."""
        tick = self._settings.wake_tick_seconds
        while not self._stopping.is_set():
            pause = IDLE_SECONDS
            try:
                result = self.tick()
                if result.next_due is not None:
                    pause = (result.next_due - self._clock()).total_seconds()
                if result.sent or result.handed_to_relays or result.retried or result.rerouted:
                    pause = tick
            except Exception:
                self.counters.step_failures += 1
                log.exception("the wake dispatcher step failed; trying again")
            self._stopping.wait(min(max(pause, tick), IDLE_SECONDS))

    def on_reports(self, session: Session, arrivals: Iterable[Arrival], now: datetime) -> dict[str, RelayReply]:
        """Called by ingest inside its transaction, with the reports it has just stored."""
        arrivals = list(arrivals)
        board = self.board
        note_relayed(session, arrivals, now, self._config.port, board.name)
        confirm_arrivals(session, arrivals, self.awaiting, now)
        relays = board.relay_agents
        mine = [a.agent_id for a in arrivals if a.agent_id in relays]
        if not mine:
            return {}
        orders = hand_out_orders(session, mine, now, self._config.port, MAX_ORDERS_PER_REPLY, self._relay_pacer,
                                 board.name)
        interval = self._settings.relay_report_interval_seconds
        return {agent: RelayReply(orders.get(agent, ()), interval) for agent in mine}


@dataclass
class DispatchCounters:
    """What the dispatcher has been through since this process started, for /metrics."""

    errors: int = 0  # wakes a step failed on (each logged with its id)
    step_failures: int = 0  # whole steps that failed (the database away, say)
    rerouted: int = 0  # wakes routed again because their relay did not send them

    def add(self, result: dispatch.StepResult) -> None:
        self.errors += result.errors
        self.rerouted += result.rerouted
