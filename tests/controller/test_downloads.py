"""Agent wheels from the controller: pip installs from it as from any package index, and nothing
outside the configured directory can be fetched.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from controller.api.app import create_app
from controller.settings import Settings
from tests.conftest import start_controller

SIMPLE = "/api/v1/downloads/agent/simple/"
FILES = "/api/v1/downloads/agent/files/"


def make_wheel(directory: Path, project: str, version: str) -> Path:
    """A small but valid wheel: pip checks its metadata against its name before accepting it."""
    name = project.replace("-", "_")
    dist_info = f"{name}-{version}.dist-info"
    path = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{name}/__init__.py", f"VERSION = {version!r}\n")
        wheel.writestr(f"{dist_info}/METADATA", f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n")
        wheel.writestr(f"{dist_info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                             "Tag: py3-none-any\n")
        wheel.writestr(f"{dist_info}/RECORD", "")
    return path


@pytest.fixture
def wheels_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "agent-wheels"
    directory.mkdir()
    return directory


def client_for(tmp_path: Path, wheels_dir: Path | None) -> TestClient:
    return TestClient(create_app(Settings(data_dir=tmp_path, agent_wheels_dir=wheels_dir)))


@pytest.fixture
def client(tmp_path: Path, wheels_dir: Path) -> Iterator[TestClient]:
    with client_for(tmp_path, wheels_dir) as client:
        yield client


def test_pip_downloads_the_newest_agent_from_the_controller_and_checks_its_hash(
        tmp_path: Path, wheels_dir: Path) -> None:
    make_wheel(wheels_dir, "caretaker", "0.1.0")
    make_wheel(wheels_dir, "caretaker", "0.2.0")
    running = start_controller(f"sqlite:///{tmp_path / 'caretaker.db'}", tmp_path,
                               env={"CARETAKER_AGENT_WHEELS_DIR": str(wheels_dir)})
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
             "--index-url", f"{running.url}{SIMPLE}", "--dest", str(tmp_path / "got"), "caretaker"],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": "", "PIP_NO_CACHE_DIR": "1"})
    finally:
        running.stop()

    assert result.returncode == 0, result.stdout + result.stderr
    assert [p.name for p in (tmp_path / "got").iterdir()] == ["caretaker-0.2.0-py3-none-any.whl"]


def test_the_index_lists_each_project_once_and_only_wheels(client: TestClient, wheels_dir: Path) -> None:
    make_wheel(wheels_dir, "caretaker", "0.1.0")
    make_wheel(wheels_dir, "caretaker", "0.2.0")
    make_wheel(wheels_dir, "wakeonlan", "3.1.0")
    (wheels_dir / "notes.txt").write_text("not a wheel")
    (wheels_dir / "old").mkdir()

    answer = client.get(SIMPLE)

    assert answer.status_code == 200
    assert answer.text.count('href="caretaker/"') == 1
    assert 'href="wakeonlan/"' in answer.text
    assert "notes" not in answer.text and "old" not in answer.text


def test_a_project_page_links_each_file_with_its_sha256(client: TestClient, wheels_dir: Path) -> None:
    wheel = make_wheel(wheels_dir, "caretaker", "0.1.0")
    make_wheel(wheels_dir, "wakeonlan", "3.1.0")

    page = client.get(f"{SIMPLE}Caretaker/")  # pip normalises names; so does the index
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()

    assert page.status_code == 200
    assert f'href="../../files/{wheel.name}#sha256={digest}"' in page.text
    assert "wakeonlan" not in page.text
    downloaded = client.get(f"{FILES}{wheel.name}")
    assert downloaded.status_code == 200
    assert downloaded.content == wheel.read_bytes()


def test_a_replaced_wheel_is_listed_with_its_new_hash(client: TestClient, wheels_dir: Path) -> None:
    wheel = make_wheel(wheels_dir, "caretaker", "0.1.0")
    client.get(f"{SIMPLE}caretaker/")
    wheel.write_bytes(wheel.read_bytes() + b"\0" * 16)
    os.utime(wheel, ns=(wheel.stat().st_atime_ns, wheel.stat().st_mtime_ns + 1_000_000_000))

    page = client.get(f"{SIMPLE}caretaker/")

    assert hashlib.sha256(wheel.read_bytes()).hexdigest() in page.text


def test_an_unknown_project_is_not_found(client: TestClient, wheels_dir: Path) -> None:
    make_wheel(wheels_dir, "caretaker", "0.1.0")

    assert client.get(f"{SIMPLE}psutil/").status_code == 404


@pytest.mark.parametrize("name", ["..%2Fcaretaker.db", "..%2Foutside-1.0-py3-none-any.whl",
                                  "..%5Coutside-1.0-py3-none-any.whl", "%2Fetc%2Fpasswd", "notes.txt",
                                  ".hidden-1.0-py3-none-any.whl"])
def test_nothing_outside_the_listed_wheels_can_be_fetched(
        client: TestClient, wheels_dir: Path, tmp_path: Path, name: str) -> None:
    make_wheel(tmp_path, "outside", "1.0")  # a real wheel beside the directory, not in it
    (wheels_dir / "notes.txt").write_text("not a wheel")

    answer = client.get(f"{FILES}{name}")

    assert answer.status_code == 404
    assert b"PK" not in answer.content[:2]


def test_without_a_wheels_directory_nothing_is_offered(tmp_path: Path) -> None:
    with client_for(tmp_path, None) as client:
        index = client.get(SIMPLE)
        download = client.get(f"{FILES}caretaker-0.1.0-py3-none-any.whl")

    assert index.status_code == 200 and "<a " not in index.text
    assert download.status_code == 404
