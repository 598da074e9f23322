"""Controller ingest: sustained reports per second and latency at 10,000 simulated devices.

Target (issue): at least 1,000 reports/s with p99 at most 100 ms, one report per request as live
agents send them (300,000 devices reporting every 5 minutes), on SQLite and on PostgreSQL, with the
load generator on the same 2-core machine; and the same server's ceiling on a no-op endpoint
(/healthz) in the same run, for comparison.

    .venv/bin/python bench/ingest.py [--devices 10000] [--seconds 60] [--backend sqlite|postgresql|both]

For each backend it starts a real `caretaker serve`, enrolls the devices with `caretaker simulate`'s
own code (timed on its own; it also sends a report for the few devices whose interval ends meanwhile: those
count as acknowledged, and the benchmark numbers theirs after them), then measures four phases:

1. first report from every device, closed loop: the controller has not seen these agents yet, so each
   request also loads the agent's credentials from the database (what a report costs whenever the
   controller's credential cache has forgotten the agent);
2. reports, closed loop with ``--concurrency`` connections for ``--seconds``: the ceiling;
3. reports, open loop at ``--rate`` per second for ``--seconds``: latency at the target load, timed
   from when each request was due, so a controller that falls behind is charged for the queue;
4. /healthz, closed loop as in 2, for half of ``--seconds``: the server's no-op ceiling.

With ``--replicas N`` (PostgreSQL) it starts N controllers on one database behind HAProxy on loopback,
configured by the caretaker_balancer role's own template (tests/ansible/balancer.py, as the replica test
runs it), enrolls through the balancer and measures the phases through it; then phases 2-4 against one of
the replicas directly, the peer in the same run (phase 1 only once: after it every agent's credentials
are cached somewhere).

Reports come from the simulator's behaviour model (from a school morning ten days ago), each device's
relabelled to run back to back from today's midnight (UTC), as live agents' reports are: of today, so none
re-opens a day already rolled up. ``--late-reports`` sends them with their own dates instead, as the runs before
2026-12-05 23:00 UTC did: every report then re-opens rolled-up days (a whole estate flushing ten-day-old
spools at once), and the rollup job works them again while the phases run. They are built before each phase
starts, so building them costs the measured phases nothing; those a phase leaves unsent go first in the next,
so a run needs (reports sent ÷ devices) × 5 minutes of today, about 100 minutes at 10,000 devices with
replicas. Requests go over a
minimal keep-alive HTTP/1.1 client on asyncio (uvloop when present): httpx's connection pool costs
about a millisecond of CPU per request at 16+ connections, which on a 2-core machine would measure
the load generator instead of the controller. CPU is reported for the controller, the generator and
(PostgreSQL) the database server, as cores used over the phase.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import psutil
import sqlalchemy

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.protocol import PROTOCOL_VERSION, to_wire  # noqa: E402
from controller.db import make_engine  # noqa: E402
from controller.simulate.estate import TIMEZONE, VirtualDevice, build_estate, is_school_day, report_for  # noqa: E402
from controller.simulate.run import (  # noqa: E402
    EstateState,
    SimulationConfig,
    issue_site_tokens,
    simulate,
)

BIN = Path(sys.executable).parent
REPORTS_PATH = "/api/v1/agent/reports"
TARGET_RATE = 1000.0
TARGET_P99_MS = 100.0
SITES_PER_10K = 20  # a trust or local authority: a few colleges and secondaries, many primaries
STEP = timedelta(minutes=5)
# Agents resend their inventory daily: 1 report in 288 carries it.
INVENTORY_EVERY = 288
SEARCH_SLOTS = 7 * 288
OPEN_LOOP_CONNECTIONS = 512


# --- A minimal HTTP/1.1 client ----------------------------------------------------------------------


class Connection:
    """One keep-alive connection; the controller (uvicorn) answers with Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        return cls(*await asyncio.open_connection(host, port))

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.index(b"content-length:") + 15
        body = await self.reader.readexactly(int(lower[at:lower.index(b"\r\n", at)]))
        return status, body

    def close(self) -> None:
        self.writer.close()


