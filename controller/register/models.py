"""The device register's tables. Domain packages own the queries; this module only says what is stored."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index
from sqlmodel import Field, SQLModel

from controller.db import UTCDateTime
from controller.timeutil import utcnow


def _when(nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_type=UTCDateTime, nullable=nullable, index=index)


class ConflictKind(StrEnum):
    """Why a device was kept apart from another it might be (``Device.conflict_kind``)."""

    CLONE = "clone"  # shares a machine-id or SMBIOS UUID with other hardware: a cloned image
    ELSEWHERE = "elsewhere"  # its evidence matches a device of another site than its token's


class Site(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)
    timezone: str = Field(default="Europe/London", max_length=64)
    trust: str | None = Field(default=None, max_length=100, index=True)  # a trust or local authority
    postcode: str | None = Field(default=None, max_length=10)  # its outcode picks the regional carbon intensity
    pupils: int | None = None  # for intensity per pupil in the audit pack
    nation: str | None = Field(default=None, max_length=16)  # a policy.calendar.Nation; set by register/sites.py
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class EnrollmentToken(SQLModel, table=True):
    """A site's enrollment token. Only its SHA-256 is kept; the token is shown once, at creation."""

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    token_hash: str = Field(unique=True, max_length=64)
    prefix: str = Field(max_length=16)  # enough to recognise it in `caretaker token list`
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = _when()
    revoked_at: datetime | None = _when(nullable=True)
    max_uses: int | None = None
    uses: int = 0
    note: str = Field(default="", max_length=200)


