"""Does a wave of wakes hold its configured rate, and does every wake end, when a relay dies mid-wave?

Direct (the default): 10,000 magic packets at N per second per site. The real dispatcher
(``controller.power.service.WakeService``, its thread and its database) releases queued wakes onto
loopback, where a UDP listener timestamps every packet it receives and checks it byte for byte. The
peer, measured in the same run, is the naive way: a loop sending all 10,000 as fast as it can, which
is the inrush a wave exists to prevent (600 PCs booting at 07:30 at once).

    .venv/bin/python bench/wake_wave.py                      # 10,000 wakes at 500/s (about 20 s)
    .venv/bin/python bench/wake_wave.py --wakes 2000 --rate 100

It prints the achieved rate, its error against the configured rate, the busiest second, and the same
for the naive loop. The target: the achieved rate within 5 % of the configured one.

Relayed (``--relayed``): a real `caretaker serve` and six real `caretaker-agent run` relays (a primary
and a standby on each of three subnets, one site each, all on loopback), a wave of 2,000 wakes across
the three, and the first site's primary relay killed (SIGKILL) a third of the way through its share.
Each target "boots" when the listener catches its packet and reports through the real agent client, as
a woken PC's agent would, except one in fifty, which never wakes. Every wake must end ``confirmed`` or
``failed`` with a reason, none ``queued``, ``ordered`` or ``sent``, and the rate must hold: each
site's busiest second within 1.5 times its rate (the dispatcher's half-second catch-up; see
bench/README.md), rerouted wakes and a standby taking over included. The achieved rate per site is
printed too: a stall anywhere on the way (a relay or the dispatcher starved of CPU) lowers it, and
nothing makes it up, by design.

    .venv/bin/python bench/wake_wave.py --relayed            # 2,000 wakes at 40/s per site (about 1 min)
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func
from sqlmodel import Session, col, select

from agent.client import Client
from agent.credentials import Credentials
from agent.protocol import Activity, PowerState, Report, to_wire
from controller import migrate, tls
from controller.db import make_engine
from controller.power.magic import MagicSender
from controller.power.models import OPEN_STATUSES, WakeRequest, WakeStatus
from controller.power.service import WakeService
from controller.power.wake import WakeConfig, request_wakes
from controller.register import credentials
from controller.register.models import Agent, Device, DeviceMac, Site
from controller.register.models import Report as ReportRow
from controller.settings import Settings
from controller.timeutil import utcnow

BIN = Path(sys.executable).parent


def mac_of(i: int) -> str:
    return "02:" + ":".join(f"{(i >> shift) & 0xFF:02x}" for shift in (32, 24, 16, 8, 0))


class Listener:
    """Counts packets with their arrival times; a wrong packet is counted apart, never as a wake.
    ``heard`` is told of each right one (the relayed bench boots the PC it wakes)."""

    def __init__(self, expected: set[bytes], heard: Callable[[bytes], None] | None = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.settimeout(0.5)
        self.expected = expected
        self.heard = heard
        self.times: list[float] = []
        self.packets: list[tuple[float, bytes]] = []
        self.wrong = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(1024)
            except TimeoutError:
                continue
            if data in self.expected:
                moment = time.perf_counter()
                self.times.append(moment)
                self.packets.append((moment, data))
                if self.heard is not None:
                    self.heard(data)
            else:
                self.wrong += 1

    def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.times) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@dataclass(frozen=True)
class Figures:
    received: int
    seconds: float
    rate: float
    busiest_second: int


def figures(times: list[float]) -> Figures:
    if len(times) < 2:
        return Figures(len(times), 0.0, 0.0, len(times))
    span = times[-1] - times[0]
    busiest, start = 0, 0
    for end, moment in enumerate(times):  # most packets in any one-second window
        while moment - times[start] >= 1.0:
            start += 1
        busiest = max(busiest, end - start + 1)
    return Figures(len(times), span, (len(times) - 1) / span if span else float("inf"), busiest)


def paced(wakes: int, rate: float, workdir: Path) -> tuple[Figures, float, int]:
    engine = make_engine(f"sqlite:///{workdir / 'wave.db'}")
    migrate.upgrade(engine)
    macs = [mac_of(i) for i in range(wakes)]
    listener = Listener({bytes.fromhex("ff" * 6 + m.replace(":", "") * 16) for m in macs})
    nic = {"name": "eth0", "ipv4": ["127.0.0.9"], "ipv4_prefixes": [8]}
    with Session(engine) as session:
        site = Site(name="Bench Academy")
        session.add(site)
        session.flush()
        session.add_all(Device(site_id=site.id, hostname=f"PC{i:05d}", device_class="desktop",
                               inventory={"hostname": f"PC{i:05d}", "nics": [{**nic, "mac": mac}]})
                        for i, mac in enumerate(macs))
        session.commit()
    settings = Settings(database_url=str(engine.url), wake_per_second=rate, wake_port=listener.port,
                        wake_local_networks=["127.0.0.0/8"])
    service = WakeService(engine, settings)
    began = time.perf_counter()
    with Session(engine) as session:
        devices = list(session.exec(select(Device).order_by(Device.id)).all())
        request_wakes(session, devices, "bench wave", "bench", utcnow(), WakeConfig.from_settings(settings))
        session.commit()
    queued_in = time.perf_counter() - began
    service.start()
    listener.wait_for(wakes, timeout=wakes / rate * 2 + 30)
    service.stop()
    listener.close()
    engine.dispose()
    return figures(listener.times), queued_in, listener.wrong


def naive(wakes: int) -> Figures:
    macs = [mac_of(i) for i in range(wakes)]
    listener = Listener({bytes.fromhex("ff" * 6 + m.replace(":", "") * 16) for m in macs})
    sender = MagicSender()
    for mac in macs:
        sender.send(mac, "127.255.255.255", listener.port)
    listener.wait_for(wakes, timeout=5)
    sender.close()
    listener.close()
    return figures(listener.times)


# --- relayed: three subnets, six relay agents, one killed mid-wave -------------------------------------

SITES = ("Hill", "Dale", "Vale")  # one subnet each: 127.31.0.0/16, 127.32.0.0/16, 127.33.0.0/16
NEVER_WAKES = 50  # one target in this many never wakes: its wake must fail, with the reason
BOOT_SECONDS = 2.0  # from the packet to the woken PC's first report
RELAY_INTERVAL = 3  # seconds; 30 by default: short, so failover takes seconds here
CONFIRM_SECONDS = 10
ATTEMPTS = 2
SECRET = "bench-secret"


@dataclass(frozen=True)
class Target:
    site: str
    mac: str
    agent_id: str
    device_id: int
    wakes: bool


@dataclass(frozen=True)
class SiteFigures:
    site: str
    wakes: int
    first_packets: int
    rate: float
    busiest_second: int
    longest_gap: float


@dataclass(frozen=True)
class Relayed:
    statuses: dict[str, int]
    failures: dict[str, int]
    sites: list[SiteFigures]
    queued_in: float
    took: float
    rerouted: int
    repeated_packets: int
    wrong: int
    killed_at: float | None
    reports_refused: int  # woken PCs whose report the controller did not take (they stay unconfirmed)


def _targets(engine, wakes: int) -> list[Target]:
    """The register: three sites, each with its share of sleeping PCs on its subnet, and an agent each (to
    report in once woken). Written straight into the database, as the direct bench does its devices."""
    targets = []
    with Session(engine) as session:
        sites = {name: Site(name=name) for name in SITES}
        session.add_all(sites.values())
        session.flush()
        for i in range(wakes):
            name = SITES[i % len(SITES)]
            subnet = 31 + i % len(SITES)
            mac = mac_of(i)
            address = f"127.{subnet}.{10 + i // 200 % 200}.{10 + i % 200}"
            device = Device(site_id=sites[name].id, hostname=f"{name.upper()}-PC{i:04d}", device_class="desktop",
                            inventory={"hostname": f"{name.upper()}-PC{i:04d}", "nics": [
                                {"name": "eth0", "mac": mac, "ipv4": [address], "ipv4_prefixes": [16]}]})
            session.add(device)
            session.flush()
            session.add(DeviceMac(mac=mac, device_id=device.id))
            agent_id = f"bench{i:05d}"
            session.add(Agent(id=agent_id, device_id=device.id, site_id=sites[name].id,
                              secret_hash=credentials.digest(SECRET)))
            targets.append(Target(name, mac, agent_id, device.id, i % NEVER_WAKES != NEVER_WAKES - 1))
        session.commit()
    return targets


class Booter:
    """Woken PCs: each reports through the real agent client BOOT_SECONDS after its packet arrives."""

    def __init__(self, url: str, ca: Path, targets: dict[bytes, Target]):
        self._url, self._ca, self._targets = url, ca, targets
        self._pool = ThreadPoolExecutor(max_workers=8)
        self._local = threading.local()
        self._seq = itertools.count(1)
        self._due: list[tuple[float, int, Target]] = []
        self._order = itertools.count()
        self._ready = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.failures = 0

    def heard(self, packet: bytes) -> None:
        target = self._targets[packet]
        if target.wakes:
            with self._ready:
                heapq.heappush(self._due, (time.monotonic() + BOOT_SECONDS, next(self._order), target))
                self._ready.notify()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._stopping and (not self._due or self._due[0][0] > time.monotonic()):
                    self._ready.wait(timeout=self._due[0][0] - time.monotonic() if self._due else None)
                if self._stopping:
                    return
                _, _, target = heapq.heappop(self._due)
            self._pool.submit(self._report, target)

    def _report(self, target: Target) -> None:
        if not hasattr(self._local, "client"):
            self._local.client = Client(self._url, self._ca)
        end = datetime.now(UTC)
        report = Report(seq=next(self._seq), start=end - timedelta(minutes=5), end=end,
                        activity=Activity(PowerState.IDLE, 3.0))
        creds = Credentials(self._url, target.agent_id, SECRET, target.device_id, target.site)
        try:
            self._local.client.send(creds, [json.dumps(to_wire(report))])
        except Exception:
            self.failures += 1

    def close(self) -> None:
        with self._ready:
            self._stopping = True
            self._ready.notify()
        self._thread.join()
        self._pool.shutdown(wait=True)


class Controller:
    """`caretaker serve` and its relay agents, as processes."""

    def __init__(self, workdir: Path, database_url: str, rate: float, port: int):
        self.workdir, self.database_url = workdir, database_url
        self.ca, ca_key = tls.create_ca(workdir, "Bench CA")
        cert, key = tls.issue_server_certificate(self.ca, ca_key, ["127.0.0.1"], workdir)
        self.port = _free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.env = {**os.environ, "CARETAKER_DATA_DIR": str(workdir), "CARETAKER_WAKE_PER_SECOND": f"{rate:g}",
                    "CARETAKER_WAKE_PORT": str(port), "CARETAKER_WAKE_LOCAL_NETWORKS": '["198.51.100.0/24"]',
                    "CARETAKER_RELAY_REPORT_INTERVAL_SECONDS": str(RELAY_INTERVAL),
                    "CARETAKER_REPORT_INTERVAL_SECONDS": "10", "CARETAKER_RELAY_ELECTION_SECONDS": "0.5",
                    "CARETAKER_WAKE_CONFIRM_SECONDS": str(CONFIRM_SECONDS),
                    "CARETAKER_WAKE_ATTEMPTS": str(ATTEMPTS)}
        self.process = subprocess.Popen(
            [str(BIN / "caretaker"), "serve", "--database-url", database_url, "--port", str(self.port),
             "--tls-cert", str(cert), "--tls-key", str(key), "--log-level", "warning"],
            stdout=(workdir / "controller.log").open("ab"), stderr=subprocess.STDOUT, env=self.env)
        self.agents: dict[str, subprocess.Popen] = {}
        deadline = time.monotonic() + 60
        while not self._healthy():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"controller did not start: {(workdir / 'controller.log').read_text()[-2000:]}")
            time.sleep(0.2)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", verify=str(self.ca), timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def relay(self, name: str, site: str, subnet: int, host: int, up_days: int) -> None:
        token = subprocess.run([str(BIN / "caretaker"), "token", "create", "--site", site, "--uses", "1",
                                "--database-url", self.database_url], capture_output=True, text=True,
                               env=self.env, check=True).stdout.strip()
        state = self.workdir / name
        state.mkdir()
        (state / "overlay.json").write_text(json.dumps({
            "hostname": name, "machine_id": f"machine-{name}", "device_class": "desktop",
            "smbios": {"serial": f"SN-{name}", "uuid": f"uuid-{name}"},
            "boot_time": (datetime.now(UTC) - timedelta(days=up_days)).isoformat(),
            "nics": [{"name": "eth0", "mac": f"02:ee:00:00:{subnet:02x}:{host:02x}", "ipv4": [f"127.{subnet}.0.{host}"],
                      "ipv4_prefixes": [16]}]}))
        self.agents[name] = subprocess.Popen(
            [str(BIN / "caretaker-agent"), "run", "--controller", self.url, "--token", token, "--ca-file",
             str(self.ca), "--state-dir", str(state), "--interval", "1", "--inventory-overlay",
             str(state / "overlay.json"), "--session-address", str(state / "session.sock")],
            stdout=(state / "agent.log").open("ab"), stderr=subprocess.STDOUT)

    def stop(self) -> None:
        for process in [*self.agents.values(), self.process]:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=20)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _relaying(engine, names: list[str]) -> bool:
    """Every one of these agents is reporting on the relay interval: the controller made it a relay."""
    with Session(engine) as session:
        rows = session.exec(select(Device.hostname, ReportRow.start, ReportRow.end)
                            .join(Agent, col(Agent.device_id) == Device.id)
                            .join(ReportRow, (col(ReportRow.agent_id) == Agent.id)
                                  & (col(ReportRow.seq) == Agent.last_seq))
                            .where(col(Device.hostname).in_(names))).all()
    return len(rows) == len(names) and all(0.75 * RELAY_INTERVAL <= (end - start).total_seconds() <= RELAY_INTERVAL + 1
                                           for _, start, end in rows)


def relayed(wakes: int, rate: float, workdir: Path) -> Relayed:
    database_url = f"sqlite:///{workdir / 'wave.db'}"
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    targets = _targets(engine, wakes)
    by_packet = {bytes.fromhex("ff" * 6 + t.mac.replace(":", "") * 16): t for t in targets}
    booter: Booter | None = None
    listener = Listener(set(by_packet), heard=lambda packet: booter.heard(packet) if booter else None)
    controller = Controller(workdir, database_url, rate, listener.port)
    try:
        relays = []
        for i, site in enumerate(SITES):
            for role, host, up_days in (("PRIMARY", 2, 10), ("STANDBY", 3, 1)):
                name = f"{site.upper()}-RELAY-{role}"
                controller.relay(name, site, 31 + i, host, up_days)
                relays.append(name)
        deadline = time.monotonic() + 90
        while not _relaying(engine, relays):
            if time.monotonic() > deadline:
                raise RuntimeError("the relays never took to the relay interval; see the agents' logs")
            time.sleep(0.2)
        booter = Booter(controller.url, controller.ca, by_packet)
        began = time.perf_counter()
        with Session(engine) as session:
            devices = list(session.exec(select(Device).where(col(Device.id).in_([t.device_id for t in targets]))
                                        .order_by(Device.id)).all())
            request_wakes(session, devices, "bench wave", "bench", utcnow(),
                          WakeConfig(per_second=rate, rewake_seconds=0))
            session.commit()
        queued_in = time.perf_counter() - began
        killed_at = _kill_mid_wave(controller, listener, by_packet, wakes // len(SITES) // 3)
        _wait_until_settled(engine, timeout=wakes / rate + CONFIRM_SECONDS * (ATTEMPTS + 1) + 120)
        took = time.perf_counter() - began
        with Session(engine) as session:
            wake_rows = session.exec(select(WakeRequest)).all()
    finally:
        controller.stop()
        listener.close()
        if booter is not None:
            booter.close()
        engine.dispose()
    packets = Counter(data for _, data in listener.packets)
    return Relayed(
        statuses=dict(Counter(w.status for w in wake_rows)),
        failures=dict(Counter((w.failure or "(no reason)")[:90] for w in wake_rows if w.status == WakeStatus.FAILED)),
        sites=[_site_figures(site, listener.packets, by_packet, rate) for site in SITES],
        queued_in=queued_in, took=took, rerouted=sum(1 for w in wake_rows if w.reroutes),
        repeated_packets=sum(n - 1 for n in packets.values()), wrong=listener.wrong,
        killed_at=killed_at - began if killed_at is not None else None, reports_refused=booter.failures)


def _kill_mid_wave(controller: Controller, listener: Listener, by_packet: dict[bytes, Target],
                   after: int) -> float | None:
    """SIGKILL the first site's primary relay once ``after`` of that site's packets have arrived."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if sum(1 for _, data in list(listener.packets) if by_packet[data].site == SITES[0]) >= after:
            controller.agents[f"{SITES[0].upper()}-RELAY-PRIMARY"].send_signal(signal.SIGKILL)
            return time.perf_counter()
        time.sleep(0.01)
    return None