class Pool:
    def __init__(self, host: str, port: int, size: int):
        self.host, self.port, self.size = host, port, size
        self.idle: asyncio.Queue[Connection] = asyncio.Queue()
        self.opened = 0

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        reused = not (self.idle.empty() and self.opened < self.size)
        if reused:
            connection = await self.idle.get()
        else:
            self.opened += 1
            connection = await Connection.open(self.host, self.port)
        try:
            answer = await connection.exchange(request)
        except asyncio.IncompleteReadError as exc:
            connection.close()
            self.opened -= 1
            if reused and not exc.partial:  # closed while idle (keep-alive timeout): what clients retry
                return await self.exchange(request)
            raise
        except (OSError, ValueError):
            connection.close()
            self.opened -= 1
            raise
        self.idle.put_nowait(connection)
        return answer

    def close(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait().close()


# --- Measuring --------------------------------------------------------------------------------------


@dataclass
class Usage:
    """CPU seconds of the controllers (all replicas), the generator, the database server and the balancer,
    and the controllers' RSS."""

    controllers: list[psutil.Process]
    balancer: psutil.Process | None = None
    started: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)

    def _now(self) -> dict[str, float]:
        def seconds(p: psutil.Process) -> float:
            times = p.cpu_times()
            return times.user + times.system

        # Per PostgreSQL process, so connections that close during the run do not take their CPU with them.
        cpu = {"controller": sum(seconds(p) for p in self.controllers), "generator": seconds(psutil.Process()),
               "balancer": seconds(self.balancer) if self.balancer else 0.0}
        for p in psutil.process_iter(["name"]):
            if p.info["name"] == "postgres":
                with contextlib.suppress(psutil.Error):
                    cpu[f"postgres:{p.pid}"] = seconds(p)
        return cpu

    def start(self) -> None:
        self.started = time.monotonic()
        self.cpu = self._now()

    def cores(self) -> dict[str, float]:
        wall = time.monotonic() - self.started
        now = self._now()
        delta = {k: v - self.cpu.get(k, 0.0) for k, v in now.items()}
        return {"controller": delta["controller"] / wall, "generator": delta["generator"] / wall,
                "postgres": sum(v for k, v in delta.items() if k.startswith("postgres:")) / wall,
                "balancer": delta["balancer"] / wall,
                "rss_mb": sum(p.memory_info().rss for p in self.controllers) / 2**20}


@dataclass
class Phase:
    name: str
    requests: int = 0
    ok: int = 0
    errors: int = 0
    accepted: int = 0
    duplicate: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)  # perf_counter when each request was sent (or due)
    acknowledged: set[tuple[str, int]] = field(default_factory=set)  # (agent id, seq) answered as stored
    rejected: dict[tuple[str, int], str] = field(default_factory=dict)  # (agent id, seq) answered as refused: why
    usage: dict[str, float] = field(default_factory=dict)
    note: str = ""

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return math.nan
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]

    def slow_by_second(self, over_ms: float) -> dict[int, int]:
        """How many answers took longer than ``over_ms``, by the second of the phase they were sent in: slow
        answers bunched in a few seconds point at a stall (a collection, a job), spread ones at a queue."""
        if not self.sent_at:
            return {}
        began = min(self.sent_at)
        slow: dict[int, int] = defaultdict(int)
        for sent, latency in zip(self.sent_at, self.latencies_ms, strict=True):
            if latency > over_ms:
                slow[int(sent - began)] += 1
        return dict(sorted(slow.items()))

    def row(self) -> str:
        u = self.usage
        return (f"{self.name:<26}{self.requests:>9}{self.rate:>10.0f}{self.percentile(50):>9.1f}"
                f"{self.percentile(99):>9.1f}{max(self.latencies_ms, default=math.nan):>9.1f}{self.errors:>8}"
                f"{u.get('controller', 0):>8.2f}{u.get('generator', 0):>8.2f}{u.get('postgres', 0):>8.2f}"
                f"{u.get('balancer', 0):>8.2f}{u.get('rss_mb', 0):>9.0f}")


