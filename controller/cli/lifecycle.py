"""Each device's life: move it between states with evidence, read its history, get recommendations."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from controller.cli.common import (
    ACTOR,
    AsJson,
    DatabaseUrl,
    DataDir,
    fail,
    in_session,
    open_database,
    print_json,
    print_rows,
    print_table,
    settings_for,
)
from controller.db import session_scope
from controller.energy.accounting import jsonable
from controller.lifecycle import embodied, queries, rightsize, service, utilisation
from controller.lifecycle.evidence import Evidence, check_method
from controller.lifecycle.recommend import Policy
from controller.lifecycle.service import NotFound
from controller.lifecycle.states import Refused, parse_outcome, parse_state
from controller.register.enrollment import UnknownSite
from controller.reports.service import Inputs, ReportError, load_inputs
from controller.timeutil import utcnow

app = typer.Typer(no_args_is_help=True, help=__doc__)
batch_app = typer.Typer(no_args_is_help=True, help="Disposal batches: devices collected under one transfer note.")
app.add_typer(batch_app, name="batch")

Day = Annotated[str | None, typer.Option(help="YYYY-MM-DD")]


def _date(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r} is not a date (YYYY-MM-DD)")


@app.command("move")
def move(
    device: Annotated[str, typer.Argument(help="ID, asset tag, serial or hostname")],
    state: Annotated[str, typer.Argument(help="in_stock, deployed, in_repair, redeployed, retired, "
                                              "awaiting_disposal, sanitised, disposed")],
    reason: Annotated[str, typer.Option(help="Why (kept in the history)")],
    outcome: Annotated[str | None, typer.Option(help="On disposal: recycled, donated, resold, returned_to_lessor")]
    = None,
    method: Annotated[str | None, typer.Option(help="Sanitisation: clear, purge, destroy, recycler_certificate")]
    = None,
    certificate: Annotated[str | None, typer.Option(help="Sanitisation or destruction certificate reference")] = None,
    sanitised_on: Day = None,
    transfer_note: Annotated[str | None, typer.Option(help="WEEE waste transfer note reference")] = None,
    carrier: Annotated[str | None, typer.Option(help="Waste carrier")] = None,
    recycler: Annotated[str | None, typer.Option(help="Recycler")] = None,
    accreditation: Annotated[str | None, typer.Option(help="Recycler's accreditation, e.g. ADISA")] = None,
    collected_on: Day = None,
    batch: Annotated[str | None, typer.Option(help="Disposal batch whose transfer note covers it")] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Move a device to another state; disposal needs its evidence (given here or by its batch)."""
    engine = open_database(database_url, data_dir)
    try:
        evidence = Evidence(method=check_method(method) if method else None, certificate_ref=certificate,
                            sanitised_on=_date(sanitised_on, "--sanitised-on"), transfer_note_ref=transfer_note,
                            carrier=carrier, recycler=recycler, accreditation=accreditation,
                            collected_on=_date(collected_on, "--collected-on"))
        with session_scope(engine) as session:
            result = service.move(session, device, parse_state(state), reason, ACTOR,
                                  parse_outcome(outcome) if outcome else None, evidence, batch)
    except (Refused, NotFound) as exc:
        fail(str(exc))
    if as_json:
        print_json(result)
        return
    done = f" ({result.outcome})" if result.outcome else ""
    typer.echo(f"{result.hostname} (device {result.device_id}): {result.from_state} → {result.to_state}{done}")


