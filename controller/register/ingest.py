"""Taking agent reports into the register: authenticate, check, and store each (agent, seq) once.

Every report is judged on its own before it is stored (energy must be physically possible): it must not
end in the future or start too long ago, must not overlap a report of the same agent already stored or
accepted with it, and must not claim more average power than the power catalogue's ``ceiling_watts`` for
its device's class. A report that fails is answered in the batch's ``rejected`` list with the reason; the
rest of the batch is stored. Inventory from other hardware than the agent's credential was issued to is
kept on the agent, not applied, and the agent is marked shared (conflicts.py).

Writes go through one ``IngestWriter`` per process, which commits the batches that arrive together in
a single transaction (group commit). A commit is the expensive part of a small write, on SQLite and
PostgreSQL alike; sharing it is what lets one controller take thousands of reports a second. The
answer to an agent is sent only after its batch is committed, so an acknowledged report is durable. A
group holds its agents' rows from its first read to its commit, so replicas behind a balancer never store
one agent's reports at the same time, and each group's writes go to the database in one round trip.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Select, String, and_, any_, bindparam, case, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.sql.dml import Insert, Update
from sqlmodel import Session, col

from agent.protocol import (
    MAX_INTERVAL_SECONDS,
    BatchAck,
    RejectedReport,
    Report,
    ReportBatch,
    UpdateStatus,
    to_wire,
)
from controller.db import UNAVAILABLE, BulkUpdate, BulkUpsert, opening_rows, pipelined, prepared, upsert
from controller.energy import catalogue
from controller.energy.catalogue import Catalogue
from controller.energy.hourly import BucketKey, BucketSum, add_report, best_samples
from controller.energy.rollup import reopen
from controller.logs import RepeatedError
from controller.power.relaying import Arrival
from controller.power.service import RelayReply, WakeService
from controller.power.wake import insert_audits
from controller.register import conflicts, credentials
from controller.register.devices import apply_inventory
from controller.register.identity import fingerprint_from_json, fingerprint_of, fingerprint_to_json, other_hardware
from controller.register.models import (
    ActionRecord,
    Agent,
    AwakeCause,
    AwakeHour,
    Device,
    DeviceLatest,
    EnergyBucket,
    UpdateState,
)
from controller.register.models import Report as ReportRow
from controller.timeutil import as_utc, utcnow

log = logging.getLogger(__name__)
CATALOGUE_SECONDS = 60.0  # how stale the power ceilings may be


class StoreUnavailable(RuntimeError):
    """The database could not take the batch: nothing of it was stored; the agent should try again later."""


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
    a miss). Retiring an agent in this process forgets it at once.

    Other replicas hear of a retirement by looking: at most every ``check_seconds`` (before answering a
    report) each asks the database for the agents retired since it last asked, a short indexed query,
    and forgets them. A retired credential is therefore refused everywhere within ``check_seconds``
    plus one query (and its reports at once: the writer reads each agent's state in its transaction).
    Chosen over LISTEN/NOTIFY, which PostgreSQL drops for a replica whose listening connection is down
    at that moment (it would then trust the credential until the entry expires), and over a short
    cache, which would turn every report into a database read. ``ttl`` still bounds an entry's life,
    for changes this does not look for.
    """

    def __init__(self, engine: Engine, ttl: float = 900.0, clock: Callable[[], float] = time.monotonic,
                 check_seconds: float = 10.0, now: Callable[[], datetime] = utcnow):
        self._engine = engine
        self._ttl = ttl
        self._clock = clock
        self._now = now
        self._check_seconds = check_seconds
        self._cache: dict[str, _CachedAgent] = {}
        self._checked: tuple[float, datetime] | None = None  # (clock, database time asked from)

    async def authenticate(self, authorization: str | None) -> AgentIdentity:
        scheme, _, value = (authorization or "").partition(" ")
        agent_id, _, secret = value.partition(":")
        if scheme.lower() != "bearer" or not agent_id or not secret:
            raise AuthFailed("expected 'Authorization: Bearer <agent id>:<secret>'")
        if self._checked is None or self._clock() - self._checked[0] >= self._check_seconds:
            await asyncio.to_thread(self.forget_retired)
        entry = self._cache.get(agent_id)
        if entry is None or self._clock() - entry.loaded > self._ttl:
            entry = await asyncio.to_thread(self._load, agent_id)
        if entry is None or not credentials.matches(secret, entry.secret_hash):
            raise AuthFailed("unknown agent or wrong secret; enroll again with a site token")
        if entry.identity is None:
            raise AuthFailed("this agent was retired when the machine enrolled again; use its new credentials")
        return entry.identity

    def forget_retired(self) -> None:
        """Forget the cached agents retired (by any replica) since the last look. The look starts a
        minute before the last one did, so a replica whose clock runs behind is not missed."""
        began = self._clock()
        since = self._now() - timedelta(seconds=60) if self._checked is None else self._checked[1]
        asked_at = self._now() - timedelta(seconds=60)
        with Session(self._engine) as session:
            retired = session.exec(select(Agent.id).where(col(Agent.retired_at) >= since)).all()
        for agent_id in retired:
            self._cache.pop(agent_id, None)
        self._checked = (began, asked_at)

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
class ReportLimits:
    """What a report may claim about time: clocks drift, but not by days, and history is not rewritten."""

    clock_skew_seconds: int = 600
    max_age_days: int = 400


