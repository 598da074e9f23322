"""The durable, bounded store-and-forward queue between collecting a report and the controller's ack.

A report is written here before anything tries to send it and leaves only when the controller has
acknowledged it (or rejected it as permanently invalid), so a controller outage or a killed agent
costs nothing but delay. The queue is bounded: when it would exceed ``max_bytes`` the oldest reports
are dropped and counted, because on a long outage recent readings are worth more than old ones and a
full disk on a classroom PC is worse than a gap in the history.

SQLite in WAL mode gives atomic commits that survive the process being killed at any instant. We run
``synchronous=FULL`` rather than NORMAL: under WAL, NORMAL may lose the last commits on a power cut,
and losing a committed ``reserve_seq`` after its report was already acknowledged would make the next
report reuse that sequence number, which the controller would discard as a duplicate. The extra fsync
per commit is cheap at a handful of commits per report interval.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from agent.protocol import Report, to_wire

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    seq INTEGER PRIMARY KEY,
    body TEXT NOT NULL,
    size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters (name, value) VALUES ('dropped', 0), ('rejected', 0);
"""


@dataclass(frozen=True)
class SpoolStats:
    """What an operator (or a health report) needs to judge the backlog."""

    pending: int  # reports waiting for an ack
    pending_bytes: int  # size of their JSON bodies
    max_bytes: int
    dropped: int  # reports discarded, oldest first, to stay under max_bytes; ever, across restarts
    rejected: int  # reports the controller refused as permanently invalid; ever, across restarts
    last_seq: int  # the highest sequence number ever reserved


class Spool:
    """Reports keyed by their sequence number, oldest first.

    ``max_bytes`` bounds the reports' JSON bodies, not the database file, whose SQLite overhead is
    small and reclaimed as rows are deleted.
    """

    def __init__(self, path: Path, max_bytes: int,
                 clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        # isolation_level=None: we issue BEGIN ourselves, so every transaction boundary is explicit.
        self._db = sqlite3.connect(os.fspath(path), isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        # A new spool numbers from the current time in milliseconds, not from 1: if the spool is
        # deleted while the credentials survive, the controller still has the old numbers, and a
        # restart from 1 would have every new report discarded as a duplicate. Reports come at most
        # once a second, so a later start is always above every number an earlier spool handed out.
        self._db.execute("INSERT OR IGNORE INTO counters (name, value) VALUES ('last_seq', ?)",
                         (clock_ms(),))

    def reserve_seq(self) -> int:
        """The next sequence number, committed before the caller builds the report.

        A crash after this can leave a gap in the sequence but never hand the same number out twice.
        """
        with self._transaction():
            self._db.execute("UPDATE counters SET value = value + 1 WHERE name = 'last_seq'")
            return self._counter("last_seq")

    def put(self, report: Report) -> int:
        """Store ``report``, then drop the oldest reports while the spool is over its bound.

        Returns how many were dropped. The newest report is always kept, even alone over the bound:
        it is the one reading that cannot be had again later.
        """
        body = json.dumps(to_wire(report), separators=(",", ":"))
        with self._transaction():
            self._db.execute("INSERT INTO reports (seq, body, size) VALUES (?, ?, ?)",
                             (report.seq, body, len(body.encode())))
            total = self._pending_bytes()
            excess = []
            for seq, size in self._db.execute("SELECT seq, size FROM reports WHERE seq != ? ORDER BY seq",
                                              (report.seq,)):
                if total <= self.max_bytes:
                    break
                excess.append(seq)
                total -= size
            if excess:
                self._delete(excess)
                self._add("dropped", len(excess))
        return len(excess)

    def oldest(self, n: int) -> list[tuple[int, str]]:
        """Up to ``n`` pending reports as (seq, JSON text), lowest seq first."""
        rows = self._db.execute("SELECT seq, body FROM reports ORDER BY seq LIMIT ?", (n,))
        return [(seq, body) for seq, body in rows]

    def remove(self, seqs: Iterable[int]) -> int:
        """Forget acknowledged reports; returns how many were still here."""
        with self._transaction():
            return self._delete(list(seqs))

    def reject(self, seqs: Iterable[int]) -> int:
        """Forget reports the controller refused as invalid, and count them; returns how many."""
        with self._transaction():
            removed = self._delete(list(seqs))
            self._add("rejected", removed)
            return removed

    def stats(self) -> SpoolStats:
        (pending,) = self._db.execute("SELECT COUNT(*) FROM reports").fetchone()
        return SpoolStats(pending=pending, pending_bytes=self._pending_bytes(), max_bytes=self.max_bytes,
                          dropped=self._counter("dropped"), rejected=self._counter("rejected"),
                          last_seq=self._counter("last_seq"))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- internals ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front, so a second agent process (``once`` beside ``run``)
        # waits for it instead of failing half-way through a read-then-write.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _counter(self, name: str) -> int:
        (value,) = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return value

    def _add(self, name: str, amount: int) -> None:
        self._db.execute("UPDATE counters SET value = value + ? WHERE name = ?", (amount, name))

    def _pending_bytes(self) -> int:
        (total,) = self._db.execute("SELECT COALESCE(SUM(size), 0) FROM reports").fetchone()
        return total

    def _delete(self, seqs: list[int]) -> int:
        if not seqs:
            return 0
        cursor = self._db.executemany("DELETE FROM reports WHERE seq = ?", [(s,) for s in seqs])
        return cursor.rowcount

