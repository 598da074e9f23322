"""How long a defensible energy summary takes, against the naive sum it replaces.

Builds an estate in a fresh database (SQLite by default, or --database-url), with hourly buckets as
ingest writes them: most device-hours idle or active on the agent's model, one desk in ten on a
metered outlet (so those hours also carry the agent's estimate, which accounting must ignore), and a
share of hours silent (agent off), which accounting attributes to off or sleep. Then it times:

- **caretaker**: ``energy_summary(group_by="site")``: metered-wins, RAPL correction, monitors, silence
  attributed, priced per site-hour by time-of-use band, carbon by local year;
- **peer**: ``SELECT site, SUM(joules) … GROUP BY site`` over the same buckets, the figure a tool
  without those rules would report (it double-counts metered hours and drops silent ones).

    .venv/bin/python bench/energy_summary.py                       # 1,000 devices, 10 sites, 30 days
    .venv/bin/python bench/energy_summary.py --devices 200 --days 7

With the default estate it also checks the summary against the one the code gave before it was made
fast (commit bca89bf): the digest of every row's figures must match, to the Wh, penny and gram.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert
from sqlmodel import Session, col, select

from controller import migrate
from controller.db import make_engine
from controller.energy.accounting import energy_summary
from controller.energy.tariff import set_tariff
from controller.register.models import Device, EnergyBucket, Site

START = datetime(2025, 11, 3, tzinfo=UTC)  # a Monday in term, GMT
# sha256 (first 16 hex) of energy_summary(group_by="site").to_json() on the default estate, as printed by
# the code before the fast paths (commit bca89bf, 9.3 CPU-s): the figures any later code must still give.
DIGEST_BEFORE = {(1000, 10, 30): "6f2b43e2b2451745"}
BANDS = [{"name": "day", "days": "weekdays", "start": "07:00", "end": "19:00", "pence_per_kwh": "30.2"},
         {"name": "night", "days": "all", "start": "00:00", "end": "00:00", "pence_per_kwh": "15"}]


def build(engine, devices: int, sites: int, days: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    with Session(engine) as session:
        site_ids = []
        for s in range(sites):
            site = Site(name=f"School {s:03d}")
            session.add(site)
            session.flush()
            set_tariff(session, site.id, "standard", START - timedelta(days=365), BANDS)
            site_ids.append(site.id)
        rows = [Device(site_id=site_ids[i % sites], hostname=f"PC{i:05d}", room=f"Room {i % 12}",
                       device_class=("desktop", "laptop")[i % 2]) for i in range(devices)]
        session.add_all(rows)
        session.commit()
        ids = [d.id for d in rows]
    buckets = []
    for n, device_id in enumerate(ids):
        metered = n % 10 == 0
        for h in range(days * 24):
            hour = START + timedelta(hours=h)
            local_hour, weekday = hour.hour, hour.weekday()
            if rng.random() < 0.15:
                continue  # the agent was off: silence
            awake = (weekday < 5 and 8 <= local_hour < 17) or rng.random() < 0.3
            state, watts = ("idle", 50.0) if awake else ("off", 1.0)
            buckets.append({"device_id": device_id, "hour": hour, "state": state, "method": "model",
                            "joules": watts * 3600, "seconds": 3600.0})
            if metered:
                buckets.append({"device_id": device_id, "hour": hour, "state": state, "method": "metered",
                                "joules": watts * 1.1 * 3600, "seconds": 3600.0})
    with engine.begin() as connection:
        for i in range(0, len(buckets), 20_000):
            connection.execute(insert(EnergyBucket), buckets[i:i + 20_000])
    return len(buckets)


def peer(engine, start: datetime, end: datetime) -> dict[int, float]:
    with Session(engine) as session:
        rows = session.exec(select(Device.site_id, func.sum(EnergyBucket.joules))
                            .join(Device, col(Device.id) == col(EnergyBucket.device_id))
                            .where(col(EnergyBucket.hour) >= start, col(EnergyBucket.hour) < end)
                            .group_by(Device.site_id))
        return {site_id: joules / 3.6e6 for site_id, joules in rows}


def timed(fn, repeat: int) -> tuple[float, float, object]:
    """Median wall and CPU seconds: CPU time is what to compare on a machine other jobs are using."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        began, began_cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - began)
        cpus.append(time.process_time() - began_cpu)
    return statistics.median(walls), statistics.median(cpus), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}")
        migrate.upgrade(engine)
        began = time.perf_counter()
        count = build(engine, args.devices, args.sites, args.days)
        print(f"built {args.devices} devices on {args.sites} sites, {args.days} days: {count:,} buckets "
              f"in {time.perf_counter() - began:.1f} s ({engine.dialect.name})")
        end = START + timedelta(days=args.days)
        ours_s, ours_cpu, ours = timed(lambda: _summary(engine, end), args.repeat)
        peer_s, peer_cpu, naive = timed(lambda: peer(engine, START, end), args.repeat)
        device_hours = args.devices * args.days * 24
        print(f"caretaker energy_summary: {ours_s:.3f} s wall, {ours_cpu:.3f} s CPU, median of {args.repeat} "
              f"({device_hours / ours_cpu:,.0f} device-hours per CPU second); total {ours.total.kwh} kWh, "
              f"£{ours.total.cost_gbp}, {ours.total.kgco2e} kgCO2e; methods "
              + ", ".join(f"{m} {s * 100:.1f}%" for m, s in ours.total.method_share.items()))
        figures = ours.to_json()
        for row in [*figures["rows"], figures["total"]]:  # the key's parts, added later, are not figures
            row.pop("labels", None)
        digest = hashlib.sha256(json.dumps(figures, sort_keys=True).encode()).hexdigest()[:16]
        before = DIGEST_BEFORE.get((args.devices, args.sites, args.days))
        print(f"summary digest {digest}" + ("" if before is None else
              " (the same figures as before the fast paths)" if digest == before else f" DIFFERS from {before}"))
        print(f"peer SUM(joules) GROUP BY site: {peer_s:.3f} s wall, {peer_cpu:.3f} s CPU; total "
              f"{sum(naive.values()):.3f} kWh (counts metered hours twice, drops silent ones)")
        print(f"ratio caretaker / peer: {ours_s / peer_s:.1f}x wall, {ours_cpu / peer_cpu:.1f}x CPU "
              "(the peer's work is mostly in SQLite, inside this process too)")
        engine.dispose()
        if before is not None and digest != before:
            raise SystemExit("the summary's figures changed")


def _summary(engine, end: datetime):
    with Session(engine) as session:
        return energy_summary(session, START, end, group_by="site", now=end)


if __name__ == "__main__":
    main()
