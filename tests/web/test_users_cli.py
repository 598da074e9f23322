"""`caretaker user …` and `caretaker apitoken …`, run in-process (typer's runner) against both databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from controller.cli import app
from controller.register.models import ChangeRecord, Site
from controller.timeutil import utcnow
from controller.web.accounts import Role, sign_in, token_principal
from controller.web.models import User

runner = CliRunner()


@pytest.fixture
def cli(engine, database_url):
    with Session(engine) as session:
        session.add_all([Site(name="Hillside Primary"), Site(name="Riverside Academy")])
        session.commit()

    def run(*args: str, password: str | None = None):
        return runner.invoke(app, [*args, "--database-url", database_url], input=password)

    return run


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text("a long enough passphrase\n")
    return path


def test_a_user_added_with_a_password_file_can_sign_in_and_only_a_hash_is_kept(cli, engine, password_file):
    added = cli("user", "add", "nora", "--role", "network_manager", "--password-file", str(password_file))
    assert added.exit_code == 0, added.output
    with Session(engine) as session:
        user = session.exec(select(User).where(User.name == "nora")).one()
        assert user.password_hash.startswith("$argon2id$") and "passphrase" not in user.password_hash
        assert sign_in(session, "nora", "a long enough passphrase", "test") is not None
    (row,) = json.loads(cli("user", "list", "--json").output)
    assert (row["name"], row["role"], row["disabled"]) == ("nora", "network_manager", False)


def test_the_password_can_be_typed_at_a_prompt_twice(cli, engine):
    added = cli("user", "add", "barry", "--role", "bursar", password="typed passphrase!\ntyped passphrase!\n")
    assert added.exit_code == 0, added.output
    with Session(engine) as session:
        assert sign_in(session, "barry", "typed passphrase!", "test") is not None


def test_an_auditor_is_limited_to_the_sites_given(cli, password_file):
    cli("user", "add", "audrey", "--role", "auditor", "--site", "Riverside Academy", "--password-file",
        str(password_file))
    (row,) = json.loads(cli("user", "list", "--json").output)
    assert row["sites"] == ["Riverside Academy"]


def test_a_staff_user_is_granted_rooms_at_a_site_and_the_list_shows_them(cli, password_file):
    added = cli("user", "add", "tess", "--role", "staff", "--site", "Riverside Academy", "--room", "ICT1",
                "--room", "Library", "--password-file", str(password_file))
    assert added.exit_code == 0, added.output
    (row,) = json.loads(cli("user", "list", "--json").output)
    assert (row["role"], row["rooms"]) == ("staff", ["Riverside Academy: ICT1", "Riverside Academy: Library"])
    assert "Riverside Academy: ICT1; Riverside Academy: Library" in cli("user", "list").output
    token = cli("apitoken", "create", "timetable", "--role", "staff", "--site", "Riverside Academy", "--room", "ICT1")
    assert token.exit_code == 0, token.output
    (listed,) = json.loads(cli("apitoken", "list", "--json").output)
    assert (listed["role"], listed["rooms"]) == ("staff", ["Riverside Academy: ICT1"])


@pytest.mark.parametrize(("args", "message"), [
    (("--role", "auditor", "--site", "Nowhere High"), "no site named Nowhere High"),
    (("--role", "bursar", "--site", "Riverside Academy"), "only auditors and staff are limited to sites"),
    (("--role", "staff", "--site", "Riverside Academy"), "a staff account needs the rooms it may wake"),
    (("--role", "bursar", "--room", "ICT1"), "only staff are limited to rooms"),
])
def test_mistakes_are_one_line_exit_2_and_add_nobody(cli, engine, password_file, args, message):
    result = cli("user", "add", "x", *args, "--password-file", str(password_file))
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith(f"caretaker: error: {message}")
    with Session(engine) as session:
        assert session.exec(select(User)).all() == []


def test_a_short_password_is_refused(cli, tmp_path):
    short = tmp_path / "short"
    short.write_text("tooshort")
    result = cli("user", "add", "x", "--role", "bursar", "--password-file", str(short))
    assert (result.exit_code, result.output.strip()) == (2, "caretaker: error: the password must be at least 12 "
                                                            "characters")


def test_disabling_a_user_stops_sign_in_and_is_logged(cli, engine, password_file):
    cli("user", "add", "barry", "--role", "bursar", "--password-file", str(password_file))
    assert cli("user", "disable", "barry").exit_code == 0
    with Session(engine) as session:
        assert sign_in(session, "barry", "a long enough passphrase", "test") is None
        logged = session.exec(select(ChangeRecord).where(ChangeRecord.action == "user_disabled")).one()
    assert logged.actor == "cli"
    assert cli("user", "disable", "nobody").output.strip() == "caretaker: error: no user named nobody"


def test_an_api_token_is_printed_once_carries_its_role_and_sites_and_can_be_revoked(cli, engine):
    created = cli("apitoken", "create", "finance-export", "--role", "bursar", "--site", "Riverside Academy",
                  "--days", "3", "--json")
    assert created.exit_code == 0, created.output
    issued = json.loads(created.output)
    with Session(engine) as session:
        principal = token_principal(session, issued["token"], utcnow())
        riverside = session.exec(select(Site).where(Site.name == "Riverside Academy")).one()
    assert (principal.actor, principal.role, principal.site_ids) == ("token:finance-export", Role.bursar,
                                                                     frozenset({riverside.id}))
    listed = cli("apitoken", "list").output
    assert issued["token"] not in listed and issued["token"][:10] + "…" in listed
    assert cli("apitoken", "revoke", str(issued["id"])).exit_code == 0
    with Session(engine) as session:
        assert token_principal(session, issued["token"], utcnow()) is None
    assert "revoked" in cli("apitoken", "list").output
