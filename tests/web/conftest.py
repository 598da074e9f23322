"""The console in-process (FastAPI's TestClient runs the real app, lifespan included) over a seeded estate."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from controller.api.app import create_app
from controller.settings import Settings
from tests.web.estate import PASSWORD, Estate, seed

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def estate(engine: Engine) -> Estate:
    return seed(engine)


@pytest.fixture
def client(engine: Engine, database_url: str, estate: Estate, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, data_dir=tmp_path)
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