@app.command("history")
def history(device: Annotated[str, typer.Argument(help="ID, asset tag, serial or hostname")],
            database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Every state the device has been in: who moved it, when and why."""
    lines = in_session(database_url, data_dir, lambda s: service.history(s, device), (Refused, NotFound))
    print_rows(lines, as_json, ["WHEN (UTC)", "WHO", "FROM", "TO", "OUTCOME", "WHY"],
               lambda h: [f"{h.at:%Y-%m-%d %H:%M}", h.actor, h.from_state or "-", h.to_state, h.outcome, h.reason])


def _policy(refresh_years: list[str] | None, stale_days: int | None, notice_days: int | None) -> Policy:
    policy = Policy()
    years = dict(policy.refresh_years)
    for item in refresh_years or []:
        name, _, value = item.partition("=")
        try:
            years[name.strip()] = float(value)
        except ValueError:
            fail(f"--refresh-years {item!r} is not CLASS=YEARS, e.g. desktop=6")
    return Policy(refresh_years=years, stale_days=stale_days or policy.stale_days,
                  notice_days=notice_days or policy.notice_days)


@app.command("recommend")
def recommend(
    site: Annotated[str | None, typer.Option(help="Only this site")] = None,
    refresh_years: Annotated[list[str] | None, typer.Option(
        help="Refresh age for a class, e.g. desktop=6 (defaults: desktop 5, laptop 4, server 7, tablet 3)")] = None,
    stale_days: Annotated[int | None, typer.Option(help="Days unseen before a device is reported (30)")] = None,
    notice_days: Annotated[int | None, typer.Option(help="Warn this many days before an end date (90)")] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """What to refresh, extend, repair, find or redeploy, each with its reason."""
    policy = _policy(refresh_years, stale_days, notice_days)
    inputs = _inputs(database_url, data_dir)
    found = in_session(database_url, data_dir,
                       lambda s: queries.recommendations(s, embodied.load(s), policy, utcnow(), site,
                                                         policies=inputs.policies, calendars=inputs.calendars))
    avoided = sum(r.avoided_kg_co2e or 0 for r in found)
    print_rows(found, as_json, ["ID", "SITE", "HOSTNAME", "ADVICE", "WHY"],
               lambda r: [r.device_id, r.site, r.hostname, r.kind, r.reason],
               f"{len(found)} recommendation(s); extending avoids {avoided:g} kgCO2e")


def _inputs(database_url: str | None, data_dir: Path | None) -> Inputs:
    """The power policies and their calendars (the data directory's policies/): they say what a school day is."""
    try:
        return load_inputs(settings_for(database_url, data_dir).resolved_policy_dir())
    except ReportError as exc:
        fail(str(exc))


def _dump(value: object) -> None:
    print_json(jsonable(dataclasses.asdict(value)))  # type: ignore[call-overload]


@app.command("utilisation")
def utilisation_report(
    site: Annotated[str | None, typer.Option(help="Only this site")] = None,
    weeks: Annotated[int, typer.Option(min=1, max=utilisation.LOOKBACK_WEEKS,
                                       help="School weeks to look back over")] = utilisation.DEFAULT_WEEKS,
    under: Annotated[float | None, typer.Option(
        min=0, help=f"Propose redeploying devices in use under this many hours a school week "
                    f"(default {Policy().underused_hours_per_week:g}, the recommendations' threshold)")] = None,
    until: Annotated[str | None, typer.Option(help="Last local day counted, YYYY-MM-DD (default: today)")] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Hours in use per device per school week, rooms and classes ranked, and devices to redeploy with the
    embodied carbon of the new device each saves (in use: the agent reported it active)."""
    threshold = Policy().underused_hours_per_week if under is None else under
    last = _date(until, "--until")
    inputs = _inputs(database_url, data_dir)
    found = in_session(database_url, data_dir, lambda s: utilisation.utilisation(
        s, embodied.load(s), utcnow(), threshold, weeks, site, inputs.policies, inputs.calendars, until=last),
        (UnknownSite,))
    if as_json:
        _dump(found)
        return
    typer.echo(f"Hours in use per school week, last {weeks} school week(s):")
    print_table(["ID", "SITE", "HOSTNAME", "ROOM", "CLASS", "WEEKS", "SCHOOL DAYS", "HOURS IN USE", "H/WEEK"],
                [[u.device_id, u.site, u.hostname, u.room or "-", u.device_class, u.school_weeks, u.school_days,
                  u.in_use_hours, "-" if u.hours_per_week is None else u.hours_per_week] for u in found.devices])
    for title, groups in (("Rooms", found.rooms), ("Classes", found.classes)):
        typer.echo(f"\n{title}, most used first:")
        print_table(["RANK", "NAME", "DEVICES", "MEAN H/WEEK", f"UNDER {threshold:g} H"],
                    [[g.rank, g.name, g.devices, g.hours_per_week, g.under] for g in groups])
    typer.echo(f"\nRedeploy (in use under {threshold:g} h a school week):")
    print_table(["ID", "SITE", "HOSTNAME", "ROOM", "CLASS", "H/WEEK", "SAVES KGCO2E", "BASIS"],
                [[r.device_id, r.site, r.hostname, r.room or "-", r.device_class, r.hours_per_week,
                  "-" if r.embodied_kg_co2e is None else f"{r.embodied_kg_co2e:g}", r.embodied_basis]
                 for r in found.redeploy])
    typer.echo(f"{len(found.redeploy)} device(s) to redeploy; each saves buying new: "
               f"{found.embodied_saved_kg:g} kgCO2e embodied", err=True)


@app.command("rightsize")
def rightsize_report(
    site: Annotated[str | None, typer.Option(help="Only this site")] = None,
    days: Annotated[int, typer.Option(min=1, help="Days to look back over (at most the report retention)")]
    = rightsize.DEFAULT_DAYS,
    ratio: Annotated[int, typer.Option(min=2, max=100, help="Virtual guests per host")] = rightsize.CONSOLIDATION_RATIO,
    host_overhead: Annotated[float, typer.Option(
        min=0, max=10, help="A host's extra draw over one server it replaces, as a share")] = float(
        rightsize.HOST_OVERHEAD),
    pue: Annotated[float, typer.Option(min=1, max=5, help="Power usage effectiveness of the server room")] = float(
        rightsize.PUE),
    until: Annotated[str | None, typer.Option(help="Last UTC day counted, YYYY-MM-DD (default: up to now)")] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Servers' CPU and memory use, power and kWh; under-used servers proposed for consolidation onto
    virtualisation hosts, with the kWh, £ and kgCO2e saved and the assumptions stated."""
    assumptions = rightsize.Assumptions(ratio, Decimal(str(host_overhead)), Decimal(str(pue)))
    last = _date(until, "--until")
    end = utcnow() if last is None else min(utcnow(), datetime.combine(last + timedelta(days=1), time(0), UTC))
    retention = settings_for(database_url, data_dir).report_retention_days
    if utcnow() - (end - timedelta(days=days)) > timedelta(days=retention):
        fail(f"--days {days} reaches past the reports kept ({retention} days, CARETAKER_REPORT_RETENTION_DAYS)")
    found = in_session(database_url, data_dir, lambda s: rightsize.rightsize(s, end, days, site, assumptions),
                       (UnknownSite,))
    if as_json:
        _dump(found)
        return
    typer.echo(f"Servers, {found.start:%Y-%m-%d %H:%M} to {found.end:%Y-%m-%d %H:%M} UTC:")
    print_table(["ID", "SITE", "HOSTNAME", "HOURS", "CPU MEAN %", "CPU P95 %", "MEM MEAN %", "MEM P95 %", "MEAN W",
                 "KWH", "£", "KGCO2E", "CANDIDATE"],
                [[s.device_id, s.site, s.hostname, s.reported_hours, _dash(s.cpu_mean), _dash(s.cpu_p95),
                  _dash(s.memory_mean), _dash(s.memory_p95), s.mean_watts, s.kwh, _dash(s.pounds), s.kg_co2e,
                  "yes" if s.candidate else "no"] for s in found.servers])
    typer.echo("\nConsolidation:")
    print_table(["SITE", "SERVERS", "CANDIDATES", "HOSTS", "GUEST MEM GIB", "KWH SAVED", "£ SAVED", "KGCO2E SAVED",
                 "KWH A YEAR", "£ A YEAR"],
                [[c.site, c.servers, ", ".join(c.candidates), c.hosts, _dash(c.guest_memory_gib), c.kwh_saved,
                  _dash(c.pounds_saved), c.kg_co2e_saved, c.kwh_saved_per_year, _dash(c.pounds_saved_per_year)]
                 for c in found.consolidations])
    typer.echo(f"Assumptions: {found.assumptions}", err=True)


def _dash(value: object) -> object:
    return "-" if value is None else value


@app.command("forecast")
def forecast(years: Annotated[int, typer.Option(min=1, max=10, help="Calendar years ahead")] = 5,
             database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Devices due for refresh each year, with their replacements' embodied carbon and original prices."""
    rows = in_session(database_url, data_dir,
                      lambda s: queries.refresh_forecast(s, embodied.load(s), Policy(), utcnow().date(), years))
    print_rows(rows, as_json, ["SITE", "YEAR", "DEVICES", "CLASSES", "EMBODIED KGCO2E", "BUDGET £ (PRICED)"],
               lambda r: [r.site, r.year, r.devices, ", ".join(f"{k} {v}" for k, v in sorted(r.by_class.items())),
                          f"{r.embodied_kg_co2e:g}", f"{r.budget_pence / 100:,.2f} ({r.priced})"])


@app.command("embodied")
def embodied_report(year: Annotated[int | None, typer.Option(help="Calendar year (default: this year)")] = None,
                    site: Annotated[str | None, typer.Option(help="Only this site")] = None,
                    database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Each device's embodied carbon: amortised over its actual life, and all in its year of purchase."""
    today = utcnow().date()
    lines = in_session(database_url, data_dir,
                       lambda s: queries.embodied_report(s, embodied.load(s), year or today.year, today, site))
    print_rows(lines, as_json,
               ["ID", "SITE", "HOSTNAME", "CLASS", "KGCO2E", "BASIS", "PURCHASED", "AMORTISED", "PURCHASE YEAR"],
               lambda x: [x.device_id, x.site, x.hostname, x.device_class, f"{x.kg_co2e:g}", x.basis, x.purchase_date,
                          x.amortised_kg_co2e, x.purchase_year_kg_co2e],
               f"amortised {sum(x.amortised_kg_co2e or 0 for x in lines):,.1f} kgCO2e; in year of purchase "
               f"{sum(x.purchase_year_kg_co2e or 0 for x in lines):,.1f} kgCO2e")


@app.command("embodied-import")
def embodied_import(file: Annotated[Path, typer.Argument(help="CSV: device_class,vendor,model,kg_co2e,"
                                                               "lifetime_years,source")],
                    database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Use the school's own embodied-carbon figures (per class, or vendor and model) over the shipped ones."""
    try:
        rows = embodied.parse_overrides(file.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    except Refused as exc:
        fail(f"{file}: {exc}")
    count = in_session(database_url, data_dir, lambda s: embodied.store_overrides(s, rows))
    typer.echo(f"{count} embodied-carbon figure(s) stored")


@batch_app.command("create")
def batch_create(
    name: Annotated[str, typer.Argument(help="A name for the batch, e.g. 2026-11-pallet-1")],
    transfer_note: Annotated[str, typer.Option(help="WEEE waste transfer note reference")],
    carrier: Annotated[str, typer.Option(help="Waste carrier")],
    recycler: Annotated[str, typer.Option(help="Recycler")],
    accreditation: Annotated[str, typer.Option(help="Recycler's accreditation, e.g. ADISA")],
    collected_on: Annotated[str, typer.Option(help="Collection date, YYYY-MM-DD")],
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Record a collection; its transfer note is kept (and tracked) for two years."""
    when = _date(collected_on, "--collected-on")
    _show_batch(in_session(database_url, data_dir, lambda s: service.create_batch(
        s, name, transfer_note, carrier, recycler, accreditation, when, ACTOR), (Refused,)), as_json)


@batch_app.command("add")
def batch_add(name: Annotated[str, typer.Argument(help="Batch name")],
              devices: Annotated[list[str], typer.Argument(help="IDs, asset tags, serials or hostnames")],
              database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Put retired devices into a batch (all or none)."""
    _show_batch(in_session(database_url, data_dir, lambda s: service.add_to_batch(s, name, devices, ACTOR),
                           (Refused, NotFound)), as_json)


@batch_app.command("show")
def batch_show(name: Annotated[str, typer.Argument(help="Batch name")],
               database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """A batch, its transfer note and its devices."""
    _show_batch(in_session(database_url, data_dir, lambda s: service.batch_view(s, name), (NotFound,)), as_json)


def _show_batch(view: service.BatchView, as_json: bool) -> None:
    if as_json:
        print_json(view)
        return
    typer.echo(f"{view.name}: transfer note {view.transfer_note_ref}, carrier {view.carrier}, recycler "
               f"{view.recycler} ({view.accreditation}), collected {view.collected_on}, keep until "
               f"{view.retain_until}; {len(view.devices)} device(s): {', '.join(map(str, view.devices)) or '-'}")
