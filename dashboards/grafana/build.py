"""Writes the Grafana dashboards in this directory with Grafana's own typed builders: python dashboards/grafana/build.py

The dashboards are built with grafana-foundation-sdk (Grafana's Foundation SDK, generated from the
schemas Grafana itself uses), so their JSON stays valid for current Grafana rather than for the shape
someone once copied by hand. The six share their variables (a Prometheus datasource, a multi-select site
filter), panel shapes and layout. Commit the JSON this writes: Grafana provisioning and the tests read
the JSON, not this script.

Every query filters by ``site=~"$site"``; the recording rules in dashboards/prometheus/rules.yml carry
the site label, so the graphs read those and stay cheap over a year. Energy, carbon and cost series count
each device-hour under one method (metered wins the hour; see dashboards/prometheus/rules.yml), so the
panels may sum across methods without counting an hour twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import bargauge, prometheus, stat
from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.builders import table as tables
from grafana_foundation_sdk.builders import timeseries as series
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

HERE = Path(__file__).resolve().parent
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
SITE = 'site=~"$site"'
WIDTH = 24  # Grafana's grid is 24 columns wide
KWH = 3.6e6  # joules


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""  # Grafana's legendFormat: the labels each series must carry ("{{site}}")


@dataclass(frozen=True)
class Panel:
    title: str
    kind: str  # timeseries (range queries) or stat, bargauge, table (instant queries)
    queries: tuple[Query, ...]
    unit: str = "short"
    description: str = ""
    width: int = 12
    height: int = 8


def timeseries(title: str, *queries: Query, unit: str = "short", description: str = "", width: int = 12) -> Panel:
    return Panel(title, "timeseries", queries, unit, description, width)


def figure(title: str, *queries: Query, unit: str = "short", description: str = "", width: int = 6) -> Panel:
    return Panel(title, "stat", queries, unit, description, width, height=4)


def bar(title: str, *queries: Query, unit: str = "short", description: str = "", width: int = 12) -> Panel:
    return Panel(title, "bargauge", queries, unit, description, width)


def table(title: str, *queries: Query, description: str = "", width: int = 12) -> Panel:
    return Panel(title, "table", queries, "short", description, width)


def _builder(panel: Panel):
    if panel.kind == "timeseries":
        return series.Panel()
    if panel.kind == "stat":
        return stat.Panel()
    if panel.kind == "bargauge":
        return bargauge.Panel().orientation(common.VizOrientation.HORIZONTAL).display_mode(
            common.BarGaugeDisplayMode.BASIC)
    return tables.Panel()


def _target(panel: Panel, query: Query, ref: str) -> prometheus.Dataquery:
    target = prometheus.Dataquery().ref_id(ref).datasource(DATASOURCE).expr(query.expr).legend_format(query.legend)
    target = target.range() if panel.kind == "timeseries" else target.instant()
    return target.format(PromQueryFormat.TABLE) if panel.kind == "table" else target


def _panel(panel: Panel, panel_id: int, x: int, y: int):
    built = (_builder(panel).id(panel_id).title(panel.title).description(panel.description).datasource(DATASOURCE)
             .unit(panel.unit).grid_pos(model.GridPos(h=panel.height, w=panel.width, x=x, y=y)))
    for i, query in enumerate(panel.queries):
        built = built.with_target(_target(panel, query, chr(ord("A") + i)))
    return built


def _variables() -> list:
    return [
        board.DatasourceVariable("datasource").label("Prometheus").type("prometheus"),
        board.QueryVariable("site").label("Site").datasource(DATASOURCE)
        .query("label_values(caretaker_devices, site)").multi(True).include_all(True).all_value(".*")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(model.VariableSort.ALPHABETICAL_ASC),
    ]


def dashboard(uid: str, title: str, description: str, panels: list[Panel]) -> dict:
    """Panels flow left to right, wrapping at the grid's width; the JSON as Grafana reads it."""
    built = (board.Dashboard(title).uid(uid).description(description).tags(["caretaker"]).editable()
             .timezone("browser").refresh("1m").time("now-7d", "now"))
    for variable in _variables():
        built = built.with_variable(variable)
    x, y, row_height = 0, 0, 0
    for panel_id, panel in enumerate(panels, start=1):
        if x + panel.width > WIDTH:
            x, y, row_height = 0, y + row_height, 0
        built = built.with_panel(_panel(panel, panel_id, x, y))
        x, row_height = x + panel.width, max(row_height, panel.height)
    return json.loads(json.dumps(built.build(), cls=JSONEncoder, sort_keys=True))