def time_problem(report: Report, now: datetime, limits: ReportLimits) -> str | None:
    """Why no honest clock could have produced ``report`` (ending in the future, or too old), or None."""
    if as_utc(report.end) > now + timedelta(seconds=limits.clock_skew_seconds):
        return f"ends at {report.end.isoformat()}, in the future (controller time {now.isoformat()})"
    if as_utc(report.start) < now - timedelta(days=limits.max_age_days):
        return f"starts more than {limits.max_age_days} days ago"
    return None


def power_problem(report: Report, ceiling_watts: float, device_class: str) -> str | None:
    """Why ``report`` claims more average power than any device of its class can draw, or None."""
    for sample in report.energy:
        if sample.joules is not None and sample.joules > ceiling_watts * sample.seconds * (1 + 1e-9) + 1e-6:
            watts = sample.joules / sample.seconds if sample.seconds else float("inf")
            return (f"{sample.method.value} energy averages {watts:,.0f} W over {sample.seconds:g} s, above the "
                    f"{ceiling_watts:,.0f} W a {device_class} can draw (the power catalogue's ceiling_watts)")
    return None


@dataclass(frozen=True)
class _Interval:
    start: datetime
    end: datetime
    seq: int


class _Timeline:
    """One agent's stored and newly accepted report intervals, to refuse a report that overlaps any.

    Accepted intervals never overlap one another, so sorted by start their ends are sorted too and
    the one interval that can overlap a new one is the last that starts before the new one ends.
    """

    def __init__(self, stored: list[_Interval]):
        self._intervals = sorted(stored, key=lambda i: (i.start, i.seq))
        self._starts = [i.start for i in self._intervals]
        self.starts_of = {i.seq: i.start for i in stored}  # each seq stored or accepted, and its start

    def clash(self, report: Report) -> _Interval | None:
        start, end = as_utc(report.start), as_utc(report.end)
        at = bisect.bisect_left(self._starts, end)
        for interval in self._intervals[max(0, at - 2):at]:  # two back: stored rows from before the check
            if interval.end > start:
                return interval
        return None

    def add(self, report: Report) -> None:
        interval = _Interval(as_utc(report.start), as_utc(report.end), report.seq)
        at = bisect.bisect_left(self._starts, interval.start)
        self._starts.insert(at, interval.start)
        self._intervals.insert(at, interval)
        self.starts_of[report.seq] = interval.start


@dataclass
class _AgentState:
    """What the writer needs to know about one agent to judge its reports (loaded once per group)."""

    device_id: int
    last_end: datetime | None
    last_seq: int
    retired: bool
    shared: bool
    ceiling_watts: float
    device_class: str
    timeline: _Timeline | None = None


@dataclass(frozen=True)
class _Job:
    agent: AgentIdentity
    batch: ReportBatch | None  # None: every report of the request was refused while parsing
    future: Future
    rejected: tuple[RejectedReport, ...] = ()