HEADER = (f"{'phase':<26}{'requests':>9}{'per s':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}"
          f"{'ctl CPU':>8}{'gen CPU':>8}{'pg CPU':>8}{'lb CPU':>8}{'ctl MB':>9}")


def _count(phase: Phase, request: bytes, status: int, body: bytes, is_report: bool) -> None:
    if status != 200:
        phase.errors += 1
        if not phase.note:
            phase.note = f"first error: {status} {body[:200]!r}"
        return
    phase.ok += 1
    if is_report:
        ack = json.loads(body)
        phase.accepted += len(ack["accepted"])
        phase.duplicate += len(ack["duplicate"])
        agent = _agent_of(request)
        phase.acknowledged.update((agent, seq) for seq in (*ack["accepted"], *ack["duplicate"]))
        phase.rejected.update(((agent, r["seq"]), r["reason"]) for r in ack["rejected"])


def _agent_of(request: bytes) -> str:
    """The agent id of a report request, from its ``Authorization: Bearer <agent id>:<secret>`` header."""
    start = request.index(b"Bearer ") + len(b"Bearer ")
    return request[start:request.index(b":", start)].decode()


async def closed_loop(port: int, requests: Iterator[bytes], concurrency: int, seconds: float | None,
                      usage: Usage, name: str, is_report: bool = True) -> Phase:
    """``concurrency`` clients each sending the next request as soon as the last is answered."""
    phase = Phase(name)
    pool = Pool("127.0.0.1", port, concurrency)
    deadline = None if seconds is None else time.monotonic() + seconds

    async def client() -> None:
        while deadline is None or time.monotonic() < deadline:
            if (request := next(requests, None)) is None:
                return
            phase.requests += 1
            await _exchange(pool, request, phase, time.perf_counter(), is_report)

    usage.start()
    began = time.monotonic()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    phase.seconds = time.monotonic() - began
    phase.usage = usage.cores()
    pool.close()
    if deadline is not None and phase.seconds < seconds * 0.95:
        phase.note = (phase.note + "; " if phase.note else "") + "ran out of prepared reports"
    return phase


async def _exchange(pool: Pool, request: bytes, phase: Phase, since: float, is_report: bool) -> None:
    """Send one request and record its latency from ``since`` (sent, or due) and its outcome."""
    try:
        status, body = await pool.exchange(request)
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        status, body = 0, str(exc).encode()
    phase.latencies_ms.append((time.perf_counter() - since) * 1000)
    phase.sent_at.append(since)
    _count(phase, request, status, body, is_report)


async def open_loop(port: int, requests: Iterator[bytes], rate: float, seconds: float, usage: Usage,
                    name: str) -> Phase:
    """Requests due at a fixed rate whatever the answers; latency counts from when each was due.

    Up to OPEN_LOOP_CONNECTIONS connections; a request due while all are busy waits for one (and the
    wait counts), as agents would queue at a controller's accept backlog.
    """
    phase = Phase(name)
    pool = Pool("127.0.0.1", port, OPEN_LOOP_CONNECTIONS)
    total = int(rate * seconds)
    pending: set[asyncio.Task] = set()

    async def one(request: bytes, due: float) -> None:
        await _exchange(pool, request, phase, due, True)

    usage.start()
    began = time.perf_counter()
    for i, request in zip(range(total), requests, strict=False):
        due = began + i / rate
        delay = due - time.perf_counter()
        if delay > 0.001:
            await asyncio.sleep(delay)
        phase.requests += 1
        task = asyncio.create_task(one(request, due))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    # Answered over the time until the last answer: a controller that falls behind stretches it.
    phase.seconds = time.perf_counter() - began
    phase.usage = usage.cores()
    pool.close()
    return phase


# --- Reports ----------------------------------------------------------------------------------------


