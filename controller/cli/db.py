"""The database: what each table holds and grows by, and the singleton jobs run now by hand."""

from __future__ import annotations

from typing import Annotated

import typer

from controller.cli.common import AsJson, DatabaseUrl, DataDir, open_database, print_json, print_rows, settings_for
from controller.jobs.estate import JobName, job
from controller.jobs.singleton import Outcome, run_once
from controller.storage.stats import table_stats
from controller.timeutil import utcnow

app = typer.Typer(no_args_is_help=True, help=__doc__)


def _size(value: float | None) -> str:
    if value is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return "?"


@app.command()
def stats(database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False,
          table: Annotated[list[str] | None, typer.Option("--table", help="Only these tables")] = None) -> None:
    """Rows and bytes per table, and rows and bytes per day over the last week for the tables that grow."""
    engine = open_database(database_url, data_dir)
    with engine.connect() as connection:
        found = table_stats(connection, utcnow(), table)
    print_rows(found, as_json, ["table", "rows", "bytes", "rows/day", "bytes/day"],
               lambda s: [s.table, f"{s.rows:,}", _size(s.bytes),
                          "" if s.rows_per_day is None else f"{s.rows_per_day:,.0f}",
                          "" if s.rows_per_day is None else _size(s.bytes_per_day)],
               summary=f"{sum(s.bytes or 0 for s in found):,} bytes in {len(found)} tables "
                       f"(per day: the last 7 whole days)")


def _run(name: JobName, database_url: str | None, data_dir, as_json: bool) -> None:
    engine = open_database(database_url, data_dir)
    outcome = run_once(engine, job(settings_for(database_url, data_dir), name), holder="cli")
    if outcome is Outcome.SKIPPED:
        typer.echo(f"{name}: another controller is running it now; nothing done", err=True)
        raise typer.Exit(1)
    from sqlmodel import Session, col, select

    from controller.jobs.models import JobRun

    with Session(engine) as session:
        run = session.exec(select(JobRun).where(JobRun.job == name.value).order_by(col(JobRun.id).desc())).first()
    if as_json:
        print_json(run.model_dump() if run else {})
    else:
        typer.echo(f"{name}: {outcome}: {run.details if run else ''}")
    if outcome is Outcome.FAILED:
        raise typer.Exit(1)


@app.command()
def rollup(database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Roll settled days (and days late reports re-opened) into the daily rollup now."""
    _run(JobName.ROLLUP, database_url, data_dir, as_json)


@app.command()
def prune(database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Apply retention now: reports older than report_retention_days, hourly buckets past hourly_retention_years."""
    _run(JobName.RETENTION, database_url, data_dir, as_json)


@app.command()
def partitions(database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """PostgreSQL: make the report table's daily partitions from the retention back to a week ahead."""
    _run(JobName.PARTITIONS, database_url, data_dir, as_json)
