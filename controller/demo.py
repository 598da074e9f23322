"""`caretaker demo`: the whole product on one machine, with data to look at.

It starts the real pieces as separate processes, as they would run in a school: the controller on
embedded SQLite behind HTTPS with its own CA, this machine's agent enrolled with a site token, and a
simulated estate on the real protocol. Everything lives in one data directory, so a second run
carries on where the first stopped.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import yaml
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from controller import tls
from controller.db import make_engine, session_scope
from controller.energy.tariff import set_tariff
from controller.lifecycle.registercsv import COLUMNS as REGISTER_COLUMNS
from controller.lifecycle.registercsv import import_rows, parse_register
from controller.policy.model import Mode
from controller.policy.store import PolicyLine, PolicyStore
from controller.register.models import Device, Site
from controller.register.sites import update_site
from controller.settings import Settings

BIN = Path(sys.executable).parent
EXAMPLE_POLICIES = Path(__file__).resolve().parent.parent / "policies"
DEMO_DATA = Path(__file__).resolve().parent / "demodata"  # what the demo's schools enter about themselves
CONSOLE_USER = "demo"
HISTORY_INTERVAL = 1800  # seconds between a simulated device's reports while the history is built (hourly buckets)
LIVE_INTERVAL = 300
POLICY_RELOAD_SECONDS = 3


@dataclass(frozen=True)
class DemoPlan:
    data_dir: Path
    port: int
    devices: int
    sites: int
    history_days: int
    agent_interval: int
    observe_days: int = 14  # the first days of the history every policy only observes (the savings baseline)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"

    @property
    def ca(self) -> Path:
        return self.tls_dir / tls.CA_CERT_NAME

    @property
    def config(self) -> Path:
        return self.data_dir / "caretaker.toml"


def write_config(plan: DemoPlan) -> None:
    """The config file `caretaker` reads (with CARETAKER_CONFIG pointing at it), so commands in another terminal
    find the demo's database without --data-dir, as an installed controller's /etc/caretaker/caretaker.toml does."""
    plan.config.write_text("# Written by `caretaker demo`: export CARETAKER_CONFIG=<this file> and every `caretaker`\n"
                           "# command uses the demo's database.\n"
                           f"data_dir = {json.dumps(str(plan.data_dir))}\n")


def ensure_certificates(plan: DemoPlan) -> tuple[Path, Path]:
    if not plan.ca.exists():
        tls.create_ca(plan.tls_dir, "Caretaker demo CA")
    server_cert, server_key = plan.tls_dir / "server.crt", plan.tls_dir / "server.key"
    if not server_cert.exists():
        tls.issue_server_certificate(plan.ca, plan.tls_dir / tls.CA_KEY_NAME, ["localhost", "127.0.0.1"],
                                     plan.tls_dir)
    return server_cert, server_key


def _caretaker(plan: DemoPlan, *args: str) -> list[str]:
    return [str(BIN / "caretaker"), *args, "--data-dir", str(plan.data_dir)]


def _wait_healthy(plan: DemoPlan, controller: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if controller.poll() is not None:
            raise RuntimeError(f"the controller stopped; see {log}")
        try:
            if httpx.get(f"{plan.url}/healthz", verify=str(plan.ca), timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError(f"the controller did not answer within 60 s; see {log}")


def _token(plan: DemoPlan, site: str) -> str:
    result = subprocess.run(_caretaker(plan, "token", "create", "--site", site, "--days", "1",
                                       "--note", "caretaker demo"),
                            capture_output=True, text=True, check=True)
    return result.stdout.strip()


def ensure_policies(plan: DemoPlan) -> None:
    """The example policies, in observe mode as shipped, so schedules, audit and simulate have something to show.
    Copied once: edits the user makes in the demo's copy are theirs to keep."""
    target = plan.data_dir / "policies"
    if not target.exists() and EXAMPLE_POLICIES.is_dir():
        shutil.copytree(EXAMPLE_POLICIES, target, ignore=shutil.ignore_patterns("README.md", "schema"))


def ensure_console_user(plan: DemoPlan) -> Path:
    """A network manager for the web console; its password is made once and kept (0600) beside the database."""
    password = plan.data_dir / "console-password"
    if not password.exists():
        password.touch(mode=0o600)
        password.write_text(secrets.token_urlsafe(12) + "\n")
        subprocess.run(_caretaker(plan, "user", "add", CONSOLE_USER, "--role", "network_manager",
                                  "--password-file", str(password)), capture_output=True, text=True, check=True)
    return password


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def power_policies(plan: DemoPlan) -> list[PolicyLine]:
    """The demo's power policies as `caretaker policy list` shows them (name, mode, file mode)."""
    with _policies(plan) as (store, _engine):
        return [p for p in store.list_policies() if p.file_mode]


