"""Running a virtual estate against a real controller: enroll, backfill past days, then report live.

The devices and their reports come from :mod:`controller.simulate.estate` (pure); this module does for many
agents at once what one agent's client, spool and timer do: asyncio and httpx, with a bounded number
of requests in flight. Each agent posts its reports in order, in batches of up to 50, and drops only
what the controller acknowledged (accepted or duplicate) or refused for good (422).

What is kept between runs (``--state``) is each agent's credentials and its acknowledged frontier:
the next sequence number and the end of the last interval acknowledged. Reports are a pure function
of the device and the interval, so a report that was sent but never acknowledged is rebuilt the same
on the next run, seq included, and counts as a duplicate if it had in fact been stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import os
import signal
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.engine import Engine

from agent.protocol import (
    MAX_BATCH_REPORTS,
    PROTOCOL_VERSION,
    AgentSchedule,
    BatchAck,
    EnrollRequest,
    EnrollResponse,
    ProtocolError,
    Report,
    WakeOrder,
    from_wire,
    to_wire,
)
from controller.db import session_scope
from controller.errors import DomainError
from controller.register.enrollment import create_token
from controller.simulate.enforce import EnforcerState, advance, woken
from controller.simulate.estate import SitePlan, VirtualDevice, build_estate, plan_sites, previous_boundary, report_for
from controller.timeutil import utcnow

ENROLL_PATH = "/api/v1/agent/enroll"
REPORTS_PATH = "/api/v1/agent/reports"
DEFAULT_DEVICES = 100
DEFAULT_SITES = 3
DEFAULT_SEED = 1
STATE_VERSION = 1
USER_AGENT = "caretaker-simulate/1"


class SimulationError(DomainError):
    """Something the user must fix (a refused token, a state file for another estate); one line."""


@dataclass(frozen=True)
class SimulationConfig:
    controller: str
    state_file: Path
    devices: int | None = None  # None: as in the state file, else DEFAULT_DEVICES
    sites: int | None = None  # None: as in the state file, else one per token, else DEFAULT_SITES
    seed: int | None = None
    tokens: tuple[str, ...] = ()
    history_days: float = 0.0
    interval: int = 300
    duration: float | None = None  # seconds of live reporting after the backfill; None: until stopped
    concurrency: int = 8  # httpx's pool costs more CPU per request beyond about 8 connections
    ca_file: Path | None = None
    progress_seconds: float = 10.0
    batch_size: int = 50
    until: datetime | None = None  # backfill only up to here, then stop (no live reporting)


# --- State between runs -----------------------------------------------------------------------------


@dataclass
class AgentRecord:
    """One virtual agent's credentials and acknowledged frontier, as kept in the state file."""

    agent_id: str
    secret: str
    device_id: int
    site: str
    next_seq: int = 1
    until: str | None = None  # ISO end of the last interval acknowledged
    schedule: dict | None = None  # the power schedule it holds, on the wire (power-schedule.json for a real agent)
    enforcer: dict | None = None  # its enforcer's state at ``until`` (simulate.enforce.EnforcerState)

    @property
    def authorization(self) -> str:
        return f"Bearer {self.agent_id}:{self.secret}"


@dataclass
class EstateState:
    controller: str
    seed: int
    sites: list[SitePlan]
    agents: dict[str, AgentRecord] = field(default_factory=dict)  # by hostname

    @classmethod
    def load(cls, path: Path) -> EstateState | None:
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"version {data.get('version')!r}, expected {STATE_VERSION}")
            return cls(controller=data["controller"], seed=data["seed"],
                       sites=[SitePlan(**s) for s in data["sites"]],
                       agents={host: AgentRecord(**a) for host, a in data["agents"].items()})
        except (ValueError, KeyError, TypeError) as exc:
            raise SimulationError(f"{path} is not a simulator state file ({exc}); move it away or pass another --state"
                                  ) from None

    def save(self, path: Path) -> None:
        """Atomically, readable by its owner only (it holds the virtual agents' secrets)."""
        data = {"version": STATE_VERSION, "controller": self.controller, "seed": self.seed,
                "sites": [asdict(s) for s in self.sites],
                "agents": {host: asdict(a) for host, a in sorted(self.agents.items())}}
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=1)
        partial.replace(path)


