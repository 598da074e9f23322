"""What the controller remembers about each policy between restarts: the content it last saw, and the
mode a network manager switched it to (which wins over the mode written in the file)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from controller.db import UTCDateTime
from controller.timeutil import utcnow


class PolicyState(SQLModel, table=True):
    name: str = Field(primary_key=True, max_length=100)
    content_hash: str = Field(max_length=64)  # of the policy as loaded, so a restart does not log a change
    mode: str | None = Field(default=None, max_length=16)  # None: the mode the file says
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_by: str = Field(default="controller", max_length=100)