def enforcing_mode(policy: PolicyLine) -> str:
    """The mode a policy enforces in after its baseline: its file's, or warn where the file only observes."""
    return "warn" if policy.file_mode == "observe" else str(policy.file_mode)


def switch_modes(plan: DemoPlan, modes: dict[str, str]) -> None:
    """As `caretaker policy mode NAME MODE --actor demo` switches each (in this process: starting the CLI for
    each takes seconds on a busy machine)."""
    with _policies(plan) as (store, engine), session_scope(engine) as session:
        for name, mode in modes.items():
            store.set_mode(session, name, Mode(mode), "demo")
    time.sleep(POLICY_RELOAD_SECONDS)  # the controller re-reads switched modes every 2 s


@contextlib.contextmanager
def _policies(plan: DemoPlan) -> Iterator[tuple[PolicyStore, Engine]]:
    """The controller's policy store over the demo's directory and database, as the CLI opens it."""
    settings = Settings(data_dir=plan.data_dir)
    engine = make_engine(settings.resolved_database_url())
    try:
        store = PolicyStore(settings.resolved_policy_dir(), engine)
        store.current()
        yield store, engine
    finally:
        engine.dispose()


def describe_estate(plan: DemoPlan, since: date) -> str:
    """What a school would enter about itself, for each simulated site, entered as its commands enter it:
    its trust, pupils and postcode (demodata/sites.yaml, through the function `caretaker site set` calls), the
    tariff (demodata/tariff.yaml, as `caretaker energy tariff set --site S --from DATE --file` does), in
    force from ``since``, and the asset register (demodata/register.csv, as `caretaker assets import` does:
    the rows of the devices simulated, and the columns this register knows). Returns what it entered."""
    names = [site["name"] for site in json.loads((plan.data_dir / "simulate.json").read_text())["sites"]]
    tariff = yaml.safe_load((DEMO_DATA / "tariff.yaml").read_text())
    described = yaml.safe_load((DEMO_DATA / "sites.yaml").read_text())["sites"]
    settings = Settings(data_dir=plan.data_dir)
    engine = make_engine(settings.resolved_database_url())
    try:
        with session_scope(engine) as session:
            for name in names:
                site = session.exec(select(Site).where(Site.name == name)).one()
                start = datetime.combine(since, datetime.min.time(), ZoneInfo(site.timezone))
                set_tariff(session, site.id, tariff["name"], start, tariff["bands"],
                           float(tariff["standing_pence_per_day"]))
                if name in described:
                    update_site(session, name, described[name], "demo")
            simulated = set(session.exec(select(Device.serial).join(Site, col(Site.id) == col(Device.site_id))
                                         .where(col(Site.name).in_(names))).all())
            rows = parse_register(_register_rows(simulated))
            result = import_rows(session, rows, "demo", "demodata/register.csv")
    finally:
        engine.dispose()
    trusts = sorted({described[n]["trust"] for n in names if n in described})
    return (f"{sum(n in described for n in names)} sites of {', '.join(trusts) or 'no trust'}; tariff "
            f"{tariff['name']!r} for {len(names)} sites; asset register: {result.updated} devices described")


def _register_rows(serials: set[str]) -> str:
    """demodata/register.csv cut to the rows of devices simulated and the columns the register knows."""
    with (DEMO_DATA / "register.csv").open(newline="", encoding="utf-8") as source:
        reader = csv.DictReader(source)
        columns = [c for c in reader.fieldnames or () if c in REGISTER_COLUMNS]
        out = io.StringIO()
        writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(row for row in reader if row["serial"] in serials)
    return out.getvalue()


