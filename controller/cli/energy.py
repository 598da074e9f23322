"""Energy, cost and carbon: summaries, savings, and the catalogue, tariffs and factors behind them."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path
from typing import Annotated

import typer
import yaml
from sqlmodel import select

from controller import formatting as fmt
from controller.cli.common import (
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
from controller.energy import carbon, catalogue, intensity
from controller.energy.accounting import GROUPS, AccountingError, EnergyRow, energy_summary, jsonable, restate
from controller.energy.catalogue import CatalogueError
from controller.energy.insomnia import insomnia
from controller.energy.period import PeriodError, resolve
from controller.energy.savings import SavingsError, before_after, out_of_hours_waste, savings_summary
from controller.energy.school_hours import SchoolHours
from controller.energy.tariff import TariffError, set_tariff, tariffs_for
from controller.register.enrollment import UnknownSite, site_by_name
from controller.register.models import Site
from controller.reports.service import ReportError, load_inputs
from controller.timeutil import utcnow

app = typer.Typer(no_args_is_help=True, help=__doc__)
catalogue_app = typer.Typer(no_args_is_help=True, help="Watts by state per device class and model.")
tariff_app = typer.Typer(no_args_is_help=True, help="Site tariffs: p/kWh by time-of-use band.")
carbon_app = typer.Typer(no_args_is_help=True, help="UK grid carbon factors by year.")
intensity_app = typer.Typer(no_args_is_help=True, help="Half-hourly grid carbon forecasts (Carbon Intensity API).")
app.add_typer(catalogue_app, name="catalogue")
app.add_typer(tariff_app, name="tariff")
app.add_typer(carbon_app, name="carbon")
app.add_typer(intensity_app, name="intensity")

Sites = Annotated[list[str] | None, typer.Option("--site", help="A site (repeat for several; default: all)")]
From = Annotated[str, typer.Option("--from", help="First day (2025-09-01) or an ISO time")]
To = Annotated[str, typer.Option("--to", help="Last day, inclusive (2025-12-19) or an ISO time")]
ERRORS = (AccountingError, CatalogueError, PeriodError, SavingsError, TariffError, carbon.CarbonFactorError,
          UnknownSite)


def _methods(row: EnergyRow) -> str:
    return " ".join(f"{m} {share * 100:.0f}%" for m, share in row.method_share.items())


def _carbon(row: EnergyRow) -> str:
    return "; ".join(f"{p.year}@{p.kg_per_kwh}({p.factor_year})" for p in row.carbon)


def _school_hours(site: str | None, opens: str, closes: str, database_url: str | None,
                  data_dir: Path | None) -> SchoolHours:
    """School days from the term calendars of the site's policies (the data directory's policies/),
    else weekdays that are not bank holidays."""
    try:
        calendars = load_inputs(settings_for(database_url, data_dir).resolved_policy_dir()).site_calendars(site) \
            if site else []
        return SchoolHours(time.fromisoformat(opens), time.fromisoformat(closes), tuple(calendars))
    except (ValueError, ReportError) as exc:
        fail(str(exc))


@app.command()
def summary(site: Sites = None, start: From = ..., end: To = ...,
            by: Annotated[str, typer.Option("--by", help=f"Group by: {', '.join(GROUPS)}")] = "site",
            per_school_day: Annotated[bool, typer.Option(
                "--per-school-day", help="Also kWh per school day (term calendars of the first --site)")] = False,
            database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """kWh, cost and kgCO2e for a period, with the share of each method behind the figures."""
    hours = _school_hours(site[0] if site else None, "08:00", "18:00", database_url, data_dir) \
        if per_school_day else None
    engine = open_database(database_url, data_dir)
    try:
        with session_scope(engine) as session:
            period = resolve(session, site or [], start, end)
            result = energy_summary(session, period.start, period.end, period.site_ids, by, hours=hours)
    except ERRORS as exc:
        fail(str(exc))
    if as_json:
        print_json(result.to_json())
        return
    rows = [*result.rows, result.total]
    headers = [by.upper(), "KWH", "COST", "KGCO2E", "T&D KGCO2E", "UNPRICED KWH", "METHODS", "FACTOR"]
    print_table(headers + (["KWH/SCHOOL DAY"] if hours else []),
                [[r.key, fmt.kwh(r.kwh), fmt.money_text(r.cost_gbp), fmt.kg(r.kgco2e),
                  "no T&D factor" if r.td_kgco2e is None else fmt.kg(r.td_kgco2e), fmt.kwh(r.unpriced_kwh),
                  _methods(r), _carbon(r)]
                 + ([r.kwh_per_school_day] if hours else []) for r in rows])
    if hours:
        typer.echo(f"{result.school_days} school day(s) in the period", err=True)


@app.command("restate")
def restate_command(factor_year: Annotated[int, typer.Argument(help="Price carbon at this year's factor")],
                    site: Sites = None, start: From = ..., end: To = ..., database_url: DatabaseUrl = None,
                    data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """A prior period's carbon at its own years' factors and restated at FACTOR_YEAR's."""
    engine = open_database(database_url, data_dir)
    try:
        with session_scope(engine) as session:
            period = resolve(session, site or [], start, end)
            reported, restated = restate(session, period.start, period.end, factor_year, period.site_ids)
    except ERRORS as exc:
        fail(str(exc))
    if as_json:
        print_json({"reported": reported.to_json(), "restated": restated.to_json()})
        return
    print_table(["", "KWH", "KGCO2E", "FACTOR"],
                [["reported", reported.total.kwh, reported.total.kgco2e, _carbon(reported.total)],
                 ["restated", restated.total.kwh, restated.total.kgco2e, _carbon(restated.total)]])