@dataclass
class _Verdict:
    """A job after screening: the reports to store, those refused with why, or the whole job refused."""

    job: _Job
    new: list[Report] = field(default_factory=list)  # to store: none of the agent's stored reports has its seq
    replayed: list[Report] = field(default_factory=list)  # stored already: acknowledged again as duplicates
    rejected: list[RejectedReport] = field(default_factory=list)
    refused: Exception | None = None


class IngestWriter:
    """The single writer thread of a controller process (see the module docstring)."""

    def __init__(self, engine: Engine, report_interval_seconds: int, group_size: int = 200,
                 clock: Callable[[], datetime] = utcnow, wake: WakeService | None = None,
                 limits: ReportLimits = ReportLimits()):
        self._engine = engine
        self._wake = wake  # relays' sent notes, wake confirmations and relay orders, in the same transaction
        self._interval = report_interval_seconds
        self._group_size = group_size
        self._clock = clock
        self._limits = limits
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self._catalogue: tuple[float, Catalogue] | None = None
        self._ceiling_of: dict[tuple[str, str | None, str | None], float] = {}
        self._unavailable = RepeatedError(log, "the database cannot take reports")
        self._connection: Connection | None = None  # the writer's own, kept between groups (see _bound)
        self.committed_reports = 0
        self.rejected_reports = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=30)

    @property
    def backlog(self) -> int:
        return self._jobs.qsize()

    def submit(self, agent: AgentIdentity, batch: ReportBatch | None,
               rejected: tuple[RejectedReport, ...] = ()) -> Future:
        """Queue a batch; the future gives its BatchAck once committed, or raises AuthFailed (a retired
        agent) or StoreUnavailable (the database cannot take it: nothing was stored, try later)."""
        future: Future = Future()
        self._jobs.put(_Job(agent, batch, future, rejected))
        return future

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                if self._connection is not None:
                    self._connection.close()
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
            outcomes = self._store(group)
        except UNAVAILABLE as exc:
            self._drop_connection()  # the next group starts on a connection checked before use
            # Nothing was stored; retrying each batch on its own would only hammer a database that is away.
            self._unavailable.occurred(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            for job in group:
                job.future.set_exception(StoreUnavailable("the database cannot take reports just now"))
            return
        except Exception:
            self._drop_connection()  # a transaction that failed may leave it unusable (see controller.db.pipelined)
            if len(group) == 1:
                log.exception("storing a report batch failed")
                group[0].future.set_exception(RuntimeError("the controller could not store this batch"))
                return
            # One bad batch must not fail its neighbours: retry each on its own.
            for job in group:
                self._commit([job])
            return
        self._unavailable.recovered()
        for job, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, Exception):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome)

    def _ceilings(self, session: Session) -> Callable[[str, str | None, str | None], float]:
        """Watts by (class, vendor, model) from the power catalogue, reloaded at most once a minute (an import
        takes effect within that), each answer remembered until then: a lookup may scan the catalogue."""
        if self._catalogue is None or time.monotonic() - self._catalogue[0] > CATALOGUE_SECONDS:
            self._catalogue = (time.monotonic(), catalogue.load(session))
            self._ceiling_of.clear()
        loaded = self._catalogue[1]

        def ceiling(device_class: str, vendor: str | None, model: str | None) -> float:
            key = (device_class, vendor, model)
            if key not in self._ceiling_of:
                self._ceiling_of[key] = float(loaded.ceiling(device_class, vendor, model))
            return self._ceiling_of[key]

        return ceiling

    def _bound(self) -> Connection:
        """The writer's connection. Checked out once and kept: a session per group on the pool's connections
        paid a liveness round trip (``pool_pre_ping``) for every group, one of its ten. A connection that
        failed is dropped (``_drop_connection``), so after an outage the pool's check applies again."""
        if self._connection is None or self._connection.invalidated or self._connection.closed:
            self._connection = self._engine.connect()
        return self._connection

    def _drop_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # it failed already; closing may fail the same way
                self._connection.invalidate()
            self._connection = None

    def _store(self, group: list[_Job]) -> list[BatchAck | Exception]:
        now = self._clock()
        with Session(self._bound(), expire_on_commit=False) as session:
            states = _agent_states(session, group, self._ceilings(session))
            verdicts = [self._screen(session, job, states, now) for job in group]
            kept = [v for v in verdicts if v.refused is None]
            # What reads, or writes through the ORM, first; then what only writes, with the commit, at once.
            _apply_inventories(session, kept, states, now)
            _record_actions(session, kept)
            relay_replies = self._wake.on_reports(session, _arrivals(kept), now) if self._wake else {}
            session.flush()
            with pipelined(session):
                _insert_reports(session, kept, now)
                _add_energy(session, kept, now)
                _keep_latest(session, kept)
                _touch_agents_and_devices(session, kept, states, now)
                _record_awake(session, kept)
                session.commit()
        self.committed_reports += sum(len(v.new) for v in kept)
        outcomes: list[BatchAck | Exception] = []
        for verdict in verdicts:
            if verdict.refused is not None:
                outcomes.append(verdict.refused)
                continue
            self.rejected_reports += len(verdict.rejected)
            outcomes.append(self._ack(verdict, relay_replies.get(verdict.job.agent.agent_id)))
        return outcomes

    def _ack(self, verdict: _Verdict, relay: RelayReply | None) -> BatchAck:
        accepted = tuple(r.seq for r in verdict.new)
        duplicate = tuple(r.seq for r in verdict.replayed)
        interval = self._interval if relay is None else min(self._interval, relay.report_interval_seconds)
        return BatchAck(accepted=accepted, duplicate=duplicate, report_interval_seconds=interval,
                        wake_orders=relay.orders if relay else (), rejected=tuple(verdict.rejected))

    def _screen(self, session: Session, job: _Job, states: dict[str, _AgentState], now: datetime) -> _Verdict:
        """Split a job's reports into those to store and those no honest agent could have sent, with why."""
        verdict = _Verdict(job, rejected=list(job.rejected))
        state = states.get(job.agent.agent_id)
        if state is None or state.retired:
            verdict.refused = AuthFailed("this agent was retired; enroll again with a site token")
            return verdict
        if job.batch is None:
            return verdict
        if state.timeline is None:
            state.timeline = _Timeline(_stored_intervals(session, job.agent.agent_id, state, job.batch.reports))
        timeline = state.timeline
        for report in sorted(job.batch.reports, key=lambda r: (r.start, r.seq)):
            if report.seq in timeline.starts_of:
                if timeline.starts_of[report.seq] == as_utc(report.start):
                    verdict.replayed.append(report)  # stored once, acknowledged as a duplicate
                else:
                    verdict.rejected.append(RejectedReport(report.seq, (
                        f"report {report.seq} reuses the number of a report starting at "
                        f"{timeline.starts_of[report.seq].isoformat()}: a replay has the same start, and each "
                        "report has a number of its own")))
                continue
            problem = time_problem(report, now, self._limits) or power_problem(
                report, state.ceiling_watts, state.device_class)
            if problem is None and (clash := timeline.clash(report)) is not None:
                problem = (f"overlaps report {clash.seq} ({clash.start.isoformat()} to {clash.end.isoformat()}) "
                           "already counted: an agent's intervals never overlap")
            if problem is None:
                timeline.add(report)
                verdict.new.append(report)
            else:
                verdict.rejected.append(RejectedReport(report.seq, f"report {report.seq} {problem}"))
        return verdict


