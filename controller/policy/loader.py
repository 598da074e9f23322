"""Policy files: YAML read with PyYAML's node tree, validated with errors that name file, line and column.

Every mistake is collected (not only the first) and reported as one line each, e.g.

    primary.yaml:14:13: school_hours.monday: '25:00' is not a time (HH:MM)

A file may hold several policies separated by ``---``. Calendars are named by path relative to the
policy file and loaded once each. A file whose top level has ``nation`` is a calendar, so
`caretaker policy check` takes calendars too; a document whose top level is ``placement`` holds
placement rules (rooms and tags by hostname, subnet, class, site or agent label: placement_file.py).
The format is described in policies/README.md and policies/schema/policy.schema.json; tests keep the
schema's keys and these in step.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from agent.protocol import DeviceClass
from controller.policy.calendar import Calendar
from controller.policy.calendar_file import read_calendar
from controller.policy.model import (
    DEFAULT_TIMEZONE,
    WEEKDAYS,
    Action,
    DaytimeSleep,
    ExamWindow,
    IdleRule,
    Intent,
    MaintenanceWindow,
    Mode,
    Override,
    Policy,
    PowerRule,
    Selector,
    TimeRange,
    WarningSettings,
    WeeklyHours,
)
from controller.policy.placement_file import is_placement, read_placement
from controller.policy.walltime import instant, zone
from controller.policy.yamlnodes import Node, Problem, Problems, compose
from controller.register.placement import PlacementRule

POWER_KEYS = ("calendar", "school_hours", "on_inset_days", "wake_before_school", "idle", "action", "mode",
              "warning", "passive", "daytime_sleep")
POLICY_KEYS = ("name", "description", "applies_to", "priority", "timezone", *POWER_KEYS, "exceptions",
               "maintenance_windows")
SELECTOR_KEYS = ("devices", "groups", "tags", "device_classes", "sites")
HOURS_KEYS = ("weekdays", *WEEKDAYS)
IDLE_KEYS = ("minutes_without_input", "cpu_below_percent", "processes_absent", "no_signed_in_session")
WARNING_KEYS = ("countdown_minutes", "deferral_minutes", "max_deferrals")
PASSIVE_KEYS = ("retry_minutes",)
EXCEPTION_KEYS = ("never_power_down", "exam_windows", "overrides")
EXAM_KEYS = ("name", "start", "end", "hours", *SELECTOR_KEYS)
OVERRIDE_KEYS = ("name", "effect", "action", "start", "expires", *SELECTOR_KEYS)
MAINTENANCE_KEYS = ("name", "weekdays", "start", "minutes", "carbon_aware", "until_updates_done", *SELECTOR_KEYS)
CARBON_AWARE_KEYS = ("between",)
DAYTIME_SLEEP_MINUTES = ("mains_idle_minutes", "battery_idle_minutes")
DAYTIME_SLEEP_KEYS = (*DAYTIME_SLEEP_MINUTES, *SELECTOR_KEYS)

_TIME = re.compile(r"(\d{2}):(\d{2})")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?)?([+-]\d{2}:\d{2}|Z)?")


class PolicyError(Exception):
    """Everything wrong with a set of policy files, one problem per line."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class PolicySet:
    policies: tuple[Policy, ...]
    calendars: Mapping[str, Calendar]
    files: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())
    placement: tuple[PlacementRule, ...] = ()  # in file order: the first rule giving a room places the device


def load(paths: Iterable[Path]) -> PolicySet:
    """Policies and calendars from files and directories (a directory's ``*.yaml``, not its subfolders)."""
    loader = _Loader()
    files = [f for p in paths for f in (sorted([*p.glob("*.yaml"), *p.glob("*.yml")]) if p.is_dir() else [p])]
    for file in files:
        loader.file(file)
    if loader.problems.items:
        raise PolicyError(loader.problems.items)
    return PolicySet(tuple(loader.policies), dict(loader.calendars_by_name), tuple(str(f) for f in files),
                     tuple(loader.problems.notes), tuple(loader.placement))


