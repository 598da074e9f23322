"""What a power policy says and what the engine is told about a device, as plain frozen data.

The loader builds these from YAML; the engine and the schedule compiler read them and nothing else, so
the engine can be tested with hand-built policies and never needs a file, a database or a clock.
Names a person types (sites, rooms, tags, hostnames, process names) are compared case-insensitively.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from agent.protocol import WarningSettings  # warn mode's settings are sent to the agent as they are

DEFAULT_TIMEZONE = "Europe/London"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class Mode(enum.StrEnum):
    """How firmly a policy acts, from recording only to acting regardless of a signed-in user."""

    OBSERVE = "observe"  # records what it would do; the default for a new policy
    PASSIVE = "passive"  # skips while a user is signed in and tries again later
    WARN = "warn"  # a countdown the signed-in user may defer
    FORCE = "force"  # acts once the device is idle, signed-in user or not


class Action(enum.StrEnum):
    SHUTDOWN = "shutdown"
    SLEEP = "sleep"
    HIBERNATE = "hibernate"


class Intent(enum.StrEnum):
    """What should be true of the device at an instant, before idleness and mode are considered."""

    KEEP_ON = "keep_on"
    POWER_DOWN = "power_down"


class Basis(enum.StrEnum):
    """Which rule decided the intent, in precedence order (README: Precedence)."""

    NEVER_POWER_DOWN = "never_power_down"
    OVERRIDE = "override"
    EXAM_WINDOW = "exam_window"
    MAINTENANCE = "maintenance"
    WAKE_BEFORE_SCHOOL = "wake_before_school"
    SCHOOL_HOURS = "school_hours"
    OUT_OF_HOURS = "out_of_hours"
    NO_POLICY = "no_policy"


class Outcome(enum.StrEnum):
    """What happens now, once the device's activity and the policy's mode are taken into account."""

    KEEP_ON = "keep_on"  # nothing to do
    WAIT_FOR_IDLE = "wait_for_idle"  # a power-down window, but the device is in use
    AGENT_DECIDES = "agent_decides"  # a power-down window; activity unknown here, the agent judges it
    RECORD_ONLY = "record_only"  # observe mode: would act now, records instead
    RETRY_LATER = "retry_later"  # passive mode: a user is signed in
    WARN = "warn"  # warn mode: countdown to the signed-in user
    ACT = "act"  # power down now


class Step(enum.StrEnum):
    """The kinds of rule an explanation lists."""

    MATCH = "match"
    PRECEDENCE = "precedence"
    CALENDAR = "calendar"
    HOURS = "hours"
    NEVER_POWER_DOWN = "never_power_down"
    OVERRIDE = "override"
    EXAM_WINDOW = "exam_window"
    MAINTENANCE = "maintenance"
    DAYTIME_SLEEP = "daytime_sleep"
    IDLE = "idle"
    MODE = "mode"


@dataclass(frozen=True)
class Selector:
    """Which devices something applies to: every named dimension must match, any value within one.

    An empty selector matches every device (the loader only allows that where it is meant).
    Specificity orders overlapping policies: device > group/room > tag > device class > site.
    """

    devices: tuple[str, ...] = ()  # hostnames or register ids
    groups: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    device_classes: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    source: str = ""

    def matches(self, device: DeviceFacts) -> bool:
        return self.mismatch(device) is None

    def mismatch(self, device: DeviceFacts) -> str | None:
        """The first dimension the device fails, for explanations; None when it matches."""
        if self.devices and not {_fold(device.hostname), _fold(device.device_id)} & _folded(self.devices):
            return f"device {device.hostname} is not one of {', '.join(self.devices)}"
        if self.groups and (device.group is None or _fold(device.group) not in _folded(self.groups)):
            return f"group {device.group or '(none)'} is not one of {', '.join(self.groups)}"
        if self.tags and not _folded(device.tags) & _folded(self.tags):
            return f"tags {', '.join(device.tags) or '(none)'} include none of {', '.join(self.tags)}"
        if self.device_classes and _fold(device.device_class) not in _folded(self.device_classes):
            return f"class {device.device_class} is not one of {', '.join(self.device_classes)}"
        if self.sites and _fold(device.site) not in _folded(self.sites):
            return f"site {device.site} is not one of {', '.join(self.sites)}"
        return None

    @property
    def specificity(self) -> tuple[bool, bool, bool, bool, bool]:
        return (bool(self.devices), bool(self.groups), bool(self.tags), bool(self.device_classes), bool(self.sites))

    def describe(self) -> str:
        parts = [f"{label} {', '.join(values)}" for label, values in (
            ("device", self.devices), ("group", self.groups), ("tag", self.tags), ("class", self.device_classes),
            ("site", self.sites)) if values]
        return "; ".join(parts) or "every device"


def _fold(text: str) -> str:
    return text.strip().casefold()


def _folded(values: tuple[str, ...]) -> set[str]:
    return {_fold(v) for v in values}


@dataclass(frozen=True)
class TimeRange:
    """Part of a day in wall-clock minutes since midnight; ``end`` 1440 means midnight at the day's end."""

    start: int
    end: int

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class WeeklyHours:
    """School hours for each weekday, Monday first; an empty tuple is a closed day."""

    days: tuple[tuple[TimeRange, ...], ...]
    source: str = ""

    def on(self, day: date) -> tuple[TimeRange, ...]:
        return self.days[day.weekday()]

    def describe(self, day: date) -> str:
        ranges = self.on(day)
        return ", ".join(str(r) for r in ranges) if ranges else "closed"


