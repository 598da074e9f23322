"""Caretaker: power, energy and the life of every device in a school estate.

A thin shell over the domain packages, one module per command group."""

from __future__ import annotations

import typer

from controller.cli import (
    assets,
    audit,
    db,
    devices,
    energy,
    lifecycle,
    policy,
    report,
    service,
    sites,
    snmp,
    ssh,
    tls,
    tokens,
    users,
    wake,
)
from controller.cli.common import run_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])
app.add_typer(service.app)
app.add_typer(devices.app)
app.add_typer(sites.app, name="site")
app.add_typer(audit.app)
app.add_typer(tokens.app, name="token")
app.add_typer(tls.app, name="tls")
app.add_typer(snmp.app, name="snmp")
app.add_typer(policy.app, name="policy")
app.add_typer(users.app, name="user")
app.add_typer(users.tokens_app, name="apitoken")
app.add_typer(report.app, name="report")
app.add_typer(lifecycle.app, name="lifecycle")
app.add_typer(assets.app, name="assets")
app.add_typer(energy.app, name="energy")
app.add_typer(wake.app, name="wake")
app.add_typer(ssh.app, name="ssh")
app.add_typer(db.app, name="db")


def main() -> None:
    run_app(app)
