"""The asset register's tables.

Facts the agent reports (serial, vendor, model, class, OS) stay on ``Device``; an ``Asset`` holds only
what a person or a purchase order knows, so the two can never disagree about the same fact.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from controller.db import UTCDateTime
from controller.timeutil import utcnow


class Asset(SQLModel, table=True):
    """One device's register entry (DfE digital standards: who has it, where, bought when, supported until)."""

    device_id: int = Field(primary_key=True, foreign_key="device.id")
    state: str = Field(max_length=20, index=True)  # a lifecycle.states.State
    outcome: str | None = Field(default=None, max_length=20)  # a lifecycle.states.Outcome, once disposed
    asset_tag: str | None = Field(default=None, max_length=64, unique=True)
    assigned_to: str | None = Field(default=None, max_length=100)
    location: str | None = Field(default=None, max_length=100)
    purchase_date: date | None = None
    purchase_price_pence: int | None = None
    supplier: str | None = Field(default=None, max_length=100)
    procurement_route: str | None = Field(default=None, max_length=100)  # e.g. "DfE framework", "lease"
    funding: str | None = Field(default=None, max_length=100)  # e.g. "devolved capital", "donation"
    warranty_end: date | None = None
    os_end_of_support: date | None = None
    # Enrolled in Extended Security Updates: its OS's support ends at the ESU date (controller/lifecycle/os_support.py)
    os_esu: bool | None = None
    review_date: date | None = None  # the annual register review
    disposed_on: date | None = None  # date securely disposed
    batch_id: int | None = Field(default=None, foreign_key="disposalbatch.id", index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Transition(SQLModel, table=True):
    """One move from a state to another: who, when and why (the entry into the register has no from)."""

    id: int | None = Field(default=None, primary_key=True)
    device_id: int = Field(foreign_key="device.id", index=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str = Field(max_length=100)
    reason: str = Field(max_length=500)
    from_state: str | None = Field(default=None, max_length=20)
    to_state: str = Field(max_length=20)
    outcome: str | None = Field(default=None, max_length=20)


class DisposalBatch(SQLModel, table=True):
    """Devices collected together (a pallet of laptops) under one WEEE waste transfer note."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)
    transfer_note_ref: str = Field(max_length=100)
    carrier: str = Field(max_length=100)
    recycler: str = Field(max_length=100)
    accreditation: str = Field(max_length=100)  # e.g. "ADISA ADC 8.0"
    collected_on: date
    retain_until: date  # waste transfer notes are kept for 2 years
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DisposalEvidence(SQLModel, table=True):
    """How one device's data was destroyed and where the hardware went. Transfer-note fields left empty
    here come from the device's batch."""

    device_id: int = Field(primary_key=True, foreign_key="device.id")
    method: str | None = Field(default=None, max_length=32)  # a lifecycle.evidence.Sanitisation
    certificate_ref: str | None = Field(default=None, max_length=100)
    sanitised_on: date | None = None
    transfer_note_ref: str | None = Field(default=None, max_length=100)
    carrier: str | None = Field(default=None, max_length=100)
    recycler: str | None = Field(default=None, max_length=100)
    accreditation: str | None = Field(default=None, max_length=100)
    collected_on: date | None = None
    retain_until: date | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class EmbodiedFactor(SQLModel, table=True):
    """A school's own embodied-carbon figure for a class, or a vendor and model; wins over shipped ones."""

    __table_args__ = (UniqueConstraint("device_class", "vendor", "model", name="uq_embodiedfactor_key"),)

    id: int | None = Field(default=None, primary_key=True)
    device_class: str = Field(max_length=32)
    vendor: str = Field(default="", max_length=255)  # "" matches every vendor of the class
    model: str = Field(default="", max_length=255)
    kg_co2e: float
    lifetime_years: float
    source: str = Field(max_length=300)
