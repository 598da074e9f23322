"""Writes the Grafana dashboards in this directory from one description each: python dashboards/grafana/build.py

The six dashboards share their variables (a Prometheus datasource, a multi-select site filter), panel
shapes and layout, so they are built here rather than kept as six hand-edited JSON files that drift
apart. Commit the JSON this writes: Grafana provisioning and the tests read the JSON, not this script.

Every query filters by ``site=~"$site"``; the recording rules in dashboards/prometheus/rules.yml carry
the site label, so the graphs read those and stay cheap over a year.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
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
    options: dict = field(default_factory=dict)


def timeseries(title: str, *queries: Query, unit: str = "short", description: str = "", width: int = 12) -> Panel:
    return Panel(title, "timeseries", queries, unit, description, width)


def stat(title: str, *queries: Query, unit: str = "short", description: str = "", width: int = 6) -> Panel:
    return Panel(title, "stat", queries, unit, description, width, height=4)


def bargauge(title: str, *queries: Query, unit: str = "short", description: str = "", width: int = 12) -> Panel:
    return Panel(title, "bargauge", queries, unit, description, width,
                 options={"displayMode": "basic", "orientation": "horizontal"})


def table(title: str, *queries: Query, description: str = "", width: int = 12) -> Panel:
    return Panel(title, "table", queries, "short", description, width)


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict:
    instant = panel.kind != "timeseries"
    targets = [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": q.expr, "legendFormat": q.legend,
                "instant": instant, "range": not instant, **({"format": "table"} if panel.kind == "table" else {})}
               for i, q in enumerate(panel.queries)]
    return {
        "id": panel_id, "type": panel.kind, "title": panel.title, "description": panel.description,
        "datasource": DATASOURCE, "gridPos": {"x": x, "y": y, "w": panel.width, "h": panel.height},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": panel.options, "targets": targets,
    }


def _variables() -> list[dict]:
    sites = "label_values(caretaker_devices, site)"
    return [
        {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0, "refresh": 1, "options": []},
        {"name": "site", "label": "Site", "type": "query", "datasource": DATASOURCE,
         "query": {"query": sites, "refId": "sites"}, "definition": sites, "multi": True, "includeAll": True,
         "allValue": ".*", "current": {"text": "All", "value": "$__all"}, "refresh": 2, "sort": 1, "options": []},
    ]


def dashboard(uid: str, title: str, description: str, panels: list[Panel]) -> dict:
    """Panels flow left to right, wrapping at the grid's width."""
    laid_out, x, y, row_height = [], 0, 0, 0
    for panel_id, panel in enumerate(panels, start=1):
        if x + panel.width > WIDTH:
            x, y, row_height = 0, y + row_height, 0
        laid_out.append(_panel_json(panel, panel_id, x, y))
        x, row_height = x + panel.width, max(row_height, panel.height)
    return {
        "uid": uid, "title": title, "description": description, "tags": ["caretaker"],
        "schemaVersion": 39, "version": 1, "editable": True, "timezone": "browser", "refresh": "1m",
        "time": {"from": "now-7d", "to": "now"}, "templating": {"list": _variables()},
        "annotations": {"list": []}, "links": [], "panels": laid_out,
    }


