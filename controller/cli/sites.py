"""Sites and the trusts or local authorities they belong to: what reports and carbon figures know of each school."""

from __future__ import annotations

from typing import Annotated

import typer

from controller.cli.common import ACTOR, AsJson, DatabaseUrl, DataDir, in_session, print_json, print_rows
from controller.register.sites import SiteView, list_sites, site_detail, update_site

app = typer.Typer(no_args_is_help=True, help=__doc__)


def _nation(view: SiteView) -> str:
    return (view.nation or "").replace("_", "-")


@app.command("list")
def site_list(database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Every site with its trust, pupils, postcode, nation, time zone and devices."""
    rows = in_session(database_url, data_dir, list_sites)
    print_rows([_plain(r) for r in rows] if as_json else rows, as_json,
               ["SITE", "TRUST", "PUPILS", "POSTCODE", "NATION", "TIMEZONE", "DEVICES"],
               lambda r: [r.name, r.trust, r.pupils, r.postcode, _nation(r), r.timezone, r.devices],
               f"{len(rows)} site(s)")


@app.command("show")
def site_show(name: Annotated[str, typer.Argument(help="The site's name")], database_url: DatabaseUrl = None,
              data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """One site, and every change made to it (renames included)."""
    view = in_session(database_url, data_dir, lambda s: site_detail(s, name))
    if as_json:
        print_json({**_plain(view), "history": [vars(c) for c in view.history]})
        return
    region = view.outcode or ("none (Northern Ireland)" if (view.postcode or "").startswith("BT") else "Great Britain")
    for label, value in (("Site", f"{view.name} (id {view.id})"), ("Trust", view.trust or "none"),
                         ("Pupils", "unknown" if view.pupils is None else f"{view.pupils:,}"),
                         ("Postcode", view.postcode or "unknown"), ("Carbon", f"regional intensity for {region}"),
                         ("Nation", _nation(view) or "unknown"), ("Time zone", view.timezone),
                         ("Devices", view.devices)):
        typer.echo(f"{label + ':':<11}{value}")
    typer.echo("\nChanges:")
    for change in view.history:
        what = "; ".join(f"{k}: {_shown((change.before or {}).get(k))} → {_shown(v)}"
                         for k, v in (change.after or {}).items())
        typer.echo(f"  {change.at:%Y-%m-%d %H:%M} {change.actor} {change.action}: {what}")


@app.command("set")
def site_set(
    name: Annotated[str, typer.Argument(help="The site's name")],
    trust: Annotated[str | None, typer.Option(help="Its trust or local authority ('' for none)")] = None,
    pupils: Annotated[int | None, typer.Option(help="Pupils on roll (intensity per pupil in the audit pack)")] = None,
    postcode: Annotated[str | None, typer.Option(help="Its postcode: the outcode picks the regional carbon "
                                                      "intensity ('' for none)")] = None,
    nation: Annotated[str | None, typer.Option(help="england, wales, scotland or northern-ireland")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA time zone its schedules run in, e.g. "
                                                      "Europe/London")] = None,
    rename: Annotated[str | None, typer.Option(help="A new name; the site keeps its devices and history")] = None,
    actor: Annotated[str, typer.Option(help="Who changes it, for the change log")] = "cli",
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Change what a site says about itself; one change record holds what changed."""
    given = {"trust": trust, "pupils": pupils, "postcode": postcode, "nation": nation, "timezone": timezone,
             "name": rename}
    wanted = {field: value for field, value in given.items() if value is not None}
    view = in_session(database_url, data_dir, lambda s: update_site(s, name, wanted, f"{ACTOR}:{actor}"))
    if as_json:
        print_json(_plain(view))
        return
    typer.echo(f"{view.name}: trust {view.trust or 'none'}, pupils {view.pupils if view.pupils is not None else '?'}"
               f", postcode {view.postcode or 'none'}, nation {_nation(view) or 'unknown'}, {view.timezone}")


def _shown(value: object) -> str:
    return "—" if value is None else str(value)


def _plain(view: SiteView) -> dict:
    return {k: v for k, v in vars(view).items() if k != "history"}
