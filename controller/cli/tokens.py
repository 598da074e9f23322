"""Site enrollment tokens for agents."""

from __future__ import annotations

from typing import Annotated

import typer

from controller.cli.common import (
    ACTOR,
    AsJson,
    DatabaseUrl,
    DataDir,
    fail,
    open_database,
    print_json,
    print_table,
)
from controller.db import session_scope
from controller.register.enrollment import create_token, list_tokens, revoke_token
from controller.timeutil import utcnow

app = typer.Typer(no_args_is_help=True, help=__doc__)


@app.command("create")
def token_create(
    site: Annotated[str, typer.Option(help="Site the enrolled agents belong to (created if new)")],
    days: Annotated[int, typer.Option(help="Days until the token expires")] = 30,
    uses: Annotated[int | None, typer.Option(help="Most agents that may enroll with it")] = None,
    note: Annotated[str, typer.Option(help="A reminder of what it is for")] = "",
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Create an enrollment token; it is printed once and only its hash is kept."""
    if not site.strip():
        fail("--site must not be empty")
    engine = open_database(database_url, data_dir)
    try:
        with session_scope(engine) as session:
            issued = create_token(session, site.strip(), utcnow(), days, ACTOR, uses, note)
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        print_json({"id": issued.record.id, "token": issued.token, "site": site,
                    "expires_at": issued.record.expires_at})
        return
    typer.echo(issued.token)
    typer.echo(f"token {issued.record.id} for site {site}, expires {issued.record.expires_at:%Y-%m-%d %H:%M} UTC"
               + (f", {uses} uses" if uses else ""), err=True)


@app.command("list")
def token_list(site: Annotated[str | None, typer.Option(help="Only this site")] = None,
               database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """List enrollment tokens (never the tokens themselves)."""
    engine = open_database(database_url, data_dir)
    with session_scope(engine) as session:
        rows = list_tokens(session, site)
    now = utcnow()
    records = [{"id": t.id, "site": s, "prefix": t.prefix, "created_at": t.created_at, "expires_at": t.expires_at,
                "uses": t.uses, "max_uses": t.max_uses,
                "state": "revoked" if t.revoked_at else ("expired" if t.expires_at <= now else "active"),
                "note": t.note} for t, s in rows]
    if as_json:
        print_json(records)
        return
    print_table(["ID", "SITE", "TOKEN", "STATE", "EXPIRES", "USES", "NOTE"],
                [[r["id"], r["site"], r["prefix"] + "…", r["state"], f"{r['expires_at']:%Y-%m-%d}",
                  f"{r['uses']}/{r['max_uses'] or '∞'}", r["note"]] for r in records])


@app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="ID from `caretaker token list`")],
                 database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Revoke a token: agents already enrolled keep working, new enrollments are refused."""
    engine = open_database(database_url, data_dir)
    try:
        with session_scope(engine) as session:
            record = revoke_token(session, token_id, utcnow(), ACTOR)
    except LookupError as exc:
        fail(str(exc))
    typer.echo(f"token {record.id} ({record.prefix}…) revoked")


