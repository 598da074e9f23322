"""Engines and sessions: embedded SQLite (WAL) for a school, PostgreSQL by URL for a trust or LA."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from sqlalchemy import ColumnElement, bindparam, event, func, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Compiled, Dialect, Engine
from sqlalchemy.sql import Executable
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.types import JSON, DateTime, Integer, Numeric, TypeDecorator
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


@contextmanager
def pipelined(session: Session) -> Iterator[None]:
    """Statements that return no rows, sent without waiting for each answer (psycopg's pipeline mode on
    PostgreSQL; as usual on SQLite). A round trip is most of what a small write costs, and a thread that
    waits on one also waits for the GIL after it; a commit inside the block sends the lot with one.

    Only for statements whose result nobody reads: SQLAlchemy looks at a statement's result columns as
    soon as it is sent, before they exist in this mode, so a SELECT or RETURNING here would return nothing.
    An error of any statement surfaces at the commit (or at the end of the block) instead.
    """
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        yield
        return
    try:
        with connection.connection.driver_connection.pipeline():
            yield
    except BaseException:
        # psycopg cannot roll back a transaction that failed inside a pipeline (it stays "in error", and
        # SQLAlchemy's transaction with it): the connection is replaced instead, as one that was lost.
        connection.invalidate()
        raise


def opening_rows(session: Session, statement: Executable, params: dict) -> list[tuple]:
    """The rows of ``statement``, run as its transaction's first statement. Before a transaction's first
    statement psycopg sends ``BEGIN`` on its own and waits for the answer: a round trip with nothing in it,
    which was a seventh of the ingest writer's time. Here both go at once (its pipeline mode) on PostgreSQL.

    The rows are the driver's own, without SQLAlchemy's result processing (times are aware, in UTC: see
    ``_postgres_session``), and parameters go as given: on PostgreSQL a list of values is one array (``=
    ANY(…)``), not an expanding ``IN``, which would make a new statement text for every length."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return [tuple(row) for row in connection.execute(statement, params)]
    compiled = _compiled(connection.dialect, statement)
    bound = compiled.construct_params(params)
    driver_error = connection.dialect.loaded_dbapi.Error
    try:
        with pipelined(session):
            cursor = connection.connection.driver_connection.cursor()
            cursor.execute(compiled.string, bound)
            return cursor.fetchall()
    except driver_error as exc:  # as SQLAlchemy's own (a database away is an OperationalError: UNAVAILABLE)
        raise sa_exc.DBAPIError.instance(compiled.string, bound, exc, driver_error, dialect=connection.dialect,
                                         connection_invalidated=True) from exc


@lru_cache(maxsize=16)
def _compiled(dialect: Dialect, statement: Executable) -> Compiled:
    return statement.compile(dialect=dialect)


T = TypeVar("T")
IN_LIST_LIMIT = 10_000  # PostgreSQL takes at most 65,535 bind parameters in one statement


def seconds_between(session: Session, start: ColumnElement, end: ColumnElement) -> ColumnElement:
    """Seconds from ``start`` to ``end`` (a report's duration), in SQL: SQLite has no interval type, and its
    julianday difference is good to about 0.1 ms (ample for a report's energy)."""
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return func.extract("epoch", end - start)


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


class _Arrays:
    """Rows of ``names`` (columns of ``table``) as one bound array per column, bound as ``prefix`` + name,
    and read back as rows through ``unnest``: a statement whose text is the same whatever the number of
    rows, so psycopg parses it once and PostgreSQL prepares it."""

    def __init__(self, dialect, table, names: Sequence[str], prefix: str = ""):
        self._names = tuple(names)
        self._prefix = prefix
        self.rows, self._processors, self._literals = _unnest(dialect, table, self._names, prefix)

    def params(self, rows: Sequence[dict]) -> dict[str, str]:
        """Each column through its type's own bind processing (UTC for times, JSON as its text with None as
        JSON null), as an insert of rows would, then as one array literal."""
        return {self._prefix + name: literal([process(row[name]) for row in rows])
                for name, process, literal in zip(self._names, self._processors, self._literals, strict=True)}


