"""What the singleton jobs store: one row per run, the evidence that no two replicas ran one job at once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from controller.db import UTCDateTime


class JobRun(SQLModel, table=True):
    """One run of a singleton job on one replica: who ran it, from when to when, and what it did."""

    __tablename__ = "job_run"
    __table_args__ = (Index("ix_job_run_job_started", "job", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=32)
    holder: str = Field(max_length=100)  # host:pid of the replica that held the job's lock
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    outcome: str = Field(default="running", max_length=16)  # running, done, failed
    details: dict | None = Field(default=None, sa_column=Column(JSON))
