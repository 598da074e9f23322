"""Every Grafana panel query and every recording rule, run against a real Prometheus scraping a real
controller fed by the simulator, returns data of the shape the panel draws.

Shape: timeseries panels get a non-empty matrix from a range query, the others a non-empty vector from
an instant query, and every series carries the labels its legend names ("{{site}}" needs ``site``).
Grafana's variables are substituted as Grafana would: every site, a one-minute rate interval, an hour.
"""

from __future__ import annotations

import json
import re
import runpy
import time
from dataclasses import dataclass

import httpx
import pytest
import yaml

from tests.dashboards.promtools import REPO, RULES_DIR, query

GRAFANA_DIR = REPO / "dashboards" / "grafana"
DASHBOARDS = sorted(GRAFANA_DIR.glob("*.json"))
SUBSTITUTIONS = {"$site": ".*", "$__rate_interval": "1m", "$__range": "1h", "$__interval": "15s"}
# The labels each recording rule's level promises (level:metric:operations).
LEVEL_LABELS = {"site": {"site"}, "site_method": {"site", "method"}, "site_device_class": {"site", "device_class"},
                "job": {"job"}}


@dataclass(frozen=True)
class PanelQuery:
    where: str  # "dashboard / panel"
    kind: str
    expr: str
    legend: str

    @property
    def promql(self) -> str:
        expr = self.expr
        for variable, value in SUBSTITUTIONS.items():
            expr = expr.replace(variable, value)
        return expr

    @property
    def labels(self) -> set[str]:
        return set(re.findall(r"\{\{\s*(\w+)\s*\}\}", self.legend))


def panel_queries() -> list[PanelQuery]:
    found = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                found.append(PanelQuery(f"{board['title']} / {panel['title']}", panel["type"], target["expr"],
                                        target.get("legendFormat", "")))
    return found


def recording_rules() -> list[dict]:
    groups = yaml.safe_load((RULES_DIR / "rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "record" in rule]


class TestTheCommittedDashboards:
    def test_are_what_build_py_writes(self):
        builders = runpy.run_path(str(GRAFANA_DIR / "build.py"))["DASHBOARDS"]
        assert sorted(builders) == [path.name for path in DASHBOARDS]
        for name, build in builders.items():
            assert json.loads((GRAFANA_DIR / name).read_text()) == build(), f"{name}: run dashboards/grafana/build.py"

    @pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
    def test_each_has_a_datasource_variable_and_a_site_filter_every_estate_query_uses(self, path):
        board = json.loads(path.read_text())
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
        assert variables["site"]["query"].startswith("label_values(")
        assert variables["site"]["multi"] and variables["site"]["includeAll"]
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            for target in panel["targets"]:
                if "caretaker_ingest" not in target["expr"] and "carbon_factor" not in target["expr"]:
                    assert 'site=~"$site"' in target["expr"], (panel["title"], target["expr"])

    def test_panels_do_not_overlap(self):
        for path in DASHBOARDS:
            cells: set[tuple[int, int]] = set()
            for panel in json.loads(path.read_text())["panels"]:
                pos = panel["gridPos"]
                mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                        for y in range(pos["y"], pos["y"] + pos["h"])}
                assert not cells & mine, (path.name, panel["title"])
                assert pos["x"] + pos["w"] <= 24
                cells |= mine


def _wait_for_rules(prometheus: str) -> None:
    """Until every recording rule has recorded something: rates need two scrapes, and each rule group is
    evaluated on its own clock. A rule that never records is reported by the test, not here."""
    records = [rule["record"] for rule in recording_rules()]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all(query(prometheus, record)["result"] for record in records):
            return
        time.sleep(0.5)


def _shape_problems(where: str, data: dict, want: str, labels: set[str]) -> list[str]:
    if data["resultType"] != want:
        return [f"{where}: got a {data['resultType']}, wanted a {want}"]
    if not data["result"]:
        return [f"{where}: no data"]
    return [f"{where}: a series lacks {sorted(labels - series['metric'].keys())}: {series['metric']}"
            for series in data["result"] if not labels <= series["metric"].keys()]


@pytest.mark.slow
def test_every_panel_query_and_recording_rule_returns_data_of_the_expected_shape(prometheus):
    _wait_for_rules(prometheus)
    problems: list[str] = []

    sites = httpx.get(f"{prometheus}/api/v1/label/site/values", params={"match[]": "caretaker_devices"},
                      timeout=5).json()["data"]
    assert sites, "the site variable (label_values(caretaker_devices, site)) would offer no site"

    now = time.time()
    for panel in panel_queries():
        if panel.kind == "timeseries":
            data = query(prometheus, panel.promql, start=str(now - 20), end=str(now), step="1")
            problems += _shape_problems(panel.where, data, "matrix", panel.labels)
        else:
            data = query(prometheus, panel.promql, time=str(now))
            problems += _shape_problems(panel.where, data, "vector", panel.labels)

    for rule in recording_rules():
        level = rule["record"].split(":")[0]
        data = query(prometheus, rule["record"], time=str(now))
        problems += _shape_problems(f"rule {rule['record']}", data, "vector", LEVEL_LABELS[level])

    groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
    rule_health = {rule["name"]: (rule["health"], rule.get("lastError", "")) for group in groups
                   for rule in group["rules"]}
    assert len(rule_health) == len(recording_rules()) + 5, rule_health  # the five alerts too
    problems += [f"rule {name}: {health} {error}" for name, (health, error) in rule_health.items() if health != "ok"]

    assert problems == []
