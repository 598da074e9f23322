"""The credentials file: readable only by its owner, never half-written, never echoing the secret."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agent import credentials
from agent.credentials import Credentials, CredentialsError
from agent.protocol import EnrollResponse

SECRET = "s3cr3t-Ab9xQ2"


def make_credentials(agent_id: str = "ag-0001") -> Credentials:
    answer = EnrollResponse(agent_id=agent_id, secret=SECRET, device_id=42, site="north-primary")
    return Credentials.from_enrollment("https://controller.school.example:8443", answer)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_saved_credentials_load_back_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "state" / "credentials.json"
    credentials.save(path, make_credentials())

    assert credentials.load(path) == make_credentials()


def test_a_machine_that_never_enrolled_has_no_credentials(tmp_path: Path) -> None:
    assert credentials.load(tmp_path / "credentials.json") is None


def test_the_file_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    previous = os.umask(0)
    try:
        credentials.save(path, make_credentials())
    finally:
        os.umask(previous)

    assert mode(path) == 0o600


def test_replacing_a_world_readable_file_leaves_a_0600_one(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text("{}")
    path.chmod(0o644)

    credentials.save(path, make_credentials())

    assert mode(path) == 0o600
    assert credentials.load(path) == make_credentials()


def test_a_crash_before_the_rename_keeps_the_old_credentials_and_no_stray_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "credentials.json"
    credentials.save(path, make_credentials("ag-old"))

    def crash(*_args: object) -> None:
        raise OSError("disk went away")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk went away"):
        credentials.save(path, make_credentials("ag-new"))

    loaded = credentials.load(path)
    assert loaded is not None and loaded.agent_id == "ag-old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credentials.json"]


def test_the_secret_stays_out_of_repr(tmp_path: Path) -> None:
    creds = make_credentials()

    assert SECRET not in repr(creds)
    assert creds.authorization == f"Bearer ag-0001:{SECRET}"


@pytest.mark.parametrize("content", [
    "not json",
    "[]",
    '{"controller": "https://c", "agent_id": "a", "device_id": 1, "site": "s"}',
    f'{{"controller": "https://c", "agent_id": "a", "secret": "{SECRET}", "device_id": "1", "site": "s"}}',
])
def test_a_damaged_file_is_reported_without_quoting_it(tmp_path: Path, content: str) -> None:
    path = tmp_path / "credentials.json"
    path.write_text(content)

    with pytest.raises(CredentialsError) as caught:
        credentials.load(path)

    assert str(path) in str(caught.value)
    assert SECRET not in str(caught.value)
