"""Agentless kit over SNMP: printers, PoE switches, PDUs, UPSes."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from controller.cli.common import (
    ACTOR,
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

app = typer.Typer(no_args_is_help=True, help=__doc__)

Credentials = Annotated[Path | None, typer.Option(
    help="SNMP credentials file (default: snmp-credentials.yaml in --data-dir)")]
Timeout = Annotated[float, typer.Option(help="Seconds to wait for each answer")]
Retries = Annotated[int, typer.Option(help="Times to ask again before giving up")]
Site = Annotated[str | None, typer.Option(help="Site the devices belong to (created if new; default: the only site)")]
Community = Annotated[list[str] | None, typer.Option(
    help="v2c community to try, as env:NAME or file:PATH (repeat for several; tried in order)")]
V3User = Annotated[str | None, typer.Option(help="SNMPv3 (authPriv) user to try")]
V3AuthKey = Annotated[str | None, typer.Option(help="its authentication key, as env:NAME or file:PATH")]
V3PrivKey = Annotated[str | None, typer.Option(help="its privacy key, as env:NAME or file:PATH")]
V3AuthProtocol = Annotated[str, typer.Option(help="MD5 SHA SHA224 SHA256 SHA384 SHA512")]
V3PrivProtocol = Annotated[str, typer.Option(help="DES AES AES192 AES256")]
V3Context = Annotated[str, typer.Option(help="its SNMPv3 context name, where the agent needs one")]


@app.command("poll")
def snmp_poll(
    address: Annotated[str, typer.Argument(help="IP address or host name of the device")],
    port: Annotated[int, typer.Option(help="UDP port of its SNMP agent")] = 161,
    community: Community = None,
    v3_user: V3User = None,
    v3_auth_key: V3AuthKey = None,
    v3_priv_key: V3PrivKey = None,
    v3_auth_protocol: V3AuthProtocol = "SHA256",
    v3_priv_protocol: V3PrivProtocol = "AES",
    v3_context: V3Context = "",
    credentials: Credentials = None,
    timeout: Timeout = 2.0,
    retries: Retries = 1,
    keep: Annotated[bool, typer.Option("--store", help="Register the device and keep this reading")] = False,
    site: Site = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Identify one device and print what it reports, ending with what it answered that no profile
    interpreted. It is asked only with the credentials given here, or else those the credentials file
    configures for it."""
    import asyncio

    from controller.snmp.display import describe
    from controller.snmp.poller import PollSettings, Survey, poll_once
    from controller.snmp.profiles import load_profiles

    given = _given_credentials(community or [], v3_user, v3_auth_key, v3_priv_key, v3_auth_protocol,
                               v3_priv_protocol, v3_context)
    store = _store(given, {"address": address}, credentials, data_dir)
    try:
        settings = PollSettings(timeout=timeout, retries=retries, survey=Survey.ALL)
    except ValueError as exc:
        fail(str(exc))
    result = asyncio.run(poll_once(address, port, load_profiles(), store, settings))
    if as_json:
        print_json(result)
    else:
        typer.echo("\n".join(describe(result)))
    if not result.ok:
        raise typer.Exit(1)
    if keep:
        from controller.snmp.discover import register_all

        engine = open_database(database_url, data_dir)
        (found,) = register_all(engine, [result], _site(engine, site), ACTOR)
        typer.echo(f"stored: target {found.target_id}, device {found.device_id}", err=True)


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


