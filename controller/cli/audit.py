"""The power audit log: what was done to devices, or skipped, and why."""

from __future__ import annotations

from typing import Annotated

import typer

from controller.cli.common import AsJson, DatabaseUrl, DataDir, fail, open_database, print_json, print_table
from controller.db import session_scope

app = typer.Typer(help=__doc__)


@app.command("audit")
def audit(
    since: Annotated[str, typer.Option(help='From "YYYY-MM-DD" or "YYYY-MM-DD HH:MM", London time')],
    device: Annotated[int | None, typer.Option(help="Only this device (ID from `caretaker devices`)")] = None,
    site: Annotated[str | None, typer.Option(help="Only this site")] = None,
    until: Annotated[str | None, typer.Option(help="Up to (exclusive), same forms")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Newest lines at most")] = 1000,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Power actions (observed, warned, done, deferred, skipped, failed) with their reasons, and the policy and
    device changes beside them, newest first."""
    from controller.cli.policy import day_or_moment
    from controller.policy.audit import UnknownFilter, audit_log

    start = day_or_moment(since, "--since")
    end = day_or_moment(until, "--until") if until else None
    engine = open_database(database_url, data_dir)
    try:
        with session_scope(engine) as session:
            lines = audit_log(session, start, end, device, site, limit=limit)
    except UnknownFilter as exc:
        fail(str(exc))
    if as_json:
        print_json(lines)
        return
    print_table(["AT (UTC)", "SITE", "DEVICE", "WHAT", "OUTCOME", "MODE", "BY", "WHY"],
                [[f"{line.at:%Y-%m-%d %H:%M}", line.site or "-", line.hostname or line.device_id or "-",
                  f"{line.entry}:{line.kind}", line.outcome or "-", line.mode or "-", line.actor, line.reason]
                 for line in lines])
    typer.echo(f"{len(lines)} line(s)", err=True)


@app.command("maintenance")
def maintenance(
    since: Annotated[str, typer.Option(help='Windows starting from "YYYY-MM-DD" or "YYYY-MM-DD HH:MM", London time')],
    until: Annotated[str | None, typer.Option(help="Up to (exclusive), same forms; default: a day later")] = None,
    window: Annotated[str | None, typer.Option(help="Only the maintenance window of this name")] = None,
    site: Annotated[str | None, typer.Option(help="Only this site")] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Each device in the policies' maintenance windows: woken, updated, powered down (and power-downs put off
    while updates installed), then the wake-on-LAN failures in the windows with their likely cause."""
    from datetime import timedelta

    from controller.cli.common import settings_for
    from controller.cli.policy import day_or_moment
    from controller.power.maintenance import MaintenanceError, maintenance_audit
    from controller.reports.service import ReportError, load_inputs, with_switched_modes

    start = day_or_moment(since, "--since")
    end = day_or_moment(until, "--until") if until else start + timedelta(days=1)
    engine = open_database(database_url, data_dir)
    try:
        inputs = load_inputs(settings_for(database_url, data_dir).resolved_policy_dir())
        with session_scope(engine) as session:
            inputs = with_switched_modes(session, inputs)
            found = maintenance_audit(session, inputs.policies, inputs.calendars or {}, inputs.placement, start, end,
                                      window, site)
    except (MaintenanceError, ReportError) as exc:
        fail(str(exc))
    if as_json:
        print_json(found.to_json())
        return
    print_table(["WINDOW", "START (UTC)", "SITE", "DEVICE", "WOKEN", "UPDATED", "POWERED DOWN", "PUT OFF FOR UPDATES"],
                [[d.window, f"{d.start:%Y-%m-%d %H:%M}", d.site, d.hostname, d.woken, d.updated, d.powered_down,
                  d.deferred_for_updates] for d in found.devices])
    if found.wake_failures:
        typer.echo("\nWake-on-LAN failures in the windows:")
        print_table(["DEVICE", "SITE", "FAILURE", "LIKELY CAUSE"],
                    [[d.hostname, d.site, d.wake_failure or "-", d.wake_cause or "unknown"]
                     for d in found.wake_failures])
    typer.echo(f"{len(found.devices)} device-window(s), {len(found.wake_failures)} failed wake(s)", err=True)