def _agent_states(session: Session, group: list[_Job], ceiling: Callable[[str, str | None, str | None], float]
                  ) -> dict[str, _AgentState]:
    """The group's agents, each row held until the group commits: a replica storing the same agent's reports
    at once (an agent that retried through the balancer) waits here, then reads what this group stored. So
    what an agent has stored is known from its row, without asking the insert which rows it took."""
    ids = sorted({job.agent.agent_id for job in group})
    rows = opening_rows(session, prepared(session, _agent_states_query), {"ids": ids})
    return {agent_id: _AgentState(device_id, as_utc(last_end) if last_end else None, last_seq, retired is not None,
                                  shared is not None, ceiling(device_class, vendor, model),
                                  device_class)
            for agent_id, device_id, last_end, last_seq, retired, shared, device_class, vendor, model in rows}


def _agent_states_query(dialect: Dialect) -> Select:
    """The group's agents and their devices' kind, as rows, the agents' locked in the order of their ids (so
    two replicas never wait on each other in a circle). Built once: a new select per group, and the ORM's
    handling of it, cost the writer as much as the query. PostgreSQL takes the ids as one array, so the text
    is the same for every group (and prepared); SQLite, which has no arrays or row locks, as a list."""
    ids = (col(Agent.id) == any_(bindparam("ids", type_=ARRAY(String))) if dialect.name == "postgresql"
           else col(Agent.id).in_(bindparam("ids", expanding=True)))
    return (select(Agent.id, Agent.device_id, Agent.last_end, Agent.last_seq, Agent.retired_at, Agent.shared_since,
                   Device.device_class, Device.vendor, Device.model)
            .join(Device, col(Device.id) == Agent.device_id).where(ids).order_by(Agent.id)
            .with_for_update(of=Agent, key_share=True))


