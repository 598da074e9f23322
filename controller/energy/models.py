"""What energy accounting stores: the user's edits to the shipped defaults, tariffs, and cached intensity.

Shipped defaults (power catalogue, carbon factors) live in data files beside the code; a row here
overrides one default, so an upgrade that corrects a default still reaches every entry nobody edited.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from controller.db import UTCDateTime
from controller.timeutil import utcnow


class PowerCatalogueOverride(SQLModel, table=True):
    """Watts by state for one device class, or one model of a class (``model`` empty for the class)."""

    __table_args__ = (UniqueConstraint("device_class", "vendor", "model", name="uq_powercatalogue_key"),)

    id: int | None = Field(default=None, primary_key=True)
    device_class: str = Field(max_length=32)
    vendor: str = Field(default="", max_length=255)
    model: str = Field(default="", max_length=255)
    active_watts: float
    idle_watts: float
    sleep_watts: float
    off_watts: float
    ceiling_watts: float | None = None  # most average power a report may claim; None: the shipped class figure
    source: str = Field(max_length=500)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Tariff(SQLModel, table=True):
    """A site's electricity tariff from a date: p/kWh by time-of-use band in the site's local time.

    ``bands`` is a list of {name, days, start, end, pence_per_kwh}; the first band matching a local
    time prices it. The standing charge is kept for the bill but never enters a saving.
    """

    __table_args__ = (UniqueConstraint("site_id", "valid_from", name="uq_tariff_site_from"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    name: str = Field(max_length=100)
    valid_from: datetime = Field(sa_type=UTCDateTime)
    standing_pence_per_day: float = 0.0
    bands: list = Field(sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CarbonFactorOverride(SQLModel, table=True):
    """A user's kgCO2e/kWh for one year, replacing the shipped DESNZ figure (e.g. when a new year's is published)."""

    year: int = Field(primary_key=True)
    generation_kg_per_kwh: float
    td_kg_per_kwh: float | None = None
    source: str = Field(max_length=500)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CarbonIntensityPeriod(SQLModel, table=True):
    """One half-hour of the Carbon Intensity API for one region key ("national" or a postcode outcode)."""

    region: str = Field(primary_key=True, max_length=16)
    start: datetime = Field(primary_key=True, sa_type=UTCDateTime)
    end: datetime = Field(sa_type=UTCDateTime)
    forecast_g_per_kwh: int
    actual_g_per_kwh: int | None = None
    fetched_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
