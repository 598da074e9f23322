"""A trust's year from the daily rollup: the energy summary and the audit figures by site, against a plain sum.

Target (issue 17): 10,000 devices × 365 days, energy summary and the audit pack's figures for the year
by site in at most 10 s on PostgreSQL and on SQLite, against a plain SQL sum of the same rollup rows
in the same run; extrapolated to 100,000 devices with the growth measured between two sizes.

The estate is written straight into a fresh database, as the rollup job leaves it (controller.energy.
rolling): ``--sites`` schools, half on a day/night tariff (so a weekday is two rows per state: the day
band's hours and the rest) and half on a flat one; desktops on the agent's model and one laptop in five
on its battery, each device-day its active and idle hours, its evening idle and its silent night; the
rollup's ``through`` at the end of the year. The last ``--hourly-days`` days also get their hourly
buckets (what the rollup was rolled from), so the tables hold what a controller holds.

Timed, each the median of ``--repeat``:

- **summary**: ``energy_summary(by="site")`` for the year: kWh, £ (each band at its rate) and kgCO2e;
- **audit figures**: ``energy_totals(by=("site", "method"))``: the audit pack's kWh, £, kgCO2e and
  method shares per site (its waste and kept-on split is by policy part, an hour-of-day question that
  reads hours: not timed here);
- **peer**: ``SELECT site_id, SUM(joules), SUM(seconds) … GROUP BY site_id`` over the rollup rows the
  summary reads (the year is twelve whole months: ``energy_month``): what a plain sum of them costs
  (no pricing, no calibration, no attributed watts).

    .venv/bin/python bench/trust_year.py                                   # 10,000 devices, SQLite
    .venv/bin/python bench/trust_year.py --database-url postgresql://postgres@127.0.0.1:5432/bench
    .venv/bin/python bench/trust_year.py --devices 1000 --repeat 1         # a smoke run

``--database-url`` must name an empty database (the script makes the schema and leaves the rows).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, text
from sqlmodel import Session, col, select

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from controller import migrate  # noqa: E402
from controller.db import make_engine  # noqa: E402
from controller.energy.accounting import Pricer, energy_summary, energy_totals  # noqa: E402
from controller.energy.models import EnergyDay, EnergyMonth, RollupState  # noqa: E402
from controller.energy.rolled import STATE  # noqa: E402
from controller.energy.rolling import pricing_estate, roll_months  # noqa: E402
from controller.energy.rollup import DayPrices, masks  # noqa: E402
from controller.energy.tariff import set_tariff  # noqa: E402
from controller.register.models import Device, EnergyBucket, Site  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=UTC)
DAYS = 365
DAY_NIGHT = [{"name": "day", "days": "weekdays", "start": "07:00", "end": "19:00", "pence_per_kwh": "30.2"},
             {"name": "night", "days": "all", "start": "00:00", "end": "00:00", "pence_per_kwh": "15"}]
FLAT = [{"name": "flat", "days": "all", "start": "00:00", "end": "00:00", "pence_per_kwh": "24.5"}]
COLUMNS = ("device_id", "day", "hours", "state", "method", "kind", "joules", "seconds")


def sites_and_devices(engine, devices: int, sites: int) -> list[tuple[int, int, str]]:
    """(device id, site id, method) for each device."""
    with Session(engine) as session:
        ids = []
        for s in range(sites):
            site = Site(name=f"School {s:03d}", trust="County Council")
            session.add(site)
            session.flush()
            set_tariff(session, site.id, "standard", START - timedelta(days=400), DAY_NIGHT if s % 2 else FLAT)
            ids.append(site.id)
        rows = [Device(site_id=ids[i % sites], hostname=f"PC{i:06d}", room=f"Room {i % 12}",
                       device_class="laptop" if i % 5 == 0 else "desktop") for i in range(devices)]
        session.add_all(rows)
        session.commit()
        return [(d.id, d.site_id, "battery" if d.device_class == "laptop" else "model") for d in rows]


def day_rows(device_id: int, method: str, day: date, day_masks: list[int], rng: random.Random):
    """One device-day's rollup rows: each mask's hours split into active, idle and silent off time."""
    weekday = day.weekday() < 5
    watts = 38.0 + device_id % 17 if method == "model" else 9.0 + device_id % 5
    for mask in day_masks:
        hours = bin(mask).count("1")
        school = mask >> 10 & 1  # the mask holding 10:00 UTC: the school day's hours
        if weekday and school and rng.random() > 0.05:
            active = 3600.0 * min(hours, 5) * rng.uniform(0.5, 0.9)
            idle = 3600.0 * min(hours, 7) - active
        elif weekday and rng.random() < 0.3:
            active, idle = 0.0, 3600.0 * rng.uniform(0.5, 2.0)
        else:
            active = idle = 0.0
        off = 3600.0 * hours - active - idle
        if active:
            yield (device_id, day, mask, "active", method, "reported", active * watts * 1.3, active)
        if idle:
            yield (device_id, day, mask, "idle", method, "reported", idle * watts, idle)
        if off > 1:
            yield (device_id, day, mask, "off", "attributed", "silent", 0.0, off)


def hour_rows(device_id: int, method: str, day: date, rng: random.Random):
    watts = 38.0 + device_id % 17 if method == "model" else 9.0 + device_id % 5
    base = datetime.combine(day, datetime.min.time(), UTC)
    for h in range(24):
        if day.weekday() < 5 and 8 <= h < 16 and rng.random() > 0.05:
            yield (device_id, base + timedelta(hours=h), "idle", method, 3600 * watts, 3600.0)
        elif day.weekday() < 5 and h == 16 and rng.random() < 0.3:
            yield (device_id, base + timedelta(hours=h), "idle", method, 1800 * watts, 1800.0)


def build(engine, devices: int, sites: int, hourly_days: int, seed: int = 11) -> tuple[int, int]:
    rng = random.Random(seed)
    members = sites_and_devices(engine, devices, sites)
    with Session(engine) as session:
        estate = pricing_estate(session)
        pricer = Pricer(estate)
        prices = DayPrices(estate, lambda s, h: (pricer.rate(s, h), pricer.factor(s, h).year))
        site_masks = {(site_id, day): masks(prices.signature(site_id, day)) for site_id in estate.sites
                      for day in (START.date() + timedelta(days=i) for i in range(DAYS))}
    days = [START.date() + timedelta(days=i) for i in range(DAYS)]
    rolled = hourly = 0
    with engine.begin() as connection:
        batch = []
        for device_id, site_id, method in members:
            for day in days:
                batch.extend(day_rows(device_id, method, day, site_masks[site_id, day], rng))
            if len(batch) > 200_000:
                rolled += _write(connection, EnergyDay, COLUMNS, batch)
                batch = []
        rolled += _write(connection, EnergyDay, COLUMNS, batch)
        batch = []
        for device_id, _site_id, method in members:
            for day in days[-hourly_days:] if hourly_days else ():
                batch.extend(hour_rows(device_id, method, day, rng))
            if len(batch) > 200_000:
                hourly += _write(connection, EnergyBucket, ("device_id", "hour", "state", "method", "joules",
                                                            "seconds"), batch)
                batch = []
        hourly += _write(connection, EnergyBucket, ("device_id", "hour", "state", "method", "joules", "seconds"),
                         batch)
        connection.execute(insert(RollupState), [{"name": STATE, "through": days[-1] + timedelta(days=1),
                                                  "updated_at": datetime.now(UTC)}])
    with Session(engine) as session:  # the months, as the rollup job sums them from the days
        for i in range(0, len(members), 500):
            rolled += roll_months(session, {d: s for d, s, _ in members[i:i + 500]}, days[0],
                                  days[-1] + timedelta(days=1), prices)
            session.commit()
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    return rolled, hourly


def _write(connection, model, columns: tuple[str, ...], rows: list[tuple]) -> int:
    if not rows:
        return 0
    if connection.dialect.name == "postgresql":
        raw = connection.connection.dbapi_connection
        with raw.cursor() as cursor, cursor.copy(
                f"COPY {model.__tablename__} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        connection.execute(insert(model), [dict(zip(columns, row, strict=True)) for row in rows])
    return len(rows)


def peer(engine) -> dict[int, tuple[float, float]]:
    """The rollup rows the summary reads (the year's whole months), summed by site in SQL."""
    with Session(engine) as session:
        rows = session.exec(select(Device.site_id, func.sum(EnergyMonth.joules), func.sum(EnergyMonth.seconds))
                            .join(Device, col(Device.id) == col(EnergyMonth.device_id))
                            .group_by(Device.site_id)).all()
    return {site_id: (joules, seconds) for site_id, joules, seconds in rows}


def timed(fn, repeat: int):
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        began, began_cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - began)
        cpus.append(time.process_time() - began_cpu)
    return statistics.median(walls), statistics.median(cpus), result