def estate_overview() -> dict:
    return dashboard("caretaker-estate", "Caretaker: estate overview", "Power now, devices and agents, ingest.", [
        figure("Power now", Query(f"sum(site:caretaker_power_watts:sum{{{SITE}}})"), unit="watt"),
        figure("Devices", Query(f"sum(caretaker_devices{{{SITE}}})")),
        figure("Devices on", Query(f'sum(caretaker_devices{{{SITE},state="on"}})')),
        figure("Agents silent over 7 days", Query(f'sum(caretaker_agents{{{SITE},last_seen="older"}})')),
        timeseries("Power by site", Query(f"site:caretaker_power_watts:sum{{{SITE}}}", "{{site}}"), unit="watt"),
        timeseries("Devices by state", Query(f"sum by (state) (caretaker_devices{{{SITE}}})", "{{state}}")),
        bar("Agents by time since last report",
                 Query(f"sum by (last_seen) (caretaker_agents{{{SITE}}})", "{{last_seen}}")),
        bar("Power by device class",
                 Query(f"sum by (device_class) (caretaker_power_watts{{{SITE}}})", "{{device_class}}"), unit="watt"),
        timeseries("Reports ingested per second", Query("sum by (outcome) (job:caretaker_ingest_reports:rate5m)",
                                                        "{{outcome}}"), unit="reqps", width=8),
        timeseries("Ingest latency (95th percentile)",
                   Query("job:caretaker_ingest_request_duration_seconds:p95_5m", "{{job}}"), unit="s", width=8),
        timeseries("Ingest backlog", Query("caretaker_ingest_backlog", "{{instance}}"), width=8,
                   description="Report batches waiting for the writer; a rising line means it is falling behind."),
    ])


def energy_and_carbon() -> dict:
    return dashboard("caretaker-energy", "Caretaker: energy and carbon",
                     "Energy by site and method, its location-based carbon and its cost.", [
        figure("Energy in range", Query(f"sum(increase(caretaker_energy_joules_total{{{SITE}}}[$__range])) / {KWH}"),
               unit="kwatth", description="As caretaker energy summary counts it: each device-hour once, under the "
               "method that won it (metered over the agent's), so the sum over methods is the total."),
        figure("Carbon in range", Query(f"sum(increase(caretaker_carbon_grams_total{{{SITE}}}[$__range])) / 1000"),
             unit="masskg"),
        figure("Cost in range", Query(f"sum(increase(caretaker_cost_pence_total{{{SITE}}}[$__range])) / 100"),
             unit="currencyGBP", description="At each site's tariff; the standing charge is not included."),
        figure("Mean power in range", Query(f"sum(rate(caretaker_energy_joules_total{{{SITE}}}[$__range]))"),
             unit="watt"),
        timeseries("Energy per hour by site", Query(f"site:caretaker_energy_joules:rate1h{{{SITE}}} * 3600 / {KWH}",
                                                    "{{site}}"), unit="kwatth"),
        timeseries("Energy per hour by method",
                   Query(f"sum by (method) (site_method:caretaker_energy_joules:rate1h{{{SITE}}}) * 3600 / {KWH}",
                         "{{method}}"), unit="kwatth",
                   description="metered > rapl > battery > model, and attributed for silence: how much of the "
                               "figure is measured. Each device-hour is under one method, so they stack to the "
                               "total."),
        timeseries("Carbon per hour by site", Query(f"site:caretaker_carbon_grams:rate1h{{{SITE}}} * 3600",
                                                    "{{site}}"), unit="massg"),
        timeseries("Cost per hour by site", Query(f"site:caretaker_cost_pence:rate1h{{{SITE}}} * 36", "{{site}}"),
                   unit="currencyGBP"),
        bar("Energy in range by device class",
                 Query(f"sum by (device_class) (increase(caretaker_energy_joules_total{{{SITE}}}[$__range])) / {KWH}",
                       "{{device_class}}"), unit="kwatth"),
        table("Grid carbon factors in use", Query("caretaker_carbon_factor_grams_per_kwh", "{{year}} {{source}}"),
              description="DESNZ location-based generation factors, gCO2e/kWh, by the year the energy was used."),
    ])


def savings() -> dict:
    return dashboard("caretaker-savings", "Caretaker: savings",
                     "Energy saved by power-policy actions, against what the devices would have drawn idle.", [
        figure("Saved in range",
             Query(f"sum(increase(caretaker_energy_saved_joules_total{{{SITE}}}[$__range])) / {KWH}"),
             unit="kwatth"),
        figure("Saved share of use", Query(
            f"sum(increase(caretaker_energy_saved_joules_total{{{SITE}}}[$__range])) / "
            f"(sum(increase(caretaker_energy_saved_joules_total{{{SITE}}}[$__range])) "
            f"+ sum(increase(caretaker_energy_joules_total{{{SITE}}}[$__range])))"), unit="percentunit",
             description="Saved over saved plus used: the share of the counterfactual draw avoided."),
        timeseries("Saved per hour by site",
                   Query(f"site:caretaker_energy_saved_joules:rate1h{{{SITE}}} * 3600 / {KWH}", "{{site}}"),
                   unit="kwatth"),
        bar("Saved in range by device class",
                 Query(f"sum by (device_class) (increase(caretaker_energy_saved_joules_total{{{SITE}}}[$__range]))"
                       f" / {KWH}", "{{device_class}}"), unit="kwatth"),
        timeseries("Used and saved per hour", Query(f"sum(site:caretaker_energy_joules:rate1h{{{SITE}}}) * 3600"
                                                    f" / {KWH}", "used"),
                   Query(f"sum(site:caretaker_energy_saved_joules:rate1h{{{SITE}}}) * 3600 / {KWH}", "saved"),
                   unit="kwatth", width=24),
    ])


