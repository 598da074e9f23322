"""Poll 1,000 SNMP devices: Caretaker's poller against net-snmp's command-line tools, same run.

snmpsim serves one real recording (default: the APC AP8853 metered PDU) at 1,000 loopback
addresses (127.0.2.1 …), one process per ``--per-process`` endpoints. Caretaker polls them all as the
controller's round does: identify (one GET of the system group and every profile's probes), then the
profile's GETs and walks, ``--concurrency`` devices at once. net-snmp then fetches the same OIDs
from the same devices with the same concurrency (``xargs -P``): one ``snmpget`` of every OID the
poller GETs, then one ``snmpbulkwalk`` per column the poller walks. Both sides' varbind counts are
printed, so the work is seen to be equal.

    .venv/bin/python bench/snmp_poll.py                  # 1,000 devices, concurrency 64
    .venv/bin/python bench/snmp_poll.py --devices 100    # a smoke run

Needs snmpsim (.ci/setup-snmpsim.sh) and net-snmp's tools (apt-get install snmp).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import resource
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller.snmp.client import Target  # noqa: E402
from controller.snmp.collect import plan  # noqa: E402
from controller.snmp.credentials import CommunityCredential, CredentialStore, Rule, Secret  # noqa: E402
from controller.snmp.identify import choose, identification_oids  # noqa: E402
from controller.snmp.memory import parse_snmprec  # noqa: E402
from controller.snmp.poller import Poller, PollSettings  # noqa: E402
from controller.snmp.profiles import load_profiles  # noqa: E402
from controller.snmp.pysnmp_client import PysnmpClient  # noqa: E402
from tests.controller.snmp.conftest import RECORDINGS, _answers, _free_udp_port  # noqa: E402
from tests.controller.snmp.simulator import SNMPSIM, serving  # noqa: E402

COMMUNITY = "public"
REPETITIONS = PysnmpClient().max_repetitions  # rows per GETBULK, the same for both


def addresses(count: int) -> list[str]:
    return [f"127.0.{2 + i // 250}.{1 + i % 250}" for i in range(count)]


@dataclass(frozen=True)
class Measured:
    seconds: float
    ok: int  # devices polled without error (net-snmp: every command of the device succeeded)
    values: int  # values read: GET values plus walked rows
    cpu: float  # the client's CPU seconds
    snmpsim_cpu: float

    def row(self, name: str) -> str:
        return (f"{name:24}{self.seconds:9.1f}{self.ok:12d}{self.values:9d}{self.ok / self.seconds:11.1f}"
                f"{self.cpu:14.1f}{self.snmpsim_cpu:15.1f}")


def caretaker_rounds(hosts: list[str], port: int, concurrency: int, timeout: float, rounds: int,
                     simulators: list[psutil.Process]) -> list[Measured]:
    """Rounds with one client, as the controller's poll loop keeps one: the first pays pysnmp's
    set-up for each new device, the later ones are the steady state."""
    credential = CommunityCredential("bench", Secret(COMMUNITY, "env:BENCH"))
    store = CredentialStore({"bench": credential}, (Rule(ipaddress.ip_network("127.0.0.0/8"), None, ("bench",)),))
    settings = PollSettings(timeout=timeout, retries=1, concurrency=concurrency)

    async def run() -> list[Measured]:
        measured = []
        async with PysnmpClient() as client:
            for _ in range(rounds):
                counting = Counting(client)
                poller = Poller(counting, load_profiles(), store, settings=settings)
                cpu, sim_cpu, started = time.process_time(), _cpu(simulators), time.perf_counter()
                polls = await poller.poll_many([(h, port) for h in hosts])
                measured.append(Measured(time.perf_counter() - started, sum(p.ok for p in polls), counting.values,
                                         time.process_time() - cpu, _cpu(simulators) - sim_cpu))
        return measured

    return asyncio.run(run())


class Counting:
    """The real client, counting the values it returns."""

    def __init__(self, client: PysnmpClient) -> None:
        self.client, self.values = client, 0

    async def get(self, target: Target, oids):
        found = await self.client.get(target, oids)
        self.values += len(found)
        return found

    async def walk(self, target: Target, prefix: str, max_rows: int = 5000):
        rows = await self.client.walk(target, prefix, max_rows)
        self.values += len(rows)
        return rows

    async def walk_many(self, target: Target, prefixes, max_rows: int = 5000):
        columns = await self.client.walk_many(target, prefixes, max_rows)
        self.values += sum(len(rows) for rows in columns.values())
        return columns


def net_snmp_round(hosts: list[str], port: int, concurrency: int, timeout: float, gets: list[str],
                   walks: list[str], work: Path, simulators: list[psutil.Process]) -> Measured:
    """One shell job per device; its CPU is that of the reaped children (xargs, sh and the tools)."""
    script = work / "one-device.sh"
    lines = [f"snmpget -v2c -c {COMMUNITY} -t {timeout} -r 1 -On -Lo \"$1:{port}\" {' '.join(gets)}"]
    lines += [f"snmpbulkwalk -v2c -c {COMMUNITY} -t {timeout} -r 1 -On -Cr{REPETITIONS} \"$1:{port}\" {w}"
              for w in walks]
    script.write_text("set -e\n" + "\n".join(lines) + "\necho DEVICE-OK\n")
    before, sim_cpu, started = resource.getrusage(resource.RUSAGE_CHILDREN), _cpu(simulators), time.perf_counter()
    done = subprocess.run(["xargs", "-P", str(concurrency), "-n", "1", "sh", str(script)],
                          input="\n".join(hosts) + "\n", capture_output=True, text=True)
    seconds, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    out = done.stdout.splitlines()
    values = sum(1 for line in out if line.startswith(".") and "No Such" not in line)
    return Measured(seconds, out.count("DEVICE-OK"), values,
                    after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, _cpu(simulators) - sim_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--recording", default="apc_ap8853")
    parser.add_argument("--per-process", type=int, default=250, help="endpoints per snmpsim process")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per request attempt (both sides)")
    parser.add_argument("--rounds", type=int, default=2, help="caretaker rounds with one client (1: cold only)")
    args = parser.parse_args()
    if not SNMPSIM.exists() or not shutil.which("snmpget"):
        sys.exit("needs snmpsim (.ci/setup-snmpsim.sh) and net-snmp (apt-get install snmp)")
    hosts, port = addresses(args.devices), _free_udp_port()
    profiles = load_profiles()
    with ExitStack() as running:
        started = time.perf_counter()
        for first in range(0, len(hosts), args.per_process):
            group = hosts[first:first + args.per_process]
            probe = Target(group[0], CommunityCredential("bench", Secret(COMMUNITY, "env:BENCH")), port, 0.5, 0)
            running.enter_context(serving({f"{COMMUNITY}.snmprec": RECORDINGS / f"{args.recording}.snmprec"},
                                          [f"{h}:{port}" for h in group], lambda t=probe: _answers(t),
                                          startup_seconds=300))
        print(f"snmpsim: {len(hosts)} endpoints in {-(-len(hosts) // args.per_process)} process(es), "
              f"ready in {time.perf_counter() - started:.1f} s")
        simulators = psutil.Process().children(recursive=True)
        ours = caretaker_rounds(hosts, port, args.concurrency, args.timeout, args.rounds, simulators)
        # The same OIDs for net-snmp: what identification asks, and what the chosen profile GETs and walks.
        profile = next(p for p in profiles.values() if p.name == _profile_of(args.recording))
        gets, walks = plan(profile)
        gets = list(dict.fromkeys(identification_oids(profiles.values()) + gets))
        theirs = net_snmp_round(hosts, port, args.concurrency, args.timeout, gets, walks,
                                Path(running.enter_context(TemporaryDirectory())), simulators)
    print(f"recording {args.recording}, profile {profile.name}: {len(gets)} OIDs by GET, {len(walks)} columns walked")
    print(f"{args.devices} devices, {args.concurrency} at once, timeout {args.timeout:g} s, 1 retry, "
          f"{REPETITIONS} rows per GETBULK")
    print(f"{'':24}{'seconds':>9}{'devices ok':>12}{'values':>9}{'devices/s':>11}{'client CPU s':>14}"
          f"{'snmpsim CPU s':>15}")
    for n, measured in enumerate(ours, 1):
        print(measured.row(f"caretaker round {n}"))
    print(theirs.row("net-snmp (xargs -P)"))
    for n, measured in enumerate(ours, 1):
        print(f"caretaker round {n} / net-snmp: time {measured.seconds / theirs.seconds:.2f}, "
              f"client CPU {measured.cpu / theirs.cpu:.2f}")


def _cpu(processes: list[psutil.Process]) -> float:
    """User + system CPU seconds of the snmpsim processes so far."""
    return sum(sum(p.cpu_times()[:2]) for p in processes)


def _profile_of(name: str) -> str:
    """The profile the poller chooses for the recording (asked of the in-memory copy, no network)."""
    return choose(load_profiles().values(), parse_snmprec((RECORDINGS / f"{name}.snmprec").read_text())).name


if __name__ == "__main__":
    main()
