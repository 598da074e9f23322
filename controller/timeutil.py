"""Aware-UTC helpers; every timestamp the controller stores or compares goes through here."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} has no time zone")
    return value.astimezone(UTC)


def hour_floor(value: datetime) -> datetime:
    return as_utc(value).replace(minute=0, second=0, microsecond=0)
