"""Power policies: check the files, explain a decision, simulate a period, list them and switch their mode."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from controller.cli.common import (
    ACTOR,
    AsJson,
    DatabaseUrl,
    DataDir,
    fail,
    open_database,
    print_json,
    print_table,
    settings_for,
)
from controller.db import session_scope
from controller.policy.model import DEFAULT_TIMEZONE
from controller.register.devices import NotFound, find_device
from controller.timeutil import utcnow

app = typer.Typer(no_args_is_help=True, help=__doc__)


@app.command("check")
def policy_check(
    files: Annotated[list[Path], typer.Argument(help="Policy or calendar files, or directories")],
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Validate policies and calendars; every mistake is one line: file:line:column: key: what is wrong.
    Warnings (exceptions matching no device, calendars ending, overlapping terms) do not fail the check."""
    from controller.policy import explain, loader
    from controller.policy.warnings import policy_warnings

    try:
        policy_set = loader.load(files)
    except loader.PolicyError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        fail(f"{len(exc.problems)} problem(s) in the policy files")
    devices = _register(policy_set, database_url, data_dir)
    warnings = policy_warnings(policy_set.policies, dict(policy_set.calendars), utcnow().date(), devices)
    for line in explain.summary(policy_set, warnings):
        typer.echo(line)


def _register(policy_set, database_url: str | None, data_dir: Path | None):
    """The register's devices placed by ``policy_set``'s rules, when a database is there to ask (never made)."""
    from sqlalchemy.engine import make_url

    from controller.db import make_engine
    from controller.register.facts import register_facts
    from controller.settings import NoDatabase

    try:
        url = settings_for(database_url, data_dir).resolved_database_url()
    except NoDatabase:  # checking files needs no estate; the register's warnings need one
        return None
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not (parsed.database and Path(parsed.database).is_file()):
        return None
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            return register_facts(session, policy_set.placement)
    except Exception as exc:  # an unreachable or older database: the check itself still stands
        typer.echo(f"note: the register was not consulted ({str(exc).splitlines()[0][:200]})", err=True)
        return None
    finally:
        engine.dispose()


def _active(policies: Path | None, database_url: str | None, data_dir: Path | None):
    """What the controller has in force: its policy directory (or --policies) with the modes switched in the
    database, and its placement rules; and the database."""
    from controller.policy import loader
    from controller.policy.store import PolicyStore, with_switched_modes

    engine = open_database(database_url, data_dir)
    if policies is None:
        store = PolicyStore(settings_for(database_url, data_dir).resolved_policy_dir(), engine)
        active = store.current()
        if active.problem:
            typer.echo(f"warning: {active.problem}", err=True)
        return active, engine, store
    try:
        policy_set = loader.load([policies])
    except loader.PolicyError as exc:
        fail(f"{exc.problems[0]} (`caretaker policy check {policies}` lists every problem)")
    with session_scope(engine) as session:
        return with_switched_modes(session, policy_set), engine, None


