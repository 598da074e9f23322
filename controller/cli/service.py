"""Running things: the controller, the demo, the estate simulator."""

from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from controller.cli.common import (
    DatabaseUrl,
    DataDir,
    fail,
    open_database,
    settings_for,
)

app = typer.Typer(no_args_is_help=True, help=__doc__)


@app.command()
def serve(
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8443,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate (with chain) for HTTPS")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key for HTTPS")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Run the controller (HTTPS when given a certificate and key; see `caretaker tls`)."""
    import uvicorn

    from controller import logs
    from controller.api.app import create_app

    if (tls_cert is None) != (tls_key is None):
        fail("--tls-cert and --tls-key go together")
    for path in (tls_cert, tls_key):
        if path is not None and not path.is_file():
            fail(f"{path} does not exist")
    settings = settings_for(database_url, data_dir)
    engine = open_database(database_url, data_dir)
    config = uvicorn.Config(create_app(settings, engine), host=host, port=port, log_level=log_level,
                            ssl_certfile=str(tls_cert) if tls_cert else None,
                            ssl_keyfile=str(tls_key) if tls_key else None, access_log=log_level == "debug")
    logs.install()  # after uvicorn has set up its loggers: a repeated error is logged once a minute, with a count
    uvicorn.Server(config).run()


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its database, certificates and logs")] = Path(
        "var/demo"),
    port: Annotated[int, typer.Option(help="HTTPS port for the controller")] = 8443,
    devices: Annotated[int, typer.Option(help="Simulated devices")] = 300,
    sites: Annotated[int, typer.Option(help="Simulated sites")] = 3,
    history: Annotated[int, typer.Option(help="Days of simulated history to build (a half term)")] = 42,
    observe_days: Annotated[int, typer.Option(help="Of them, the first days with every policy observing (the "
                                                   "baseline); enforcing after")] = 14,
) -> None:
    """Run a controller, this machine's agent and a simulated estate, with data to look at."""
    from controller.demo import DemoPlan, run

    try:
        run(DemoPlan(data_dir=data_dir.resolve(), port=port, devices=devices, sites=sites, history_days=history,
                     agent_interval=60, observe_days=observe_days))
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        fail(str(exc))


@app.command()
def simulate(
    controller: Annotated[str, typer.Option(help="Controller URL, e.g. https://127.0.0.1:8443")],
    devices: Annotated[int | None, typer.Option(help="Virtual devices (default 100, or as in --state)")] = None,
    sites: Annotated[int | None, typer.Option(help="Sites to spread them over (default 3, or one per --token)")] = None,
    token: Annotated[list[str] | None, typer.Option(help="Site enrollment token; repeat, one per site")] = None,
    seed: Annotated[int | None, typer.Option(help="The same seed makes the same devices (default 1)")] = None,
    history: Annotated[float, typer.Option(help="Days of past reports to backfill before reporting live")] = 0,
    interval: Annotated[int, typer.Option(help="Seconds between a device's reports")] = 300,
    duration: Annotated[float | None, typer.Option(
        help="Seconds of live reporting after the backfill (default: until Ctrl-C)")] = None,
    until: Annotated[str | None, typer.Option(
        help="Backfill only up to this moment and stop (ISO 8601 with an offset, e.g. 2026-11-16T00:00+00:00)")] = None,
    state: Annotated[Path, typer.Option(help="Enrollments and sequence numbers, kept between runs")] = Path(
        "caretaker-simulate.json"),
    concurrency: Annotated[int, typer.Option(help="Requests in flight at once (httpx slows beyond about 8)")] = 8,
    ca_file: Annotated[Path | None, typer.Option(help="CA certificate that signed an HTTPS controller's")] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Run virtual agents on the real protocol: a school estate for demos and load tests.

    Without --token, give the controller's --data-dir or --database-url and site tokens are created.
    """
    import asyncio

    from controller.simulate import run as simulate_run

    stop_at = None
    if until is not None:
        try:
            stop_at = datetime.fromisoformat(until)
        except ValueError:
            fail(f"--until {until!r} is not an ISO 8601 moment, e.g. 2026-11-16T00:00+00:00")
        if stop_at.tzinfo is None:
            fail(f"--until {until!r} needs a UTC offset, e.g. {until}+00:00")
    config = simulate_run.SimulationConfig(
        controller=controller, state_file=state, devices=devices, sites=sites, seed=seed, tokens=tuple(token or ()),
        history_days=history, interval=interval, duration=duration, concurrency=concurrency, ca_file=ca_file,
        until=stop_at)
    issue = None
    if database_url is not None or data_dir is not None:
        def issue(names: list[str]) -> list[str]:
            return simulate_run.issue_site_tokens(open_database(database_url, data_dir), names)
    try:
        asyncio.run(simulate_run.simulate(config, issue, typer.echo))
    except (simulate_run.SimulationError, ValueError) as exc:
        fail(str(exc))


