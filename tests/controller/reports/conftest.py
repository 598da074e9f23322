"""The fixture estate in a fresh database on each backend, and the inputs reports are built from."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session

from controller.reports.figures import Inputs
from controller.reports.service import load_inputs
from tests.controller.reports import estate

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


@pytest.fixture
def session(engine):
    with Session(engine) as session:
        estate.build(session)
        session.commit()
        yield session


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    return estate.write_policies(tmp_path / "policies")


@pytest.fixture
def inputs(policy_dir: Path) -> Inputs:
    return load_inputs(policy_dir)
