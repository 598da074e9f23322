"""The `caretaker` command: a thin shell over the domain packages.

Errors a user can fix are one line on stderr and exit status 2; nothing here holds business rules.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from sqlalchemy.engine import Engine

from controller import migrate
from controller.db import make_engine, session_scope
from controller.enrollment import create_token, list_tokens, revoke_token
from controller.register import NotFound, device_detail, list_devices
from controller.settings import Settings
from controller.timeutil import utcnow

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])
token_app = typer.Typer(no_args_is_help=True, help="Site enrollment tokens for agents.")
device_app = typer.Typer(no_args_is_help=True, help="One device of the register.")
tls_app = typer.Typer(no_args_is_help=True, help="HTTPS for a site without its own CA.")
snmp_app = typer.Typer(no_args_is_help=True, help="Agentless kit over SNMP: printers, PoE switches, PDUs, UPSes.")
app.add_typer(token_app, name="token")
app.add_typer(device_app, name="device")
app.add_typer(tls_app, name="tls")
app.add_typer(snmp_app, name="snmp")
policy_app = typer.Typer(no_args_is_help=True, help="Power policies: check the files, explain a decision.")
app.add_typer(policy_app, name="policy")

DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", help="SQLAlchemy URL, e.g. postgresql://user@host/db (default: SQLite in --data-dir)",
    envvar="CARETAKER_DATABASE_URL", show_envvar=False)]
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Where the embedded database lives",
                                              envvar="CARETAKER_DATA_DIR", show_envvar=False)]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output")]
ACTOR = "cli"


def fail(message: str) -> NoReturn:
    typer.echo(f"caretaker: error: {message}", err=True)
    raise typer.Exit(2)


def settings_for(database_url: str | None, data_dir: Path | None) -> Settings:
    overrides = {k: v for k, v in (("database_url", database_url), ("data_dir", data_dir)) if v is not None}
    return Settings(**overrides)


def open_database(database_url: str | None, data_dir: Path | None) -> Engine:
    engine = make_engine(settings_for(database_url, data_dir).resolved_database_url())
    try:
        migrate.upgrade(engine)
    except Exception as exc:
        fail(f"cannot open the database: {str(exc).splitlines()[0]}")
    return engine


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def print_json(value: object) -> None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    elif isinstance(value, list):
        value = [dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for v in value]
    typer.echo(json.dumps(value, indent=2, default=_json_default))


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    text = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in text:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _age(when: datetime | None) -> str:
    if when is None:
        return "never"
    seconds = int((utcnow() - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{max(seconds, 0)}s ago"


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

    from controller.api.app import create_app

    if (tls_cert is None) != (tls_key is None):
        fail("--tls-cert and --tls-key go together")
    for path in (tls_cert, tls_key):
        if path is not None and not path.is_file():
            fail(f"{path} does not exist")
    settings = settings_for(database_url, data_dir)
    engine = open_database(database_url, data_dir)
    uvicorn.run(create_app(settings, engine), host=host, port=port, log_level=log_level,
                ssl_certfile=str(tls_cert) if tls_cert else None, ssl_keyfile=str(tls_key) if tls_key else None,
                access_log=log_level == "debug")


@token_app.command("create")
def token_create(
    site: Annotated[str, typer.Option(help="Site the enrolled agents belong to (created if new)")],
    days: Annotated[int, typer.Option(help="Days until the token expires")] = 30,
    uses: Annotated[int | None, typer.Option(help="Most agents that may enroll with it")] = None,
    note: Annotated[str, typer.Option(help="A reminder of what it is for")] = "",
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Create an enrollment token; it is printed once and only its hash is kept."""
    if not site.strip():
        fail("--site must not be empty")
    engine = open_database(database_url, data_dir)
    try:
        with session_scope(engine) as session:
            issued = create_token(session, site.strip(), utcnow(), days, ACTOR, uses, note)
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        print_json({"id": issued.record.id, "token": issued.token, "site": site,
                    "expires_at": issued.record.expires_at})
        return
    typer.echo(issued.token)
    typer.echo(f"token {issued.record.id} for site {site}, expires {issued.record.expires_at:%Y-%m-%d %H:%M} UTC"
               + (f", {uses} uses" if uses else ""), err=True)