@dataclass(frozen=True)
class IdleRule:
    """What "idle" means: every criterion given must hold. A criterion the device cannot report fails safe."""

    minutes_without_input: int | None = None
    cpu_below_percent: float | None = None
    processes_absent: tuple[str, ...] = ()
    no_signed_in_session: bool = False
    source: str = ""


@dataclass(frozen=True)
class DaytimeSleep:
    """Sleep (never shut down) after this much input idle *during* school hours, for some devices.

    Separate figures for mains and battery: a laptop on battery in the library may sleep sooner than a
    staff-room desktop. ``None`` for one of them means no daytime sleep on that power source.
    """

    selector: Selector
    mains_idle_minutes: int | None = None
    battery_idle_minutes: int | None = None
    source: str = ""

    def describe(self) -> str:
        parts = [f"{minutes} min idle on {where}" for where, minutes in (
            ("mains", self.mains_idle_minutes), ("battery", self.battery_idle_minutes)) if minutes is not None]
        return f"daytime sleep ({self.selector.describe()}): after {' or '.join(parts)}"


@dataclass(frozen=True)
class PowerRule:
    """The part of a policy that powers devices down. Only the winning policy's rule applies to a device."""

    hours: WeeklyHours
    idle: IdleRule
    action: Action
    mode: Mode = Mode.OBSERVE
    calendars: tuple[str, ...] = ()  # calendar names, in the order the policy lists them
    open_on_inset_days: bool = True  # staff work on INSET days, so by default they keep school hours
    wake_before_school: time | None = None
    warning: WarningSettings = field(default_factory=WarningSettings)
    retry_minutes: int = 30  # passive mode: how long to wait after finding a user signed in
    daytime_sleep: tuple[DaytimeSleep, ...] = ()  # the first entry that matches a device applies to it
    sources: Mapping[str, str] = field(default_factory=dict)  # key → "file:line", for explanations

    def where(self, key: str) -> str:
        return self.sources.get(key, "")


@dataclass(frozen=True)
class ExamWindow:
    """Keep devices on (and skip maintenance) on the school days of a date range, within optional hours."""

    name: str
    selector: Selector
    first: date
    last: date
    hours: TimeRange | None = None  # None: the whole day
    source: str = ""


@dataclass(frozen=True)
class Override:
    """A one-off decision with an expiry, e.g. keep the art suite on for a coursework deadline."""

    name: str
    selector: Selector
    intent: Intent
    expires: datetime
    starts: datetime | None = None
    action: Action | None = None  # power_down only; default: the winning policy's action
    source: str = ""

    def in_force(self, at: datetime) -> bool:
        # In UTC: aware datetimes sharing a zone compare by wall time, which the October night repeats.
        moment = at.astimezone(UTC)
        return (self.starts is None or self.starts.astimezone(UTC) <= moment) and moment < self.expires.astimezone(UTC)