class _Loader:
    def __init__(self) -> None:
        self.problems = Problems()
        self.policies: list[Policy] = []
        self.policy_nodes: dict[str, Node] = {}
        self.calendars_by_path: dict[Path, Calendar | None] = {}
        self.calendars_by_name: dict[str, Calendar] = {}
        self.placement: list[PlacementRule] = []

    def file(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.problems.add(Problem(str(path), 0, 0, "", f"cannot read: {getattr(exc, 'strerror', None) or exc}"))
            return
        documents = self.problems.attempt(lambda: compose(text, str(path)))
        for document in documents or []:
            if _is_calendar(document):
                self.calendar(document, path)
            elif is_placement(document):
                self.placement.extend(read_placement(document, self.problems))
            else:
                policy = _PolicyReader(document, self).read()
                if policy is not None:
                    self.add_policy(policy, document)
        if documents == []:
            self.problems.add(Problem(str(path), 1, 1, "", "the file is empty"))

    def add_policy(self, policy: Policy, document: Node) -> None:
        first = self.policy_nodes.get(policy.name)
        if first is not None:
            self.problems.add(_value(document, "name").problem(
                f"another policy is already called {policy.name!r} ({first.source})"))
            return
        self.policy_nodes[policy.name] = document
        self.policies.append(policy)

    def calendar(self, document: Node, path: Path) -> Calendar | None:
        key = path.resolve()
        if key in self.calendars_by_path:
            return self.calendars_by_path[key]
        calendar = read_calendar(document, self.problems)
        self.calendars_by_path[key] = calendar
        if calendar is not None:
            other = self.calendars_by_name.setdefault(calendar.name, calendar)
            if other is not calendar:
                self.problems.add(document.problem(f"another calendar is already called {calendar.name!r} "
                                                   f"({other.source})"))
        return calendar

    def calendar_file(self, node: Node) -> Calendar | None:
        """The calendar a policy names by path, relative to the policy file."""
        path = Path(os.path.normpath(Path(node.path).parent / node.text()))
        if path.resolve() in self.calendars_by_path:
            return self.calendars_by_path[path.resolve()]
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise node.invalid(f"cannot read calendar {path}: {exc.strerror}") from None
        documents = compose(text, str(path))
        if len(documents) != 1 or not _is_calendar(documents[0]):
            raise node.invalid(f"{path} is not a calendar file (it needs name, nation and terms)")
        calendar = self.calendar(documents[0], path)
        if calendar is None:
            raise node.invalid(f"calendar {path} has mistakes (listed with its own lines)")
        return calendar


def _value(document: Node, key: str) -> Node:
    """The value node of ``key`` in a mapping already known to hold it."""
    return next(document.child(value, key) for k, value in document.raw.value if k.value == key)


def _is_calendar(document: Node) -> bool:
    return document.is_mapping and any(key.value == "nation" for key, _ in document.raw.value)


class _PolicyReader:
    """One policy document. Independent sections are read separately so each mistake gets reported."""

    def __init__(self, document: Node, loader: _Loader) -> None:
        self.document = document
        self.loader = loader
        self.problems = loader.problems

    def read(self) -> Policy | None:
        attempt = self.problems.attempt
        fields = attempt(lambda: self.document.mapping(POLICY_KEYS, required=("name", "applies_to")))
        if fields is None:
            return None
        before = len(self.problems.items)
        name = attempt(fields["name"].text)
        applies_to = attempt(lambda: _applies_to(fields["applies_to"]))
        priority = attempt(lambda: fields["priority"].integer(-1000, 1000)) if "priority" in fields else 0
        timezone = attempt(lambda: _timezone(fields["timezone"])) if "timezone" in fields else DEFAULT_TIMEZONE
        tz = zone(timezone or DEFAULT_TIMEZONE)
        power = self.power(fields) if any(k in fields for k in POWER_KEYS) else None
        exceptions = attempt(lambda: fields["exceptions"].mapping(EXCEPTION_KEYS)) if "exceptions" in fields else {}
        exceptions = exceptions or {}
        never = self.each(exceptions.get("never_power_down"), _never_power_down)
        exams = self.each(exceptions.get("exam_windows"), _exam_window)
        overrides = self.each(exceptions.get("overrides"), lambda item: _override(item, tz))
        maintenance = self.each(fields.get("maintenance_windows"), _maintenance_window)
        if len(self.problems.items) > before:
            return None
        if power is None and not (never or exams or overrides or maintenance):
            self.problems.add(self.document.problem(
                "the policy does nothing: give it school_hours, idle and action, or exceptions or maintenance_windows"))
            return None
        return Policy(name=name, applies_to=applies_to, priority=priority, timezone=timezone, power=power,
                      never_power_down=tuple(never), exam_windows=tuple(exams), overrides=tuple(overrides),
                      maintenance=tuple(maintenance), description=_description(fields, self.problems),
                      source=self.document.source)

    def each(self, node: Node | None, read) -> list:
        if node is None:
            return []
        items = self.problems.attempt(lambda: list(node.items())) or []
        return [value for item in items if (value := self.problems.attempt(lambda item=item: read(item))) is not None]

    def power(self, fields: dict[str, Node]) -> PowerRule | None:
        attempt = self.problems.attempt
        missing = [key for key in ("school_hours", "idle", "action") if key not in fields]
        if missing:
            self.problems.add(self.document.problem(
                f"missing required key {missing[0]!r}: a policy that powers devices down needs school_hours, idle "
                "and action"))
            return None
        before = len(self.problems.items)
        hours = self.school_hours(fields["school_hours"])
        idle = attempt(lambda: _idle(fields["idle"]))
        action = attempt(lambda: fields["action"].choice(Action))
        mode = attempt(lambda: fields["mode"].choice(Mode)) if "mode" in fields else Mode.OBSERVE
        calendars = attempt(lambda: self.calendars(fields["calendar"])) if "calendar" in fields else ()
        inset_open = attempt(lambda: _inset_days_open(fields["on_inset_days"])) if "on_inset_days" in fields else True
        wake = attempt(lambda: _wake(fields["wake_before_school"], hours)) if "wake_before_school" in fields else None
        warning = attempt(lambda: _warning(fields["warning"])) if "warning" in fields else WarningSettings()
        retry = attempt(lambda: _retry(fields["passive"])) if "passive" in fields else 30
        node = fields.get("daytime_sleep")
        daytime = self.each(node, _daytime_sleep) if node is not None and node.is_sequence else \
            [attempt(lambda: _daytime_sleep(node))] if node is not None else []
        if len(self.problems.items) > before:
            return None
        return PowerRule(hours=hours, idle=idle, action=action, mode=mode, calendars=calendars,
                         open_on_inset_days=inset_open, wake_before_school=wake, warning=warning,
                         retry_minutes=retry, daytime_sleep=tuple(daytime),
                         sources={key: fields[key].source for key in POWER_KEYS if key in fields})

    def school_hours(self, node: Node) -> WeeklyHours | None:
        fields = self.problems.attempt(lambda: node.mapping(HOURS_KEYS))
        if fields is None:
            return None
        weekdays = self.problems.attempt(lambda: _day_hours(fields["weekdays"])) if "weekdays" in fields else ()
        days = []
        for index, name in enumerate(WEEKDAYS):
            default = weekdays if index < 5 else ()
            days.append(self.problems.attempt(lambda name=name: _day_hours(fields[name])) if name in fields
                        else default)
        if any(day is None for day in days) or weekdays is None:
            return None
        if not any(days):
            self.problems.add(node.problem("no day has school hours, so every hour would be out of hours: give the "
                                           "hours devices are needed"))
            return None
        return WeeklyHours(tuple(days), node.source)

    def calendars(self, node: Node) -> tuple[str, ...]:
        names = []
        nations = {}
        for item in (list(node.items()) if node.is_sequence else [node]):
            calendar = self.loader.calendar_file(item)
            names.append(calendar.name)
            nations.setdefault(calendar.nation, calendar.name)
        if len(nations) > 1:
            raise node.invalid("the calendars of one policy must be for one nation, not "
                               + " and ".join(f"{nation} ({name})" for nation, name in nations.items()))
        return tuple(names)


def _description(fields: dict[str, Node], problems: Problems) -> str:
    return (problems.attempt(fields["description"].text) or "") if "description" in fields else ""


def _timezone(node: Node) -> str:
    key = node.text()
    try:
        ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        raise node.invalid(f"{key!r} is not a time zone (e.g. Europe/London)") from None
    return key


def _selector(node: Node, fields: dict[str, Node]) -> Selector:
    values = {key: fields[key].texts() for key in SELECTOR_KEYS if key in fields}
    for value in values.get("device_classes", ()):
        if value not in set(DeviceClass):
            raise fields["device_classes"].invalid(
                f"{value!r} is not a device class ({', '.join(c.value for c in DeviceClass)})")
    return Selector(**values, source=node.source)


def _applies_to(node: Node) -> Selector:
    if not node.is_mapping:
        if isinstance(node.raw, yaml.ScalarNode) and node.raw.value == "all":
            return Selector(source=node.source)
        raise node.invalid("expected `all` or a mapping of devices, groups, tags, device_classes or sites")
    selector = _selector(node, node.mapping(SELECTOR_KEYS))
    if not any(selector.specificity):
        raise node.invalid("applies_to is empty: write `applies_to: all` to mean every device")
    return selector


def _never_power_down(node: Node) -> Selector:
    selector = _selector(node, node.mapping(SELECTOR_KEYS))
    if not any(selector.specificity):
        raise node.invalid("an empty never_power_down entry would exempt every device: name tags, device_classes, "
                           "groups, devices or sites")
    return selector


def _minutes(node: Node, text: str, end: bool = False) -> int:
    match = _TIME.fullmatch(text.strip())
    if match is None or int(match[2]) > 59 or int(match[1]) > 24 or (int(match[1]) == 24 and (
            not end or match[2] != "00")):
        raise node.invalid(f"{text.strip()!r} is not a time (HH:MM)")
    return int(match[1]) * 60 + int(match[2])


def _time(node: Node) -> time:
    minutes = _minutes(node, node.scalar())
    return time(minutes // 60, minutes % 60)


def _range(node: Node, text: str) -> TimeRange:
    parts = text.split("-")
    if len(parts) != 2:
        raise node.invalid(f"{text!r} is not a time range (HH:MM-HH:MM)")
    start, end = _minutes(node, parts[0]), _minutes(node, parts[1], end=True)
    if end <= start:
        raise node.invalid(f"{text!r} ends before it starts (a range cannot cross midnight; use 24:00)")
    return TimeRange(start, end)


def _day_hours(node: Node) -> tuple[TimeRange, ...]:
    if not node.is_sequence and node.scalar() == "closed":
        return ()
    items = list(node.items()) if node.is_sequence else [node]
    ranges = sorted((_range(item, item.scalar()) for item in items), key=lambda r: r.start)
    for earlier, later in itertools.pairwise(ranges):
        if later.start < earlier.end:
            raise node.invalid(f"{earlier} and {later} overlap")
    return tuple(ranges)


def _idle(node: Node) -> IdleRule:
    fields = node.mapping(IDLE_KEYS)
    if not fields:
        raise node.invalid(f"say what idle means with at least one of {', '.join(IDLE_KEYS)}")
    return IdleRule(
        minutes_without_input=fields["minutes_without_input"].integer(0, 1440)
        if "minutes_without_input" in fields else None,
        cpu_below_percent=fields["cpu_below_percent"].number(0.1, 100) if "cpu_below_percent" in fields else None,
        processes_absent=fields["processes_absent"].texts() if "processes_absent" in fields else (),
        no_signed_in_session=fields["no_signed_in_session"].boolean() if "no_signed_in_session" in fields else False,
        source=node.source)


def _inset_days_open(node: Node) -> bool:
    value = node.scalar()
    if value not in ("open", "closed"):
        raise node.invalid(f"{value!r} is not open or closed")
    return value == "open"


def _wake(node: Node, hours: WeeklyHours | None) -> time:
    wake = _time(node)
    minutes = wake.hour * 60 + wake.minute
    for name, ranges in zip(WEEKDAYS, hours.days if hours else (), strict=False):
        if ranges and minutes >= ranges[0].start:
            raise node.invalid(f"{wake:%H:%M} is not before school starts on {name} ({ranges[0]})")
    return wake


def _warning(node: Node) -> WarningSettings:
    fields = node.mapping(WARNING_KEYS)
    defaults = WarningSettings()
    return WarningSettings(
        countdown_minutes=fields["countdown_minutes"].integer(1, 120) if "countdown_minutes" in fields
        else defaults.countdown_minutes,
        deferral_minutes=fields["deferral_minutes"].integer(1, 240) if "deferral_minutes" in fields
        else defaults.deferral_minutes,
        max_deferrals=fields["max_deferrals"].integer(0, 10) if "max_deferrals" in fields else defaults.max_deferrals)


def _retry(node: Node) -> int:
    return node.mapping(PASSIVE_KEYS, required=("retry_minutes",))["retry_minutes"].integer(1, 1440)


def _daytime_sleep(node: Node) -> DaytimeSleep:
    """``daytime_sleep: {groups: [Library], mains_idle_minutes: 20, battery_idle_minutes: 10}`` (or a list)."""
    fields = node.mapping(DAYTIME_SLEEP_KEYS)
    if not any(key in fields for key in DAYTIME_SLEEP_MINUTES):
        raise node.invalid("say when to sleep with mains_idle_minutes, battery_idle_minutes or both")
    minutes = {key: fields[key].integer(1, 1440) for key in DAYTIME_SLEEP_MINUTES if key in fields}
    return DaytimeSleep(selector=_selector(node, fields), source=node.source, **minutes)


def _exam_window(node: Node) -> ExamWindow:
    fields = node.mapping(EXAM_KEYS, required=("name", "start", "end"))
    first, last = fields["start"].day(), fields["end"].day()
    if last < first:
        raise fields["end"].invalid(f"the exam window ends ({last}) before it starts ({first})")
    hours = _range(fields["hours"], fields["hours"].scalar()) if "hours" in fields else None
    return ExamWindow(name=fields["name"].text(), selector=_selector(node, fields), first=first, last=last,
                      hours=hours, source=node.source)


def _override(node: Node, tz: ZoneInfo) -> Override:
    fields = node.mapping(OVERRIDE_KEYS, required=("name", "effect", "expires"))
    intent = fields["effect"].choice(Intent)
    if "action" in fields and intent is not Intent.POWER_DOWN:
        raise fields["action"].invalid("only a power_down override takes an action")
    starts = _moment(fields["start"], tz) if "start" in fields else None
    expires = _moment(fields["expires"], tz)
    if starts is not None and expires <= starts:
        raise fields["expires"].invalid(f"the override expires ({expires:%Y-%m-%d %H:%M}) before it starts "
                                        f"({starts:%Y-%m-%d %H:%M})")
    return Override(name=fields["name"].text(), selector=_selector(node, fields), intent=intent, expires=expires,
                    starts=starts, action=fields["action"].choice(Action) if "action" in fields else None,
                    source=node.source)


def _moment(node: Node, tz: ZoneInfo) -> datetime:
    """A date or date and time; without an offset it is the site's wall-clock time."""
    text = node.scalar().strip()
    if not _DATETIME.fullmatch(text):
        raise node.invalid(f"{text!r} is not a date and time (YYYY-MM-DD HH:MM)")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise node.invalid(f"{text!r} is not a date and time (YYYY-MM-DD HH:MM)") from None
    if value.tzinfo is not None:
        return value.astimezone(tz)
    return instant(value.date(), value.time(), tz)


def _maintenance_window(node: Node) -> MaintenanceWindow:
    fields = node.mapping(MAINTENANCE_KEYS, required=("weekdays", "start", "minutes"))
    weekdays = []
    for item in fields["weekdays"].items():
        day = item.scalar().casefold()
        if day not in WEEKDAYS:
            raise item.invalid(f"{item.scalar()!r} is not a weekday (monday … sunday)")
        weekdays.append(WEEKDAYS.index(day))
    minutes = fields["minutes"].integer(1, 1440)
    return MaintenanceWindow(name=fields["name"].text() if "name" in fields else "maintenance",
                             selector=_selector(node, fields), weekdays=tuple(sorted(set(weekdays))),
                             start=_time(fields["start"]), minutes=minutes, source=node.source,
                             carbon_aware=_carbon_aware(fields["carbon_aware"], minutes)
                             if "carbon_aware" in fields else None,
                             until_updates_done=fields["until_updates_done"].boolean()
                             if "until_updates_done" in fields else False)


def _carbon_aware(node: Node, minutes: int) -> TimeRange:
    """``carbon_aware: {between: "00:00-06:00"}``: the range the lowest-carbon window is chosen from."""
    between = node.mapping(CARBON_AWARE_KEYS, required=("between",))["between"]
    span = _range(between, between.scalar())
    if span.end - span.start < minutes:
        raise between.invalid(f"{span} is shorter than the window's {minutes} minutes")
    return span

