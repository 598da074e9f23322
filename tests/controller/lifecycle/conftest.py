"""A small register to move devices around in, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from controller.db import session_scope
from controller.lifecycle.models import Asset
from controller.lifecycle.states import State
from controller.register.models import Device, Site


def add_device(session: Session, site: Site, hostname: str, state: State = State.DEPLOYED, **device) -> Device:
    """A device already in the register in ``state`` (as an import or earlier moves would leave it)."""
    row = Device(site_id=site.id, hostname=hostname, **device)
    session.add(row)
    session.flush()
    session.add(Asset(device_id=row.id, state=state.value))
    return row


@pytest.fixture
def hill(engine) -> int:
    with session_scope(engine) as session:
        site = Site(name="Hill Primary")
        session.add(site)
        session.flush()
        return site.id
