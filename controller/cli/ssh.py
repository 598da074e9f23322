"""Servers without an agent, over SSH: inventory into the register, and audited power actions.

Key authentication only; the host's key must already be in --known-hosts (an unknown or changed key
is refused). Power actions run `systemctl poweroff|reboot|suspend` (Linux) or `shutdown -h|-r now`,
`pmset sleepnow` (macOS), through `sudo -n` unless signing in as root.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent.protocol import to_wire
from controller.cli import common
from controller.cli.common import AsJson, DatabaseUrl, DataDir, fail, open_database, print_json
from controller.db import session_scope
from controller.power import ssh
from controller.timeutil import utcnow

app = typer.Typer(no_args_is_help=True, help=__doc__.splitlines()[0])

User = Annotated[str, typer.Option("--user", help="Sign in as this user")]
Key = Annotated[Path, typer.Option("--key", help="Private key file (no passphrase)", exists=True, dir_okay=False)]
KnownHosts = Annotated[Path, typer.Option("--known-hosts", help="known_hosts file holding the host's key")]
Port = Annotated[int, typer.Option("--port", min=1, max=65535, help="SSH port")]


@app.command("inventory")
def inventory_command(
    host: Annotated[str, typer.Argument(help="Host name or address")],
    user: User,
    key: Key,
    known_hosts: KnownHosts,
    site: Annotated[str | None, typer.Option(help="Register the host as a server of this site")] = None,
    port: Port = 22,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Read uname, CPU, memory, disks and NICs; with --site, register the host as a server there."""
    target = ssh.SshTarget(host, user, key, known_hosts, port)
    try:
        found = ssh.inventory(target)
        device_id = None
        if site is not None:
            engine = open_database(database_url, data_dir)
            with session_scope(engine) as session:
                device, created = ssh.register_host(session, site, found, f"{common.ACTOR}:ssh")
                device_id = device.id
    except ssh.SshRefused as exc:
        fail(str(exc))
    if as_json:
        print_json({"device_id": device_id, "inventory": to_wire(found)})
        return
    cpu = f"{found.cpu.model} ({found.cpu.cores} cores, {found.cpu.threads} threads)" if found.cpu else "?"
    memory = f"{found.memory_bytes / 2**30:.1f} GiB" if found.memory_bytes else "?"
    typer.echo(f"{found.hostname}: {found.os.name} {found.os.version} {found.os.kernel} {found.os.arch}")
    typer.echo(f"  cpu     {cpu}\n  memory  {memory}")
    for disk in found.disks:
        typer.echo(f"  disk    {disk.name} {disk.size_bytes / 1e9:.0f} GB{' SSD' if disk.ssd else ''}")
    for nic in found.nics:
        typer.echo(f"  nic     {nic.name} {nic.mac} {' '.join(nic.ipv4)}")
    if device_id is not None:
        typer.echo(f"{'registered as' if created else 'updated'} device {device_id} in site {site}", err=True)


@app.command("power")
def power_command(
    host: Annotated[str, typer.Argument(help="Host name or address")],
    action: Annotated[str, typer.Argument(help="off, reboot or sleep")],
    user: User,
    key: Key,
    known_hosts: KnownHosts,
    site: Annotated[str, typer.Option(help="The host's site, for the audit log")],
    reason: Annotated[str, typer.Option(help="Why, for the audit log")] = "requested from the command line",
    port: Port = 22,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Power the host off, reboot it or put it to sleep; recorded in the audit log either way."""
    if action not in ssh.ACTION_KINDS:
        fail(f"unknown action {action!r}; use off, reboot or sleep")
    engine = open_database(database_url, data_dir)
    target = ssh.SshTarget(host, user, key, known_hosts, port)
    outcome, error = None, None
    try:
        outcome = ssh.power(target, action)
    except ssh.SshRefused as exc:
        error = str(exc)
    try:
        with session_scope(engine) as session:
            ssh.audit_power(session, site, target, action, outcome, reason, common.ACTOR, utcnow(), error)
    except ssh.SshRefused as exc:
        fail(str(exc))
    if error is not None:
        fail(error)
    if outcome.status not in (0, None):
        fail(f"{target.label}: `{outcome.command}` exited {outcome.status}: {outcome.stderr or 'no message'}")
    typer.echo(f"{outcome.hostname}: ran `{outcome.command}`")
