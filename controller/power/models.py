"""The power package's tables: one row per wake, from the request to its confirmation or failure."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from controller.db import UTCDateTime
from controller.timeutil import utcnow


class WakeStatus(enum.StrEnum):
    QUEUED = "queued"  # waiting for its slot in the site's wave, or for its relay to pick it up
    ORDERED = "ordered"  # picked up by a relay agent, which has not yet said it sent the packet
    SENT = "sent"  # a magic packet went out (by the controller or a relay); waiting for the device
    CONFIRMED = "confirmed"  # the device reported in after the packet was sent
    FAILED = "failed"  # no route, or no report after every attempt


OPEN_STATUSES = (WakeStatus.QUEUED, WakeStatus.ORDERED, WakeStatus.SENT)


class WakeRequest(SQLModel, table=True):
    __table_args__ = (Index("ix_wakerequest_status_due", "status", "due_at"),
                      Index("ix_wakerequest_device_status", "device_id", "status"),
                      Index("ix_wakerequest_site_due", "site_id", "due_at"))

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id")
    device_id: int = Field(foreign_key="device.id")
    mac: str = Field(max_length=17)
    network: str | None = Field(default=None, max_length=43)  # the target's subnet, e.g. 10.12.0.0/24
    status: str = Field(default=WakeStatus.QUEUED, max_length=16)
    reason: str = Field(max_length=500)
    requested_by: str = Field(max_length=100)
    requested_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    due_at: datetime = Field(sa_type=UTCDateTime)  # its slot in the wave (and, on retry, when to try again)
    attempts: int = 0  # packets sent (or ordered from a relay)
    reroutes: int = 0  # times routed again because its relay did not send it
    # Relay agents that were given it and did not send it: never given it again.
    passed_over: list | None = Field(default=None, sa_column=Column(JSON))
    errors: int = 0  # dispatcher steps that failed on this wake; at ``WakeConfig.attempts`` it fails
    route: str | None = Field(default=None, max_length=16)  # direct, relay, broadcast
    sent_by: str | None = Field(default=None, max_length=100)  # "controller" or "agent:<id>"
    relay_agent_id: str | None = Field(default=None, max_length=32, index=True)
    ordered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    failed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    failure: str | None = Field(default=None, max_length=500)
