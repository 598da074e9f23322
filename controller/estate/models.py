"""What the estate read model stores: the all-history counters as last exported, shared by every replica."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from controller.db import UTCDateTime
from controller.timeutil import utcnow


class ExportedCounter(SQLModel, table=True):
    """The highest value /metrics has exported for one counter series (controller.estate.counters)."""

    __tablename__ = "exported_counter"

    series: str = Field(primary_key=True, max_length=32)  # energy_joules, carbon_grams, cost_pence, saved_joules
    site: str = Field(primary_key=True, max_length=100)
    device_class: str = Field(primary_key=True, max_length=32)
    state: str = Field(primary_key=True, max_length=16, default="")  # "" for series not split by state
    method: str = Field(primary_key=True, max_length=16, default="")
    value: float
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
