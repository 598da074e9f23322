"""Wake-on-LAN: wake a device, a room or group, or a whole site in a paced wave; list wakes and failures.

`caretaker wake DEVICE|--site S|--group G` queues the wakes; the running controller sends them at
wake_per_second per site, directly or through a relay agent, and confirms each when the device
reports in. The command waits while the controller routes them and says what became of each.
`caretaker wake --mac MAC --address ADDR --port PORT` sends one packet now, from here
(for testing a NIC), and records nothing.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from typing import Annotated

import click
import typer
from sqlalchemy.engine import Engine
from typer.core import TyperGroup

from controller.cli.common import (
    ACTOR,
    AsJson,
    DatabaseUrl,
    DataDir,
    fail,
    in_session,
    open_database,
    print_json,
    print_rows,
    print_table,
    settings_for,
)
from controller.cli.devices import placement_rules
from controller.db import session_scope
from controller.power.magic import MagicSender
from controller.power.models import WakeStatus
from controller.power.wake import (
    WakeConfig,
    WakeRefused,
    WakeRow,
    failed_wakes,
    list_wakes,
    request_wakes,
    select_devices,
    settled,
)
from controller.timeutil import utcnow

DEFAULT_COMMAND = "send"


class _WakeGroup(TyperGroup):
    """`caretaker wake DEVICE …` is `caretaker wake send DEVICE …`; `list` and `failures` are named."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_WakeGroup, no_args_is_help=True, help=__doc__.splitlines()[0])


@app.command(DEFAULT_COMMAND, help="Wake devices and say what happened to each (the default: `caretaker wake DEVICE` "
                                    "means this).")
def send(
    device: Annotated[str | None, typer.Argument(help="Device id or hostname")] = None,
    site: Annotated[str | None, typer.Option(help="Every device of this site")] = None,
    group: Annotated[str | None, typer.Option(help="Every device in this room or group")] = None,
    reason: Annotated[str, typer.Option(help="Why, for the audit log")] = "requested from the command line",
    wait: Annotated[float | None, typer.Option(
        min=0, max=3600, help="Seconds to wait for the controller to route the wakes (default: the wave's length "
                              "and 5 s, at most 60; 0: only queue them)")] = None,
    mac: Annotated[str | None, typer.Option(help="Send one packet to this MAC now, from here; records nothing")] = None,
    address: Annotated[str, typer.Option(help="With --mac: where to send it")] = "255.255.255.255",
    port: Annotated[int, typer.Option(help="With --mac: UDP port")] = 9,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Queue the wakes, then wait while the running controller routes them, and print each one's outcome:
    sent direct, ordered via relay X, sent (unconfirmed) by directed broadcast, or failed with the reason.
    Exit status 1 when any wake failed."""
    if mac is not None:
        if device or site or group:
            fail("--mac sends one packet on its own; leave out DEVICE, --site and --group")
        _send_one(mac, address, port)
        return
    if device is not None and (site or group):
        fail("give a DEVICE, or --site/--group, not both")
    config = WakeConfig.from_settings(settings_for(database_url, data_dir))
    rules = placement_rules(database_url, data_dir) if group else ()
    engine = open_database(database_url, data_dir)
    try:
        with session_scope(engine) as session:
            chosen = select_devices(session, device, site, group, rules)
            result = request_wakes(session, chosen, reason, ACTOR, utcnow(), config)
    except WakeRefused as exc:
        fail(str(exc))
    if wait is None:
        last = max((q.due_at for q in result.queued), default=utcnow())
        wait = min(MAX_DEFAULT_WAIT, max(0.0, (last - utcnow()).total_seconds()) + 5)
    rows = _routed(engine, [q.wake_id for q in result.queued], wait)
    if as_json:
        print_json({"wakes": [dataclasses.asdict(r) for r in rows],
                    "skipped": [dataclasses.asdict(s) for s in result.skipped]})
    else:
        print_table(["WAKE", "DEVICE", "HOSTNAME", "OUTCOME"], [[r.id, r.device_id, r.hostname, r.outcome]
                                                               for r in rows])
        for skipped in result.skipped:
            typer.echo(f"skipped {skipped.hostname} (device {skipped.device_id}): {skipped.why}", err=True)
        counts = Counter(_tally(r) for r in rows)
        typer.echo(f"{len(rows)} wake(s) requested at {config.per_second:g} per second per site, "
                   f"{len(result.skipped)} skipped: " + ", ".join(f"{counts[t]} {t}" for t in TALLIES), err=True)
        if counts["not yet routed"]:
            typer.echo("wakes not yet routed are sent by the running controller (`caretaker serve`) at their "
                       "slot; see `caretaker wake list`", err=True)
    if any(r.status == WakeStatus.FAILED for r in rows):
        raise typer.Exit(1)


MAX_DEFAULT_WAIT = 60.0
TALLIES = ("sent", "ordered via a relay", "failed", "not yet routed")


def _tally(row: WakeRow) -> str:
    if row.status == WakeStatus.FAILED:
        return "failed"
    if row.status in (WakeStatus.SENT, WakeStatus.CONFIRMED):
        return "sent"
    return "ordered via a relay" if row.relay else "not yet routed"


def _routed(engine: Engine, ids: list[int], wait: float) -> list[WakeRow]:
    """The wakes, once the controller has routed every one, or as they are when ``wait`` runs out."""
    deadline = time.monotonic() + wait
    while True:
        with session_scope(engine) as session:
            rows = sorted(list_wakes(session, ids=ids, limit=max(len(ids), 1)), key=lambda r: r.id) if ids else []
        if all(settled(r) for r in rows) or time.monotonic() >= deadline:
            return rows
        time.sleep(0.2)


def _send_one(mac: str, address: str, port: int) -> None:
    if not 0 < port < 65536:
        fail(f"--port {port} is not a UDP port")
    sender = MagicSender()
    try:
        sender.send(mac, address, port)
    except ValueError:
        fail(f"{mac!r} is not a MAC address (e.g. 00:1a:2b:3c:4d:5e)")
    except OSError as exc:
        fail(f"cannot send to {address}:{port}: {exc.strerror or exc}")
    finally:
        sender.close()
    typer.echo(f"magic packet for {mac} sent to {address}:{port}")


@app.command("list")
def list_command(
    site: Annotated[str | None, typer.Option(help="Only this site")] = None,
    status: Annotated[WakeStatus | None, typer.Option(help="Only wakes in this state")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Newest first, at most this many")] = 200,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Wake requests, newest first: status, tries and what happened (route, relay, address, or why it failed)."""
    rows = in_session(database_url, data_dir, lambda s: list_wakes(s, site, status.value if status else None, limit))
    print_rows(rows, as_json, ["WAKE", "SITE", "HOSTNAME", "MAC", "STATUS", "TRIES", "REQUESTED", "OUTCOME"],
               lambda r: [r.id, r.site, r.hostname, r.mac, r.status, r.attempts,
                          r.requested_at.isoformat(timespec="seconds"), r.outcome])


@app.command("failures")
def failures_command(
    site: Annotated[str | None, typer.Option(help="Only this site")] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Devices whose latest wake failed, with the likely cause their agent found when last up."""
    rows = in_session(database_url, data_dir, lambda s: failed_wakes(s, site))
    print_rows(rows, as_json, ["DEVICE", "SITE", "HOSTNAME", "FAILED", "LIKELY CAUSE", "WHAT HAPPENED"],
               lambda r: [r.device_id, r.site, r.hostname,
                          r.failed_at.isoformat(timespec="seconds") if r.failed_at else "", r.cause, r.failure],
               f"{len(rows)} device(s) failed to wake")
