"""The device register."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from controller.cli.common import (
    AsJson,
    DatabaseUrl,
    DataDir,
    age,
    fail,
    in_session,
    open_database,
    print_json,
    print_rows,
    print_table,
    settings_for,
)
from controller.register.conflicts import ConflictError, Resolution, list_conflicts, resolve
from controller.register.devices import NotFound, device_detail, find_device, list_devices
from controller.register.facts import labels
from controller.register.labels import LabelRefused, placed_devices, set_by_hand
from controller.register.models import Site
from controller.timeutil import utcnow

app = typer.Typer(no_args_is_help=True, help=__doc__)
device_app = typer.Typer(no_args_is_help=True, help="One device of the register.")
app.add_typer(device_app, name="device")


def placement_rules(database_url: str | None, data_dir: Path | None) -> tuple:
    """The placement rules in force (the controller's policy directory), as the schedules use them."""
    from controller.policy.store import PolicyStore

    active = PolicyStore(settings_for(database_url, data_dir).resolved_policy_dir(),
                         open_database(database_url, data_dir)).current()
    if active.problem:
        typer.echo(f"warning: {active.problem}", err=True)
    return active.placement


@app.command()
def devices(
    site: Annotated[str | None, typer.Option(help="Only this site")] = None,
    room: Annotated[str | None, typer.Option(help="Only devices in this room (whatever source placed them)")] = None,
    tag: Annotated[str | None, typer.Option(help="Only devices with this tag")] = None,
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
    rules = placement_rules(database_url, data_dir)

    def listing(session) -> list[dict]:
        placed = {p.device.id: p.labels for p in placed_devices(session, rules, site, room, tag)}
        return [{**dataclasses.asdict(r), "room": placed[r.id].room_name, "tags": list(placed[r.id].tag_names)}
                for r in list_devices(session, site) if r.id in placed]

    rows = in_session(database_url, data_dir, listing)
    print_rows(rows, as_json, ["ID", "SITE", "HOSTNAME", "CLASS", "ROOM", "TAGS", "VENDOR", "MODEL", "OS", "LAST SEEN"],
               lambda r: [r["id"], r["site"], r["hostname"], r["device_class"], r["room"] or "-",
                          ",".join(r["tags"]) or "-", r["vendor"], r["model"], r["os"], age(r["last_seen"])],
               f"{len(rows)} device(s)")


@device_app.command("show")
def device_show(device: Annotated[str, typer.Argument(help="ID or hostname from `caretaker devices`")],
                database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Everything the register knows about one device, with where its room and each tag came from."""
    rules = placement_rules(database_url, data_dir)

    def work(session):
        found = find_device(session, device)
        return device_detail(session, found.id), labels(found, session.get(Site, found.site_id), rules)

    detail, placed = in_session(database_url, data_dir, work, (NotFound,))
    if as_json:
        print_json({**dataclasses.asdict(detail), "labels": dataclasses.asdict(placed)})
        return
    d = detail.device
    inventory = detail.inventory or {}
    cpu = inventory.get("cpu") or {}
    lines = [
        ("Device", f"{d.id}  {d.hostname}  ({d.device_class}, site {d.site})"),
        ("Room", placed.room.describe() if placed.room else "none"),
        ("Tags", ", ".join(t.describe() for t in placed.tags) or "none"),
        *([("Untagged", f"{', '.join(placed.untagged)} (by hand: no source adds them)")] if placed.untagged else []),
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


@device_app.command("set")
def device_set(
    device: Annotated[str, typer.Argument(help="ID or hostname from `caretaker devices`")],
    room: Annotated[str | None, typer.Option(help="Put the device in this room (wins over every other source)")] = None,
    clear_room: Annotated[bool, typer.Option("--clear-room", help="Forget the room set by hand: the register, a "
                                             "placement rule or the agent places the device again")] = False,
    tag: Annotated[list[str] | None, typer.Option(help="Add a tag; repeat for more")] = None,
    untag: Annotated[list[str] | None, typer.Option(
        help="Remove a tag, whatever source gives it; repeat for more")] = None,
    actor: Annotated[str, typer.Option(help="Who sets it, for the change log")] = "cli",
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Set a device's room and tags by hand; its agent gets the schedule they lead to with its next report."""
    if room is None and not clear_room and not tag and not untag:
        fail("nothing to set: give --room, --clear-room, --tag or --untag")

    def work(session) -> str:
        found = find_device(session, device)
        changed = set_by_hand(session, found, f"cli:{actor}", room, clear_room, tag or (), untag or ())
        return f"device {found.id} {found.hostname}: " + ("updated" if changed else "no change")

    typer.echo(in_session(database_url, data_dir, work, (NotFound, LabelRefused)))


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
