"""Engines and sessions: embedded SQLite (WAL) for a school, PostgreSQL by URL for a trust or LA."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.types import JSON, DateTime, TypeDecorator
from sqlmodel import Session, create_engine

from controller.timeutil import as_utc


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, returns aware UTC on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is UTC:  # PostgreSQL's answers in the session's zone, UTC (_postgres_session)
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def result_processor(self, dialect, coltype):
        # SQLite hands back the stored text: parsed straight to aware UTC it reads five times faster than
        # parsed naive and given its zone after (a week of reports for a preview, bench/policy_preview.py).
        if dialect.name == "sqlite":
            return _utc_from_sqlite_text
        return super().result_processor(dialect, coltype)


def _utc_from_sqlite_text(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value + "+00:00")  # stored in UTC, without a zone (process_bind_param)
    except ValueError:  # written by something else: with a zone, or a date alone
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # A database that stops answering must turn into 503s within seconds, not a TCP timeout later.
    engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, pool_timeout=10,
                           connect_args={"connect_timeout": 5})
    event.listen(engine, "connect", _postgres_session)
    return engine


# What the database raises when it cannot answer at all (down, unreachable, locked for longer than the
# busy timeout, no connection free): try again later, rather than a fault in the request.
UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError, sa_exc.TimeoutError)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers (CLI, metrics) run while ingest writes; NORMAL sync in WAL mode is durable
    # against process crashes and loses at most the last commits on power loss of the controller host.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _postgres_session(dbapi_connection, _record) -> None:
    # Times come back in the session's zone. In UTC whatever the server's default, psycopg gives them
    # Python's own UTC, which reads faster than a named zone converted (a week of reports per preview).
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")
    dbapi_connection.commit()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any error, so nothing is half-written."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


T = TypeVar("T")
IN_LIST_LIMIT = 10_000  # PostgreSQL takes at most 65,535 bind parameters in one statement


def in_batches(items: Sequence[T], size: int = IN_LIST_LIMIT) -> Iterator[Sequence[T]]:
    """``items`` in slices short enough for one ``IN (...)`` list, so a trust of 100,000 devices still queries."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


# Advisory locks are per database: the schema as the second key keeps estates (and tests) that share one
# database in separate schemas from taking each other's singleton jobs. Bind ``k``.
ADVISORY_KEY = "(:k, hashtext(current_schema()))"


def upsert(session: Session, table):
    """``INSERT`` into ``table`` in the session's dialect, which has ``on_conflict_do_nothing`` and
    ``on_conflict_do_update`` (PostgreSQL and SQLite spell them alike; the core insert has neither)."""
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(table)


class BulkUpsert:
    """Many rows into ``table`` as one statement: the core of ``upsert`` for rows of ``names``, and its
    parameters (``params``). On PostgreSQL the rows travel as one array per column through ``unnest``, so
    the statement's text is the same whatever the number of rows: psycopg parses it once and the server
    prepares it, where a multi-row ``VALUES`` has a new text to parse and plan for every count (and an
    executemany, a round of messages per row). On SQLite the rows go as executemany parameters.

    Rows are inserted in the order given, so writers that sort their rows lock them in one order."""

    def __init__(self, session: Session, table, names: Sequence[str]):
        self._dialect = session.get_bind().dialect
        self._table = table
        self._names = tuple(names)
        if self._dialect.name != "postgresql":
            self.statement = sqlite.insert(table)
            return
        arrays = ", ".join(f"CAST(:{name} AS {table.c[name].type.compile(dialect=self._dialect)}[])"
                           for name in self._names)
        self.statement = postgresql.insert(table).from_select(
            list(self._names), text(f"SELECT * FROM unnest({arrays})").columns(*(table.c[n] for n in self._names)))

    def params(self, rows: Sequence[dict]) -> list[dict] | dict[str, list]:
        """``rows`` as this statement takes them: on PostgreSQL each column through its type's own bind
        processing (UTC for times, JSON as its text with None as JSON null), as an insert of rows would."""
        if self._dialect.name != "postgresql":
            return list(rows)
        arrays: dict[str, list] = {}
        for name in self._names:
            column_type = self._table.c[name].type
            process = (self._json if isinstance(column_type, JSON)
                       else column_type.dialect_impl(self._dialect).bind_processor(self._dialect) or _same)
            # A float column's values all as floats: psycopg types a list by its first value.
            number = float if _python_type(column_type) is float else None
            arrays[name] = [None if (value := process(row[name])) is None
                            else number(value) if number else value for row in rows]
        return arrays


    def _json(self, value: object) -> str:
        """As the JSON type stores it: the serialised text, None as JSON null (its ``none_as_null`` is off)."""
        return (self._dialect._json_serializer or json.dumps)(value)


def _same(value: object) -> object:
    return value


def _python_type(column_type) -> type | None:
    try:
        return column_type.python_type
    except NotImplementedError:
        return None