@dataclass
class Sender:
    """One enrolled virtual agent: its credentials and where its reports have got to."""

    device: VirtualDevice
    head: bytes  # request line and headers up to Content-Length
    index: int
    until: datetime
    relabel_from: datetime | None  # where the next report's times start (see the module docstring); None: its own
    next_seq: int = 1

    def next_request(self) -> bytes:
        for _ in range(SEARCH_SLOTS):  # a device not used that day reports on the next it is
            start, end = self.until, self.until + STEP
            self.until = end
            report = report_for(self.device, self.next_seq, start, end,
                                with_inventory=(self.index + self.next_seq) % INVENTORY_EVERY == 0)
            if report is not None:
                if self.relabel_from is not None:
                    start, end = self.relabel_from, self.relabel_from + (report.end - report.start)
                    report = replace(report, start=start, end=end)
                    self.relabel_from = end
                if report.end > datetime.now(UTC):
                    raise SystemExit(f"{self.device.hostname}'s report {self.next_seq} would end after now: too little "
                                     "of today (UTC) is past for this many reports per device; run later in the day, "
                                     "with more devices or shorter phases, or with --late-reports")
                self.next_seq += 1
                body = json.dumps({"protocol_version": PROTOCOL_VERSION, "reports": [to_wire(report)]},
                                  separators=(",", ":")).encode()
                return self.head + str(len(body)).encode() + b"\r\n\r\n" + body
        raise RuntimeError(f"{self.device.hostname} stayed off for a week")


def school_morning(now: datetime) -> datetime:
    """09:00 London on a school day at least ten days ago, so a week of searching never reaches 'now'."""
    day: date = (now - timedelta(days=10)).date()
    while not is_school_day(day):
        day -= timedelta(days=1)
    return datetime.combine(day, clock_time(9, 0), tzinfo=ZoneInfo(TIMEZONE)).astimezone(UTC)


class Prepared:
    """Requests built before the phase that sends them, round-robin over the devices so one agent's reports go
    in order, far apart. What a phase leaves unsent goes first in the next: each device's reports then cover
    no more of the day than were sent, so a run fits into less of today (see ``Sender``)."""

    def __init__(self, senders: list[Sender]):
        self._senders = senders
        self._unsent: deque[bytes] = deque()
        self._next = 0

    @property
    def devices(self) -> int:
        return len(self._senders)

    def ready(self, count: int) -> Iterator[bytes]:
        """``count`` requests, built now; each is taken off when a phase sends it."""
        while len(self._unsent) < count:
            self._unsent.append(self._senders[self._next].next_request())
            self._next = (self._next + 1) % len(self._senders)
        return self._take(count)

    def _take(self, count: int) -> Iterator[bytes]:
        for _ in range(count):
            yield self._unsent.popleft()


# --- The run ----------------------------------------------------------------------------------------


