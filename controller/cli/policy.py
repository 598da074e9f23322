"""Power policies: check the files, explain a decision."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from controller.cli.common import (
    AsJson,
    DatabaseUrl,
    DataDir,
    fail,
    open_database,
    print_json,
)
from controller.db import session_scope
from controller.register import NotFound
from controller.timeutil import utcnow

app = typer.Typer(no_args_is_help=True, help=__doc__)


@app.command("check")
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


@app.command("explain")
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


