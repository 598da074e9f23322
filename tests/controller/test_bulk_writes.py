"""Many rows in one statement (controller.db.BulkUpsert and BulkUpdate) store exactly what one row at a time
would: on PostgreSQL the values travel as array literals, so quotes, backslashes, braces, commas, the word
NULL, empty text, JSON, floats and times must all come back as they went in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import JSON, Boolean, Column, Float, Integer, MetaData, String, Table, bindparam, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from controller.db import UNAVAILABLE, BulkUpdate, BulkUpsert, UTCDateTime, opening_rows, pipelined

AWKWARD = ['plain', 'a "quoted" word', "back\\slash", "{braces, and commas}", "NULL", "", " spaced ", "ünï"]


def test_awkward_values_go_in_and_are_updated_exactly(engine):
    table = Table("bulk_probe", MetaData(), Column("id", Integer, primary_key=True), Column("text", String),
                  Column("doc", JSON), Column("at", UTCDateTime), Column("amount", Float), Column("flag", Boolean))
    table.create(engine)
    at = datetime(2026, 12, 5, 19, 4, 3, 123456, tzinfo=UTC)
    rows = [{"id": i, "text": text, "doc": {"text": text, "n": [i, None]} if i % 2 else None, "at": at if i else None,
             "amount": [0.1 + 0.2, 3, 1e-300, None, float("inf"), -2.5e10][i % 6], "flag": i % 3 == 0}
            for i, text in enumerate(AWKWARD)]
    with Session(engine) as session:
        bulk = BulkUpsert(engine.dialect, table, list(rows[0]))
        session.execute(bulk.statement, bulk.params(rows))
        session.commit()
        stored = [dict(row._mapping) for row in session.execute(select(table).order_by(table.c.id))]
    assert stored == [{**row, "amount": None if row["amount"] is None else float(row["amount"])} for row in rows]

    with Session(engine) as session:
        update = BulkUpdate(engine.dialect, table, "id", ("text",))
        session.execute(update.statement(text=update.new["text"] + "!", amount=table.c.amount),
                        update.params([{"id": i, "text": text[::-1]} for i, text in enumerate(AWKWARD)]))
        session.commit()
        texts = session.execute(select(table.c.text).order_by(table.c.id)).scalars().all()
    assert texts == [text[::-1] + "!" for text in AWKWARD]


def test_a_statement_failing_in_a_pipeline_fails_the_commit_and_leaves_nothing_written(engine):
    """The ingest writer sends its last statements and the commit together (controller.db.pipelined): one
    that fails must fail the whole transaction, as it would sent alone, and the next one must work."""
    table = Table("pipeline_probe", MetaData(), Column("id", Integer, primary_key=True))
    table.create(engine)
    with pytest.raises(IntegrityError), Session(engine) as session:
        session.execute(table.insert(), [{"id": 1}])
        with pipelined(session):
            session.execute(table.insert(), [{"id": 2}])
            session.execute(table.insert(), [{"id": 2}])
            session.execute(table.insert(), [{"id": 3}])
            session.commit()
    with Session(engine) as session:
        with pipelined(session):
            session.execute(table.insert(), [{"id": 4}])
            session.commit()
        assert session.execute(select(table.c.id)).scalars().all() == [4]


def test_the_opening_read_sees_the_rows_and_a_lost_database_is_unavailable(engine):
    """The ingest writer's first read goes with the transaction's BEGIN (controller.db.opening_rows): it
    returns the rows as a read alone would, and a database that went away fails it as UNAVAILABLE, which
    the writer answers with 503s and a single log line, rather than a fault per batch."""
    table = Table("opening_probe", MetaData(), Column("id", Integer, primary_key=True), Column("text", String))
    table.create(engine)
    with Session(engine) as session:
        session.execute(table.insert(), [{"id": i, "text": text} for i, text in enumerate(AWKWARD)])
        session.commit()
    wanted = select(table.c.id, table.c.text).where(table.c.id > bindparam("after")).order_by(table.c.id)
    with Session(engine) as session:
        assert opening_rows(session, wanted, {"after": 5}) == [(6, AWKWARD[6]), (7, AWKWARD[7])]
        session.execute(table.insert(), [{"id": 100, "text": "in the same transaction"}])
        session.rollback()
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as held, Session(held) as session:  # held: the pool must not lend it to ``other``
        backend = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        session.commit()
        with engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        with pytest.raises(UNAVAILABLE):
            opening_rows(session, wanted, {"after": 1})
