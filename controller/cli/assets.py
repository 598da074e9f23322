"""The asset register as CSV: import (register, Google Admin Chromebooks, Intune iPads) and export."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated

import typer

from controller.cli.common import ACTOR, DatabaseUrl, DataDir, fail, open_database
from controller.db import session_scope
from controller.lifecycle import mdm, registercsv
from controller.lifecycle.states import Refused

app = typer.Typer(no_args_is_help=True, help=__doc__)


@app.command("import")
def import_assets(
    file: Annotated[Path, typer.Argument(help="Register CSV (as `assets export` writes), or an MDM export")],
    site: Annotated[str | None, typer.Option(help="Site for an MDM export's devices")] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Add or update devices by serial or asset tag; a bad row refuses the whole file."""
    try:
        text = file.read_bytes().decode("utf-8-sig")  # bytes: a CR inside a quoted cell stays a CR
    except UnicodeDecodeError:
        fail(f"{file} is not UTF-8 text")
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    headers = next(csv.reader(io.StringIO(text)), [])
    engine = open_database(database_url, data_dir)
    try:
        skipped = 0
        if mdm.detect(headers) is not None:
            if site is None:
                fail(f"{file} is an MDM export: give --site for its devices")
            rows, skipped = mdm.parse_mdm(text, site)
            source = f"{mdm.detect(headers)} import"
        else:
            rows, source = registercsv.parse_register(text), "CSV import"
        with session_scope(engine) as session:
            result = registercsv.import_rows(session, rows, ACTOR, f"{source} {file.name}")
    except Refused as exc:
        fail(f"{file}: {exc}")
    note = f", {skipped} skipped (not Chromebooks or iPads, or deprovisioned)" if skipped else ""
    typer.echo(f"{result.created} created, {result.updated} updated, {result.moved} moved, "
               f"{result.unchanged} unchanged{note}")


@app.command("export")
def export_assets(file: Annotated[Path, typer.Argument(help="Where to write the CSV ('-' for standard output)")],
                  site: Annotated[str | None, typer.Option(help="Only this site")] = None,
                  database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Write the register as CSV, one row per device, in a stable order."""
    engine = open_database(database_url, data_dir)
    with session_scope(engine) as session:
        text = registercsv.export_csv(session, site)
    if str(file) == "-":
        typer.echo(text, nl=False)
        return
    try:
        file.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {file}: {exc.strerror}")
    typer.echo(f"{text.count(chr(10)) - 1} device(s) written to {file}", err=True)