@lru_cache(maxsize=64)
def _unnest(dialect, table, names: tuple[str, ...], prefix: str
            ) -> tuple[TextClause, tuple[Callable, ...], tuple[Callable, ...]]:
    """The ``unnest`` of ``names``' arrays, each column's bind processing and how its array is written, made
    once per statement shape."""
    arrays = ", ".join(f"CAST(:{prefix}{name} AS {table.c[name].type.compile(dialect=dialect)}[])"
                       for name in names)
    named = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    rows = text(f"SELECT * FROM unnest({arrays}) AS rows({named})").columns(*(table.c[n] for n in names))
    serialize = dialect._json_serializer or json.dumps  # JSON as the JSON type stores it: None as JSON null

    def processor(column_type) -> Callable:
        if isinstance(column_type, JSON):
            return serialize
        return column_type.dialect_impl(dialect).bind_processor(dialect) or _same

    def literal(column_type) -> Callable[[Sequence[object]], str]:
        return _number_array_literal if isinstance(column_type, Integer | Numeric) else _array_literal

    return (rows, tuple(processor(table.c[name].type) for name in names),
            tuple(literal(table.c[name].type) for name in names))


def _array_literal(values: Sequence[object]) -> str:
    """PostgreSQL's text form of an array of ``values`` (text, numbers, times; None is NULL), every element
    quoted, for ``CAST(… AS type[])`` to read with the element type's own input. Built with string methods:
    psycopg's general list dumper tests each element against regular expressions, which was a quarter of
    the ingest writer's time."""
    return "{" + ",".join("NULL" if value is None
                          else '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
                          for value in values) + "}"


def _number_array_literal(values: Sequence[object]) -> str:
    """``_array_literal`` of numbers, which need neither quotes nor escapes (half the time for integers)."""
    return "{" + ",".join("NULL" if value is None else str(value) for value in values) + "}"


S = TypeVar("S")


def prepared(session: Session, build: Callable[[Dialect], S]) -> S:
    """What ``build`` makes for the session's dialect (a statement, or a statement and its ``BulkUpsert``),
    made once and kept. A hot writer that built its statements for every group paid SQLAlchemy again each
    time to build them and to work out their cache keys, which it remembers on a statement it sees again."""
    return _prepared(session.get_bind().dialect, build)


@lru_cache(maxsize=64)
def _prepared(dialect: Dialect, build: Callable[[Dialect], S]) -> S:
    return build(dialect)


class BulkUpsert:
    """Many rows into ``table`` as one statement: the core of ``upsert`` for rows of ``names``, and its
    parameters (``params``). On PostgreSQL the rows travel as one array per column through ``unnest``, so
    the statement's text is the same whatever the number of rows: psycopg parses it once and the server
    prepares it, where a multi-row ``VALUES`` has a new text to parse and plan for every count (and an
    executemany, a round of messages per row). On SQLite the rows go as executemany parameters.

    Rows are inserted in the order given, so writers that sort their rows lock them in one order."""

    def __init__(self, dialect: Dialect, table, names: Sequence[str]):
        self._arrays = None
        if dialect.name != "postgresql":
            self.statement = sqlite.insert(table)
            return
        self._arrays = _Arrays(dialect, table, names)
        self.statement = postgresql.insert(table).from_select(list(names), self._arrays.rows)

    def params(self, rows: Sequence[dict]) -> list[dict] | dict[str, list]:
        """``rows`` as this statement takes them."""
        return list(rows) if self._arrays is None else self._arrays.params(rows)


class BulkUpdate:
    """``UPDATE table`` of many rows, each matched on ``key`` and given values of its own: on PostgreSQL one
    statement joining the rows as arrays (``UPDATE … FROM unnest(…)``), where an executemany sends a round
    of messages per row; on SQLite an executemany. ``new[name]`` is a row's value of ``name``, for the SET
    clause given to ``statement``; ``params`` turns rows (dicts of ``key`` and ``names``) into parameters."""

    def __init__(self, dialect: Dialect, table, key: str, names: Sequence[str]):
        self._table = table
        self._prefix = "new_"  # bind names apart from the columns', which SQLAlchemy would read as SET values
        columns = (key, *names)
        self._arrays = None
        if dialect.name == "postgresql":
            self._arrays = _Arrays(dialect, table, columns, self._prefix)
            self.new = self._arrays.rows.subquery("new").c
        else:
            self.new = {n: bindparam(self._prefix + n, type_=table.c[n].type) for n in columns}
        self._match = table.c[key] == self.new[key]

    def statement(self, **values):
        return self._table.update().where(self._match).values(**values)

    def params(self, rows: Sequence[dict]) -> list[dict] | dict[str, list]:
        if self._arrays is not None:
            return self._arrays.params(rows)
        return [{self._prefix + name: value for name, value in row.items()} for row in rows]


def _same(value: object) -> object:
    return value