def resolve_estate(config: SimulationConfig, state: EstateState | None) -> EstateState:
    """The estate to run: the state file's, or a new one from the options. Disagreements are errors."""
    controller = config.controller.rstrip("/")
    if state is not None:
        if state.controller != controller:
            raise SimulationError(f"{config.state_file} holds agents enrolled with {state.controller}, "
                                  f"not {controller}; pass another --state")
        devices = sum(s.devices for s in state.sites)
        for option, asked, kept in (("--devices", config.devices, devices), ("--sites", config.sites, len(state.sites)),
                                    ("--seed", config.seed, state.seed)):
            if asked is not None and asked != kept:
                raise SimulationError(f"{config.state_file} was made with {option} {kept}, not {asked}; "
                                      "leave it out to continue that estate, or pass another --state")
        return state
    sites = config.sites or len(config.tokens) or DEFAULT_SITES
    if config.tokens and len(config.tokens) != sites:
        raise SimulationError(f"give one --token per site: {len(config.tokens)} tokens for {sites} sites")
    plans = list(plan_sites(config.devices or DEFAULT_DEVICES, sites))
    return EstateState(controller, config.seed if config.seed is not None else DEFAULT_SEED, plans)


def issue_site_tokens(engine: Engine, names: Sequence[str]) -> list[str]:
    """One enrollment token per site (creating the sites), for a simulator on the controller's host."""
    with session_scope(engine) as session:
        return [create_token(session, name, utcnow(), 1, "simulate", note="caretaker simulate").token
                for name in names]


# --- Running ----------------------------------------------------------------------------------------


@dataclass
class Tally:
    enrolled: int = 0
    sent: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    errors: int = 0
    last_error: str = ""

    @property
    def acknowledged(self) -> int:
        return self.accepted + self.duplicate

    def line(self) -> str:
        return (f"sent {self.sent}, accepted {self.accepted}, duplicate {self.duplicate}, "
                f"rejected {self.rejected}, errors {self.errors}")


@dataclass
class _Agent:
    device: VirtualDevice
    record: AgentRecord | None
    until: datetime | None = None  # end of the last interval turned into a report (or found empty)
    next_seq: int = 1
    # (interval end, report, the enforcer's state before the interval), oldest first
    spool: list[tuple[datetime, Report, EnforcerState]] = field(default_factory=list)
    last_end: datetime | None = None  # end of the last report, to tell a fresh start (send inventory)
    queued: bool = False
    refused: bool = False  # 401: the controller no longer knows this agent
    schedule: AgentSchedule | None = None  # the power schedule it holds, from the last ingest reply
    asked: date | None = None  # the local day it last asked its schedule for
    enforcer: EnforcerState = field(default_factory=EnforcerState)
    relayed: tuple[int, ...] = ()  # wake orders sent as a relay, for the next report

    @property
    def watched(self) -> tuple[str, ...]:
        """The processes its schedule waits on, which a real agent reports as running or not."""
        return self.schedule.idle.processes_absent if self.schedule and self.schedule.idle else ()


