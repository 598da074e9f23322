"""The credentials file: readable only by its owner, never half-written, never echoing the secret."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agent import credentials
from agent.credentials import Credentials, CredentialsError
from agent.protocol import EnrollResponse, Inventory, Nic, OperatingSystem, Smbios

SECRET = "s3cr3t-Ab9xQ2"


def machine(uuid: str | None = "4C4C4544-0038-4D10-8052-B2C04F4E4E31",
            macs: tuple[str, ...] = ("00:1a:2b:3c:4d:5e", "00:1a:2b:3c:4d:5f")) -> Inventory:
    return Inventory(hostname="NGA-LIB-PC01", os=OperatingSystem("Linux", "Debian GNU/Linux 12"),
                     machine_id="8f1c0c3a9b2e4d7f", smbios=Smbios(uuid=uuid),
                     nics=tuple(Nic(f"eth{i}", mac) for i, mac in enumerate(macs)))


def make_credentials(agent_id: str = "ag-0001", inventory: Inventory | None = None) -> Credentials:
    answer = EnrollResponse(agent_id=agent_id, secret=SECRET, device_id=42, site="north-primary")
    return Credentials.from_enrollment("https://controller.school.example:8443", answer, inventory or machine())


@pytest.mark.parametrize(("now", "same"), [
    (machine(), True),
    (machine(uuid="4c4c4544-0038-4d10-8052-b2c04f4e4e31"), True),  # the same UUID, whatever its case
    (machine(macs=("00:1a:2b:3c:4d:5e", "a0:36:9f:00:00:01")), True),  # a network card replaced
    (machine(uuid="4C4C4544-0000-0000-0000-000000000002", macs=("00:1a:2b:00:00:02",)), False),  # a clone
    (machine(uuid=None, macs=("00:1a:2b:3c:4d:5f",)), True),  # UUID unreadable: a shared MAC decides
    (machine(uuid=None, macs=("00:1a:2b:00:00:02",)), False),
])
def test_credentials_know_whether_they_were_issued_to_this_hardware(now: Inventory, same: bool) -> None:
    assert make_credentials().issued_to(now) is same


def test_credentials_written_before_hardware_was_recorded_still_load_and_count_as_ours(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text('{"controller": "https://c:8443", "agent_id": "a", "secret": "s", "device_id": 1, "site": "x"}')
    loaded = credentials.load(path)
    assert loaded is not None and loaded.issued_to(machine(uuid="other", macs=("00:00:5e:00:53:01",)))


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
