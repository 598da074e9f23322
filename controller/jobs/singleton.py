"""Singleton jobs: work that must run on one replica at a time, and moves when that replica dies.

On PostgreSQL a run holds a session advisory lock on a connection of its own (keyed by the job and the
schema, like wake dispatch and SNMP polling): another replica trying the same job meanwhile skips its
turn, and a replica that dies mid-run loses its connection and the lock with it, so the next replica's
turn runs the job. SQLite has one controller, which always holds the lock.

Every run writes a ``JobRun`` row before it starts and completes it after, both while holding the
lock, so the rows of one job never overlap in time: the audit trail that shows the job ran once at a
time (a replica killed mid-run leaves its row unfinished, and the next run starts after the kill).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from controller.db import ADVISORY_KEY, session_scope
from controller.jobs.models import JobRun
from controller.timeutil import utcnow

log = logging.getLogger(__name__)
HOLDER = f"{socket.gethostname()}:{os.getpid()}"
TICK_SECONDS = 1.0


class Outcome(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # another replica held the job: no row is written for it


@dataclass(frozen=True)
class Job:
    name: str
    every_seconds: float
    work: Callable[[Session, datetime], dict]  # in one transaction; returns what it did, for the run's row
    first_after_seconds: float = 0.0  # after a start, the first turn waits this long

    @property
    def lock_key(self) -> int:
        return zlib.crc32(f"caretaker-job:{self.name}".encode()) & 0x7FFFFFFF


@contextmanager
def held(engine: Engine, key: int) -> Iterator[bool]:
    """Whether this process holds the lock ``key`` for the duration (always, on SQLite)."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as connection:
        ours = bool(connection.execute(text(f"SELECT pg_try_advisory_lock{ADVISORY_KEY}"), {"k": key}).scalar())
        connection.commit()
        try:
            yield ours
        finally:
            if ours:
                connection.execute(text(f"SELECT pg_advisory_unlock{ADVISORY_KEY}"), {"k": key})
                connection.commit()


def run_once(engine: Engine, job: Job, clock: Callable[[], datetime] = utcnow, holder: str = HOLDER) -> Outcome:
    """Run ``job`` now if no other replica is running it, recording the run."""
    with held(engine, job.lock_key) as ours:
        if not ours:
            return Outcome.SKIPPED
        run_id = started(engine, job.name, clock(), holder)
        outcome, details = Outcome.DONE, {}
        try:
            with session_scope(engine) as session:
                details = job.work(session, clock())
        except Exception as exc:
            log.exception("job %s failed", job.name)
            outcome, details = Outcome.FAILED, {"error": f"{type(exc).__name__}: {exc}"[:500]}
        finished(engine, run_id, clock(), outcome, details)
        return outcome


def started(engine: Engine, job: str, at: datetime, holder: str = HOLDER) -> int:
    """Record the start of a run (or of a term as leader) while holding the job's lock; its row's id."""
    with session_scope(engine) as session:
        run = JobRun(job=job, holder=holder, started_at=at)
        session.add(run)
        session.flush()
        return run.id


def finished(engine: Engine, run_id: int, at: datetime, outcome: Outcome = Outcome.DONE,
             details: dict | None = None) -> None:
    """Complete a run's row, still holding the lock, so the next holder's row starts after it ends."""
    with session_scope(engine) as session:
        row = session.get_one(JobRun, run_id)
        row.finished_at, row.outcome, row.details = at, outcome.value, details or {}
        session.add(row)


class JobRunner:
    """One thread that gives each job its turn every ``every_seconds`` (jobs with 0 are off)."""

    def __init__(self, engine: Engine, jobs: Sequence[Job], clock: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self._jobs = [job for job in jobs if job.every_seconds > 0]
        self._clock = clock
        started = time.monotonic()
        self._due = {job.name: started + job.first_after_seconds for job in self._jobs}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="singleton-jobs", daemon=True)

    def start(self) -> None:
        if self._jobs:
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stopping.is_set():
            for job in self._jobs:
                if self._stopping.is_set() or time.monotonic() < self._due[job.name]:
                    continue
                try:
                    run_once(self._engine, job, self._clock)
                except Exception:  # the database is away: try again next turn
                    log.exception("job %s could not run", job.name)
                self._due[job.name] = time.monotonic() + job.every_seconds
            self._stopping.wait(TICK_SECONDS)