def _stored_intervals(session: Session, agent_id: str, state: _AgentState, reports: tuple[Report, ...]
                      ) -> list[_Interval]:
    """The agent's stored reports that the batch's could overlap or repeat (by interval, or by number: a
    seq the agent used before). Agents send in order, so usually every report starts after the last one
    stored, with a higher seq, and nothing needs reading."""
    early = [r for r in reports if state.last_end is not None and as_utc(r.start) < state.last_end]
    used = sorted({r.seq for r in reports if r.seq <= state.last_seq})
    rows = []
    if early:
        # A stored report overlapping [start, end) started less than the longest interval before ``start``.
        since = min(as_utc(r.start) for r in early) - timedelta(seconds=MAX_INTERVAL_SECONDS)
        until = max(as_utc(r.end) for r in early)
        rows += session.execute(select(ReportRow.seq, ReportRow.start, ReportRow.end).where(
            ReportRow.device_id == state.device_id, ReportRow.agent_id == agent_id,
            col(ReportRow.start) >= since, col(ReportRow.start) < until)).all()
    if used:
        rows += session.execute(select(ReportRow.seq, ReportRow.start, ReportRow.end).where(
            ReportRow.agent_id == agent_id, col(ReportRow.seq).in_(used))).all()
    return [_Interval(as_utc(start), as_utc(end), seq) for seq, start, end in set(rows)]


def _arrivals(verdicts: list[_Verdict]) -> list[Arrival]:
    return [Arrival(v.job.agent.agent_id, v.job.agent.device_id, tuple(v.new)) for v in verdicts]


def _accounted(report: Report) -> dict:
    """The method and joules accounted for the report's own state (its best sample), as stored."""
    awake = best_samples(report.energy).get(report.activity.state)
    return {"method": awake.method.value if awake else None, "joules": awake.joules if awake else None}


_REPORT_COLUMNS = ("agent_id", "seq", "device_id", "start", "end", "state", "cpu_percent", "idle_seconds", "sessions",
                  "slept_seconds", "memory_percent", "method", "joules", "samples", "received_at",
                  "processes_watched", "processes_running")


def _report_row(agent: AgentIdentity, report: Report, now: datetime) -> dict:
    """A report as a row of _REPORT_COLUMNS."""
    return {
        "agent_id": agent.agent_id, "seq": report.seq, "device_id": agent.device_id,
        "start": report.start, "end": report.end, "state": report.activity.state.value,
        "cpu_percent": report.activity.cpu_percent, "idle_seconds": report.activity.idle_seconds,
        "sessions": report.activity.sessions, "slept_seconds": report.activity.slept_seconds,
        "memory_percent": report.activity.memory_percent,
        **_accounted(report),
        "samples": to_wire(report.energy), "received_at": now,
        "processes_watched": list(report.activity.processes_watched) or None,
        "processes_running": list(report.activity.processes_running) if report.activity.processes_watched else None,
    }


