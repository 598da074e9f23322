"""The SNMP tables: the kit that is polled, what each poll read, and the metered energy written from it.

A target names its credential only by the name it has in the credentials file (the working one,
remembered so the next poll asks with it first); secrets never reach the database.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from controller.db import UTCDateTime
from controller.timeutil import utcnow


class SnmpTarget(SQLModel, table=True):
    """An SNMP agent the controller polls, and how its last poll went."""

    __table_args__ = (UniqueConstraint("address", "port", name="uq_snmptarget_address_port"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    device_id: int | None = Field(default=None, foreign_key="device.id", index=True)
    address: str = Field(max_length=255)
    port: int = 161
    profile: str | None = Field(default=None, max_length=64)
    kind: str | None = Field(default=None, max_length=16)
    credential: str | None = Field(default=None, max_length=100)  # its name in the credentials file
    added_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_poll_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    last_ok_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    last_error: str | None = Field(default=None, max_length=500)


class SnmpReading(SQLModel, table=True):
    """One successful poll, compact: the device's totals as columns, per-outlet/port loads and
    supplies as JSON. (target, at) is the key, so storing the same poll twice stores it once."""

    target_id: int = Field(primary_key=True, foreign_key="snmptarget.id")
    at: datetime = Field(primary_key=True, sa_type=UTCDateTime)
    watts: float | None = None
    energy_joules: float | None = None
    page_count: int | None = Field(default=None, sa_type=BigInteger)
    status: str | None = Field(default=None, max_length=32)
    loads: dict | None = Field(default=None, sa_column=Column(JSON))
    supplies: list | None = Field(default=None, sa_column=Column(JSON))


class SnmpMeteredHour(SQLModel, table=True):
    """What SNMP metering has added to EnergyBucket (method "metered") per device, hour and state.

    Recomputing an hour writes only the difference from this ledger, so re-polls and re-runs never
    double count, and metered rows from any other source are left alone.
    """

    device_id: int = Field(primary_key=True, foreign_key="device.id")
    hour: datetime = Field(primary_key=True, sa_type=UTCDateTime)
    state: str = Field(primary_key=True, max_length=16)
    joules: float = 0.0
    seconds: float = 0.0


class SnmpUnit(SQLModel, table=True):
    """A further physical unit behind one SNMP target (a stack member, an access point of a cluster),
    registered as a device of its own. The target's readings stay with the target's device; this row
    finds a unit's device again at the next discovery, by its place in the stack even without a serial."""

    target_id: int = Field(primary_key=True, foreign_key="snmptarget.id")
    unit: str = Field(primary_key=True, max_length=64)  # the unit's index in the device's tables
    device_id: int = Field(foreign_key="device.id", index=True)