@app.command()
def savings(site: Sites = None, start: From = ..., end: To = ..., database_url: DatabaseUrl = None,
            data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """What each policy power-down saved: idle draw until next needed, minus what it drew off or asleep."""
    engine = open_database(database_url, data_dir)
    try:
        with session_scope(engine) as session:
            period = resolve(session, site or [], start, end)
            result = savings_summary(session, period.start, period.end, period.site_ids)
    except ERRORS as exc:
        fail(str(exc))
    if as_json:
        print_json(result.to_json())
        return
    print_table(["ACTION", "DEVICE", "KIND", "FROM", "UNTIL", "SAVED KWH", "SAVED", "SAVED KGCO2E"],
                [[a.action_id, a.hostname, a.kind, a.at.isoformat(timespec="minutes"),
                  a.until.isoformat(timespec="minutes"), fmt.kwh(a.saved_kwh), fmt.money_text(a.saved_gbp),
                  fmt.kg(a.saved_kgco2e)] for a in result.actions])
    typer.echo(f"saved {fmt.kwh_text(result.saved_kwh)}, {fmt.money_text(result.saved_gbp)}, "
               f"{fmt.kg_text(result.saved_kgco2e)}", err=True)
    for reason in result.skipped:
        typer.echo(f"not claimed: {reason}", err=True)


@app.command()
def baseline(site: Annotated[str, typer.Option("--site", help="The site")],
             opens: Annotated[str, typer.Option(help="School day starts (local)")] = "08:00",
             closes: Annotated[str, typer.Option(help="School day ends (local)")] = "18:00",
             database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Out-of-hours kWh per school day: the observe-mode baseline against since the policy acted.

    School days come from the term calendars of the site's policies (in the data directory's policies/),
    else weekdays that are not bank holidays."""
    day = _school_hours(site, opens, closes, database_url, data_dir)
    engine = open_database(database_url, data_dir)
    try:
        with session_scope(engine) as session:
            result = before_after(session, site_by_name(session, site).id, day)
    except ERRORS as exc:
        fail(str(exc))
    if as_json:
        print_json(result.to_json())
        return
    print_table(["PERIOD", "FROM", "TO", "SCHOOL DAYS", "OUT-OF-HOURS KWH", "KWH PER SCHOOL DAY"],
                [[name, p.first_day, p.last_day, p.school_days, p.out_of_hours_kwh, p.kwh_per_school_day]
                 for name, p in (("baseline", result.baseline), ("after", result.after))])
    typer.echo(f"change: {result.change_kwh_per_school_day} kWh per school day ({result.change_percent}%)", err=True)


@app.command()
def waste(site: Sites = None, start: From = ..., end: To = ...,
          by: Annotated[str, typer.Option("--by", help="device or room")] = "device",
          limit: Annotated[int, typer.Option(min=1, max=1000)] = 10, database_url: DatabaseUrl = None,
          data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """The devices or rooms drawing most while idle out of hours, by each device's power policy (the data
    directory's policies/); what a policy keeps on (servers, maintenance, exams) is never waste."""
    engine = open_database(database_url, data_dir)
    try:
        inputs = load_inputs(settings_for(database_url, data_dir).resolved_policy_dir())
        with session_scope(engine) as session:
            period = resolve(session, site or [], start, end)
            rows = out_of_hours_waste(session, period.start, period.end, period.site_ids, by, limit,
                                      inputs.policies, inputs.calendars, placement=inputs.placement)
    except (*ERRORS, ReportError) as exc:
        fail(str(exc))
    if as_json:
        print_json(jsonable([vars(r) for r in rows]))
        return
    print_table([by.upper(), "IDLE KWH", "COST", "KGCO2E", "IDLE HOURS"],
                [[r.key, fmt.kwh(r.idle_kwh), fmt.money_text(r.cost_gbp), fmt.kg(r.kgco2e), r.idle_hours]
                 for r in rows])


@app.command("insomnia")
def insomnia_command(site: Sites = None, start: Annotated[str | None, typer.Option(
                         "--from", help="First day (default: a week ago)")] = None,
                     end: Annotated[str | None, typer.Option("--to", help="Last day (default: today)")] = None,
                     limit: Annotated[int, typer.Option(min=1, max=100_000, help="Devices at most")] = 20,
                     database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Devices idle out of hours that would not sleep, what held them awake (power requests, assertions,
    inhibitors, no sleep timer), and the kWh, cost and carbon each cause cost across the estate."""
    today = utcnow().date()
    engine = open_database(database_url, data_dir)
    try:
        inputs = load_inputs(settings_for(database_url, data_dir).resolved_policy_dir())
        with session_scope(engine) as session:
            period = resolve(session, site or [], start or f"{today - timedelta(days=6)}", end or f"{today}")
            found = insomnia(session, period.start, period.end, period.site_ids, inputs.policies, inputs.calendars)
    except (*ERRORS, ReportError) as exc:
        fail(str(exc))
    if as_json:
        print_json(found.to_json())
        return
    typer.echo(f"Idle out of hours, kept awake: {fmt.kwh(found.kwh)} kWh, {fmt.money_text(found.cost_gbp)}, "
               f"{fmt.kg(found.kgco2e)} kgCO2e ({found.start:%Y-%m-%d %H:%M} to {found.end:%Y-%m-%d %H:%M} UTC)")
    typer.echo("\nBy cause, across the estate:")
    print_table(["CAUSE", "HELD BY", "PROCESS", "DEVICES", "IDLE HOURS", "KWH", "COST", "KGCO2E"],
                [[c.kind, c.what or "-", c.process or "-", c.devices, c.idle_hours, fmt.kwh(c.kwh),
                  fmt.money_text(c.cost_gbp), fmt.kg(c.kgco2e)] for c in found.causes])
    typer.echo("\nDevices:")
    print_table(["DEVICE", "IDLE HOURS", "KWH", "COST", "WHAT HELD IT"],
                [[d.device, d.idle_hours, fmt.kwh(d.kwh), fmt.money_text(d.cost_gbp), "; ".join(d.causes[:3])]
                 for d in found.devices[:limit]])


@catalogue_app.command("import")
def catalogue_import(file: Annotated[Path, typer.Argument(help="CSV or YAML of entries", exists=True,
                                                          dir_okay=False)],
                     database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Store entries (class, or vendor + model) replacing the shipped watts; all or nothing."""
    try:
        profiles = catalogue.parse(file.read_text(), file.name)
    except (CatalogueError, UnicodeDecodeError) as exc:
        fail(str(exc))
    engine = open_database(database_url, data_dir)
    with session_scope(engine) as session:
        count = catalogue.import_profiles(session, profiles)
    typer.echo(f"imported {count} catalogue entr{'y' if count == 1 else 'ies'}", err=True)


@catalogue_app.command("export")
def catalogue_export(fmt: Annotated[str, typer.Option("--format", help="csv or yaml")] = "yaml",
                     database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """The catalogue in force (shipped, overridden), in a form `import` reads back."""
    if fmt not in ("csv", "yaml"):
        fail(f"--format must be csv or yaml, not {fmt!r}")
    engine = open_database(database_url, data_dir)
    with session_scope(engine) as session:
        current = catalogue.load(session)
    typer.echo(catalogue.export_csv(current) if fmt == "csv" else catalogue.export_yaml(current), nl=False)


def _band(text: str) -> dict[str, str]:
    """"night all 00:30-07:30 15" → a band mapping."""
    parts = text.split()
    if len(parts) != 4 or "-" not in parts[2]:
        raise TariffError(f"--band {text!r}: expected NAME DAYS HH:MM-HH:MM PENCE, "
                          "e.g. 'day weekdays 07:00-19:00 30.2'")
    start, end = parts[2].split("-", 1)
    return {"name": parts[0], "days": parts[1], "start": start, "end": end, "pence_per_kwh": parts[3]}


@tariff_app.command("set")
def tariff_set(site: Annotated[str, typer.Option("--site", help="The site")],
               valid_from: Annotated[str, typer.Option("--from", help="In force from (date, local midnight)")],
               band: Annotated[list[str] | None, typer.Option(
                   "--band", help="NAME DAYS HH:MM-HH:MM PENCE (repeat; first match wins)")] = None,
               file: Annotated[Path | None, typer.Option("--file", help="YAML with bands: [...]", exists=True,
                                                         dir_okay=False)] = None,
               name: Annotated[str, typer.Option(help="A label for the tariff")] = "standard",
               standing: Annotated[float, typer.Option(help="Standing charge, p/day (never part of savings)")] = 0.0,
               database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Set a site's tariff from a date."""
    try:
        if file is not None:
            data = yaml.safe_load(file.read_text())
            bands = data.get("bands") if isinstance(data, dict) else None
            if not isinstance(bands, list):
                raise TariffError(f"{file.name}: expected a mapping with bands: [...]")
            name = str(data.get("name", name))
            standing = float(data.get("standing_pence_per_day", standing))
        else:
            bands = [_band(b) for b in band or []]
    except (TariffError, yaml.YAMLError, ValueError) as exc:
        fail(str(exc).splitlines()[0])
    engine = open_database(database_url, data_dir)
    try:
        with session_scope(engine) as session:
            period = resolve(session, [site], valid_from, valid_from)
            set_tariff(session, period.site_ids[0], name, period.start, bands, standing)
    except ERRORS as exc:
        fail(str(exc))
    typer.echo(f"tariff {name} set for {site} from {period.start.isoformat()}", err=True)


@tariff_app.command("show")
def tariff_show(site: Annotated[str, typer.Option("--site", help="The site")], database_url: DatabaseUrl = None,
                data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """A site's tariffs, oldest first."""
    engine = open_database(database_url, data_dir)
    try:
        with session_scope(engine) as session:
            site_id = site_by_name(session, site).id
            specs = tariffs_for(session, [site_id]).get(site_id, [])
    except ERRORS as exc:
        fail(str(exc))
    rows = [{"name": s.name, "valid_from": s.valid_from, "standing_pence_per_day": s.standing_pence_per_day,
             "band": b.name, "days": ",".join("mtwtfss"[d] for d in sorted(b.days)),
             "start": f"{b.start // 60:02d}:{b.start % 60:02d}", "end": f"{b.end // 60:02d}:{b.end % 60:02d}",
             "pence_per_kwh": b.pence_per_kwh} for s in specs for b in s.bands]
    if as_json:
        print_json(jsonable(rows))
        return
    print_table(["TARIFF", "FROM", "BAND", "DAYS", "START", "END", "P/KWH", "STANDING P/DAY"],
                [[r["name"], r["valid_from"], r["band"], r["days"], r["start"], r["end"], r["pence_per_kwh"],
                  r["standing_pence_per_day"]] for r in rows])


@carbon_app.command("set")
def carbon_set(year: Annotated[int, typer.Argument()], generation: Annotated[float, typer.Argument(
                   help="kgCO2e/kWh, generation")],
               td: Annotated[float | None, typer.Option("--td", help="kgCO2e/kWh, transmission and distribution")]
               = None,
               source: Annotated[str, typer.Option(help="Where the figure comes from")] = "",
               database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Set (or correct) a year's UK grid factor, e.g. when DESNZ publishes a new year."""
    engine = open_database(database_url, data_dir)
    try:
        with session_scope(engine) as session:
            carbon.set_factor(session, year, generation, td, source)
    except ERRORS as exc:
        fail(str(exc))
    typer.echo(f"carbon factor for {year} set to {generation} kgCO2e/kWh", err=True)


@carbon_app.command("show")
def carbon_show(database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """The factors in force, by year, with their source."""
    engine = open_database(database_url, data_dir)
    with session_scope(engine) as session:
        factors = carbon.load(session)
    rows = [{"year": f.year, "generation": f.generation, "td": f.td, "source": f.source}
            for f in sorted(factors.years.values(), key=lambda f: f.year)]
    if as_json:
        print_json(jsonable(rows))
        return
    print_table(["YEAR", "GENERATION KG/KWH", "T&D KG/KWH", "SOURCE"],
                [[r["year"], r["generation"], r["td"], r["source"]] for r in rows])



@intensity_app.command("fetch")
def intensity_fetch(site: Sites = None,
                    api_url: Annotated[str, typer.Option("--api-url", envvar="CARETAKER_CARBON_INTENSITY_URL",
                                                         help="Carbon Intensity API base URL")] = intensity.API_URL,
                    database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Fetch and cache the next 48 hours for each site's region (its postcode outcode, else Great Britain),
    for carbon-aware maintenance. Run it from cron; the controller itself never waits on the API."""
    engine = open_database(database_url, data_dir)
    now = utcnow()
    start = now.replace(minute=0 if now.minute < 30 else 30, second=0, microsecond=0)
    try:
        with session_scope(engine) as session:
            sites = [site_by_name(session, name) for name in site] if site else list(session.exec(select(Site)))
            regions = sorted({intensity.outcode(s.postcode) or intensity.NATIONAL for s in sites})
            results = [intensity.forecast(session, region, start, start + timedelta(hours=48), base=api_url)
                       for region in regions]
    except ERRORS as exc:
        fail(str(exc))
    rows = [{"region": r.region, "source": r.source, "periods": len(r.periods), "problem": r.problem}
            for r in results]
    if as_json:
        print_json(rows)
        return
    print_table(["REGION", "SOURCE", "HALF-HOURS", "PROBLEM"],
                [[r["region"], r["source"], r["periods"], r["problem"]] for r in rows])