class Device(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    hostname: str = Field(max_length=255, index=True)
    device_class: str = Field(default="unknown", max_length=32)
    vendor: str | None = Field(default=None, max_length=255)
    model: str | None = Field(default=None, max_length=255)
    serial: str | None = Field(default=None, max_length=255, index=True)
    smbios_uuid: str | None = Field(default=None, max_length=64, index=True)
    machine_id: str | None = Field(default=None, max_length=255, index=True)
    os_name: str | None = Field(default=None, max_length=255)
    os_version: str | None = Field(default=None, max_length=255)
    # Where policies look: a room ("ICT Suite 2", what policy selectors call a group) and free tags ("server",
    # "signage"). Each source keeps its own value; register/placement.py resolves them in precedence order:
    # by hand, the asset register (``room``/``tags``), placement rules (computed, not stored), the agent's labels.
    room: str | None = Field(default=None, max_length=100, index=True)  # from the asset register
    tags: list | None = Field(default=None, sa_column=Column(JSON))  # from the asset register
    hand_room: str | None = Field(default=None, max_length=100)
    hand_tags: list | None = Field(default=None, sa_column=Column(JSON))
    hand_untags: list | None = Field(default=None, sa_column=Column(JSON))  # removed by hand whatever the source
    agent_room: str | None = Field(default=None, max_length=100)
    agent_tags: list | None = Field(default=None, sa_column=Column(JSON))
    inventory: dict | None = Field(default=None, sa_column=Column(JSON))
    # One more each time an applied inventory differs from the stored one (register/devices.apply_inventory),
    # so a reader that keeps what it derived from it (the relay election's subnets) re-reads only those.
    inventory_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    first_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Set by every report: not indexed, so the update can stay on its page (migration 0025).
    last_seen: datetime | None = _when(nullable=True)
    # Set when this device was kept apart from another it might be: a cloned image (shares its machine-id
    # or UUID) or a machine enrolled with another site's token (register/conflicts.py); cleared when a
    # network manager resolves it.
    conflict_with: int | None = Field(default=None, foreign_key="device.id")
    conflict_reason: str | None = Field(default=None, max_length=500)
    conflict_kind: str | None = Field(default=None, max_length=16)


class DeviceMac(SQLModel, table=True):
    """Physical MACs, one row each, so identity lookups and wake-on-LAN find a device by MAC."""

    mac: str = Field(primary_key=True, max_length=17)
    device_id: int = Field(primary_key=True, foreign_key="device.id")


class Agent(SQLModel, table=True):
    """One enrollment of one agent; its secret is kept only as a SHA-256 (it is 256 random bits)."""

    id: str = Field(primary_key=True, max_length=32)
    device_id: int = Field(foreign_key="device.id", index=True)
    site_id: int = Field(foreign_key="site.id")
    token_id: int | None = Field(default=None, foreign_key="enrollmenttoken.id")
    secret_hash: str = Field(max_length=64)
    enrolled_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen: datetime | None = _when(nullable=True)
    last_seq: int = Field(default=0, sa_type=BigInteger)
    reports: int = 0
    # A re-enrolled machine retires its earlier agent; a retired agent's credentials stop working.
    retired_at: datetime | None = _when(nullable=True, index=True)  # replicas look up recent retirements
    # End of the latest report stored: a later report starting before it must not overlap a stored one.
    last_end: datetime | None = _when(nullable=True)
    # The hardware the credential was issued to (identity.Fingerprint as JSON). A credential is one
    # machine: reports from other hardware mark it shared (a copied credential file, a cloned disk)
    # and it stops changing the device until a network manager resolves it.
    fingerprint: dict | None = Field(default=None, sa_column=Column(JSON))
    shared_since: datetime | None = _when(nullable=True)
    shared_reason: str | None = Field(default=None, max_length=500)
    shared_inventory: dict | None = Field(default=None, sa_column=Column(JSON))  # the other machine's, kept


class Report(SQLModel, table=True):
    """Each accepted report, once: (agent_id, seq, start) is the idempotency key for ingest (``start`` is in
    it because PostgreSQL partitions this table by day of start; a replayed report has the same start).
    Kept ``report_retention_days`` (controller.storage): its energy lives on in the buckets and rollups."""

    __table_args__ = (Index("ix_report_device_start", "device_id", "start"),)

    agent_id: str = Field(primary_key=True, foreign_key="agent.id", max_length=32)
    seq: int = Field(primary_key=True, sa_type=BigInteger)  # agents number from epoch milliseconds
    device_id: int = Field(foreign_key="device.id")
    start: datetime = Field(primary_key=True, sa_type=UTCDateTime)
    end: datetime = _when()
    state: str = Field(max_length=16)
    cpu_percent: float
    idle_seconds: float | None = None
    sessions: int = 0
    slept_seconds: float = 0.0
    memory_percent: float | None = None  # physical memory in use at the end (None: an older agent)
    method: str | None = Field(default=None, max_length=16)  # the method accounted for the awake time
    joules: float | None = None
    samples: list | None = Field(default=None, sa_column=Column(JSON))  # every method, for calibration
    # The policy's processes_absent names the agent looked for, and those it found running (None: none watched).
    processes_watched: list | None = Field(default=None, sa_column=Column(JSON))
    processes_running: list | None = Field(default=None, sa_column=Column(JSON))
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DeviceLatest(SQLModel, table=True):
    """Each device's latest report (by start; of two sharing a start, the later end), kept by ingest in
    the batch's transaction: what the estate now (state, power, out of hours) reads, one row per device,
    so /metrics and the overview do not scan ``report`` (90 days of rows) for it."""

    __tablename__ = "device_latest"

    device_id: int = Field(primary_key=True, foreign_key="device.id")
    start: datetime = _when()
    end: datetime = _when()
    state: str = Field(max_length=16)
    method: str | None = Field(default=None, max_length=16)
    joules: float | None = None


class EnergyBucket(SQLModel, table=True):
    """Energy per device per UTC hour, by state and method: the unit all accounting sums."""

    device_id: int = Field(primary_key=True, foreign_key="device.id")
    hour: datetime = Field(primary_key=True, sa_type=UTCDateTime)
    state: str = Field(primary_key=True, max_length=16)
    method: str = Field(primary_key=True, max_length=16)
    joules: float = 0.0
    seconds: float = 0.0


class AwakeCause(StrEnum):
    """What the controller records for an idle device-hour besides the holders the agent named (whose kinds
    are agent.protocol.HolderKind): the OS would never sleep on its own, or nothing held it."""

    NO_SLEEP_TIMER = "no_sleep_timer"  # the OS has no sleep timer: it stays up whatever holds it
    NOTHING_HELD = "nothing_held"  # the agent looked and nothing held it: the OS timer is longer than the idle


class UpdateState(StrEnum):
    """An agent's OS update state as the audit log records it (ActionRecord kind "updates"), when it changes."""

    INSTALLING = "installing"
    REBOOT_PENDING = "reboot_pending"  # installed; a restart (or the power-down) finishes them
    IDLE = "idle"  # nothing installing, no restart waiting
    UNKNOWN = "unknown"  # the agent could not tell on this OS


class AwakeHour(SQLModel, table=True):
    """What held a device awake, by device and UTC hour: seconds of idle reports that named each holder (or
    an ``AwakeCause``). Kept apart from the report rows, which retention drops, so a year of insomnia can
    still be costed against the hourly energy."""

    __tablename__ = "awake_hour"

    device_id: int = Field(primary_key=True, foreign_key="device.id")
    hour: datetime = Field(primary_key=True, sa_type=UTCDateTime)
    kind: str = Field(primary_key=True, max_length=16)
    what: str = Field(primary_key=True, max_length=255)
    process: str = Field(primary_key=True, default="", max_length=255)
    seconds: float = 0.0


class ChangeRecord(SQLModel, table=True):
    """The audit trail: who changed what, when, with before and after (NetBox-style change log)."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=100)  # "agent:<id>", "cli:<user>", "user:<name>"
    action: str = Field(max_length=50)
    object_type: str = Field(max_length=50)
    object_id: str = Field(max_length=64)
    before: dict | None = Field(default=None, sa_column=Column(JSON))
    after: dict | None = Field(default=None, sa_column=Column(JSON))


class ActionRecord(SQLModel, table=True):
    """Every power action, planned, observed, done or skipped, with its reason: the audit log that
    proves what happened to a device and why (`caretaker audit`). Agents report theirs with each
    report; ``source_key`` makes a re-sent report's actions land once."""

    __table_args__ = (Index("ix_actionrecord_device_at", "device_id", "at"),
                      Index("ix_actionrecord_site_at", "site_id", "at"))

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _when()
    site_id: int = Field(foreign_key="site.id")
    device_id: int | None = Field(default=None, foreign_key="device.id")
    kind: str = Field(max_length=32)  # shutdown, sleep, hibernate, wake, ssh, ...
    outcome: str = Field(max_length=16)  # planned, observed, done, skipped, deferred, failed, sent, confirmed
    mode: str | None = Field(default=None, max_length=16)  # observe, passive, warn, force
    reason: str = Field(max_length=500)
    actor: str = Field(max_length=100)  # "agent:<id>", "controller", "cli:<user>", "user:<name>"
    source_key: str | None = Field(default=None, max_length=100, unique=True)
    details: dict | None = Field(default=None, sa_column=Column(JSON))
