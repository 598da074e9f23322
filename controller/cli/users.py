"""Console users and API tokens: who may sign in or call the API, and with which role."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session

from controller.cli.common import ACTOR, AsJson, DatabaseUrl, DataDir, fail, in_session, print_json, print_rows
from controller.timeutil import utcnow
from controller.web.accounts import (
    AccountError,
    Role,
    add_user,
    create_token,
    disable_user,
    list_tokens,
    list_users,
    revoke_token,
)

app = typer.Typer(no_args_is_help=True, help="Console users: network managers, bursars, auditors and staff.")
tokens_app = typer.Typer(no_args_is_help=True, help="API tokens: the same roles as users, for scripts.")

RoleOption = Annotated[Role, typer.Option("--role", help="network_manager, bursar, auditor or staff")]
Sites = Annotated[list[str] | None, typer.Option("--site", help="A site it may see (repeat); auditors only see these, "
                                                               "staff wake their rooms there")]
Rooms = Annotated[list[str] | None, typer.Option("--room", help="Staff only: a room whose PCs it may wake (repeat)")]


def _password(password_file: Path | None) -> str:
    if password_file is not None:
        try:
            return password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            fail(f"cannot read {password_file}: {exc.strerror}")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The sign-in name")],
    role: RoleOption,
    site: Sites = None,
    room: Rooms = None,
    password_file: Annotated[Path | None, typer.Option(help="Read the password from this file (else prompt)")] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Add a user who signs in to the console; the password is stored as an argon2 hash.

    A staff user (a teacher) may only wake the PCs of the rooms given, at the sites given, from /staff."""
    password = _password(password_file)
    user_id = in_session(database_url, data_dir,
                         lambda s: add_user(s, name, role, password, site or [], ACTOR, room or []).id,
                         (AccountError,))
    typer.echo(f"user {user_id} {name.strip()} added as {role.value}")


@app.command("list")
def user_list(database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """List users, their roles and the sites auditors may see."""
    print_rows(in_session(database_url, data_dir, list_users), as_json,
               ["ID", "NAME", "ROLE", "SITES", "ROOMS", "STATE", "LAST SIGN-IN"],
               lambda u: [u.id, u.name, u.role, ", ".join(u.sites) or ("none" if u.role in (Role.auditor, Role.staff)
                                                                      else "all"), "; ".join(u.rooms) or "-",
                          "disabled" if u.disabled else "active",
                          f"{u.last_sign_in:%Y-%m-%d %H:%M}" if u.last_sign_in else "never"])


@app.command("disable")
def user_disable(name: Annotated[str, typer.Argument(help="The sign-in name")],
                 database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Disable a user: their sessions end at once and they can no longer sign in."""
    in_session(database_url, data_dir, lambda s: disable_user(s, name, ACTOR), (AccountError,))
    typer.echo(f"user {name} disabled")


@tokens_app.command("create")
def apitoken_create(
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. finance-export")],
    role: RoleOption,
    site: Sites = None,
    room: Rooms = None,
    days: Annotated[int | None, typer.Option(help="Days until it expires (default: never)")] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Create an API token; it is printed once and only its hash is kept."""
    if days is not None and days < 1:
        fail("--days must be at least 1")
    expires_at = utcnow() + timedelta(days=days) if days else None

    def create(session: Session) -> tuple[str, int]:
        secret, token = create_token(session, name, role, site or [], expires_at, ACTOR, room or [])
        return secret, token.id

    secret, token_id = in_session(database_url, data_dir, create, (AccountError,))
    if as_json:
        print_json({"id": token_id, "token": secret, "role": role.value, "sites": site or [], "rooms": room or [],
                    "expires_at": expires_at})
        return
    typer.echo(secret)
    typer.echo(f"API token {token_id} ({role.value}), "
               + (f"expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else "does not expire"), err=True)


@tokens_app.command("list")
def apitoken_list(database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """List API tokens (never the tokens themselves)."""
    now = utcnow()
    print_rows(in_session(database_url, data_dir, list_tokens), as_json,
               ["ID", "NAME", "TOKEN", "ROLE", "SITES", "ROOMS", "STATE", "EXPIRES", "LAST USED"],
               lambda t: [t.id, t.name, t.prefix + "…", t.role, ", ".join(t.sites) or "all", "; ".join(t.rooms) or "-",
                          "revoked" if t.revoked_at else ("expired" if t.expires_at and t.expires_at <= now
                                                          else "active"),
                          f"{t.expires_at:%Y-%m-%d}" if t.expires_at else "never",
                          f"{t.last_used:%Y-%m-%d %H:%M}" if t.last_used else "never"])


@tokens_app.command("revoke")
def apitoken_revoke(token_id: Annotated[int, typer.Argument(help="ID from `caretaker apitoken list`")],
                    database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Revoke an API token: it is refused from the next request on."""
    prefix = in_session(database_url, data_dir, lambda s: revoke_token(s, token_id, ACTOR).prefix, (AccountError,))
    typer.echo(f"API token {token_id} ({prefix}…) revoked")
