"""The all-history counters as last exported, kept in the database.

Two reasons. A restarted controller serves them on its first scrape instead of working out all history
before answering (bench/metrics_scrape.py), and works them out afresh in the background. And every
replica behind a load balancer takes the highest value any of them exported as its floor (``ratchet``),
so Prometheus, scraping whichever replica answers, never sees a counter go down and count a reset.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import func
from sqlmodel import Session, select

from controller.db import upsert
from controller.estate.models import ExportedCounter
from controller.timeutil import utcnow

SERIES = ("energy_joules", "carbon_grams", "cost_pence", "saved_joules")


def _rows(history) -> Iterator[dict]:
    now = utcnow()
    for (site, device_class, state, method), value in history.energy_joules.items():
        yield {"series": "energy_joules", "site": site, "device_class": device_class, "state": state,
               "method": method, "value": value, "updated_at": now}
    for series in SERIES[1:]:
        for (site, device_class), value in getattr(history, series).items():
            yield {"series": series, "site": site, "device_class": device_class, "state": "", "method": "",
                   "value": value, "updated_at": now}


def load(session: Session):
    """The counters as last exported by any replica, or None before the first export."""
    from controller.estate.summary import History

    found: dict[str, dict] = {series: {} for series in SERIES}
    for row in session.exec(select(ExportedCounter)):
        key = (row.site, row.device_class, row.state, row.method) if row.series == "energy_joules" else (
            row.site, row.device_class)
        found.setdefault(row.series, {})[key] = row.value
    if not any(found.values()):
        return None
    return History(found["energy_joules"], found["carbon_grams"], found["cost_pence"], found["saved_joules"])


def store(session: Session, history) -> None:
    """Keep each counter at the higher of its stored and its new value. The caller commits."""
    rows = list(_rows(history))
    if not rows:
        return
    table = ExportedCounter.__table__
    postgres = session.get_bind().dialect.name == "postgresql"
    insert = upsert(session, table)
    higher = (func.greatest if postgres else func.max)(table.c.value, insert.excluded.value)
    session.execute(insert.on_conflict_do_update(
        index_elements=["series", "site", "device_class", "state", "method"],
        set_={"value": higher, "updated_at": insert.excluded.updated_at}), rows)
