"""PostgreSQL: the report table range-partitioned by day of ``start``, partitions made ahead of need.

A report row is the idempotency key and the raw evidence for a short while; its energy lives on in the
hourly buckets and the daily rollup. At 300,000 devices every 5 minutes that is 86 million rows a day,
so retention must drop whole partitions (instant, no vacuum debt) rather than delete rows. One day per
partition: a 90-day retention is about a hundred tables, and a day's reports are one table to drop.

The singleton partition job (controller.jobs) makes every day's partition from the oldest a report may
still start in (``report_retention_days`` back, the oldest ingest accepts) to ``AHEAD_DAYS`` ahead, so
a report always finds its partition even if the job misses a few turns. Native declarative
partitioning needs nothing pg_partman adds here: one CREATE ... PARTITION OF per day.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Connection

from controller.timeutil import as_utc

AHEAD_DAYS = 7
PARENT = "report"
_NAME = re.compile(r"^report_p(\d{8})$")


def partition_name(day: date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def include_name(name: str | None, type_: str, _parent: object) -> bool:
    """For Alembic's comparisons: the daily partitions are the partition job's, not the models'."""
    return not (type_ == "table" and bool(name and _NAME.match(name)))


def partitioned(connection: Connection) -> bool:
    """Whether this database's report table is partitioned (PostgreSQL since migration 0017)."""
    if connection.dialect.name != "postgresql":
        return False
    return bool(connection.execute(text(
        "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "WHERE c.relname = :t AND c.relnamespace = current_schema()::regnamespace"), {"t": PARENT}).scalar())


def existing(connection: Connection) -> dict[date, str]:
    """The report table's daily partitions in this schema, by day."""
    rows = connection.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE p.relname = :t AND p.relnamespace = current_schema()::regnamespace"), {"t": PARENT}).scalars()
    found = {}
    for name in rows:
        match = _NAME.match(name)
        if match:
            found[datetime.strptime(match.group(1), "%Y%m%d").date()] = name
    return found


def ensure(connection: Connection, now: datetime, behind_days: int, ahead_days: int = AHEAD_DAYS) -> list[str]:
    """Make the missing daily partitions from ``behind_days`` ago to ``ahead_days`` ahead; the names made."""
    today = as_utc(now).date()
    have = existing(connection)
    made = []
    for offset in range(-behind_days, ahead_days + 1):
        day = today + timedelta(days=offset)
        if day in have:
            continue
        if not made:
            _lock(connection)
        name = partition_name(day)
        bounds = f"FROM ('{day.isoformat()} 00:00:00+00') TO ('{day + timedelta(days=1)} 00:00:00+00')"
        connection.execute(text(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {PARENT} FOR VALUES {bounds}"))
        made.append(name)
    return made


def drop_before(connection: Connection, cutoff: date) -> list[str]:
    """Drop the partitions holding only days before ``cutoff``: whole days of reports, gone at once."""
    dropped = []
    for day, name in sorted(existing(connection).items()):
        if day < cutoff:
            if not dropped:
                _lock(connection)
            connection.execute(text(f"DROP TABLE IF EXISTS {name}"))
            dropped.append(name)
    return dropped


def _lock(connection: Connection) -> None:
    """Take every lock a partition's DDL needs, up front and in the order ingest and enrollment take
    theirs (reports, then devices, then agents), so the DDL never waits holding one lock for another
    (a deadlock PostgreSQL would break by failing someone's report or enrollment). A partition copies
    the parent's foreign keys, which locks the device and agent tables against writes for the few
    milliseconds until the job commits; lock_timeout makes a busy moment a skipped turn, not a stall."""
    connection.execute(text("SET LOCAL lock_timeout = '5s'"))
    connection.execute(text(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE"))
    connection.execute(text("LOCK TABLE device, agent IN SHARE ROW EXCLUSIVE MODE"))
