"""Agentless kit over SNMP: printers, PoE switches, PDUs, UPSes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from controller.cli.common import (
    AsJson,
    DataDir,
    fail,
    print_json,
    settings_for,
)

app = typer.Typer(no_args_is_help=True, help=__doc__)


@app.command("poll")
def snmp_poll(
    address: Annotated[str, typer.Argument(help="IP address or host name of the device")],
    port: Annotated[int, typer.Option(help="UDP port of its SNMP agent")] = 161,
    credentials: Annotated[Path | None, typer.Option(
        help="SNMP credentials file (default: snmp-credentials.yaml in --data-dir)")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer")] = 2.0,
    retries: Annotated[int, typer.Option(help="Times to ask again before giving up")] = 1,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Identify one device and print what it reports, trying only the credentials configured for it."""
    import asyncio
    import os

    from controller.snmp.credentials import CredentialError, load_credentials
    from controller.snmp.display import describe
    from controller.snmp.poller import PollSettings, poll_once
    from controller.snmp.profiles import load_profiles

    path = credentials or settings_for(None, data_dir).data_dir / "snmp-credentials.yaml"
    try:
        store = load_credentials(path, os.environ)
        settings = PollSettings(timeout=timeout, retries=retries)
    except (CredentialError, ValueError) as exc:
        fail(str(exc))
    result = asyncio.run(poll_once(address, port, load_profiles(), store, settings))
    if as_json:
        print_json(result)
    else:
        typer.echo("\n".join(describe(result)))
    if not result.ok:
        raise typer.Exit(1)


@app.command("encrypt")
def snmp_encrypt(
    key_file: Annotated[Path, typer.Option(help="Fernet key file; created (mode 600) if missing")],
) -> None:
    """Encrypt a secret typed on stdin into the fernet: form for a credentials file (key: file:KEY_FILE)."""
    from controller.snmp.credentials import encrypt_secret, ensure_key

    try:
        key, created = ensure_key(key_file)
        secret = typer.prompt("Secret", hide_input=True, err=True)
        typer.echo(encrypt_secret(key, secret))
    except (OSError, ValueError) as exc:
        fail(str(exc))
    if created:
        typer.echo(f"created key {key_file}; keep it beside the credentials file, readable only by the controller",
                   err=True)


