"""HTTPS for a site without its own CA."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from controller.cli.common import (
    fail,
)

app = typer.Typer(no_args_is_help=True, help=__doc__)


@app.command("init")
def tls_init(
    directory: Annotated[Path, typer.Option("--dir", help="Where ca.crt/ca.key and server.crt/server.key go")],
    names: Annotated[list[str], typer.Option("--name", help="Host name or IP agents use to reach the controller")],
    ca_name: Annotated[str, typer.Option(help="Common name of a new CA")] = "Caretaker controller CA",
    days: Annotated[int, typer.Option(help="Days the server certificate is valid (at most 397)")] = 397,
) -> None:
    """Create a CA (once) and issue the controller's server certificate from it.

    Agents get ca.crt (`caretaker-agent --ca-file`); the controller gets server.crt and server.key
    (`caretaker serve --tls-cert --tls-key`). Run again to renew the server certificate.
    """
    from controller import tls

    ca_cert, ca_key = directory / tls.CA_CERT_NAME, directory / tls.CA_KEY_NAME
    try:
        if not ca_cert.exists():
            tls.create_ca(directory, ca_name)
            typer.echo(f"created CA {ca_cert} (keep {ca_key} safe and offline if you can)")
        cert, key = tls.issue_server_certificate(ca_cert, ca_key, names, directory, days)
    except (ValueError, OSError) as exc:
        fail(str(exc))
    typer.echo(f"issued {cert} and {key}")
    typer.echo(tls.describe(cert))


@app.command("show")
def tls_show(certificate: Annotated[Path, typer.Argument(help="A PEM certificate")]) -> None:
    """Who a certificate names, its SANs and when it expires."""
    from controller import tls

    if not certificate.is_file():
        fail(f"{certificate} does not exist")
    try:
        typer.echo(tls.describe(certificate))
    except ValueError:
        fail(f"{certificate} is not a PEM certificate")