class Simulation:
    """One run over an estate. ``site_tokens`` is asked for {site: token} only if a device needs enrolling."""

    def __init__(self, config: SimulationConfig, estate: EstateState, site_tokens: Callable[[], dict[str, str]],
                 echo: Callable[[str], None], clock: Callable[[], datetime] = utcnow):
        self.config = config
        self.estate = estate
        self.site_tokens = site_tokens
        self.tokens: dict[str, str] = {}
        self.echo = echo
        self.clock = clock
        self.step = timedelta(seconds=config.interval)
        self.tally = Tally()
        self.stop = asyncio.Event()
        self.agents = [_Agent(d, estate.agents.get(d.hostname)) for d in build_estate(estate.sites, estate.seed)]
        self.by_mac = {nic.mac: agent for agent in self.agents for nic in agent.device.nics}
        for agent in self.agents:
            if agent.record is not None:
                self._resume(agent)
        self._queue: asyncio.Queue[_Agent | None] = asyncio.Queue()

    # --- lifecycle ---

    async def run(self) -> Tally:
        context: ssl.SSLContext | bool = True
        if self.config.ca_file is not None:
            context = ssl.create_default_context(cafile=str(self.config.ca_file))
        limits = httpx.Limits(max_connections=self.config.concurrency,
                              max_keepalive_connections=self.config.concurrency)
        async with httpx.AsyncClient(base_url=self.config.controller, verify=context, limits=limits,
                                     timeout=httpx.Timeout(60.0), headers={"User-Agent": USER_AGENT}) as http:
            self.http = http
            try:
                await self._enroll_all()
                if not self.stop.is_set():
                    await self._report()
            finally:
                self.save()
        return self.tally

    def save(self) -> None:
        for agent in self.agents:
            if agent.record is not None:
                self._frontier(agent)
                self.estate.agents[agent.device.hostname] = agent.record
        self.estate.save(self.config.state_file)

    # --- enrollment ---

    async def _enroll_all(self) -> None:
        pending = [a for a in self.agents if a.record is None]
        if not pending:
            return
        self.tokens = self.site_tokens()
        started = time.monotonic()
        gate = asyncio.Semaphore(self.config.concurrency)

        async def enroll(agent: _Agent) -> None:
            async with gate:
                if not self.stop.is_set():
                    await self._enroll(agent)

        # Cloned images enroll after the machines they were cloned from, as they would have been
        # installed, so the controller sees the original first and keeps the copy apart.
        for group in ([a for a in pending if not a.device.clone_of], [a for a in pending if a.device.clone_of]):
            try:
                async with asyncio.TaskGroup() as tasks:
                    for agent in group:
                        tasks.create_task(enroll(agent))
            except* SimulationError as failed:
                raise failed.exceptions[0] from None
        seconds = time.monotonic() - started
        self.echo(f"enrolled {self.tally.enrolled} devices in {seconds:.1f} s "
                  f"({self.tally.enrolled / max(seconds, 1e-9):.0f}/s)")

    async def _enroll(self, agent: _Agent) -> None:
        site = agent.device.site
        token = self.tokens.get(site)
        if token is None:
            raise SimulationError(f"no enrollment token for site {site!r}")
        body = json.dumps(to_wire(EnrollRequest(PROTOCOL_VERSION, token, agent.device.inventory())))
        try:
            answer = await self.http.post(ENROLL_PATH, content=body, headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            raise SimulationError(f"cannot reach {self.config.controller}: {_describe(exc)}") from None
        if answer.status_code == 401:
            raise SimulationError(f"the controller refused the token for {site!r}: {_detail(answer)}")
        if answer.status_code != 201:
            raise SimulationError(f"enrolling {agent.device.hostname} failed: {answer.status_code} {_detail(answer)}")
        enrolled = from_wire(EnrollResponse, answer.json())
        agent.record = AgentRecord(enrolled.agent_id, enrolled.secret, enrolled.device_id, enrolled.site)
        agent.last_end = None
        self.tally.enrolled += 1

    # --- reporting ---

    def _now(self) -> datetime:
        """The simulation's present: the clock, or the moment a partial backfill stops at."""
        now = self.clock()
        return now if self.config.until is None else min(now, self.config.until)

    async def _report(self) -> None:
        start = self.clock() - timedelta(days=self.config.history_days)
        for agent in self.agents:
            if agent.until is None or agent.until < start:
                agent.until = previous_boundary(agent.device, start, self.config.interval)
        workers = [asyncio.create_task(self._worker()) for _ in range(self.config.concurrency)]
        progress = asyncio.create_task(self._progress())
        began = time.monotonic()
        try:
            if self.config.history_days > 0:
                days = self.config.history_days
                self.echo(f"backfilling {days:g} day{'' if days == 1 else 's'} of reports "
                          f"from {len(self.agents)} devices")
            for agent in self.agents:
                self._enqueue(agent)
            await self._drained()
            if self.config.history_days > 0:
                self.echo(f"backfill done: {self.tally.line()}")
            if not self.stop.is_set() and self.config.duration != 0 and self.config.until is None:
                await self._live()
        finally:
            self.stop.set()
            for _ in workers:
                self._queue.put_nowait(None)
            await asyncio.gather(*workers)
            progress.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await progress
        elapsed = time.monotonic() - began
        rate = self.tally.acknowledged / max(elapsed, 1e-9)
        self.echo(f"done: {len(self.agents)} devices on {len(self.estate.sites)} sites, "
                  f"enrolled {self.tally.enrolled}, {self.tally.line()} in {elapsed:.1f} s ({rate:.0f}/s)")
        refused = sum(a.refused for a in self.agents)
        if refused:
            self.echo(f"{refused} agents are unknown to the controller (was its database replaced?); "
                      f"delete {self.config.state_file} to enroll afresh")

    async def _drained(self) -> None:
        """Until the queue is empty and no worker is busy, or the run is stopped."""
        join = asyncio.create_task(self._queue.join())
        stopped = asyncio.create_task(self.stop.wait())
        await asyncio.wait((join, stopped), return_when=asyncio.FIRST_COMPLETED)
        for task in (join, stopped):
            task.cancel()

    async def _live(self) -> None:
        """Each device reports at its own phase within the interval, as a real estate's agents do."""
        deadline = None if self.config.duration is None else time.monotonic() + self.config.duration
        due = [(a.until + self.step, i) for i, a in enumerate(self.agents)]
        heapq.heapify(due)
        while not self.stop.is_set():
            now = self.clock()
            while due and due[0][0] <= now:
                when, i = heapq.heappop(due)
                self._enqueue(self.agents[i])
                heapq.heappush(due, (when + self.step, i))
            wait = (due[0][0] - now).total_seconds() if due else 3600.0
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=max(wait, 0.0))

    def _enqueue(self, agent: _Agent) -> None:
        if not agent.queued and not agent.refused and agent.record is not None:
            agent.queued = True
            self._queue.put_nowait(agent)

    async def _worker(self) -> None:
        while True:
            agent = await self._queue.get()
            if agent is None:
                return
            try:
                if not self.stop.is_set():
                    await self._flush(agent)
            finally:
                agent.queued = False
                self._queue.task_done()

    async def _flush(self, agent: _Agent) -> None:
        """Post the agent's spool, refilling it with the intervals up to now, until it is empty or a post fails."""
        up_to = previous_boundary(agent.device, self._now(), self.config.interval)
        while not self.stop.is_set():
            self._fill(agent, up_to)
            if not agent.spool:
                return
            if not await self._post(agent, agent.spool[: self.config.batch_size]):
                return

    def _fill(self, agent: _Agent, up_to: datetime) -> None:
        """Reports for the intervals up to ``up_to``, each under the schedule the agent holds. A replay stops at
        a new local day once it has something to send, so the reply brings that day's schedule before the
        day's evening is enforced."""
        zone = ZoneInfo(agent.device.behaviour.timezone)
        while len(agent.spool) < self.config.batch_size and agent.until + self.step <= up_to:
            start, end = agent.until, agent.until + self.step
            if agent.spool and agent.asked is not None and start.astimezone(zone).date() > agent.asked:
                return
            before = agent.enforcer
            pieces, agent.enforcer = advance(agent.device.behaviour, agent.schedule, agent.enforcer, start, end)
            # Inventory rides on the first report after a start (boot, wake, or a fresh agent).
            fresh = agent.last_end is None or (start - agent.last_end) >= self.step
            report = report_for(agent.device, agent.next_seq, start, end, with_inventory=fresh, pieces=pieces,
                                actions=agent.enforcer.pending, watched=agent.watched)
            agent.until = end
            if report is not None:
                if agent.relayed:
                    report = replace(report, relayed_wakes=agent.relayed)
                    agent.relayed = ()
                agent.enforcer = replace(agent.enforcer, pending=())
                agent.spool.append((end, report, before))
                agent.next_seq += 1
                agent.last_end = report.end

    async def _post(self, agent: _Agent, batch: list[tuple[datetime, Report, EnforcerState]]) -> bool:
        wire: dict = {"protocol_version": PROTOCOL_VERSION, "reports": [to_wire(r) for _, r, _ in batch]}
        if agent.schedule is not None:
            wire["schedule_version"] = agent.schedule.version
        reached = batch[-1][0]
        if self.clock() - reached > self.step:  # replaying the past: ask for the schedule of the day reached
            wire["schedule_from"] = reached.isoformat()
        body = json.dumps(wire)
        self.tally.sent += len(batch)
        try:
            answer = await self.http.post(REPORTS_PATH, content=body,
                                          headers={"Content-Type": "application/json",
                                                   "Authorization": agent.record.authorization})
        except httpx.HTTPError as exc:
            return self._failed(f"{self.config.controller}: {_describe(exc)}")
        if answer.status_code == 200:
            try:
                ack = from_wire(BatchAck, answer.json())
            except (ValueError, ProtocolError) as exc:
                return self._failed(f"an answer that is not a BatchAck: {exc}")
            self.tally.accepted += len(ack.accepted)
            self.tally.duplicate += len(ack.duplicate)
            if ack.rejected:  # never accepted, however often sent: dropped, like a real agent drops them
                self.tally.rejected += len(ack.rejected)
                self.tally.last_error = ack.rejected[-1].reason
            self._drop(agent, set(ack.accepted) | set(ack.duplicate) | {r.seq for r in ack.rejected})
            agent.asked = reached.astimezone(ZoneInfo(agent.device.behaviour.timezone)).date()
            if ack.schedule is not None:
                agent.schedule = ack.schedule
            self._relay(agent, ack.wake_orders)
            return True
        if answer.status_code == 422:
            rejected = _rejected(answer) or {r.seq for _, r, _ in batch}
            self.tally.rejected += len(rejected)
            self.tally.last_error = f"422 {_detail(answer)}"
            self._drop(agent, rejected)
            return True
        if answer.status_code == 401:
            agent.refused = True
        return self._failed(f"{answer.status_code} {_detail(answer)}")

    def _failed(self, message: str) -> bool:
        self.tally.errors += 1
        self.tally.last_error = message
        return False

    @staticmethod
    def _drop(agent: _Agent, seqs: set[int]) -> None:
        agent.spool = [entry for entry in agent.spool if entry[1].seq not in seqs]

    def _relay(self, relay: _Agent, orders: tuple[WakeOrder, ...]) -> None:
        """A relay's wake orders: the machine with that MAC on the relay's subnet switches on (the packet's
        delay is within a report interval here), and the relay lists the orders on its next report."""
        if not orders:
            return
        now = self.clock()
        for order in orders:
            target = self.by_mac.get(order.mac.lower())
            if target is not None and target.until is not None:
                target.enforcer = woken(target.enforcer, target.device.behaviour, max(now, target.until))
                self._enqueue(target)
        relay.relayed = (*relay.relayed, *(order.wake_id for order in orders))

    # --- frontier ---

    def _resume(self, agent: _Agent) -> None:
        assert agent.record is not None
        agent.next_seq = agent.record.next_seq
        if agent.record.schedule is not None:
            agent.schedule = from_wire(AgentSchedule, agent.record.schedule)
        if agent.record.enforcer is not None:
            agent.enforcer = EnforcerState.from_json(agent.record.enforcer)
        if agent.record.until is not None:
            until = datetime.fromisoformat(agent.record.until)
            # Back onto this run's grid (--interval may have changed): never before the frontier.
            boundary = previous_boundary(agent.device, until, self.config.interval)
            agent.until = boundary if boundary == until else boundary + self.step

    def _frontier(self, agent: _Agent) -> None:
        """Record what was acknowledged: everything before the oldest report still in the spool."""
        assert agent.record is not None
        if agent.spool:
            end, oldest, before = agent.spool[0]
            agent.record.next_seq, agent.record.until = oldest.seq, (end - self.step).isoformat()
            agent.record.enforcer = before.to_json()
        elif agent.until is not None:
            agent.record.next_seq, agent.record.until = agent.next_seq, agent.until.isoformat()
            agent.record.enforcer = agent.enforcer.to_json()
        agent.record.schedule = None if agent.schedule is None else to_wire(agent.schedule)

    # --- progress ---

    async def _progress(self) -> None:
        last, last_count = time.monotonic(), 0
        while True:
            await asyncio.sleep(self.config.progress_seconds)
            now, count = time.monotonic(), self.tally.acknowledged
            spooled = sum(len(a.spool) for a in self.agents)
            line = (f"{self.clock():%H:%M:%S} {self.tally.line()}, {(count - last_count) / (now - last):.0f}/s, "
                    f"spooled {spooled}")
            if self.tally.errors and self.tally.last_error:
                line += f" (last error: {self.tally.last_error})"
            self.echo(line)
            last, last_count = now, count
            self.save()