@token_app.command("list")
def token_list(site: Annotated[str | None, typer.Option(help="Only this site")] = None,
               database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """List enrollment tokens (never the tokens themselves)."""
    engine = open_database(database_url, data_dir)
    with session_scope(engine) as session:
        rows = list_tokens(session, site)
    now = utcnow()
    records = [{"id": t.id, "site": s, "prefix": t.prefix, "created_at": t.created_at, "expires_at": t.expires_at,
                "uses": t.uses, "max_uses": t.max_uses,
                "state": "revoked" if t.revoked_at else ("expired" if t.expires_at <= now else "active"),
                "note": t.note} for t, s in rows]
    if as_json:
        print_json(records)
        return
    print_table(["ID", "SITE", "TOKEN", "STATE", "EXPIRES", "USES", "NOTE"],
                [[r["id"], r["site"], r["prefix"] + "…", r["state"], f"{r['expires_at']:%Y-%m-%d}",
                  f"{r['uses']}/{r['max_uses'] or '∞'}", r["note"]] for r in records])


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="ID from `caretaker token list`")],
                 database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Revoke a token: agents already enrolled keep working, new enrollments are refused."""
    engine = open_database(database_url, data_dir)
    try:
        with session_scope(engine) as session:
            record = revoke_token(session, token_id, utcnow(), ACTOR)
    except LookupError as exc:
        fail(str(exc))
    typer.echo(f"token {record.id} ({record.prefix}…) revoked")


@app.command()
def devices(
    site: Annotated[str | None, typer.Option(help="Only this site")] = None,
    conflicts: Annotated[bool, typer.Option("--conflicts", help="Only devices kept apart as possible clones")] = False,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """List the device register."""
    engine = open_database(database_url, data_dir)
    with session_scope(engine) as session:
        rows = list_devices(session, site, conflicts)
    if as_json:
        print_json(rows)
        return
    if conflicts:
        print_table(["ID", "SITE", "HOSTNAME", "SERIAL", "CONFLICTS WITH", "WHY"],
                    [[r.id, r.site, r.hostname, r.serial, r.conflict_with, r.conflict_reason] for r in rows])
    else:
        print_table(["ID", "SITE", "HOSTNAME", "CLASS", "VENDOR", "MODEL", "OS", "LAST SEEN"],
                    [[r.id, r.site, r.hostname, r.device_class, r.vendor, r.model, r.os, _age(r.last_seen)]
                     for r in rows])
    typer.echo(f"{len(rows)} device(s)", err=True)


@device_app.command("show")
def device_show(device_id: Annotated[int, typer.Argument(help="ID from `caretaker devices`")],
                database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Everything the register knows about one device."""
    engine = open_database(database_url, data_dir)
    try:
        with session_scope(engine) as session:
            detail = device_detail(session, device_id)
    except NotFound as exc:
        fail(str(exc))
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
        ("Last seen", _age(d.last_seen)),
    ]
    if d.conflict_with:
        lines.append(("Conflict", f"kept apart from device {d.conflict_with}: {d.conflict_reason}"))
    for label, value in lines:
        typer.echo(f"{label + ':':<11}{value}")
    typer.echo("\nAgents:")
    print_table(["ID", "ENROLLED", "LAST SEEN", "REPORTS", "STATE"],
                [[a.id, f"{a.enrolled_at:%Y-%m-%d %H:%M}", _age(a.last_seen), a.reports,
                  "retired" if a.retired_at else "active"] for a in detail.agents])
    typer.echo("\nEnergy, last 24 hours:")
    print_table(["STATE", "METHOD", "KWH", "HOURS"],
                [[e.state, e.method, f"{e.kwh:.3f}", f"{e.hours:.2f}"] for e in detail.energy_last_24h])


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its database, certificates and logs")] = Path(
        "var/demo"),
    port: Annotated[int, typer.Option(help="HTTPS port for the controller")] = 8443,
    devices: Annotated[int, typer.Option(help="Simulated devices")] = 300,
    sites: Annotated[int, typer.Option(help="Simulated sites")] = 3,
    history: Annotated[int, typer.Option(help="Days of simulated history to backfill")] = 7,
) -> None:
    """Run a controller, this machine's agent and a simulated estate, with data to look at."""
    from controller.demo import DemoPlan, run

    try:
        run(DemoPlan(data_dir=data_dir.resolve(), port=port, devices=devices, sites=sites, history_days=history,
                     agent_interval=60))
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        fail(str(exc))


