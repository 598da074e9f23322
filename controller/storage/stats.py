"""``caretaker db stats``: rows and bytes per table, and how fast the big ones grow.

Bytes are what the database itself reports: on PostgreSQL ``pg_total_relation_size`` (table, indexes
and TOAST, summed over a partitioned table's partitions); on SQLite the ``dbstat`` table's pages. Rows
are counted exactly. Growth per day is the rows of the last ``WINDOW_DAYS`` whole days (by the table's
own time: a report's start, a bucket's hour, a rollup's day) divided by that many days, and its bytes
the table's bytes per row times that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, column, func, inspect, select, table, text
from sqlalchemy.engine import Connection

from controller.db import UTCDateTime
from controller.storage import partitions
from controller.timeutil import as_utc

WINDOW_DAYS = 7
# The tables that grow with the estate's history, and the column that says when a row belongs to.
TIMED = {"report": "start", "energybucket": "hour", "energy_day": "day", "actionrecord": "at",
         "changerecord": "at", "job_run": "started_at"}


@dataclass(frozen=True)
class TableStats:
    table: str
    rows: int
    bytes: int | None  # None where the database cannot say (SQLite built without dbstat)
    rows_per_day: float | None = None  # over the last WINDOW_DAYS days, for tables with a time
    bytes_per_day: float | None = None


def _bytes(connection: Connection, name: str) -> int | None:
    if connection.dialect.name == "postgresql":
        parts = [name, *partitions.existing(connection).values()] if name == partitions.PARENT else [name]
        return int(sum(connection.execute(text("SELECT pg_total_relation_size(to_regclass(:t))"), {"t": t}).scalar()
                       or 0 for t in parts))
    try:
        return int(connection.execute(text("SELECT sum(pgsize) FROM dbstat WHERE name = :t OR name IN "
                                           "(SELECT name FROM sqlite_master WHERE tbl_name = :t AND type = 'index')"),
                                      {"t": name}).scalar() or 0)
    except Exception:  # SQLite without SQLITE_ENABLE_DBSTAT_VTAB
        return None


def table_stats(connection: Connection, now: datetime, names: Sequence[str] | None = None) -> list[TableStats]:
    found = []
    tables = [t for t in inspect(connection).get_table_names() if partitions.include_name(t, "table", None)]
    for name in sorted(names or tables):
        rows = connection.execute(select(func.count()).select_from(table(name))).scalar() or 0
        size = _bytes(connection, name)
        per_day = bytes_per_day = None
        if name in TIMED:
            since = as_utc(now).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=WINDOW_DAYS)
            when = column(TIMED[name])
            bound = since.date() if name == "energy_day" else bindparam("since", since, type_=UTCDateTime)
            recent = connection.execute(select(func.count()).select_from(table(name)).where(when >= bound)).scalar()
            per_day = (recent or 0) / WINDOW_DAYS
            bytes_per_day = size / rows * per_day if size is not None and rows else None
        found.append(TableStats(name, rows, size, per_day, bytes_per_day))
    return found
