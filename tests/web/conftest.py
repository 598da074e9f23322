"""The console in-process (FastAPI's TestClient runs the real app, lifespan included) over a seeded estate."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from controller.api.app import create_app
from controller.settings import Settings
from tests.conftest import REPO
from tests.web.estate import PASSWORD, Estate, seed

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def estate(engine: Engine) -> Estate:
    return seed(engine)


def install_example_policy(policy_dir: Path) -> None:
    """The shipped primary-school example, which applies to the seeded Hillside Primary, in observe mode."""
    (policy_dir / "calendars").mkdir(parents=True)
    shutil.copy(REPO / "policies" / "primary.yaml", policy_dir)
    for calendar in (REPO / "policies" / "calendars").glob("*.yaml"):
        shutil.copy(calendar, policy_dir / "calendars")


@pytest.fixture
def client(engine: Engine, database_url: str, estate: Estate, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, data_dir=tmp_path)
    install_example_policy(settings.resolved_policy_dir())
    with TestClient(create_app(settings, engine), follow_redirects=False) as test_client:
        yield test_client


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Sign in (the client keeps the cookie) and return the session's CSRF token, read from a page."""
    response = client.post("/signin", data={"name": name, "password": password})
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/devices").text)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)
