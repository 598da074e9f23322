"""How far the daily rollup reaches, read by everything that chooses between rolled days and hours."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time

from sqlmodel import Session, col, select

from controller.db import in_batches
from controller.energy.models import RollupMark, RollupState

STATE = "energy_day"


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def rolled_through(session: Session) -> date | None:
    """Every device's days before this are rolled (bar marked ones); None before the first roll."""
    state = session.get(RollupState, STATE)
    return None if state is None else state.through


def marks(session: Session, device_ids: Iterable[int] | None = None) -> dict[int, date]:
    """Per marked device, the first day its rolled-up days no longer answer for."""
    query = select(RollupMark.device_id, RollupMark.from_day)
    if device_ids is None:
        return dict(session.exec(query).all())
    ids = list(device_ids)
    return {d: day for batch in in_batches(ids) for d, day in session.exec(
        query.where(col(RollupMark.device_id).in_(batch))).all()}