def _stop_on_sigterm() -> None:
    """SIGTERM ends the demo as Ctrl-C does: every process it started is stopped."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def run(plan: DemoPlan, say=print) -> None:
    """Start everything, build the history, tell the user what to look at, and stop it all on Ctrl-C."""
    if not _port_is_free(plan.port):
        raise RuntimeError(f"port {plan.port} is already in use; choose another with --port")
    plan.data_dir.mkdir(parents=True, exist_ok=True)
    logs = plan.data_dir / "logs"
    logs.mkdir(exist_ok=True)
    cert, key = ensure_certificates(plan)
    ensure_policies(plan)
    write_config(plan)
    children: list[subprocess.Popen] = []
    _stop_on_sigterm()

    def start(name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = logs / f"{name}.log"
        child = subprocess.Popen(args, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                                 env={**os.environ, **(env or {})})
        children.append(child)
        return child

    def simulate(name: str, *args: str) -> subprocess.Popen:
        return start(name, _caretaker(plan, "simulate", "--devices", str(plan.devices), "--sites", str(plan.sites),
                                      "--controller", plan.url, "--ca-file", str(plan.ca),
                                      "--state", str(plan.data_dir / "simulate.json"), *args))

    def backfill(until: datetime | None) -> None:
        """History up to ``until`` (now when None) at the backfill's coarser interval, in the foreground."""
        child = simulate("history", "--history", str(plan.history_days), "--interval", str(HISTORY_INTERVAL),
                         "--duration", "0", *(("--until", until.isoformat()) if until else ()))
        if child.wait() != 0:
            raise RuntimeError(f"building the history failed; see {logs / 'history.log'}")

    try:
        say(f"Starting the controller on {plan.url} (SQLite in {plan.data_dir}) …")
        # Agents take their interval from the controller; a short one shows this machine's data soon.
        controller = start("controller", _caretaker(plan, "serve", "--port", str(plan.port),
                                                    "--tls-cert", str(cert), "--tls-key", str(key)),
                           env={"CARETAKER_REPORT_INTERVAL_SECONDS": str(plan.agent_interval)})
        _wait_healthy(plan, controller, logs / "controller.log")
        password = ensure_console_user(plan)

        say("Enrolling this machine's agent …")
        agent_dir = plan.data_dir / "agent"
        agent_args = [str(BIN / "caretaker-agent"), "run", "--controller", plan.url, "--ca-file", str(plan.ca),
                      "--state-dir", str(agent_dir), "--interval", str(plan.agent_interval)]
        if not (agent_dir / "credentials.json").exists():
            agent_args += ["--token", _token(plan, "Demo Office")]
        start("agent", agent_args)

        fresh = not (plan.data_dir / "simulate.json").exists()
        if fresh:
            policies = power_policies(plan)
            observe_days = min(plan.observe_days, plan.history_days)
            say(f"Building {plan.history_days} days of history for {plan.devices} simulated devices on {plan.sites} "
                f"sites: {observe_days} days with every policy observing (the baseline), then enforcing …")
            switch_modes(plan, {p.name: "observe" for p in policies})
            backfill(datetime.now(UTC) - timedelta(days=plan.history_days - observe_days))
            switch_modes(plan, {p.name: enforcing_mode(p) for p in policies})
            entered = describe_estate(plan, date.today() - timedelta(days=plan.history_days + 1))
            say(f"Described the schools: {entered}")
        else:
            say("Catching the simulated estate up to now …")
        backfill(None)
        simulate("simulate", "--interval", str(LIVE_INTERVAL))
        today = date.today()
        week_ago = today - timedelta(days=7)
        trust = next(iter(yaml.safe_load((DEMO_DATA / "sites.yaml").read_text())["sites"].values()))["trust"]
        say(f"\nRunning. The console is {plan.url}/ (sign in as {CONSOLE_USER!r}, password in {password}).\n"
            "In another terminal, try:\n"
            f"  export CARETAKER_CONFIG={plan.config}\n"
            f"  .venv/bin/caretaker devices\n"
            f"  .venv/bin/caretaker devices --conflicts\n"
            f"  .venv/bin/caretaker device show 1\n"
            f"  .venv/bin/caretaker site list\n"
            f"  .venv/bin/caretaker energy summary --by site --from {week_ago} --to {today}\n"
            f"  .venv/bin/caretaker energy savings --from {today - timedelta(days=plan.history_days)} --to {today}\n"
            f"  .venv/bin/caretaker report audit --trust '{trust}' --period {week_ago}..{today} --out audit.html\n"
            f"  .venv/bin/caretaker policy list\n"
            f"  .venv/bin/caretaker-agent collect\n"
            f"Logs are in {logs}. Press Ctrl-C to stop everything.")
        while all(child.poll() is None for child in children[:2]):
            time.sleep(1)
        say(f"A demo process stopped unexpectedly; see {logs}")
    except KeyboardInterrupt:
        say("\nStopping …")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
