"""Taking agent reports into the register: authenticate, check, and store each (agent, seq) once.

Writes go through one ``IngestWriter`` per process, which commits the batches that arrive together in
a single transaction (group commit). A commit is the expensive part of a small write, on SQLite and
PostgreSQL alike; sharing it is what lets one controller take thousands of reports a second. The
answer to an agent is sent only after its batch is committed, so an acknowledged report is durable.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, case
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agent.protocol import BatchAck, Report, ReportBatch, to_wire
from controller.energy.hourly import BucketKey, BucketSum, add_report, best_samples
from controller.power.relaying import Arrival
from controller.power.service import WakeService
from controller.register import credentials
from controller.register.devices import apply_inventory
from controller.register.models import ActionRecord, Agent, Device, EnergyBucket
from controller.register.models import Report as ReportRow
from controller.timeutil import as_utc, utcnow

log = logging.getLogger(__name__)


class AuthFailed(PermissionError):
    pass


@dataclass(frozen=True)
class AgentIdentity:
    agent_id: str
    device_id: int
    site_id: int


@dataclass(frozen=True)
class _CachedAgent:
    secret_hash: str
    identity: AgentIdentity | None  # None: retired
    loaded: float


class AgentDirectory:
    """Checks agent credentials, remembering them so a report costs no database read.

    A cache hit is answered on the event loop; only a miss goes to a thread. Entries live longer than
    the report interval (an agent reports every few minutes, so a shorter life would make every report
    a miss). Retiring an agent in this process forgets it at once; another replica notices within
    ``ttl`` seconds.
    """

    def __init__(self, engine: Engine, ttl: float = 900.0, clock: Callable[[], float] = time.monotonic):
        self._engine = engine
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, _CachedAgent] = {}

    async def authenticate(self, authorization: str | None) -> AgentIdentity:
        scheme, _, value = (authorization or "").partition(" ")
        agent_id, _, secret = value.partition(":")
        if scheme.lower() != "bearer" or not agent_id or not secret:
            raise AuthFailed("expected 'Authorization: Bearer <agent id>:<secret>'")
        entry = self._cache.get(agent_id)
        if entry is None or self._clock() - entry.loaded > self._ttl:
            entry = await asyncio.to_thread(self._load, agent_id)
        if entry is None or not credentials.matches(secret, entry.secret_hash):
            raise AuthFailed("unknown agent or wrong secret; enroll again with a site token")
        if entry.identity is None:
            raise AuthFailed("this agent was retired when the machine enrolled again; use its new credentials")
        return entry.identity

    def forget_device(self, device_id: int) -> None:
        """Drop the cached agents of a device that has just enrolled again (its old agents are retired)."""
        for agent_id, entry in list(self._cache.items()):
            if entry.identity is not None and entry.identity.device_id == device_id:
                del self._cache[agent_id]

    def _load(self, agent_id: str) -> _CachedAgent | None:
        with Session(self._engine) as session:
            agent = session.get(Agent, agent_id)
        if agent is None:
            self._cache.pop(agent_id, None)
            return None
        identity = None if agent.retired_at else AgentIdentity(agent.id, agent.device_id, agent.site_id)
        entry = _CachedAgent(agent.secret_hash, identity, self._clock())
        self._cache[agent_id] = entry
        return entry


@dataclass(frozen=True)
class Rejection:
    seq: int
    reason: str


def check_times(batch: ReportBatch, now: datetime, clock_skew_seconds: int, max_age_days: int) -> list[Rejection]:
    """Reports no clock could have produced: ending in the future, or older than anyone reports on."""
    latest = now + timedelta(seconds=clock_skew_seconds)
    earliest = now - timedelta(days=max_age_days)
    rejected = []
    for report in batch.reports:
        if as_utc(report.end) > latest:
            rejected.append(Rejection(report.seq, f"report {report.seq} ends at {report.end.isoformat()}, "
                                                  f"in the future (controller time {now.isoformat()})"))
        elif as_utc(report.start) < earliest:
            rejected.append(Rejection(report.seq, f"report {report.seq} starts more than {max_age_days} days ago"))
    return rejected


@dataclass(frozen=True)
class _Job:
    agent: AgentIdentity
    batch: ReportBatch
    future: Future


class IngestWriter:
    """The single writer thread of a controller process (see the module docstring)."""

    def __init__(self, engine: Engine, report_interval_seconds: int, group_size: int = 200,
                 clock: Callable[[], datetime] = utcnow, wake: WakeService | None = None):
        self._engine = engine
        self._wake = wake  # relays' sent notes, wake confirmations and relay orders, in the same transaction
        self._interval = report_interval_seconds
        self._group_size = group_size
        self._clock = clock
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self.committed_reports = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=30)

    @property
    def backlog(self) -> int:
        return self._jobs.qsize()

    def submit(self, agent: AgentIdentity, batch: ReportBatch) -> Future:
        future: Future = Future()
        self._jobs.put(_Job(agent, batch, future))
        return future

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            group = [job]
            while len(group) < self._group_size:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._jobs.put(None)
                    break
                group.append(more)
            self._commit(group)

    def _commit(self, group: list[_Job]) -> None:
        try:
            acks = self._store(group)
        except Exception:
            if len(group) == 1:
                log.exception("storing a report batch failed")
                group[0].future.set_exception(RuntimeError("the controller could not store this batch"))
                return
            # One bad batch must not fail its neighbours: retry each on its own.
            for job in group:
                self._commit([job])
            return
        for job, ack in zip(group, acks, strict=True):
            job.future.set_result(ack)

    def _store(self, group: list[_Job]) -> list[BatchAck]:
        now = self._clock()
        with Session(self._engine, expire_on_commit=False) as session:
            inserted = _insert_reports(session, group, now)
            _add_energy(session, group, inserted)
            _touch_agents_and_devices(session, group, inserted, now)
            _apply_inventories(session, group, inserted)
            _record_actions(session, group, inserted)
            relay_replies = self._wake.on_reports(session, _arrivals(group, inserted), now) if self._wake else {}
            session.commit()
        self.committed_reports += len(inserted)
        acks = []
        for job in group:
            seqs = [r.seq for r in job.batch.reports]
            accepted = tuple(s for s in seqs if (job.agent.agent_id, s) in inserted)
            duplicate = tuple(s for s in seqs if (job.agent.agent_id, s) not in inserted)
            relay = relay_replies.get(job.agent.agent_id)
            acks.append(BatchAck(accepted=accepted, duplicate=duplicate, report_interval_seconds=self._interval)
                        if relay is None else
                        BatchAck(accepted=accepted, duplicate=duplicate, wake_orders=relay.orders,
                                 report_interval_seconds=min(self._interval, relay.report_interval_seconds)))
        return acks


def _arrivals(group: list[_Job], inserted: set[tuple[str, int]]) -> list[Arrival]:
    return [Arrival(job.agent.agent_id, job.agent.device_id,
                    tuple(r for r in job.batch.reports if (job.agent.agent_id, r.seq) in inserted)) for job in group]


def _insert(session: Session):
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _report_row(agent: AgentIdentity, report: Report, now: datetime) -> dict:
    awake = best_samples(report.energy).get(report.activity.state)
    return {
        "agent_id": agent.agent_id, "seq": report.seq, "device_id": agent.device_id,
        "start": report.start, "end": report.end, "state": report.activity.state.value,
        "cpu_percent": report.activity.cpu_percent, "idle_seconds": report.activity.idle_seconds,
        "sessions": report.activity.sessions, "slept_seconds": report.activity.slept_seconds,
        "method": awake.method.value if awake else None, "joules": awake.joules if awake else None,
        "samples": to_wire(report.energy), "received_at": now,
        "processes_watched": list(report.activity.processes_watched) or None,
        "processes_running": list(report.activity.processes_running) if report.activity.processes_watched else None,
    }


def _insert_reports(session: Session, group: list[_Job], now: datetime) -> set[tuple[str, int]]:
    """Insert every new (agent, seq); return those that were new. Replays insert nothing.

    Rows go as executemany parameters, never inlined, so the statement is compiled once per process
    and cached (SQLAlchemy batches them into multi-row VALUES itself): compiling a fresh statement per
    group was half of the writer's time.
    """
    table = ReportRow.__table__
    rows = [_report_row(job.agent, r, now) for job in group for r in job.batch.reports]
    statement = (_insert(session)(table).on_conflict_do_nothing(index_elements=["agent_id", "seq"])
                 .returning(table.c.agent_id, table.c.seq))
    return {(a, s) for a, s in session.execute(statement, rows)}


def _add_energy(session: Session, group: list[_Job], inserted: set[tuple[str, int]]) -> None:
    sums: dict[tuple[int, BucketKey], BucketSum] = {}
    for job in group:
        per_device: dict[BucketKey, BucketSum] = {}
        for report in job.batch.reports:
            if (job.agent.agent_id, report.seq) in inserted:
                add_report(report, per_device)
        for key, value in per_device.items():
            total = sums.setdefault((job.agent.device_id, key), BucketSum())
            total.joules += value.joules
            total.seconds += value.seconds
    if not sums:
        return
    table = EnergyBucket.__table__
    # Sorted, so two replicas upserting the same buckets lock them in the same order (no deadlock).
    rows = [{"device_id": device_id, "hour": key.hour, "state": key.state.value, "method": key.method,
             "joules": value.joules, "seconds": value.seconds}
            for (device_id, key), value in sorted(sums.items(), key=lambda kv: (kv[0][0], kv[0][1].hour,
                                                                                  kv[0][1].state, kv[0][1].method))]
    statement = _insert(session)(table)
    statement = statement.on_conflict_do_update(
        index_elements=["device_id", "hour", "state", "method"],
        set_={"joules": table.c.joules + statement.excluded.joules,
              "seconds": table.c.seconds + statement.excluded.seconds})
    session.execute(statement, rows)


def _touch_agents_and_devices(session: Session, group: list[_Job], inserted: set[tuple[str, int]],
                              now: datetime) -> None:
    counts: dict[str, int] = defaultdict(int)
    top: dict[str, int] = defaultdict(int)
    devices: set[int] = set()
    for job in group:
        devices.add(job.agent.device_id)
        counts.setdefault(job.agent.agent_id, 0)
        for report in job.batch.reports:
            if (job.agent.agent_id, report.seq) in inserted:
                counts[job.agent.agent_id] += 1
                top[job.agent.agent_id] = max(top[job.agent.agent_id], report.seq)
    agents = Agent.__table__
    session.execute(
        agents.update().where(agents.c.id == bindparam("aid")).values(
            last_seen=now, reports=agents.c.reports + bindparam("n"),
            last_seq=case((agents.c.last_seq < bindparam("top"), bindparam("top")), else_=agents.c.last_seq)),
        [{"aid": a, "n": n, "top": top[a]} for a, n in sorted(counts.items())],
    )
    table = Device.__table__
    session.execute(table.update().where(table.c.id == bindparam("did")).values(last_seen=now),
                    [{"did": d} for d in sorted(devices)])


def _apply_inventories(session: Session, group: list[_Job], inserted: set[tuple[str, int]]) -> None:
    """Inventory rides on a few reports only (at start, on change, daily); apply the newest per device."""
    newest: dict[int, tuple[int, Report, str]] = {}
    for job in group:
        for report in job.batch.reports:
            if report.inventory is None or (job.agent.agent_id, report.seq) not in inserted:
                continue
            current = newest.get(job.agent.device_id)
            if current is None or report.seq > current[0]:
                newest[job.agent.device_id] = (report.seq, report, job.agent.agent_id)
    for device_id, (_seq, report, agent_id) in newest.items():
        device = session.exec(select(Device).where(Device.id == device_id)).one()
        apply_inventory(session, device, report.inventory, f"agent:{agent_id}")


def _record_actions(session: Session, group: list[_Job], inserted: set[tuple[str, int]]) -> None:
    """The power actions agents report go to the audit log once: only newly accepted reports count, and
    ``source_key`` (agent, seq, index) makes a retried or replayed report insert nothing."""
    rows = [{"at": action.at, "site_id": job.agent.site_id, "device_id": job.agent.device_id,
             "kind": action.kind.value, "outcome": action.outcome.value, "mode": action.mode.value,
             "reason": action.reason, "actor": f"agent:{job.agent.agent_id}",
             "source_key": f"{job.agent.agent_id}:{report.seq}:{index}",
             "details": {"until": action.until.isoformat() if action.until else None, "policy": action.policy}}
            for job in group for report in job.batch.reports if (job.agent.agent_id, report.seq) in inserted
            for index, action in enumerate(report.actions)]
    if rows:
        session.execute(_insert(session)(ActionRecord.__table__).on_conflict_do_nothing(
            index_elements=["source_key"]), rows)