@dataclass
class Controller:
    url: str
    port: int
    process: subprocess.Popen

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_controller(database_url: str, workdir: Path) -> Controller:
    port = _free_port()
    log = (workdir / f"controller-{port}.log").open("ab")
    process = subprocess.Popen([str(BIN / "caretaker"), "serve", "--database-url", database_url, "--port", str(port),
                                "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the controller exited; see {workdir / f'controller-{port}.log'}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/healthz", timeout=1) as answer:
            if answer.status == 200:
                return Controller(url, port, process)
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("the controller did not start within 60 s")


def start_balancer(controllers: list[Controller], workdir: Path) -> Controller:
    """HAProxy on loopback in front of ``controllers``, configured by the caretaker_balancer role's template
    (with its defaults: leastconn, /readyz checks every 2 s), as tests/ansible/test_replicas.py runs it."""
    from tests.ansible import balancer
    from tests.ansible.conftest import Ansible, find_ansible_bin

    found = find_ansible_bin()
    if found is None or not Path(balancer.HAPROXY).exists():
        raise SystemExit("--replicas needs Ansible (.ci/setup-ansible.sh) to render the balancer role's HAProxy "
                         "configuration, and HAProxy (.ci/setup-haproxy.sh)")
    port = _free_port()
    config = balancer.render(Ansible(found, workdir / "ansible-home"), [f"127.0.0.1:{c.port}" for c in controllers],
                             port, workdir)
    return Controller(f"http://127.0.0.1:{port}", port, balancer.start(config, port, workdir))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def database(backend: str, workdir: Path, postgres_url: str) -> Iterator[str]:
    """A fresh, empty database: SQLite in ``workdir``, or a schema of its own in ``postgres_url``'s database."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'caretaker.db'}"
        return
    base, _, name = postgres_url.rpartition("/")
    admin = sqlalchemy.create_engine(f"{base}/postgres".replace("postgresql://", "postgresql+psycopg://", 1),
                                     isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        if not c.execute(sqlalchemy.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
            c.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    schema = f"bench_{secrets.token_hex(4)}"
    engine = make_engine(postgres_url)
    with engine.begin() as c:
        c.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{postgres_url}?options={quote(f'-csearch_path={schema}')}"
    finally:
        with engine.begin() as c:
            c.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def _profile(controller: Controller, args: argparse.Namespace, name: str, seconds: float) -> subprocess.Popen | None:
    """py-spy on the controller for the length of a phase (``--profile DIR``), raw stacks into DIR/NAME.txt."""
    if args.profile is None:
        return None
    args.profile.mkdir(parents=True, exist_ok=True)
    spy = [str(BIN / "py-spy"), "record", "--pid", str(controller.process.pid), "--duration", str(int(seconds)),
           "--rate", "200", "--threads", "--gil", "--nonblocking"]
    raw = subprocess.Popen([*spy, "--format", "raw", "--output", str(args.profile / f"{name}.txt")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return raw


def _profiled(profiler: subprocess.Popen | None, say: Callable[[str], None]) -> None:
    if profiler is not None:
        profiler.wait()
        say(f"profile of the controller in that phase: {profiler.args[profiler.args.index('--output') + 1]}")


def stored_reports(database_url: str) -> dict[tuple[str, int], datetime]:
    """Every stored report's (agent id, seq), and when the controller received it."""
    engine = make_engine(database_url)
    with engine.connect() as c:
        rows = c.execute(sqlalchemy.text("SELECT agent_id, seq, received_at FROM report")).all()
    engine.dispose()
    return {(agent, seq): received for agent, seq, received in rows}


def compare_stored(stored: dict[tuple[str, int], datetime], acknowledged: set[tuple[str, int]],
                   rejected: dict[tuple[str, int], str], say: Callable[[str], None]) -> None:
    """Every acknowledged report must be stored; one stored but never acknowledged is named, with when it came
    and, if the controller answered it as rejected, why."""
    lost = acknowledged - stored.keys()
    unanswered = sorted(stored.keys() - acknowledged, key=stored.__getitem__)
    say(f"stored reports {len(stored)}, acknowledged {len(acknowledged)}: "
        + ("the same reports" if not lost and not unanswered else
           f"{len(lost)} acknowledged but NOT STORED, {len(unanswered)} stored but not acknowledged"))
    for agent, seq in unanswered[:10]:
        answered = f"; answered as rejected: {rejected[(agent, seq)]}" if (agent, seq) in rejected else ""
        say(f"  stored, not acknowledged: agent {agent} report {seq}, received {stored[(agent, seq)].isoformat()}"
            f"{answered}")


@dataclass
class Target:
    """Where a set of phases sends its requests: one controller, or the balancer in front of several."""

    name: str
    port: int
    controllers: list[Controller]
    balancer: Controller | None = None


def run_backend(backend: str, args: argparse.Namespace, say: Callable[[str], None]) -> dict:
    try:
        from uvloop import run
    except ImportError:
        run = asyncio.run
    with tempfile.TemporaryDirectory(prefix=f"caretaker-bench-{backend}-") as tmp:
        workdir = Path(tmp)
        with database(backend, workdir, args.postgres_url) as url:
            controllers: list[Controller] = []
            balancer = None
            try:
                for _ in range(max(1, args.replicas)):  # one after another: each runs the migrations first
                    controllers.append(start_controller(url, workdir))
                targets = []
                if args.replicas:
                    balancer = start_balancer(controllers, workdir)
                    targets.append(Target(f"through HAProxy, {args.replicas} replicas", balancer.port, controllers,
                                          balancer))
                targets.append(Target("one replica, no balancer" if args.replicas else "one controller",
                                      controllers[0].port, controllers[:1]))
                return run(_measure(backend, url, targets, workdir, args, say))
            finally:
                for process in ([balancer] if balancer else []) + controllers:
                    process.stop()


async def _measure(backend: str, url: str, targets: list[Target], workdir: Path, args: argparse.Namespace,
                   say: Callable[[str], None]) -> dict:
    sites = max(1, round(args.devices / 10_000 * SITES_PER_10K))
    front = f"http://127.0.0.1:{targets[0].port}"
    say(f"\n== {backend}: {args.devices} devices on {sites} sites, {targets[0].name} ({front}) ==")
    config = SimulationConfig(controller=front, state_file=workdir / "simulate.json", devices=args.devices,
                              sites=sites, seed=1, duration=0, concurrency=8, progress_seconds=3600)
    began = time.monotonic()
    await simulate(config, lambda names: issue_site_tokens(make_engine(url), names), lambda line: None)
    enroll_seconds = time.monotonic() - began
    say(f"enrollment: {args.devices} devices in {enroll_seconds:.1f} s ({args.devices / enroll_seconds:.0f}/s), "
        f"through `caretaker simulate` (httpx, 8 in flight)")

    state = EstateState.load(config.state_file)
    now = datetime.now(UTC)
    t0 = school_morning(now)
    today = None if args.late_reports else datetime.combine(now.date(), clock_time(0), tzinfo=UTC)
    host = f"Host: 127.0.0.1:{targets[0].port}\r\nContent-Type: application/json\r\n"
    senders = []
    for i, device in enumerate(build_estate(state.sites, state.seed)):
        record = state.agents[device.hostname]
        head = (f"POST {REPORTS_PATH} HTTP/1.1\r\n{host}Authorization: {record.authorization}\r\n"
                f"Content-Length: ").encode()
        senders.append(Sender(device, head, i, t0, today, record.next_seq))  # after any report `simulate` sent

    prepared = Prepared(senders)
    measured = []
    for number, target in enumerate(targets):
        # Only the first target meets every agent for the first time; after it, every replica that took
        # a report from an agent has its credentials cached, so a first-report phase would measure the cache.
        phases = await _phases(target, prepared, args, backend, say, first=number == 0)
        measured.append((target, phases))
    by_simulate = {(r.agent_id, seq) for r in state.agents.values() for seq in range(1, r.next_seq)}
    if by_simulate:
        say(f"{len(by_simulate)} reports were sent and acknowledged during enrollment (`simulate`'s live step)")
    acknowledged = by_simulate.union(*(p.acknowledged for _, phases in measured for p in phases))
    rejected = {key: why for _, phases in measured for p in phases for key, why in p.rejected.items()}
    stored = stored_reports(url)
    compare_stored(stored, acknowledged, rejected, say)
    if len(measured) > 1:
        (front_target, through), (_, direct) = measured
        say(f"{front_target.name} ÷ one replica without it: ceiling {_ceiling(through).rate:.0f} ÷ "
            f"{_ceiling(direct).rate:.0f} = {_ceiling(through).rate / _ceiling(direct).rate:.2f}; at "
            f"{args.rate:.0f}/s offered {_at_rate(through).rate:.0f}/s p99 {_at_rate(through).percentile(99):.1f} ms, "
            f"against {_at_rate(direct).rate:.0f}/s p99 {_at_rate(direct).percentile(99):.1f} ms")
    return {"backend": backend, "devices": args.devices, "enroll_seconds": round(enroll_seconds, 1),
            "stored": len(stored), "acknowledged": len(acknowledged),
            "stored_not_acknowledged": len(stored.keys() - acknowledged), "rejected": len(rejected),
            "acknowledged_not_stored": len(acknowledged - stored.keys()),
            "targets": [{"name": target.name, "target_met": _met(phases, args),
                         "phases": [{"name": p.name, "requests": p.requests, "per_second": round(p.rate, 1),
                                     "p50_ms": round(p.percentile(50), 2), "p99_ms": round(p.percentile(99), 2),
                                     "max_ms": round(max(p.latencies_ms, default=math.nan), 2), "errors": p.errors,
                                     f"over_{TARGET_P99_MS:.0f}ms_by_second": p.slow_by_second(TARGET_P99_MS),
                                     **{k: round(v, 2) for k, v in p.usage.items()}} for p in phases]}
                        for target, phases in measured]}


async def _phases(target: Target, prepared: Prepared, args: argparse.Namespace, backend: str,
                  say: Callable[[str], None], first: bool) -> list[Phase]:
    """The phases against one target, printed as a table with the ratio to its no-op ceiling."""
    say(f"\n-- {target.name} --")
    usage = Usage([psutil.Process(c.process.pid) for c in target.controllers],
                  psutil.Process(target.balancer.process.pid) if target.balancer else None)
    port = target.port
    phases = []
    if first:
        phases.append(await closed_loop(port, prepared.ready(prepared.devices), args.concurrency, None, usage,
                                        "first report per device"))
    # Enough for a ceiling well above the first phase's rate (agents with credentials cached go faster).
    budget = int(max(phases[0].rate if phases else 0.0, TARGET_RATE) * 3 * args.seconds)
    saturated = prepared.ready(budget)
    profiler = _profile(target.controllers[0], args, f"{backend}-ceiling", args.seconds) if first else None
    phases.append(await closed_loop(port, saturated, args.concurrency, args.seconds, usage,
                                    f"reports, {args.concurrency} in flight"))
    _profiled(profiler, say)
    at_rate = prepared.ready(int(args.rate * args.seconds))
    profiler = _profile(target.controllers[0], args, f"{backend}-rate", args.seconds) if first else None
    phases.append(await open_loop(port, at_rate, args.rate, args.seconds, usage,
                                  f"reports at {args.rate:.0f}/s"))
    _profiled(profiler, say)
    healthz = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    noop_seconds = max(10.0, args.seconds / 2)
    profiler = _profile(target.controllers[0], args, f"{backend}-healthz", noop_seconds) if first else None
    phases.append(await closed_loop(port, iter(lambda: healthz, None), args.concurrency, noop_seconds, usage,
                                    f"/healthz, {args.concurrency} in flight", is_report=False))
    _profiled(profiler, say)
    say(HEADER)
    for phase in phases:
        say(phase.row() + (f"   ({phase.note})" if phase.note else ""))
    ceiling, target_phase, noop = _ceiling(phases), _at_rate(phases), phases[-1]
    say(f"reports/s ÷ no-op ceiling: {ceiling.rate:.0f} ÷ {noop.rate:.0f} = {ceiling.rate / noop.rate:.2f}")
    say(f"target ≥ {TARGET_RATE:.0f} reports/s with p99 ≤ {TARGET_P99_MS:.0f} ms: "
        + ("met" if _met(phases, args) else "MISSED")
        + f" (at {args.rate:.0f}/s offered: {target_phase.rate:.0f}/s answered, p99 "
          f"{target_phase.percentile(99):.1f} ms; ceiling {ceiling.rate:.0f}/s)")
    return phases


def _ceiling(phases: list[Phase]) -> Phase:
    return phases[-3]


def _at_rate(phases: list[Phase]) -> Phase:
    return phases[-2]


def _met(phases: list[Phase], args: argparse.Namespace) -> bool:
    target = _at_rate(phases)
    return target.rate >= 0.99 * args.rate and target.percentile(99) <= TARGET_P99_MS and not target.errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each measured report phase")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="reports/s offered in the open-loop phase")
    parser.add_argument("--concurrency", type=int, default=64, help="connections in the closed-loop phases")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/caretaker_bench")
    parser.add_argument("--replicas", type=int, default=0,
                        help="also run N controllers on one PostgreSQL database behind HAProxy (the balancer role's "
                             "configuration) and measure through it first, then one of them without it")
    parser.add_argument("--late-reports", action="store_true",
                        help="send reports with their own dates, ten days ago (each re-opens rolled-up days)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--profile", type=Path,
                        help="py-spy the (first) controller in the ceiling, rate and no-op phases, into this directory")
    args = parser.parse_args()
    say = print
    say(f"caretaker ingest benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {psutil.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}; load generator on the same machine")
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    if args.replicas and backends != ("postgresql",):
        parser.error("--replicas shares one database between controllers: use it with --backend postgresql")
    results = [run_backend(backend, args, say) for backend in backends]
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