@tls_app.command("init")
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


@tls_app.command("show")
def tls_show(certificate: Annotated[Path, typer.Argument(help="A PEM certificate")]) -> None:
    """Who a certificate names, its SANs and when it expires."""
    from controller import tls

    if not certificate.is_file():
        fail(f"{certificate} does not exist")
    try:
        typer.echo(tls.describe(certificate))
    except ValueError:
        fail(f"{certificate} is not a PEM certificate")


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

    from controller import simulate_run

    config = simulate_run.SimulationConfig(
        controller=controller, state_file=state, devices=devices, sites=sites, seed=seed, tokens=tuple(token or ()),
        history_days=history, interval=interval, duration=duration, concurrency=concurrency, ca_file=ca_file)
    issue = None
    if database_url is not None or data_dir is not None:
        def issue(names: list[str]) -> list[str]:
            return simulate_run.issue_site_tokens(open_database(database_url, data_dir), names)
    try:
        asyncio.run(simulate_run.simulate(config, issue, typer.echo))
    except (simulate_run.SimulationError, ValueError) as exc:
        fail(str(exc))


@snmp_app.command("poll")
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


@snmp_app.command("encrypt")
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


@policy_app.command("check")
def policy_check(files: Annotated[list[Path], typer.Argument(help="Policy or calendar files, or directories")]) -> None:
    """Validate policies and calendars; every mistake is one line: file:line:column: key: what is wrong."""
    from controller.policy import explain, loader

    try:
        policy_set = loader.load(files)
    except loader.PolicyError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        fail(f"{len(exc.problems)} problem(s) in the policy files")
    for line in explain.summary(policy_set):
        typer.echo(line)


@policy_app.command("explain")
def policy_explain(
    device: Annotated[str, typer.Argument(help="ID or hostname from `caretaker devices`")],
    at: Annotated[str | None, typer.Option(
        help='"YYYY-MM-DD HH:MM" on the site\'s clock, unless it carries an offset (default: now)')] = None,
    policies: Annotated[Path, typer.Option(help="Policy file or directory")] = Path("policies"),
    tag: Annotated[list[str] | None, typer.Option(help="A tag of the device; repeat for more")] = None,
    group: Annotated[str | None, typer.Option(help="The device's room or group")] = None,
    idle_minutes: Annotated[float | None, typer.Option(help="Minutes since the last input")] = None,
    cpu: Annotated[float | None, typer.Option(help="CPU use in percent")] = None,
    sessions: Annotated[int | None, typer.Option(help="Signed-in user sessions")] = None,
    process: Annotated[list[str] | None, typer.Option(help="A running process; repeat for more")] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """The decision for one device at one time, and every rule that led to it."""
    from controller.policy import explain, loader
    from controller.policy.engine import decide

    try:
        policy_set = loader.load([policies])
    except loader.PolicyError as exc:
        fail(f"{exc.problems[0]} (`caretaker policy check {policies}` lists every problem)")
    engine = open_database(database_url, data_dir)
    try:
        with session_scope(engine) as session:
            detail = explain.find_device(session, device)
    except NotFound as exc:
        fail(str(exc))
    facts = explain.facts(detail, tuple(tag or ()), group, explain.activity(idle_minutes, cpu, sessions, process))
    try:
        moment = explain.parse_moment(at, explain.site_zone(policy_set, facts)) if at else utcnow()
    except ValueError as exc:
        fail(str(exc))
    decision = decide(policy_set.policies, policy_set.calendars, facts, moment)
    if as_json:
        print_json(decision)
        return
    for line in explain.render(decision, facts):
        typer.echo(line)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