def _insert_reports(session: Session, verdicts: list[_Verdict], now: datetime) -> None:
    """Insert the new reports. Which are new is known before: the group holds its agents' rows (see
    ``_agent_states``), so no other writer can store their reports meanwhile, and the agent's ``last_seq``
    bounds what it has stored. The conflict clause still keeps a stored (agent, seq) from being stored twice.

    Rows go as parameters, never inlined, so the statement is compiled once per process and cached:
    compiling a fresh statement per group was half of the writer's time.
    """
    rows = [_report_row(v.job.agent, r, now) for v in verdicts for r in v.new]
    if rows:
        statement, bulk = prepared(session, _report_insert)
        session.execute(statement, bulk.params(rows))


def _report_insert(dialect: Dialect) -> tuple[Insert, BulkUpsert]:
    table = ReportRow.__table__
    bulk = BulkUpsert(dialect, table, _REPORT_COLUMNS)
    return bulk.statement.on_conflict_do_nothing(index_elements=["agent_id", "seq", "start"]), bulk


def _add_energy(session: Session, verdicts: list[_Verdict], now: datetime) -> None:
    sums: dict[tuple[int, BucketKey], BucketSum] = {}
    for verdict in verdicts:
        agent = verdict.job.agent
        per_device: dict[BucketKey, BucketSum] = {}
        for report in verdict.new:
            add_report(report, per_device)
        for key, value in per_device.items():
            total = sums.setdefault((agent.device_id, key), BucketSum())
            total.joules += value.joules
            total.seconds += value.seconds
    if not sums:
        return
    # Sorted, so two replicas upserting the same buckets lock them in the same order (no deadlock).
    rows = [{"device_id": device_id, "hour": key.hour, "state": key.state.value, "method": key.method,
             "joules": value.joules, "seconds": value.seconds}
            for (device_id, key), value in sorted(sums.items(), key=lambda kv: (kv[0][0], kv[0][1].hour,
                                                                                  kv[0][1].state, kv[0][1].method))]
    statement, bulk = prepared(session, _bucket_upsert)
    session.execute(statement, bulk.params(rows))
    earliest: dict[int, datetime] = {}
    for (device_id, key) in sums:
        if device_id not in earliest or key.hour < earliest[device_id]:
            earliest[device_id] = key.hour
    reopen(session, earliest, now)  # a late report re-opens the rolled-up days it lands in


def _bucket_upsert(dialect: Dialect) -> tuple[Insert, BulkUpsert]:
    table = EnergyBucket.__table__
    bulk = BulkUpsert(dialect, table, ("device_id", "hour", "state", "method", "joules", "seconds"))
    return bulk.statement.on_conflict_do_update(
        index_elements=["device_id", "hour", "state", "method"],
        set_={"joules": table.c.joules + bulk.statement.excluded.joules,
              "seconds": table.c.seconds + bulk.statement.excluded.seconds}), bulk


def _keep_latest(session: Session, verdicts: list[_Verdict]) -> None:
    """Each device's latest report into ``device_latest``, unless it already holds a later one (a
    spool flushed late, or another replica's batch): latest by start, then by end, as the rule in
    controller.estate.summary says."""
    newest: dict[int, dict] = {}
    for verdict in verdicts:
        agent = verdict.job.agent
        for report in verdict.new:
            held = newest.get(agent.device_id)
            if held is None or (as_utc(report.start), as_utc(report.end)) > (held["start"], held["end"]):
                newest[agent.device_id] = {
                    "device_id": agent.device_id, "start": as_utc(report.start), "end": as_utc(report.end),
                    "state": report.activity.state.value, **_accounted(report)}
    if not newest:
        return
    statement, bulk = prepared(session, _latest_upsert)
    session.execute(statement, bulk.params([newest[d] for d in sorted(newest)]))  # sorted: replicas lock in one order


def _latest_upsert(dialect: Dialect) -> tuple[Insert, BulkUpsert]:
    table = DeviceLatest.__table__
    bulk = BulkUpsert(dialect, table, ("device_id", "start", "end", "state", "method", "joules"))
    statement = bulk.statement
    later = or_(statement.excluded.start > table.c.start,
                and_(statement.excluded.start == table.c.start, statement.excluded.end > table.c.end))
    return statement.on_conflict_do_update(
        index_elements=["device_id"], where=later,
        set_={name: statement.excluded[name] for name in ("start", "end", "state", "method", "joules")}), bulk


