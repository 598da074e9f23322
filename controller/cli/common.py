"""What every `caretaker` command shares: options, the database, one-line errors, tables and JSON.

Errors a user can fix are one line on stderr and exit status 2: a command calls :func:`fail`, or lets a
domain error (:class:`controller.errors.DomainError`) rise to :func:`run_app`, the entry point. Nothing here
holds business rules.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from controller import migrate
from controller.db import make_engine, session_scope
from controller.errors import DomainError
from controller.settings import NoDatabase, Settings
from controller.timeutil import utcnow

DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", help="SQLAlchemy URL, e.g. postgresql://user@host/db (default: the config file's, else "
                           "SQLite in --data-dir)", envvar="CARETAKER_DATABASE_URL", show_envvar=False)]
DataDir = Annotated[Path | None, typer.Option(
    "--data-dir", help="Where the embedded database lives (default: the config file's, $CARETAKER_CONFIG or "
                       "/etc/caretaker/caretaker.toml, else ./var if it holds one)",
    envvar="CARETAKER_DATA_DIR", show_envvar=False)]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output")]
ACTOR = "cli"


def fail(message: str) -> NoReturn:
    typer.echo(f"caretaker: error: {message}", err=True)
    raise typer.Exit(2)


def run_app(app: typer.Typer) -> None:
    """Run the CLI; a domain error any command lets through is printed as :func:`fail` prints it."""
    try:
        app()
    except DomainError as exc:
        typer.echo(f"caretaker: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


def settings_for(database_url: str | None, data_dir: Path | None) -> Settings:
    """Settings with the command's --database-url and --data-dir (or their environment variables) first: a
    data directory given here means its SQLite database, even when the config file names a database URL."""
    overrides = {k: v for k, v in (("database_url", database_url), ("data_dir", data_dir)) if v is not None}
    if data_dir is not None and database_url is None:
        overrides["database_url"] = ""
    return Settings(**overrides)


def open_database(database_url: str | None, data_dir: Path | None) -> Engine:
    """The database the flags, environment or config file name (made and migrated if need be), else the one
    in ./var; with none of them, the one-line error saying where it looked."""
    try:
        engine = make_engine(settings_for(database_url, data_dir).resolved_database_url())
    except NoDatabase as exc:
        fail(str(exc))
    try:
        migrate.upgrade(engine)
    except Exception as exc:
        fail(f"cannot open the database: {str(exc).splitlines()[0]}")
    return engine


T = TypeVar("T")


def in_session(database_url: str | None, data_dir: Path | None, work: Callable[[Session], T],
               refused: tuple[type[Exception], ...] = ()) -> T:
    """Run ``work`` in one transaction; the domain's ``refused`` errors become the one-line CLI error.

    Most commands are exactly this around one domain call, so the pattern lives here once.
    """
    engine = open_database(database_url, data_dir)
    try:
        with session_scope(engine) as session:
            return work(session)
    except refused as exc:
        fail(str(exc))


def _json_default(value: object) -> str:
    if isinstance(value, date):  # a datetime is a date too
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def print_json(value: object) -> None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    elif isinstance(value, list):
        value = [dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for v in value]
    typer.echo(json.dumps(value, indent=2, default=_json_default))


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    text = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in text:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def print_rows(rows: list[T], as_json: bool, headers: list[str], cells: Callable[[T], list[object]],
               summary: str | None = None) -> None:
    """``rows`` as JSON with --json, else a table of ``cells(row)`` and the ``summary`` line on stderr
    (kept off stdout so the table stays easy to pipe)."""
    if as_json:
        print_json(rows)
        return
    print_table(headers, [cells(row) for row in rows])
    if summary is not None:
        typer.echo(summary, err=True)


def age(when: datetime | None) -> str:
    if when is None:
        return "never"
    seconds = int((utcnow() - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{max(seconds, 0)}s ago"


