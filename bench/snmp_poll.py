"""Poll 1,000 SNMP devices of many kinds: Caretaker's poller against net-snmp's command-line tools, same run.

snmpsim serves the real recordings in tests/fixtures/snmp (printers, UPSes, PDUs, PoE switches,
access points: all 57 by default) at 1,000 loopback addresses (127.0.2.1 …), device i playing
recording i mod 57, ``--per-process`` endpoints to a snmpsim process. snmpsim picks the recording by
community, so each address is asked with its recording's name, as a school's kit would be asked
with its site's community.

Caretaker polls them all as the controller's round does: the first round identifies every device
(one GETNEXT of the system group and every profile's probes, and the columns some need walked) and
reads its profile (its GETs riding in the first GETBULK of its walks); later rounds, with the same
client and the poller's memory of what each address is, read a known device's system group, GETs
and tables together, asking each table for the rows it had last time. net-snmp's tools then fetch
the same OIDs from the same devices with the same concurrency (``xargs -P``): one ``snmpgetnext``
for identification, one ``snmpget`` of what the profile GETs, one ``snmpbulkwalk`` per column it
walks; that is the first round's work, so it is compared with every round. Both sides' value counts
are printed, so the work is seen to be alike.

    .venv/bin/python bench/snmp_poll.py                  # 1,000 devices, concurrency 64
    .venv/bin/python bench/snmp_poll.py --devices 100    # a smoke run

Needs snmpsim (.ci/setup-snmpsim.sh) and net-snmp's tools (apt-get install snmp).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shlex
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
from controller.snmp.identify import Identifications, questions  # noqa: E402
from controller.snmp.memory import MemoryAgent, MemoryClient, parse_snmprec  # noqa: E402
from controller.snmp.poller import Poller, PollSettings  # noqa: E402
from controller.snmp.profiles import load_profiles  # noqa: E402
from controller.snmp.pysnmp_client import PysnmpClient  # noqa: E402
from tests.controller.snmp.conftest import NAMES, RECORDINGS, _answers, _free_udp_port  # noqa: E402
from tests.controller.snmp.simulator import SNMPSIM, serving  # noqa: E402

REPETITIONS = PysnmpClient().max_repetitions  # rows per GETBULK, the same for both


def addresses(count: int) -> list[str]:
    return [f"127.0.{2 + i // 250}.{1 + i % 250}" for i in range(count)]


@dataclass(frozen=True)
class Measured:
    seconds: float
    ok: int  # devices polled without error (net-snmp: every command of the device succeeded)
    values: int  # values read: GET values, GETNEXT answers and walked rows
    cpu: float  # the client's CPU seconds
    snmpsim_cpu: float

    def row(self, name: str) -> str:
        return (f"{name:28}{self.seconds:9.1f}{self.ok:12d}{self.values:9d}{self.ok / self.seconds:11.1f}"
                f"{self.cpu:14.1f}{self.snmpsim_cpu:15.1f}")


def credentials(devices: dict[str, str]) -> CredentialStore:
    """Each address's recording name as its community (a reference the bench never needs to resolve)."""
    names = sorted(set(devices.values()))
    return CredentialStore({n: CommunityCredential(n, Secret(n, f"env:BENCH_{i}")) for i, n in enumerate(names)},
                           tuple(Rule(None, address, (name,)) for address, name in devices.items()))


def caretaker_rounds(devices: dict[str, str], port: int, concurrency: int, timeout: float, rounds: int,
                     simulators: list[psutil.Process]) -> list[Measured]:
    """Rounds with one client and one memory of what each address is, as the controller's poll loop
    keeps them: the first identifies every device, the later ones are the steady state."""
    store = credentials(devices)
    settings = PollSettings(timeout=timeout, retries=1, concurrency=concurrency)
    identifications = Identifications()

    async def run() -> list[Measured]:
        measured = []
        async with PysnmpClient() as client:
            for _ in range(rounds):
                counting = Counting(client)
                poller = Poller(counting, load_profiles(), store, settings=settings, identifications=identifications)
                cpu, sim_cpu, started = time.process_time(), _cpu(simulators), time.perf_counter()
                polls = await poller.poll_many([(h, port) for h in devices])
                measured.append(Measured(time.perf_counter() - started, sum(p.ok for p in polls), counting.values,
                                         time.process_time() - cpu, _cpu(simulators) - sim_cpu))
                failed = [p for p in polls if not p.ok]
                if failed:
                    print(f"  {len(failed)} failed, e.g. {failed[0].address}: {failed[0].error}", file=sys.stderr)
        return measured

    return asyncio.run(run())


class Counting:
    """A client, counting the values it returns."""

    def __init__(self, client) -> None:
        self.client, self.values = client, 0

    async def get(self, target: Target, oids):
        found = await self.client.get(target, oids)
        self.values += len(found)
        return found

    async def next(self, target: Target, oids):
        found = await self.client.next(target, oids)
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

    async def get_and_walk(self, target: Target, oids, prefixes):
        found, columns = await self.client.get_and_walk(target, oids, prefixes)
        self.values += len(found) + sum(len(rows) for rows in columns.values())
        return found, columns