@dataclass(frozen=True)
class MaintenanceWindow:
    """Wake and stay on for updates on some weekdays; devices power down again afterwards."""

    name: str
    selector: Selector
    weekdays: tuple[int, ...]  # 0 = Monday
    start: time
    minutes: int
    source: str = ""
    # Optional: place the window in the lowest-carbon stretch of this range when the schedule is given a
    # grid intensity forecast (controller/energy/intensity.py); ``start`` is the fallback without one.
    carbon_aware: TimeRange | None = None
    # Optional: end early once the agent has seen the OS updates install and finish, then power down at once;
    # ``minutes`` is then the longest the device is kept on for them.
    until_updates_done: bool = False


@dataclass(frozen=True)
class Policy:
    name: str
    applies_to: Selector
    priority: int = 0
    timezone: str = DEFAULT_TIMEZONE
    power: PowerRule | None = None
    never_power_down: tuple[Selector, ...] = ()
    exam_windows: tuple[ExamWindow, ...] = ()
    overrides: tuple[Override, ...] = ()
    maintenance: tuple[MaintenanceWindow, ...] = ()
    description: str = ""
    source: str = ""


@dataclass(frozen=True)
class Activity:
    """What the device is doing; None means not known (the criterion that needs it then fails safe)."""

    idle_minutes: float | None = None
    cpu_percent: float | None = None
    sessions: int | None = None
    processes: tuple[str, ...] | None = None
    # None: ``processes`` is every process that runs (what an operator states). Otherwise the agent looked
    # for these names only and ``processes`` says which of them run; a policy name it did not look for is unknown.
    processes_watched: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DeviceFacts:
    """Everything the engine may know about a device. The register supplies site, class and hostname."""

    device_id: str
    hostname: str
    site: str
    device_class: str = "unknown"
    tags: tuple[str, ...] = ()
    group: str | None = None  # room or group, e.g. "ICT Suite"
    activity: Activity | None = None
    # A duty the controller gives the device that no policy may interrupt, e.g. "wake-on-LAN relay".
    kept_on_by: str | None = None


@dataclass(frozen=True)
class Rule:
    """One step of an explanation: what was considered, what it said, and where that is written."""

    step: Step
    text: str
    source: str = ""


@dataclass(frozen=True)
class Decision:
    device_id: str
    at: datetime  # in the site's local time
    intent: Intent
    basis: Basis
    outcome: Outcome
    action: Action | None
    mode: Mode | None
    policy: str | None  # the winning power policy, if any
    label: str  # the exception or window that decided, e.g. an override's name
    idle: bool | None  # None: not known here
    rules: tuple[Rule, ...]
    warning: WarningSettings | None = None  # warn mode only
    retry_minutes: int | None = None  # passive mode only
    daytime_sleep: DaytimeSleep | None = None  # school hours only: sleep once idle this long (mode ``mode``)

    @property
    def summary(self) -> str:
        if self.intent is Intent.KEEP_ON:
            kept = f"keep on ({self.basis.replace('_', ' ')}{': ' + self.label if self.label else ''})"
            if self.daytime_sleep is not None:
                kept += f"; {self.daytime_sleep.describe()}, mode {self.mode}"
            return kept
        return f"{self.action} when idle, mode {self.mode}: {OUTCOME_TEXT[self.outcome]}"


OUTCOME_TEXT = {
    Outcome.KEEP_ON: "nothing to do",
    Outcome.WAIT_FOR_IDLE: "the device is in use; checked again later",
    Outcome.AGENT_DECIDES: "the agent acts once the device is idle",
    Outcome.RECORD_ONLY: "would act now; observe mode records it only",
    Outcome.RETRY_LATER: "a user is signed in; tries again later",
    Outcome.WARN: "warns the signed-in user, who may defer",
    Outcome.ACT: "acts now",
}