def _wait_until_settled(engine, timeout: float) -> None:
    """Until no wake is queued, ordered or sent (every one confirmed or failed), or ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        with Session(engine) as session:
            open_left = session.exec(select(func.count()).select_from(WakeRequest)
                                     .where(col(WakeRequest.status).in_(list(OPEN_STATUSES)))).one()
        if not open_left or time.monotonic() > deadline:
            return
        time.sleep(0.5)


def _site_figures(site: str, packets: list[tuple[float, bytes]], by_packet: dict[bytes, Target],
                  rate: float) -> SiteFigures:
    mine = [(t, data) for t, data in packets if by_packet[data].site == site]
    first: dict[bytes, float] = {}
    for moment, data in mine:
        first.setdefault(data, moment)
    times = sorted(first.values())  # each PC's first packet: the wave itself, retries left out
    gaps = [b - a for a, b in itertools.pairwise(times)]
    paced = figures(sorted(t for t, _ in mine))  # every packet, retries included: what the segment saw
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return SiteFigures(site, sum(1 for t in by_packet.values() if t.site == site), len(times),
                       (len(times) - 1) / span if span else 0.0, paced.busiest_second, max(gaps, default=0.0))


def print_relayed(result: Relayed, wakes: int, rate: float, peer: Figures) -> None:
    left = sum(n for status, n in result.statuses.items() if status in OPEN_STATUSES)
    killed = (f"{SITES[0]}'s primary relay killed {result.killed_at:.1f} s into the wave"
              if result.killed_at is not None else "the relay was never killed")
    print(f"wakes: {wakes} across {len(SITES)} sites (one subnet each, a primary and a standby relay agent each), "
          f"configured rate {rate:g}/s per site; {killed}")
    print(f"queueing the wave: {result.queued_in:.2f} s; every wake settled after {result.took:.1f} s")
    print("statuses: " + ", ".join(f"{status} {n}" for status, n in sorted(result.statuses.items())))
    for reason, n in sorted(result.failures.items()):
        print(f"  failed x{n}: {reason}")
    print(f"rerouted wakes: {result.rerouted}; packets received more than once: {result.repeated_packets}; "
          f"wrong packets: {result.wrong}; woken PCs' reports that failed to arrive: {result.reports_refused}")
    for site in result.sites:
        print(f"{site.site}: {site.first_packets}/{site.wakes} PCs sent a packet, {site.rate:.1f}/s (first "
              f"packets, first to last), busiest second {site.busiest_second} (every packet), longest gap between "
              f"first packets {site.longest_gap:.2f} s")
    busiest = max(s.busiest_second for s in result.sites)
    print(f"naive loop:  {peer.received} packets in {peer.seconds:.3f} s, busiest second {peer.busiest_second}; "
          f"naive / paced busiest second: {peer.busiest_second / max(busiest, 1):.1f}x")
    held = all(s.busiest_second <= 1.5 * rate for s in result.sites)
    failed_with_reason = all(reason != "(no reason)" for reason in result.failures)
    print("target (all settled, every failure with its reason, the rate held: busiest second within 1.5x the rate "
          "at every site):", "met" if not left and failed_with_reason and held and result.wrong == 0 else "NOT met")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--relayed", action="store_true", help="through relay agents, one killed mid-wave")
    parser.add_argument("--wakes", type=int, help="default 10,000 (direct) or 2,000 (relayed)")
    parser.add_argument("--rate", type=float, help="configured wakes per second per site: default 500 (direct) "
                                                   "or 40 (relayed)")
    args = parser.parse_args()
    if args.relayed:
        wakes, rate = args.wakes or 2000, args.rate or 40.0
        with tempfile.TemporaryDirectory() as workdir:
            result = relayed(wakes, rate, Path(workdir))
        print_relayed(result, wakes, rate, naive(wakes))
        return
    args.wakes, args.rate = args.wakes or 10_000, args.rate or 500.0
    with tempfile.TemporaryDirectory() as workdir:
        wave, queued_in, wrong = paced(args.wakes, args.rate, Path(workdir))
    peer = naive(args.wakes)
    error = (wave.rate - args.rate) / args.rate * 100
    print(f"wakes: {args.wakes}, configured rate: {args.rate:g}/s per site (one site)")
    print(f"queueing the wave (request_wakes, one transaction): {queued_in:.2f} s")
    print(f"paced wave:  received {wave.received}/{args.wakes} in {wave.seconds:.2f} s = {wave.rate:.1f}/s "
          f"({error:+.2f} % of configured), busiest second {wave.busiest_second} packets, wrong packets {wrong}")
    print(f"naive loop:  received {peer.received}/{args.wakes} in {peer.seconds:.3f} s = {peer.rate:.0f}/s, "
          f"busiest second {peer.busiest_second} packets")
    print(f"naive / paced rate: {peer.rate / wave.rate:.0f}x; busiest second: "
          f"{peer.busiest_second / max(wave.busiest_second, 1):.1f}x")
    print("target (within 5 %):", "met" if abs(error) <= 5 and wave.received == args.wakes else "NOT met")


if __name__ == "__main__":
    main()