def run(url: str, devices: int, sites: int, hourly_days: int, repeat: int, reuse: bool = False) -> dict[str, float]:
    engine = make_engine(url)
    migrate.upgrade(engine)
    began = time.perf_counter()
    if reuse:
        with Session(engine) as session:
            rolled = session.exec(select(func.count()).select_from(EnergyMonth)).one() + session.exec(
                select(func.count()).select_from(EnergyDay)).one()
            hourly = session.exec(select(func.count()).select_from(EnergyBucket)).one()
        print(f"  reusing the estate built before: {rolled:,} rollup rows, {hourly:,} hourly buckets")
    else:
        rolled, hourly = build(engine, devices, sites, hourly_days)
        print(f"  built {devices:,} devices on {sites} sites: {rolled:,} rollup rows (days and months), "
              f"{hourly:,} hourly buckets in {time.perf_counter() - began:.0f} s ({engine.dialect.name})")
    end = START + timedelta(days=DAYS)
    now = end + timedelta(hours=1)

    def summary():
        with Session(engine) as session:
            return energy_summary(session, START, end, group_by="site", now=now)

    def audit():
        with Session(engine) as session:
            return energy_totals(session, START, end, ("site", "method"), now=now)

    s_wall, s_cpu, found = timed(summary, repeat)
    a_wall, a_cpu, _ = timed(audit, repeat)
    p_wall, p_cpu, plain = timed(lambda: peer(engine), repeat)
    load = os.getloadavg()[0]
    total = found.total
    print(f"  summary by site: {s_wall:.2f} s wall, {s_cpu:.2f} s CPU; {total.kwh:,} kWh, £{total.cost_gbp:,}, "
          f"{total.kgco2e:,} kgCO2e")
    print(f"  audit figures by site and method: {a_wall:.2f} s wall, {a_cpu:.2f} s CPU")
    print(f"  peer SUM over the rollup rows by site: {p_wall:.2f} s wall, {p_cpu:.2f} s CPU; "
          f"{float(sum(j for j, _ in plain.values())) / 3.6e6:,.3f} kWh reported (no attributed watts, no monitors)")
    print(f"  ratio summary / peer: {s_wall / p_wall:.1f}x wall; load average {load:.2f}")
    engine.dispose()
    return {"summary": s_wall, "audit": a_wall, "peer": p_wall, "rows": rolled}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--sites", type=int, default=40)
    parser.add_argument("--hourly-days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", help="an empty database (default: SQLite in a temporary directory)")
    parser.add_argument("--reuse", action="store_true",
                        help="time the estate an earlier run left in --database-url instead of building it")
    parser.add_argument("--growth", action="store_true",
                        help="also run a quarter of --devices (in a second schema or file) and extrapolate "
                             "to 100,000 from the two")
    args = parser.parse_args()
    sizes = [args.devices // 4, args.devices] if args.growth else [args.devices]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            url = args.database_url or f"sqlite:///{Path(tmp) / f'bench-{n}.db'}"
            if args.database_url and len(sizes) > 1:
                url = _schema_url(args.database_url, f"bench_{n}", keep=args.reuse)
            print(f"{n:,} devices × {DAYS} days:")
            results[n] = run(url, n, args.sites, args.hourly_days, args.repeat, args.reuse)
    if len(sizes) == 2:
        small, large = (results[n] for n in sizes)
        for key in ("summary", "audit", "peer"):
            per = (large[key] - small[key]) / (sizes[1] - sizes[0])
            print(f"extrapolated to 100,000 devices, {key}: {large[key] + per * (100_000 - sizes[1]):.1f} s "
                  f"(linear in devices from {sizes[0]:,} → {sizes[1]:,}: {per * 1000:.2f} s per 1,000)")


def _schema_url(base: str, schema: str, keep: bool = False) -> str:
    from urllib.parse import quote

    engine = make_engine(base)
    with engine.begin() as connection:
        if not keep:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
    engine.dispose()
    return f"{base}{'&' if '?' in base else '?'}options={quote(f'-csearch_path={schema}')}"


if __name__ == "__main__":
    main()