def estate_overview() -> dict:
    return dashboard("caretaker-estate", "Caretaker: estate overview", "Power now, devices and agents, ingest.", [
        stat("Power now", Query(f"sum(site:caretaker_power_watts:sum{{{SITE}}})"), unit="watt"),
        stat("Devices", Query(f"sum(caretaker_devices{{{SITE}}})")),
        stat("Devices on", Query(f'sum(caretaker_devices{{{SITE},state="on"}})')),
        stat("Agents silent over 7 days", Query(f'sum(caretaker_agents{{{SITE},last_seen="older"}})')),
        timeseries("Power by site", Query(f"site:caretaker_power_watts:sum{{{SITE}}}", "{{site}}"), unit="watt"),
        timeseries("Devices by state", Query(f"sum by (state) (caretaker_devices{{{SITE}}})", "{{state}}")),
        bargauge("Agents by time since last report",
                 Query(f"sum by (last_seen) (caretaker_agents{{{SITE}}})", "{{last_seen}}")),
        bargauge("Power by device class",
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
        stat("Energy in range", Query(f"sum(increase(caretaker_energy_joules_total{{{SITE}}}[$__range])) / {KWH}"),
             unit="kwatth"),
        stat("Carbon in range", Query(f"sum(increase(caretaker_carbon_grams_total{{{SITE}}}[$__range])) / 1000"),
             unit="masskg"),
        stat("Cost in range", Query(f"sum(increase(caretaker_cost_pence_total{{{SITE}}}[$__range])) / 100"),
             unit="currencyGBP", description="At each site's tariff; the standing charge is not included."),
        stat("Mean power in range", Query(f"sum(rate(caretaker_energy_joules_total{{{SITE}}}[$__range]))"),
             unit="watt"),
        timeseries("Energy per hour by site", Query(f"site:caretaker_energy_joules:rate1h{{{SITE}}} * 3600 / {KWH}",
                                                    "{{site}}"), unit="kwatth"),
        timeseries("Energy per hour by method",
                   Query(f"sum by (method) (site_method:caretaker_energy_joules:rate1h{{{SITE}}}) * 3600 / {KWH}",
                         "{{method}}"), unit="kwatth",
                   description="metered > rapl > battery > model: how much of the figure is measured."),
        timeseries("Carbon per hour by site", Query(f"site:caretaker_carbon_grams:rate1h{{{SITE}}} * 3600",
                                                    "{{site}}"), unit="massg"),
        timeseries("Cost per hour by site", Query(f"site:caretaker_cost_pence:rate1h{{{SITE}}} * 36", "{{site}}"),
                   unit="currencyGBP"),
        bargauge("Energy in range by device class",
                 Query(f"sum by (device_class) (increase(caretaker_energy_joules_total{{{SITE}}}[$__range])) / {KWH}",
                       "{{device_class}}"), unit="kwatth"),
        table("Grid carbon factors in use", Query("caretaker_carbon_factor_grams_per_kwh", "{{year}} {{source}}"),
              description="DESNZ location-based generation factors, gCO2e/kWh, by the year the energy was used."),
    ])


def savings() -> dict:
    return dashboard("caretaker-savings", "Caretaker: savings",
                     "Energy saved by power-policy actions, against what the devices would have drawn idle.", [
        stat("Saved in range",
             Query(f"sum(increase(caretaker_energy_saved_joules_total{{{SITE}}}[$__range])) / {KWH}"),
             unit="kwatth"),
        stat("Saved share of use", Query(
            f"sum(increase(caretaker_energy_saved_joules_total{{{SITE}}}[$__range])) / "
            f"(sum(increase(caretaker_energy_saved_joules_total{{{SITE}}}[$__range])) "
            f"+ sum(increase(caretaker_energy_joules_total{{{SITE}}}[$__range])))"), unit="percentunit",
             description="Saved over saved plus used: the share of the counterfactual draw avoided."),
        timeseries("Saved per hour by site",
                   Query(f"site:caretaker_energy_saved_joules:rate1h{{{SITE}}} * 3600 / {KWH}", "{{site}}"),
                   unit="kwatth"),
        bargauge("Saved in range by device class",
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
        stat("Devices on out of hours", Query(f"sum(site:caretaker_devices_on_out_of_hours:sum{{{SITE}}})")),
        stat("Sites with devices on out of hours",
             Query(f"count(site:caretaker_devices_on_out_of_hours:sum{{{SITE}}} > 0) or vector(0)")),
        timeseries("Devices on out of hours by site",
                   Query(f"site:caretaker_devices_on_out_of_hours:sum{{{SITE}}}", "{{site}}")),
        bargauge("Devices on out of hours by class",
                 Query(f"sum by (device_class) (caretaker_devices_on_out_of_hours{{{SITE}}})", "{{device_class}}")),
        timeseries("Site power and its weekly baseline",
                   Query(f"site:caretaker_power_watts:sum{{{SITE}}}", "{{site}} now"),
                   Query(f"site:caretaker_power_watts:baseline7d{{{SITE}}}", "{{site}} baseline"), unit="watt",
                   width=24, description="The baseline is the 10th percentile of the last week: nights, weekends."),
    ])


def wake_on_lan() -> dict:
    return dashboard("caretaker-wake", "Caretaker: wake-on-LAN health",
                     "Wake requests by outcome: a wake counts as confirmed only when the machine reported in.", [
        stat("Wakes in range", Query(f"sum(increase(caretaker_wake_requests_total{{{SITE}}}[$__range]))")),
        stat("Failed in range",
             Query(f'sum(increase(caretaker_wake_requests_total{{{SITE},outcome="failed"}}[$__range]))')),
        timeseries("Wakes per hour by outcome", Query(
            f"sum by (outcome) (rate(caretaker_wake_requests_total{{{SITE}}}[$__rate_interval])) * 3600",
            "{{outcome}}")),
        timeseries("Failure ratio by site", Query(f"site:caretaker_wake_requests_failed:ratio_rate1h{{{SITE}}}",
                                                  "{{site}}"), unit="percentunit"),
        bargauge("Wakes in range by site and outcome", Query(
            f"sum by (site, outcome) (increase(caretaker_wake_requests_total{{{SITE}}}[$__range]))",
            "{{site}} {{outcome}}"), width=24),
    ])


def lifecycle() -> dict:
    return dashboard("caretaker-lifecycle", "Caretaker: lifecycle",
                     "Devices by asset-register stage, from in stock to disposed.", [
        stat("In service", Query(
            f'sum(caretaker_devices_lifecycle{{{SITE},stage=~"in_stock|deployed|in_repair|redeployed"}})')),
        stat("Awaiting disposal", Query(
            f'sum(caretaker_devices_lifecycle{{{SITE},stage=~"retired|awaiting_disposal|sanitised"}}) or vector(0)')),
        stat("Not in the register", Query(
            f'sum(caretaker_devices_lifecycle{{{SITE},stage="unregistered"}}) or vector(0)')),
        bargauge("Devices by stage", Query(f"sum by (stage) (caretaker_devices_lifecycle{{{SITE}}})", "{{stage}}")),
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
