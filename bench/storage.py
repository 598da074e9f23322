"""Storage per device per year on PostgreSQL: reports, hourly buckets and the rollups, measured.

Run after ``bench/trust_year.py --database-url …`` (which leaves a year of rollups for 10,000 devices
and their last 30 days of hourly buckets in the schema ``bench_10000`` with ``--growth``, or in the
database's own schema without it). This script adds ``--report-devices`` devices' reports for one day
(every five minutes, each row as ingest writes it, samples and all) into the same schema, then reads
``pg_total_relation_size`` (table, indexes, TOAST; a partitioned table's partitions summed) through
``caretaker db stats``' own function and prints, per table, bytes per row and per device per year:

- reports: 105,120 a device-year at a 5-minute interval (a 90-day retention keeps about a quarter);
- hourly buckets: the rows per device-day the trust-year estate holds, times 365;
- rollups: what the year of rollups takes, per device (it holds exactly one year).

    .venv/bin/python bench/storage.py --database-url 'postgresql://postgres@127.0.0.1:5432/bench?options=-csearch_path%3Dbench_10000'
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.protocol import EnergySample, PowerMethod, PowerState, to_wire  # noqa: E402
from controller.db import make_engine  # noqa: E402
from controller.register.models import Device, EnergyBucket  # noqa: E402
from controller.storage import partitions  # noqa: E402
from controller.storage.stats import table_stats  # noqa: E402

REPORTS_PER_YEAR = 365 * 24 * 12


def add_reports(engine, devices: int, day: datetime) -> int:
    with engine.begin() as connection:
        partitions.ensure(connection, day, 0, 1)
        ids = list(connection.execute(select(Device.id).order_by(Device.id).limit(devices)).scalars())
        raw = connection.connection.dbapi_connection
        with raw.cursor() as cursor:
            with cursor.copy("COPY agent (id, device_id, site_id, secret_hash, enrolled_at, last_seq, reports) "
                             "FROM STDIN") as copy:
                for device_id in ids:
                    copy.write_row((f"bench{device_id:027d}", device_id, 1, "0" * 64, day, 0, 0))
            count = 0
            with cursor.copy('COPY report (agent_id, seq, device_id, start, "end", state, cpu_percent, idle_seconds, '
                             "sessions, slept_seconds, method, joules, samples, received_at) FROM STDIN") as copy:
                for device_id in ids:
                    for i in range(288):
                        start = day + timedelta(minutes=5 * i)
                        samples = [to_wire(EnergySample(PowerMethod.RAPL, PowerState.IDLE, 300.0, 1950.0 + i,
                                                        detail="intel-rapl:0 package+dram")),
                                   to_wire(EnergySample(PowerMethod.MODEL, PowerState.IDLE, 300.0, 13500.0,
                                                        detail="desktop model"))]
                        copy.write_row((f"bench{device_id:027d}", 1_700_000_000_000 + i, device_id, start,
                                        start + timedelta(minutes=5), "idle", 4.5, 1200.0, 1, 0.0, "rapl",
                                        1950.0 + i, json.dumps(samples), start))
                        count += 1
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="PostgreSQL holding bench/trust_year.py's estate")
    parser.add_argument("--report-devices", type=int, default=1000)
    args = parser.parse_args()
    engine = make_engine(args.database_url)
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    with engine.connect() as connection:
        present = connection.execute(text("SELECT count(*) FROM report")).scalar()
    added = present or add_reports(engine, args.report_devices, day)  # once: a second run measures again
    with engine.connect() as connection:
        stats = {s.table: s for s in table_stats(connection, datetime.now(UTC),
                                                 ["report", "energybucket", "energy_day", "energy_month"])}
        devices = connection.execute(select(func.count()).select_from(Device)).scalar()
        first, last = connection.execute(select(func.min(EnergyBucket.hour), func.max(EnergyBucket.hour))).one()
        bucket_days = (last - first).days + 1 if first else 1
    print(f"{devices:,} devices; {added:,} reports of one day; "
          f"hourly buckets over {bucket_days} days; load average {os.getloadavg()[0]:.2f}")
    per_year = {
        "report": REPORTS_PER_YEAR,
        "energybucket": stats["energybucket"].rows / devices / bucket_days * 365,
        "energy_day": stats["energy_day"].rows / devices,
        "energy_month": stats["energy_month"].rows / devices,
    }
    print(f"{'table':14} {'rows':>12} {'bytes':>14} {'bytes/row':>10} {'rows/device-year':>17} "
          f"{'bytes/device-year':>18}")
    for name, rows_per_year in per_year.items():
        s = stats[name]
        per_row = s.bytes / s.rows if s.rows else 0
        print(f"{name:14} {s.rows:>12,} {s.bytes:>14,} {per_row:>10.0f} {rows_per_year:>17,.0f} "
              f"{per_row * rows_per_year:>18,.0f}")


if __name__ == "__main__":
    main()