def _describe(exc: Exception) -> str:
    return " ".join((str(exc) or type(exc).__name__).split())[:200]


def _detail(answer: httpx.Response) -> str:
    try:
        detail = answer.json().get("detail", "")
    except (ValueError, AttributeError):
        detail = answer.text
    return " ".join(str(detail).split())[:200]


def _rejected(answer: httpx.Response) -> set[int]:
    try:
        seqs = answer.json().get("rejected", [])
    except (ValueError, AttributeError):
        return set()
    return {s for s in seqs if isinstance(s, int) and not isinstance(s, bool)}


async def simulate(config: SimulationConfig, issue_tokens: Callable[[list[str]], list[str]] | None,
                   echo: Callable[[str], None]) -> Tally:
    """Run the simulation the options describe. Ctrl-C or SIGTERM stops it cleanly, keeping its state;
    a second Ctrl-C stops it at once."""
    if not 1 <= config.batch_size <= MAX_BATCH_REPORTS:
        raise SimulationError(f"a batch holds 1 to {MAX_BATCH_REPORTS} reports")
    if config.interval < 10 or config.concurrency < 1 or config.history_days < 0:
        raise SimulationError("--interval must be at least 10 s, --concurrency at least 1, --history not negative")
    estate = resolve_estate(config, EstateState.load(config.state_file))
    names = [s.name for s in estate.sites]

    def site_tokens() -> dict[str, str]:
        if config.tokens:
            if len(config.tokens) != len(names):
                raise SimulationError(f"give one --token per site: {len(config.tokens)} tokens for {len(names)} sites")
            return dict(zip(names, config.tokens, strict=True))
        if issue_tokens is None:
            raise SimulationError("devices need enrolling: give --token (one per site), or --data-dir/--database-url "
                                  "on the controller's host so the simulator can create site tokens")
        return dict(zip(names, issue_tokens(names), strict=True))

    echo(f"simulating {sum(s.devices for s in estate.sites)} devices on {len(names)} sites "
         f"({', '.join(f'{s.name} {s.devices}' for s in estate.sites)}), seed {estate.seed}, "
         f"state in {config.state_file}")
    simulation = Simulation(config, estate, site_tokens, echo)
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        simulation.stop.set()
        loop.remove_signal_handler(signum)  # so a second one interrupts at once

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, on_signal, signum)
    try:
        return await simulation.run()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
