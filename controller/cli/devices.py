"""The device register."""

from __future__ import annotations

from typing import Annotated

import typer

from controller.cli.common import (
    AsJson,
    DatabaseUrl,
    DataDir,
    age,
    in_session,
    print_json,
    print_rows,
    print_table,
)
from controller.register.conflicts import ConflictError, Resolution, list_conflicts, resolve
from controller.register.devices import NotFound, device_detail, list_devices
from controller.timeutil import utcnow

app = typer.Typer(no_args_is_help=True, help=__doc__)
device_app = typer.Typer(no_args_is_help=True, help="One device of the register.")
app.add_typer(device_app, name="device")


@app.command()
def devices(
    site: Annotated[str | None, typer.Option(help="Only this site")] = None,
    conflicts: Annotated[bool, typer.Option("--conflicts", help="Only conflicts to resolve: devices kept apart "
                                             "(clones, enrolled from another site) and shared credentials")] = False,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """List the device register."""
    if conflicts:
        lines = in_session(database_url, data_dir, lambda s: list_conflicts(s, site))
        print_rows(lines, as_json, ["ID", "SITE", "HOSTNAME", "SERIAL", "KIND", "CONFLICTS WITH", "AGENT", "WHY"],
                   lambda r: [r.id, r.site, r.hostname, r.serial, r.kind, r.conflict_with, r.agent_id,
                              r.conflict_reason],
                   f"{len(lines)} conflict(s); settle each with `caretaker device resolve ID RESOLUTION`")
        return
    rows = in_session(database_url, data_dir, lambda s: list_devices(s, site))
    print_rows(rows, as_json, ["ID", "SITE", "HOSTNAME", "CLASS", "VENDOR", "MODEL", "OS", "LAST SEEN"],
               lambda r: [r.id, r.site, r.hostname, r.device_class, r.vendor, r.model, r.os, age(r.last_seen)],
               f"{len(rows)} device(s)")


@device_app.command("show")
def device_show(device_id: Annotated[int, typer.Argument(help="ID from `caretaker devices`")],
                database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Everything the register knows about one device."""
    detail = in_session(database_url, data_dir, lambda s: device_detail(s, device_id), (NotFound,))
    if as_json:
        print_json(detail)
        return
    d = detail.device
    inventory = detail.inventory or {}
    cpu = inventory.get("cpu") or {}
    lines = [
        ("Device", f"{d.id}  {d.hostname}  ({d.device_class}, site {d.site})"),
        ("Hardware", " ".join(p for p in (d.vendor, d.model) if p) or "unknown"),
        ("Serial", d.serial or "unknown"),
        ("OS", d.os or "unknown"),
        ("CPU", f"{cpu.get('model', '?')} ({cpu.get('cores', '?')} cores)" if cpu else "unknown"),
        ("Memory", f"{inventory['memory_bytes'] / 2**30:.1f} GiB" if inventory.get("memory_bytes") else "unknown"),
        ("MACs", ", ".join(detail.macs) or "none"),
        ("Last seen", age(d.last_seen)),
    ]
    if d.conflict_with:
        lines.append(("Conflict", f"kept apart from device {d.conflict_with}: {d.conflict_reason}"))
    for label, value in lines:
        typer.echo(f"{label + ':':<11}{value}")
    typer.echo("\nAgents:")
    print_table(["ID", "ENROLLED", "LAST SEEN", "REPORTS", "STATE"],
                [[a.id, f"{a.enrolled_at:%Y-%m-%d %H:%M}", age(a.last_seen), a.reports,
                  "retired" if a.retired_at else "active"] for a in detail.agents])
    typer.echo("\nEnergy, last 24 hours:")
    print_table(["STATE", "METHOD", "KWH", "HOURS"],
                [[e.state, e.method, f"{e.kwh:.3f}", f"{e.hours:.2f}"] for e in detail.energy_last_24h])




@device_app.command("resolve")
def device_resolve(
    device_id: Annotated[int, typer.Argument(help="ID from `caretaker devices --conflicts`")],
    resolution: Annotated[Resolution, typer.Argument(
        help="keep-apart or refuse a device kept apart; accept or retire a shared credential")],
    actor: Annotated[str, typer.Option(help="Who resolves it, for the change log")] = "cli",
    database_url: DatabaseUrl = None, data_dir: DataDir = None,
) -> None:
    """Settle a conflict: keep-apart (two machines), refuse (retire the newcomer's agents), accept (the
    shared credential's new hardware is this device's) or retire (the shared credential stops working)."""
    outcome = in_session(database_url, data_dir,
                         lambda s: resolve(s, device_id, resolution, f"cli:{actor}", utcnow()),
                         (NotFound, ConflictError))
    typer.echo(outcome)
