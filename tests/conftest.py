"""Fixtures shared by the whole suite: databases on both backends, and a real controller process.

PostgreSQL comes from CARETAKER_TEST_DATABASE_URL (CI: postgresql://postgres@127.0.0.1:5432/test).
Each test gets a schema of its own there, dropped afterwards. In CI (CI=true) a missing or unreachable
PostgreSQL fails the run instead of being skipped.
"""

from __future__ import annotations

import os
import secrets
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy
from sqlalchemy.engine import Engine

from controller import migrate
from controller.db import make_engine

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
POSTGRES_URL = os.environ.get("CARETAKER_TEST_DATABASE_URL", "")


def _postgres_or_skip() -> str:
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("CARETAKER_TEST_DATABASE_URL is not set; CI must test PostgreSQL")
        pytest.skip("CARETAKER_TEST_DATABASE_URL is not set")
    return POSTGRES_URL


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@contextmanager
def fresh_database(backend: str, directory: Path) -> Iterator[str]:
    """An empty database: a file in ``directory``, or a schema of its own on the test PostgreSQL."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'caretaker.db'}"
        return
    base = _postgres_or_skip()
    schema = f"t_{secrets.token_hex(6)}"
    admin = make_engine(base)
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ControllerProcess:
    """A real `caretaker serve` on loopback; ``tls`` is (certificate, key, CA that signed it)."""

    url: str
    database_url: str
    process: subprocess.Popen
    log: Path

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "caretaker"), *args, "--database-url", self.database_url],
                              capture_output=True, text=True, check=check, timeout=60)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


def start_controller(database_url: str, workdir: Path, port: int | None = None,
                     tls: tuple[Path, Path, Path] | None = None,
                     env: dict[str, str] | None = None) -> ControllerProcess:
    port = port or free_port()
    log = workdir / f"controller-{port}.log"
    args = [str(BIN / "caretaker"), "serve", "--database-url", database_url, "--port", str(port)]
    scheme = "http"
    if tls:
        args += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        scheme = "https"
    process = subprocess.Popen(args, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                               env={**os.environ, **(env or {})}, cwd=workdir)
    url = f"{scheme}://127.0.0.1:{port}"
    deadline = time.monotonic() + 90  # a fresh PostgreSQL schema's migrations, on a loaded machine
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"controller exited: {log.read_text()[-2000:]}")
        try:
            verify = ssl.create_default_context(cafile=str(tls[2])) if tls else True
            if httpx.get(f"{url}/healthz", verify=verify, timeout=1).status_code == 200:
                return ControllerProcess(url, database_url, process, log)
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"controller did not start: {log.read_text()[-2000:]}")


@pytest.fixture
def controller(database_url: str, tmp_path: Path) -> Iterator[ControllerProcess]:
    running = start_controller(database_url, tmp_path)
    yield running
    running.stop()