@app.command("explain")
def policy_explain(
    device: Annotated[str, typer.Argument(help="ID or hostname from `caretaker devices`")],
    at: Annotated[str | None, typer.Option(
        help='"YYYY-MM-DD HH:MM" on the site\'s clock, unless it carries an offset (default: now)')] = None,
    policies: Annotated[Path | None, typer.Option(
        help="Policy file or directory (default: the controller's, as in force)")] = None,
    tag: Annotated[list[str] | None, typer.Option(
        help="What if the device had this tag instead of its own; repeat for more")] = None,
    group: Annotated[str | None, typer.Option(help="What if the device were in this room instead of its own")] = None,
    idle_minutes: Annotated[float | None, typer.Option(help="Minutes since the last input")] = None,
    cpu: Annotated[float | None, typer.Option(help="CPU use in percent")] = None,
    sessions: Annotated[int | None, typer.Option(help="Signed-in user sessions")] = None,
    process: Annotated[list[str] | None, typer.Option(
        help="A running process; repeat for more (default: as the device's agent last reported)")] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """The decision for one device at one time, and every rule that led to it: the policies in force, the modes
    switched, and the device's room and tags, exactly as its agent's schedule is compiled."""
    from controller.policy import explain
    from controller.policy.engine import decide

    active, engine, _ = _active(policies, database_url, data_dir)
    try:
        with session_scope(engine) as session:
            found = find_device(session, device)
            reported = None if process is not None else explain.reported_processes(session, str(found.id))
            facts = explain.facts_for(session, found, active,
                                      explain.activity(idle_minutes, cpu, sessions, process, reported),
                                      tuple(tag) if tag else None, group)
    except NotFound as exc:
        fail(str(exc))
    what_if = tuple(label for label, given in (("tags", tag), ("room", group)) if given)
    try:
        moment = explain.parse_moment(at, explain.site_zone(active, facts)) if at else utcnow()
    except ValueError as exc:
        fail(str(exc))
    decision = decide(active.policies, active.calendars, facts, moment)
    if as_json:
        print_json({**dataclasses.asdict(decision), "what_if": list(what_if)})
        return
    for line in explain.render(decision, facts, reported, what_if):
        typer.echo(line)


@app.command("schedule")
def policy_schedule(
    device: Annotated[str, typer.Argument(help="ID or hostname from `caretaker devices`")],
    since: Annotated[str | None, typer.Option("--from", help='"YYYY-MM-DD" (default: today)')] = None,
    days: Annotated[int, typer.Option(min=1, max=30, help="How many days to show")] = 7,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """The windows the device's agent receives, compiled by the same function as the ingest reply (the policies
    in force, switched modes, the device's room and tags): local time and UTC, what the device should do, and
    the rule behind each."""
    from controller.policy import explain
    from controller.policy.dispatch import SchedulePlanner

    _, engine, store = _active(None, database_url, data_dir)
    settings = settings_for(database_url, data_dir)
    start = day_or_moment(since, "--from") if since else utcnow()
    try:
        with session_scope(engine) as session:
            device_id = find_device(session, device).id
    except NotFound as exc:
        fail(str(exc))
    # The agents' horizon at least, so the windows are the very ones their ingest replies carry.
    schedule = SchedulePlanner(store, engine, hours=max(days * 24, settings.schedule_hours),
                               per_minute=settings.power_downs_per_minute).schedule_for(device_id, start)
    shown = explain.schedule_lines(schedule, start, days)
    if as_json:
        print_json({"device_id": device_id, "schedule": dataclasses.asdict(schedule),
                    "windows": [dataclasses.asdict(w) for w in shown]})
        return
    typer.echo(f"Device    {device_id}  policy {schedule.policy or '-'}  version {schedule.version}")
    typer.echo(f"Zone      {schedule.timezone}; power-downs begin {schedule.start_offset_seconds // 60} min into "
               "each power-down window (the site's stagger)")
    print_table(["FROM (LOCAL)", "TO (LOCAL)", "FROM (UTC)", "TO (UTC)", "INTENT", "ACTION", "MODE", "RULE"],
                [[f"{w.local_start:%a %Y-%m-%d %H:%M %Z}", f"{w.local_end:%a %Y-%m-%d %H:%M %Z}",
                  f"{w.start:%Y-%m-%d %H:%M}Z", f"{w.end:%Y-%m-%d %H:%M}Z", w.intent, w.action or "-",
                  w.mode or "-", w.reason] for w in shown])


def _policy_set(policies: Path | None, database_url: str | None, data_dir: Path | None):
    """The policies (the controller's directory unless --policies), modes as switched, and the database."""
    from controller.policy import loader

    directory = policies or settings_for(database_url, data_dir).resolved_policy_dir()
    try:
        policy_set = loader.load([directory]) if directory.exists() else None
    except loader.PolicyError as exc:
        fail(f"{exc.problems[0]} (`caretaker policy check {directory}` lists every problem)")
    if policy_set is None:
        fail(f"no policy directory at {directory}: give --policies or set CARETAKER_POLICY_DIR")
    return policy_set, open_database(database_url, data_dir)


def day_or_moment(text: str, option: str) -> datetime:
    from controller.policy import explain
    from controller.policy.walltime import zone

    try:
        return explain.parse_moment(text + " 00:00" if len(text.strip()) == 10 else text, zone(DEFAULT_TIMEZONE))
    except ValueError as exc:
        fail(f"{option}: {exc}")


@app.command("simulate")
def policy_simulate(
    since: Annotated[str, typer.Option("--from", help='"YYYY-MM-DD" or "YYYY-MM-DD HH:MM", London time')],
    until: Annotated[str, typer.Option("--to", help="end of the period (exclusive), same forms")],
    site: Annotated[str | None, typer.Option(help="Only this site's devices")] = None,
    policies: Annotated[Path | None, typer.Option(help="Policy directory (default: the controller's)")] = None,
    per_device: Annotated[bool, typer.Option("--per-device", help="A line per device")] = False,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Replay the devices' reported activity through the policies: the actions they would have taken and
    the kWh that would have saved."""
    from controller.policy.replay import UnknownSite, replay
    from controller.policy.store import with_switched_modes

    start, end = day_or_moment(since, "--from"), day_or_moment(until, "--to")
    if end <= start:
        fail(f"--to ({until}) must be after --from ({since})")
    if (end - start).days > 31:
        fail("simulate at most 31 days at a time")
    policy_set, engine = _policy_set(policies, database_url, data_dir)
    try:
        with session_scope(engine) as session:
            result = replay(session, with_switched_modes(session, policy_set), start, end, site)
    except UnknownSite as exc:
        fail(str(exc))
    if not per_device:
        result = replace(result, per_device=())
    if as_json:
        print_json(result)
        return
    typer.echo(f"Period    {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} {end:%Z}; {result.devices} device(s), "
               f"{result.observations} report(s)")
    rows = [[key.split("/")[0], key.split("/")[1], count] for key, count in result.actions.items()]
    print_table(["ACTION", "MODE", "TIMES"], rows or [["-", "-", 0]])
    typer.echo(f"Skipped   {result.skipped} time(s): passive mode, a user signed in")
    typer.echo(f"Saved     {result.saved_kwh:.2f} kWh by policies that act")
    typer.echo(f"Observe   {result.observe_kwh:.2f} kWh more if the observe-mode policies acted")
    if per_device:
        print_table(["DEVICE", "ACTIONS", "SAVED KWH", "OBSERVE KWH"],
                    [[d.device_id, d.actions, f"{d.saved_kwh:.3f}", f"{d.observe_kwh:.3f}"] for d in result.per_device])


@app.command("list")
def policy_list(database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """The controller's policies with the mode each is in (a switched mode wins over the file's)."""
    from controller.policy.store import PolicyStore

    engine = open_database(database_url, data_dir)
    store = PolicyStore(settings_for(database_url, data_dir).resolved_policy_dir(), engine)
    lines = store.list_policies()
    if store.current().problem:
        typer.echo(f"warning: {store.current().problem}", err=True)
    if as_json:
        print_json(lines)
        return
    print_table(["POLICY", "MODE", "FILE MODE", "APPLIES TO", "SOURCE"],
                [[p.name, (p.mode or "-") + (" (switched)" if p.switched else ""), p.file_mode or "-", p.applies_to,
                  p.source] for p in lines])


@app.command("mode")
def policy_mode(
    name: Annotated[str, typer.Argument(help="Policy name, from `caretaker policy list`")],
    mode: Annotated[str, typer.Argument(help="observe, passive, warn or force")],
    actor: Annotated[str, typer.Option(help="Who is switching, for the change log")] = ACTOR,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Switch a policy's mode; agents get the new schedule with their next report."""
    from controller.policy.model import Mode
    from controller.policy.store import PolicyStore, UnknownPolicy

    try:
        chosen = Mode(mode)
    except ValueError:
        fail(f"{mode!r} is not a mode: observe, passive, warn or force")
    engine = open_database(database_url, data_dir)
    store = PolicyStore(settings_for(database_url, data_dir).resolved_policy_dir(), engine)
    store.current()
    try:
        with session_scope(engine) as session:
            store.set_mode(session, name, chosen, actor)
    except (UnknownPolicy, ValueError) as exc:
        fail(str(exc.args[0]))
    typer.echo(f"policy {name!r} is now in {chosen} mode")
