"""Reports for bursars and auditors: a site's or trust's energy report, a trust's audit pack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from controller.cli.common import DatabaseUrl, DataDir, fail, open_database, settings_for
from controller.db import session_scope
from controller.timeutil import utcnow

app = typer.Typer(no_args_is_help=True, help=__doc__)

Period = Annotated[str, typer.Option(
    help="FY2025-26 (April-March), 2025-26 (September-August), a term (autumn-2025) or 2025-09-01..2025-12-31")]
Out = Annotated[Path, typer.Option(help="The file to write")]
Policies = Annotated[Path | None, typer.Option(
    help="Policy directory: school hours, calendars and terms (default: the controller's policy directory)")]


def _write(kind: str, fmt: str, period: str, out: Path, policies: Path | None, database_url: str | None,
           data_dir: Path | None, site: str | None = None, trust: str | None = None) -> None:
    from controller.reports import service

    engine = open_database(database_url, data_dir)
    try:
        inputs = service.load_inputs(policies or settings_for(database_url, data_dir).resolved_policy_dir())
        with session_scope(engine) as session:
            rendered = service.make(session, kind, fmt, inputs, period, utcnow(), site=site, trust=trust)
    except service.ReportError as exc:
        fail(str(exc))
    try:
        out.write_bytes(rendered.content)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}")
    typer.echo(f"wrote {out} ({len(rendered.content):,} bytes, {fmt})")


@app.command("bursar")
def report_bursar(
    period: Period,
    out: Out,
    site: Annotated[str | None, typer.Option(help="A site's name")] = None,
    trust: Annotated[str | None, typer.Option(help="A trust's or local authority's name: all its sites")] = None,
    fmt: Annotated[str, typer.Option("--format", help="html, pdf or csv (a zip, one CSV per table)")] = "html",
    policies: Policies = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Energy used and saved, cost and carbon, out-of-hours waste, power actions and what to do next."""
    if (site is None) == (trust is None):
        fail("give --site or --trust (one of them)")
    _write("bursar", fmt, period, out, policies, database_url, data_dir, site=site, trust=trust)


@app.command("audit")
def report_audit(
    trust: Annotated[str, typer.Option(help="The trust's or local authority's name")],
    period: Period,
    out: Out,
    fmt: Annotated[str, typer.Option("--format", help="html, pdf, csv (a zip, one CSV per table) or json")] = "html",
    policies: Policies = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """SECR electricity figures, standards status, value for money and policy changes across a trust's sites."""
    _write("audit", fmt, period, out, policies, database_url, data_dir, trust=trust)