def first_round_requests(name: str) -> list[tuple[str, list[str]]]:
    """What the poller asks one device playing ``name`` in its first round: (operation, OIDs), read
    from a poll of the recording in memory, so net-snmp is given the same questions."""
    agent = MemoryAgent(parse_snmprec((RECORDINGS / f"{name}.snmprec").read_text()), frozenset({name}))
    client = MemoryClient({("bench", 161): agent})
    asyncio.run(Poller(client, load_profiles(), credentials({"bench": name})).poll("bench"))
    return [(r.operation, list(r.oids)) for r in client.requests]


def net_snmp_round(devices: dict[str, str], port: int, concurrency: int, timeout: float, work: Path,
                   simulators: list[psutil.Process]) -> Measured:
    """One shell job per device running its recording's script; its CPU is that of the reaped
    children (xargs, sh and the tools)."""
    common = f"-v2c -t {timeout} -r 1 -On -Le"
    for name in sorted(set(devices.values())):
        lines = []
        for operation, asked in first_round_requests(name):
            tool = {"get": "snmpget", "next": "snmpgetnext", "walk": f"snmpbulkwalk -Cr{REPETITIONS}"}[operation]
            lines.append(f"{tool} {common} -c {shlex.quote(name)} \"$1:{port}\" {' '.join(asked)}")
        (work / f"{name}.sh").write_text("set -e\n" + "\n".join(lines) + "\necho DEVICE-OK\n")
    jobs = "\n".join(f"{address} {work / name}.sh" for address, name in devices.items()) + "\n"
    before, sim_cpu, started = resource.getrusage(resource.RUSAGE_CHILDREN), _cpu(simulators), time.perf_counter()
    done = subprocess.run(["xargs", "-P", str(concurrency), "-L", "1", "sh", "-c", 'sh "$1" "$0"'],
                          input=jobs, capture_output=True, text=True)
    seconds, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    out = done.stdout.splitlines()
    values = sum(1 for line in out if line.startswith(".") and "No Such" not in line and "No more" not in line)
    return Measured(seconds, out.count("DEVICE-OK"), values,
                    after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, _cpu(simulators) - sim_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--recordings", nargs="*", default=NAMES, help="the mix (default: every recording)")
    parser.add_argument("--per-process", type=int, default=250, help="endpoints per snmpsim process")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per request attempt (both sides)")
    parser.add_argument("--rounds", type=int, default=3, help="caretaker rounds with one client (1: the first only)")
    args = parser.parse_args()
    if not SNMPSIM.exists() or not shutil.which("snmpget"):
        sys.exit("needs snmpsim (.ci/setup-snmpsim.sh) and net-snmp (apt-get install snmp)")
    hosts, port = addresses(args.devices), _free_udp_port()
    devices = {h: args.recordings[i % len(args.recordings)] for i, h in enumerate(hosts)}
    files = {f"{n}.snmprec": RECORDINGS / f"{n}.snmprec" for n in args.recordings}
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with ExitStack() as running:
        started = time.perf_counter()
        for first in range(0, len(hosts), args.per_process):
            group = hosts[first:first + args.per_process]
            name = devices[group[0]]
            probe = Target(group[0], CommunityCredential(name, Secret(name, "env:BENCH")), port, 0.5, 0)
            running.enter_context(serving(files, [f"{h}:{port}" for h in group], lambda t=probe: _answers(t),
                                          startup_seconds=300))
        print(f"snmpsim: {len(hosts)} endpoints in {-(-len(hosts) // args.per_process)} process(es), "
              f"{len(args.recordings)} recordings, ready in {time.perf_counter() - started:.1f} s")
        simulators = psutil.Process().children(recursive=True)
        ours = caretaker_rounds(devices, port, args.concurrency, args.timeout, args.rounds, simulators)
        theirs = net_snmp_round(devices, port, args.concurrency, args.timeout,
                                Path(running.enter_context(TemporaryDirectory())), simulators)
    profiles = load_profiles()
    print(f"{args.devices} devices, {args.concurrency} at once, timeout {args.timeout:g} s, 1 retry, "
          f"{REPETITIONS} rows per GETBULK; identification probes: {len(questions(profiles.values()).nexts)} by "
          f"GETNEXT; profile columns walked per device: "
          f"{sum(len(plan(p)[1]) for p in profiles.values()) / len(profiles):.0f} on average over the profiles")
    print(f"{'':28}{'seconds':>9}{'devices ok':>12}{'values':>9}{'devices/s':>11}{'client CPU s':>14}"
          f"{'snmpsim CPU s':>15}")
    for n, measured in enumerate(ours, 1):
        print(measured.row(f"caretaker round {n}"))
    print(theirs.row("net-snmp (xargs -P)"))
    for n, measured in enumerate(ours, 1):
        print(f"caretaker round {n} / net-snmp: time {measured.seconds / theirs.seconds:.2f}, "
              f"client CPU {measured.cpu / theirs.cpu:.2f}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _cpu(processes: list[psutil.Process]) -> float:
    """User + system CPU seconds of the snmpsim processes so far."""
    return sum(sum(p.cpu_times()[:2]) for p in processes)


if __name__ == "__main__":
    main()
