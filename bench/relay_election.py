"""One relay election at N devices: reading the candidates with the subnets kept between elections, against
reading every fresh device's NICs (the first election after a start, and every one before 2026-12-06).

    .venv/bin/python bench/relay_election.py [--devices 10000] [--database-url postgresql://…/empty_db]

Every replica elects the relays of every subnet in its wake dispatcher thread; whatever that costs in
Python holds the GIL against the ingest answers of the same process (bench/README.md, "Ingest"). Builds N
desktops on 20 sites, one NIC each (80 subnets), each with an agent whose last report is fresh, on SQLite
in a temporary directory or on the PostgreSQL database given (which must be empty). Prints wall and CPU
milliseconds of ``candidates`` without a ``NetworkMemo`` (twice) and with one (first, then twice with
nothing changed, then after a tenth of the devices had a changed inventory applied), and of ``elect``; the ratio
compares the second run of each kind.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agent.protocol import Inventory, Nic, OperatingSystem, to_wire
from controller import migrate
from controller.db import make_engine
from controller.power.election import NetworkMemo, RelayTiming, candidates, elect
from controller.register.models import Agent, Device, Site
from controller.register.models import Report as ReportRow
from controller.storage import partitions

SITES = 20
REPORT_INTERVAL = 300
TIMING = RelayTiming(timedelta(seconds=30))


def build(engine: Engine, devices: int, now: datetime) -> None:
    def inventory(n: int) -> dict:
        address = f"10.{n % SITES}.{n // 250 % 4}.{n % 250 + 1}"
        return to_wire(Inventory(hostname=f"PC{n:06d}", os=OperatingSystem("Windows", "11"),
                                 nics=(Nic("eth0", f"02:00:{n >> 24 & 255:02x}:{n >> 16 & 255:02x}:"
                                                   f"{n >> 8 & 255:02x}:{n & 255:02x}", (address,),
                                           ipv4_prefixes=(24,)),),
                                 boot_time=now - timedelta(hours=n % 200)))

    with engine.begin() as c:
        if partitions.partitioned(c):
            partitions.ensure(c, now, behind_days=1, ahead_days=0)
        c.execute(insert(Site), [{"id": s, "name": f"School {s}"} for s in range(1, SITES + 1)])
        c.execute(insert(Device), [{"id": n, "site_id": 1 + n % SITES, "hostname": f"PC{n:06d}",
                                    "device_class": "desktop", "inventory": inventory(n), "inventory_version": 1,
                                    "first_seen": now} for n in range(1, devices + 1)])
        c.execute(insert(Agent), [{"id": f"agent{n}", "device_id": n, "site_id": 1 + n % SITES, "secret_hash": "0" * 64,
                                   "enrolled_at": now, "last_seen": now, "last_seq": 1, "reports": 1}
                                  for n in range(1, devices + 1)])
        c.execute(insert(ReportRow), [{"agent_id": f"agent{n}", "seq": 1, "device_id": n, "state": "idle",
                                       "start": now - timedelta(seconds=REPORT_INTERVAL), "end": now,
                                       "cpu_percent": 3.0, "sessions": 1, "slept_seconds": 0, "received_at": now}
                                      for n in range(1, devices + 1)])


def timed(what: Callable[[], object]) -> tuple[object, float, float]:
    wall, cpu = time.perf_counter(), time.thread_time()
    found = what()
    return found, (time.perf_counter() - wall) * 1000, (time.thread_time() - cpu) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: SQLite, in a temporary file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}")
        migrate.upgrade(engine)
        now = datetime.now(UTC).replace(microsecond=0)
        build(engine, args.devices, now)
        print(f"relay election, {args.devices} devices on {SITES} sites, {engine.dialect.name}")
        memo = NetworkMemo()

        def read(memo: NetworkMemo | None) -> Callable[[], object]:
            def run() -> object:
                with Session(engine) as session:
                    return candidates(session, now, TIMING, REPORT_INTERVAL, memo)
            return run

        rows = []
        for label, memo_used in (("every device's NICs (no memo)", None), ("every device's NICs (no memo)", None),
                                 ("memo, first election", memo), ("memo, nothing changed", memo),
                                 ("memo, nothing changed", memo)):
            rows.append((label, *timed(read(memo_used))))
        with engine.begin() as c:  # a tenth of the estate sends an inventory (a day's worth: each sends daily)
            c.execute(update(Device).where(Device.id % 10 == 0).values(inventory_version=Device.inventory_version + 1))
        rows.append(("memo, a tenth re-read", *timed(read(memo))))
        found, wall, cpu = rows[-1][1:]
        board, elect_wall, elect_cpu = timed(lambda: elect(found, TIMING))
        for label, found, wall, cpu in rows:
            print(f"candidates, {label:<32} {len(found):>7} found {wall:8.1f} ms {cpu:8.1f} ms CPU")
        print(f"elect ({len(board.by_network)} subnets){'':<25} {elect_wall:8.1f} ms {elect_cpu:8.1f} ms CPU")
        full, kept = rows[1][3], rows[4][3]  # each the second of its kind: statements compiled, caches warm
        print(f"CPU of an election with nothing changed ÷ reading every NIC: {kept + elect_cpu:.1f} ÷ "
              f"{full + elect_cpu:.1f} ms = {(kept + elect_cpu) / (full + elect_cpu):.2f}")


if __name__ == "__main__":
    main()