@app.command("discover")
def snmp_discover(
    subnet: Annotated[str, typer.Argument(help="Subnet to search, e.g. 10.20.5.0/24 (at most 1,024 addresses)")],
    port: Annotated[int, typer.Option(help="UDP port of the SNMP agents")] = 161,
    community: Community = None,
    v3_user: V3User = None,
    v3_auth_key: V3AuthKey = None,
    v3_priv_key: V3PrivKey = None,
    v3_auth_protocol: V3AuthProtocol = "SHA256",
    v3_priv_protocol: V3PrivProtocol = "AES",
    v3_context: V3Context = "",
    credentials: Credentials = None,
    site: Site = None,
    timeout: Timeout = 1.0,
    retries: Retries = 1,
    concurrency: Annotated[int, typer.Option(help="Addresses asked at once")] = 64,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Find the SNMP kit on a subnet and register it. Each address is asked only with the credentials
    given here, or else those the credentials file configures for it, in order, until one answers.
    Devices no profile recognises are kept as hosts and listed with what they answered."""
    import asyncio

    from controller.snmp.discover import SubnetError, addresses, register_all, scan
    from controller.snmp.display import unexplained
    from controller.snmp.poller import Poller, PollSettings, Survey
    from controller.snmp.profiles import DeviceKind, load_profiles
    from controller.snmp.pysnmp_client import PysnmpClient

    given = _given_credentials(community or [], v3_user, v3_auth_key, v3_priv_key, v3_auth_protocol,
                               v3_priv_protocol, v3_context)
    try:
        hosts = addresses(subnet)
        settings = PollSettings(timeout=timeout, retries=retries, concurrency=concurrency,
                                device_deadline=max(30.0, 10 * timeout * (retries + 1)), survey=Survey.HOSTS)
    except (SubnetError, ValueError) as exc:
        fail(str(exc))
    store = _store(given, {"subnet": subnet}, credentials, data_dir)
    if not any(store.candidates(h) for h in hosts):
        fail(f"no SNMP credentials are configured for any address in {subnet}")
    engine = open_database(database_url, data_dir)
    where = _site(engine, site)

    async def search() -> list:
        async with PysnmpClient() as client:
            return await scan(Poller(client, load_profiles(), store, settings=settings), subnet, port)

    found = register_all(engine, asyncio.run(search()), where, ACTOR)
    rows = [{"target": f.target_id, "device": f.device_id, "address": f.poll.address, "port": f.poll.port,
             "kind": f.poll.kind, "profile": f.poll.profile, "credential": f.poll.credential,
             "vendor": f.poll.identity.vendor if f.poll.identity else None,
             "model": f.poll.identity.model if f.poll.identity else None,
             "serial": f.poll.identity.serial if f.poll.identity else None,
             "units": [f.device_id, *f.members],
             "unexplained": (dataclasses.asdict(f.poll.unexplained)
                             if f.poll.unexplained and f.poll.kind == DeviceKind.HOST else None)} for f in found]
    if as_json:
        print_json(rows)
    else:
        print_table(["TARGET", "DEVICE", "ADDRESS", "KIND", "VENDOR", "MODEL", "SERIAL", "CREDENTIAL"],
                    [[r["target"], ", ".join(map(str, r["units"])), f"{r['address']}:{r['port']}", r["kind"],
                      r["vendor"], r["model"], r["serial"], r["credential"]] for r in rows])
        hosts_kept = [f.poll for f in found if f.poll.kind == DeviceKind.HOST and f.poll.unexplained]
        if hosts_kept:
            typer.echo("\nkept as host (no profile recognised them; please report what they answered):")
        for poll in hosts_kept:
            typer.echo("\n".join([f"{poll.address}:{poll.port}", *unexplained(poll.unexplained)]))
    typer.echo(f"{len(found)} of {len(hosts)} address(es) answered", err=True)


@app.command("targets")
def snmp_targets(
    site: Annotated[str | None, typer.Option(help="Only this site")] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """List the registered SNMP kit and how each one's last poll went."""
    from controller.snmp.store import list_targets

    rows = in_session(database_url, data_dir, lambda s: list_targets(s, site))
    print_rows(rows, as_json, ["ID", "SITE", "ADDRESS", "DEVICE", "KIND", "CREDENTIAL", "LAST OK", "LAST POLL"],
               lambda r: [r.id, r.site, f"{r.address}:{r.port}", r.hostname, r.kind, r.credential, age(r.last_ok_at),
                          "never" if r.last_poll_at is None else (f"failed: {r.last_error}" if r.last_error else "ok")])


def _store(given: dict[str, dict], where: dict[str, str], credentials: Path | None, data_dir: Path | None):
    """The credentials given on the command line for ``where`` (an address or a subnet), or else the
    credentials file."""
    import os

    from controller.snmp.credentials import CredentialError, load_credentials, parse_credentials

    try:
        if given:
            return parse_credentials({"credentials": given, "targets": [{**where, "use": list(given)}]},
                                     os.environ, Path.cwd())
        return load_credentials(credentials or settings_for(None, data_dir).data_dir / "snmp-credentials.yaml",
                                os.environ)
    except CredentialError as exc:
        fail(str(exc))


def _given_credentials(communities: list[str], user: str | None, auth_key: str | None, priv_key: str | None,
                       auth_protocol: str, priv_protocol: str, context: str) -> dict[str, dict]:
    """Credentials from the command line, in the credentials file's form (so they are checked the same
    way, and secrets are references, never typed where ``ps`` shows them)."""
    given: dict[str, dict] = {f"community-{i}": {"version": "2c", "community": c}
                              for i, c in enumerate(communities, 1)}
    if user is not None:
        given[f"v3-{user}"] = {"version": "3", "user": user, "auth_protocol": auth_protocol, "auth_key": auth_key,
                               "priv_protocol": priv_protocol, "priv_key": priv_key, "context": context}
    elif auth_key or priv_key:
        fail("--v3-auth-key and --v3-priv-key need --v3-user")
    return given


def _site(engine, name: str | None):
    """The named site (created if new), or the only one there is."""
    from sqlmodel import select

    from controller.db import session_scope
    from controller.register.enrollment import ensure_site
    from controller.register.models import Site

    with session_scope(engine) as session:
        if name is not None:
            if not name.strip():
                fail("--site must not be empty")
            return ensure_site(session, name.strip(), ACTOR)
        sites = list(session.exec(select(Site).limit(2)))
    if len(sites) != 1:
        fail("name the site the devices belong to with --site")
    return sites[0]