def _touch_agents_and_devices(session: Session, verdicts: list[_Verdict], states: dict[str, _AgentState],
                              now: datetime) -> None:
    counts: dict[str, int] = defaultdict(int)
    top: dict[str, int] = defaultdict(int)
    ends: dict[str, datetime | None] = {}
    devices: set[int] = set()
    for verdict in verdicts:
        agent_id = verdict.job.agent.agent_id
        if not states[agent_id].shared:  # a shared credential no longer speaks for its device
            devices.add(verdict.job.agent.device_id)
        counts.setdefault(agent_id, 0)
        ends.setdefault(agent_id, states[agent_id].last_end)
        for report in verdict.new:
            counts[agent_id] += 1
            top[agent_id] = max(top[agent_id], report.seq)
            end = ends[agent_id]
            ends[agent_id] = as_utc(report.end) if end is None else max(end, as_utc(report.end))
    for agent_id, end in ends.items():
        states[agent_id].last_end = end
    if not counts:  # every report of the batch refused before judging (a retired credential): nothing to touch
        return
    statement, bulk = prepared(session, _agents_update)
    session.execute(statement, bulk.params([{"id": a, "reports": n, "last_seq": top[a], "last_end": ends[a],
                                             "last_seen": now} for a, n in sorted(counts.items())]))
    if devices:
        statement, bulk = prepared(session, _devices_update)
        session.execute(statement, bulk.params([{"id": d, "last_seen": now} for d in sorted(devices)]))


def _agents_update(dialect: Dialect) -> tuple[Update, BulkUpdate]:
    agents = Agent.__table__
    bulk = BulkUpdate(dialect, agents, "id", ("reports", "last_seq", "last_end", "last_seen"))
    new = bulk.new
    higher_seq = case((agents.c.last_seq < new["last_seq"], new["last_seq"]), else_=agents.c.last_seq)
    return bulk.statement(last_seen=new["last_seen"], reports=agents.c.reports + new["reports"],
                          last_end=new["last_end"], last_seq=higher_seq), bulk


def _devices_update(dialect: Dialect) -> tuple[Update, BulkUpdate]:
    bulk = BulkUpdate(dialect, Device.__table__, "id", ("last_seen",))
    return bulk.statement(last_seen=bulk.new["last_seen"]), bulk


def _apply_inventories(session: Session, verdicts: list[_Verdict], states: dict[str, _AgentState],
                       now: datetime) -> None:
    """Inventory rides on a few reports only (at start, on change, daily); apply the newest per agent,
    unless it comes from other hardware than the credential was issued to (see conflicts.mark_shared)."""
    newest: dict[str, Report] = {}
    for verdict in verdicts:
        agent_id = verdict.job.agent.agent_id
        for report in verdict.new:
            if report.inventory is None:
                continue
            if agent_id not in newest or report.seq > newest[agent_id].seq:
                newest[agent_id] = report
    for agent_id, report in sorted(newest.items()):
        agent = session.get(Agent, agent_id)
        reported = fingerprint_of(report.inventory)
        if agent.shared_since is not None:
            agent.shared_inventory = to_wire(report.inventory)  # kept for whoever resolves it
            continue
        if agent.fingerprint is None:  # enrolled before credentials were tied to hardware
            agent.fingerprint = fingerprint_to_json(reported)
        reason = other_hardware(fingerprint_from_json(agent.fingerprint), reported)
        if reason is not None:
            conflicts.mark_shared(session, agent, reason, report.inventory, now)
            states[agent_id].shared = True
            continue
        device = session.get(Device, agent.device_id)
        apply_inventory(session, device, report.inventory, f"agent:{agent_id}")


def _record_actions(session: Session, verdicts: list[_Verdict]) -> None:
    """The power actions agents report go to the audit log once: only newly accepted reports count, and
    ``source_key`` (agent, seq, index) makes a retried or replayed report insert nothing."""
    rows = [{"at": action.at, "site_id": v.job.agent.site_id, "device_id": v.job.agent.device_id,
             "kind": action.kind.value, "outcome": action.outcome.value, "mode": action.mode.value,
             "reason": action.reason, "actor": f"agent:{v.job.agent.agent_id}",
             "source_key": f"{v.job.agent.agent_id}:{report.seq}:{index}",
             "details": {"until": action.until.isoformat() if action.until else None, "policy": action.policy,
                         **({"deferred_for": action.deferred_for.value} if action.deferred_for else {})}}
            for v in verdicts for report in v.new
            for index, action in enumerate(report.actions)]
    rows += _update_rows(session, verdicts)
    insert_audits(session, rows)


