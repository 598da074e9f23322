"""The published JSON Schemas accept every example, reject what the loader rejects, and name the same keys."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from controller.policy import calendar_file, loader
from controller.policy.model import WEEKDAYS
from tests.conftest import REPO

POLICIES = REPO / "policies"
POLICY_SCHEMA = json.loads((POLICIES / "schema" / "policy.schema.json").read_text())
CALENDAR_SCHEMA = json.loads((POLICIES / "schema" / "calendar.schema.json").read_text())


class Yaml12Loader(yaml.SafeLoader):
    """Editors read YAML 1.2, where 2026-05-07 and 2026-03-16 17:00 are strings, not dates."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def documents(path):
    return list(yaml.load_all(path.read_text(), Loader=Yaml12Loader))


def errors(schema: dict, document: object) -> list[str]:
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(document)]


@pytest.mark.parametrize("schema", [POLICY_SCHEMA, CALENDAR_SCHEMA], ids=["policy", "calendar"])
def test_the_schemas_are_valid_json_schema(schema):
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("name", ["primary.yaml", "secondary.yaml", "fe-college.yaml", "always-on-servers.yaml"])
def test_every_example_policy_is_valid(name):
    for document in documents(POLICIES / name):
        assert errors(POLICY_SCHEMA, document) == []


@pytest.mark.parametrize("path", sorted((POLICIES / "calendars").glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_calendar_is_valid(path):
    (document,) = documents(path)
    assert errors(CALENDAR_SCHEMA, document) == []


MINIMAL = {"name": "hillside", "applies_to": {"sites": ["Hillside Primary"]},
           "school_hours": {"weekdays": "08:30-16:00"}, "idle": {"minutes_without_input": 20}, "action": "shutdown"}


@pytest.mark.parametrize("change", [
    {"school_hours": {"monday": "25:00-16:00"}},
    {"schol_hours": {"weekdays": "08:30-16:00"}},
    {"mode": "aggressive"},
    {"applies_to": {}},
    {"applies_to": {"device_classes": ["workstation"]}},
    {"wake_before_school": "7:30"},
    {"exceptions": {"overrides": [{"name": "late", "effect": "keep_on"}]}},
    {"exceptions": {"never_power_down": [{}]}},
    {"maintenance_windows": [{"weekdays": ["wednesdy"], "start": "02:00", "minutes": 90}]},
    {"idle": {}},
], ids=lambda change: next(iter(change)))
def test_the_schema_rejects_mistakes_the_loader_rejects(change):
    assert errors(POLICY_SCHEMA, MINIMAL) == []
    assert errors(POLICY_SCHEMA, {**MINIMAL, **change}) != []


def test_a_policy_that_powers_down_needs_hours_idle_and_action_in_the_schema_too():
    assert errors(POLICY_SCHEMA, {"name": "x", "applies_to": "all", "mode": "warn"}) != []
    assert errors(POLICY_SCHEMA, {"name": "x", "applies_to": "all",
                                  "exceptions": {"never_power_down": [{"tags": ["server"]}]}}) == []


def keys(schema: dict, *path: str) -> tuple[str, ...]:
    node = schema
    for part in path:
        node = node[part]
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
        elif "items" in node and "$ref" in node["items"]:
            node = schema["$defs"][node["items"]["$ref"].rsplit("/", 1)[1]]
    return tuple(node["properties"])


@pytest.mark.parametrize(("path", "expected"), [
    ((), loader.POLICY_KEYS),
    (("$defs", "selector"), loader.SELECTOR_KEYS),
    (("properties", "school_hours"), ("weekdays", *WEEKDAYS)),
    (("properties", "idle"), loader.IDLE_KEYS),
    (("properties", "warning"), loader.WARNING_KEYS),
    (("properties", "passive"), loader.PASSIVE_KEYS),
    (("properties", "exceptions"), loader.EXCEPTION_KEYS),
    (("$defs", "exam_window"), loader.EXAM_KEYS),
    (("$defs", "override"), loader.OVERRIDE_KEYS),
    (("$defs", "maintenance_window"), loader.MAINTENANCE_KEYS),
], ids=["policy", "selector", "school_hours", "idle", "warning", "passive", "exceptions", "exam_window", "override",
        "maintenance_window"])
def test_the_policy_schema_and_the_loader_know_the_same_keys(path, expected):
    assert sorted(keys(POLICY_SCHEMA, *path)) == sorted(expected)


@pytest.mark.parametrize(("path", "expected"), [
    ((), calendar_file.CALENDAR_KEYS),
    (("$defs", "term"), calendar_file.TERM_KEYS),
    (("$defs", "closure"), calendar_file.SPAN_KEYS),
], ids=["calendar", "term", "closure"])
def test_the_calendar_schema_and_the_loader_know_the_same_keys(path, expected):
    assert sorted(keys(CALENDAR_SCHEMA, *path)) == sorted(expected)


PLACEMENT_SCHEMA = json.loads((POLICIES / "schema" / "placement.schema.json").read_text())


def test_the_placement_schema_accepts_the_example_and_names_the_loaders_keys():
    from controller.policy import placement_file

    jsonschema.Draft202012Validator.check_schema(PLACEMENT_SCHEMA)
    (document,) = documents(POLICIES / "placement.yaml")
    assert errors(PLACEMENT_SCHEMA, document) == []
    rule = PLACEMENT_SCHEMA["properties"]["placement"]["items"]
    assert set(rule["properties"]) == set(placement_file.RULE_KEYS)
    assert set(rule["properties"]["match"]["properties"]) == set(placement_file.MATCH_KEYS)
    assert errors(PLACEMENT_SCHEMA, {"placement": [{"match": {"hostnames": ["HALL-*"]}}]}) != []