def policy_compliance() -> dict:
    return dashboard("caretaker-policy", "Caretaker: power-policy compliance",
                     "Devices on while their policy says off or asleep, and site power against its quiet floor.", [
        figure("Devices on out of hours", Query(f"sum(site:caretaker_devices_on_out_of_hours:sum{{{SITE}}})")),
        figure("Sites with devices on out of hours",
             Query(f"count(site:caretaker_devices_on_out_of_hours:sum{{{SITE}}} > 0) or vector(0)")),
        timeseries("Devices on out of hours by site",
                   Query(f"site:caretaker_devices_on_out_of_hours:sum{{{SITE}}}", "{{site}}")),
        bar("Devices on out of hours by class",
                 Query(f"sum by (device_class) (caretaker_devices_on_out_of_hours{{{SITE}}})", "{{device_class}}")),
        timeseries("Site power and its weekly baseline",
                   Query(f"site:caretaker_power_watts:sum{{{SITE}}}", "{{site}} now"),
                   Query(f"site:caretaker_power_watts:baseline7d{{{SITE}}}", "{{site}} baseline"), unit="watt",
                   width=24, description="The baseline is the 10th percentile of the last week: nights, weekends."),
    ])


def wake_on_lan() -> dict:
    return dashboard("caretaker-wake", "Caretaker: wake-on-LAN health",
                     "Wake requests by outcome: a wake counts as confirmed only when the machine reported in.", [
        figure("Wakes in range", Query(f"sum(increase(caretaker_wake_requests_total{{{SITE}}}[$__range]))")),
        figure("Failed in range",
             Query(f'sum(increase(caretaker_wake_requests_total{{{SITE},outcome="failed"}}[$__range]))')),
        timeseries("Wakes per hour by outcome", Query(
            f"sum by (outcome) (rate(caretaker_wake_requests_total{{{SITE}}}[$__rate_interval])) * 3600",
            "{{outcome}}")),
        timeseries("Failure ratio by site", Query(f"site:caretaker_wake_requests_failed:ratio_rate1h{{{SITE}}}",
                                                  "{{site}}"), unit="percentunit"),
        bar("Wakes in range by site and outcome", Query(
            f"sum by (site, outcome) (increase(caretaker_wake_requests_total{{{SITE}}}[$__range]))",
            "{{site}} {{outcome}}"), width=24),
    ])


def lifecycle() -> dict:
    return dashboard("caretaker-lifecycle", "Caretaker: lifecycle",
                     "Devices by asset-register stage, from in stock to disposed.", [
        figure("In service", Query(
            f'sum(caretaker_devices_lifecycle{{{SITE},stage=~"in_stock|deployed|in_repair|redeployed"}})')),
        figure("Awaiting disposal", Query(
            f'sum(caretaker_devices_lifecycle{{{SITE},stage=~"retired|awaiting_disposal|sanitised"}}) or vector(0)')),
        figure("Not in the register", Query(
            f'sum(caretaker_devices_lifecycle{{{SITE},stage="unregistered"}}) or vector(0)')),
        bar("Devices by stage", Query(f"sum by (stage) (caretaker_devices_lifecycle{{{SITE}}})", "{{stage}}")),
        table("Stage by site and class", Query(
            f"sum by (site, device_class, stage) (caretaker_devices_lifecycle{{{SITE}}})",
            "{{site}} {{device_class}} {{stage}}")),
        timeseries("Devices by stage over time",
                   Query(f"sum by (stage) (caretaker_devices_lifecycle{{{SITE}}})", "{{stage}}"), width=24),
    ])


DASHBOARDS = {
    "estate-overview.json": estate_overview, "energy-and-carbon.json": energy_and_carbon, "savings.json": savings,
    "power-policy-compliance.json": policy_compliance, "wake-on-lan.json": wake_on_lan, "lifecycle.json": lifecycle,
}


def main() -> None:
    for name, build in DASHBOARDS.items():
        (HERE / name).write_text(json.dumps(build(), indent=2) + "\n")


if __name__ == "__main__":
    main()