def _update_rows(session: Session, verdicts: list[_Verdict]) -> list[dict]:
    """The OS update states agents send when they change (the maintenance audit's "updated"), as audit lines.

    An agent sends its state on its first report too, mostly "idle": that is news only after a state that
    was not, so a fleet of agents starting does not fill the audit log with "nothing installing"."""
    rows = []
    last: dict[int, str | None] = {}
    for verdict in verdicts:
        agent = verdict.job.agent
        for report in sorted(verdict.new, key=lambda r: r.seq):
            if report.updates is None:
                continue
            if agent.device_id not in last:
                last[agent.device_id] = session.execute(
                    select(ActionRecord.outcome).where(ActionRecord.device_id == agent.device_id,
                                                       ActionRecord.kind == "updates")
                    .order_by(col(ActionRecord.at).desc()).limit(1)).scalar()
            state = update_state(report.updates)
            if state is UpdateState.IDLE and last[agent.device_id] in (None, UpdateState.IDLE):
                continue
            last[agent.device_id] = state
            rows.append({"at": report.end, "site_id": agent.site_id, "device_id": agent.device_id, "kind": "updates",
                         "outcome": state.value, "mode": None, "reason": report.updates.detail or "no evidence",
                         "actor": f"agent:{agent.agent_id}", "source_key": f"{agent.agent_id}:{report.seq}:updates",
                         "details": None})
    return rows


def update_state(status: UpdateStatus) -> UpdateState:
    if status.installing:
        return UpdateState.INSTALLING
    if status.reboot_pending:
        return UpdateState.REBOOT_PENDING
    if status.installing is False:
        return UpdateState.IDLE
    return UpdateState.UNKNOWN


def awake_seconds(report: Report) -> dict[tuple[datetime, str, str, str], float]:
    """(UTC hour, kind, what, process) -> the awake seconds of ``report`` its insomnia reading speaks for.

    No sleep timer outranks the holders (the OS would not sleep whatever held it); a reading with neither
    says nothing held the machine."""
    reading = report.insomnia
    if reading is None:
        return {}
    if reading.sleep_timer_set is False:
        causes = {(AwakeCause.NO_SLEEP_TIMER.value, "the OS never sleeps on its own", "")}
    else:
        causes = ({(h.kind.value, h.what, h.process) for h in reading.holders}
                  or {(AwakeCause.NOTHING_HELD.value, "", "")})
    start, end = as_utc(report.start), as_utc(report.end)
    awake = max(0.0, 1 - report.activity.slept_seconds / report.seconds)
    found: dict[tuple[datetime, str, str, str], float] = {}
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour < end:
        seconds = (min(end, hour + timedelta(hours=1)) - max(start, hour)).total_seconds() * awake
        for kind, what, process in causes:
            found[(hour, kind, what, process)] = seconds
        hour += timedelta(hours=1)
    return found


def _record_awake(session: Session, verdicts: list[_Verdict]) -> None:
    """Add each newly accepted report's insomnia seconds to its device-hours (a replay adds nothing)."""
    sums: dict[tuple[int, datetime, str, str, str], float] = defaultdict(float)
    for verdict in verdicts:
        agent = verdict.job.agent
        for report in verdict.new:
            for (hour, kind, what, process), seconds in awake_seconds(report).items():
                sums[(agent.device_id, hour, kind, what, process)] += seconds
    if not sums:
        return
    table = AwakeHour.__table__
    statement = upsert(session, table)
    statement = statement.on_conflict_do_update(index_elements=["device_id", "hour", "kind", "what", "process"],
                                                set_={"seconds": table.c.seconds + statement.excluded.seconds})
    session.execute(statement, [{"device_id": d, "hour": h, "kind": k, "what": w, "process": p, "seconds": s}
                                for (d, h, k, w, p), s in sorted(sums.items())])
