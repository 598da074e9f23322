"""Which part of each device-hour a power policy could have removed: the policy engine's answer, by hour.

Reports and the waste ranking group energy by these labels (``energy_totals(..., by=(..., "policy"))``):

- ``school_hours``: inside the hours the device's winning policy keeps it on (its school hours and wake
  time on an open day); a device no policy powers down is judged by ``DEFAULT_HOURS``;
- ``kept_on``: outside them, while a policy keeps it on on purpose (never-power-down, an elected relay,
  a keep-on override, an exam window, a maintenance window): never waste, reported apart;
- ``out_of_hours``: the rest, which a power-down policy could remove.

Each label also says whether the local day was a school day, for annualising. The rules are not
re-derived here: the engine's own ``spans_on`` and ``decide_in`` are asked, so a report and the
schedule an agent follows can never disagree.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from controller.energy.accounting import Classifier
from controller.energy.inputs import DeviceInfo, Estate
from controller.energy.school_hours import SchoolHours
from controller.policy.calendar import Calendar
from controller.policy.engine import Context, context, day_of, decide_in, is_open, spans_on
from controller.policy.model import Basis, DeviceFacts, Intent, Mode, Policy
from controller.policy.walltime import instant

HOUR = timedelta(hours=1)
# Devices no policy powers down: the energy package's school day, so its before/after and these agree.
DEFAULT_HOURS = SchoolHours()
DEFAULT_HOURS_TEXT = (f"{DEFAULT_HOURS.opens:%H:%M}-{DEFAULT_HOURS.closes:%H:%M} on weekdays other than "
                      "English bank holidays")
_OPEN_BASES = (Basis.SCHOOL_HOURS, Basis.WAKE_BEFORE_SCHOOL)
_KEPT_ON = (Basis.NEVER_POWER_DOWN, Basis.OVERRIDE, Basis.EXAM_WINDOW, Basis.MAINTENANCE)


class Part(enum.StrEnum):
    SCHOOL_HOURS = "school_hours"
    KEPT_ON = "kept_on"
    OUT_OF_HOURS = "out_of_hours"


@dataclass(frozen=True)
class Label:
    """A part of a device-hour: which part, whether its local day was a school day, and the policy
    exception behind a ``kept_on`` part (never_power_down, override, exam_window, maintenance)."""

    part: Part
    school_day: bool
    reason: str = ""

    def __str__(self) -> str:
        return f"{self.part}:{'school_day' if self.school_day else 'other_day'}:{self.reason}"

    @classmethod
    def parse(cls, text: str) -> Label:
        part, day, reason = text.split(":")
        return cls(Part(part), day == "school_day", reason)


def is_waste(label: Label, state: str) -> bool:
    """What a power-down policy could remove: idle energy out of hours that no policy keeps on (energy
    while active is somebody working late). The one rule for waste."""
    return label.part is Part.OUT_OF_HOURS and state == "idle"


@dataclass(frozen=True)
class DevicePolicy:
    """What the policies say about one device that does not depend on the time."""

    context: Context | None  # None: no policy loaded at all
    policy: str | None  # the winning power policy
    enforcing: bool  # its mode acts (not observe)


def facts(device: DeviceInfo, estate: Estate) -> DeviceFacts:
    """The engine's view of a device from what accounting loaded of it."""
    return DeviceFacts(device_id=str(device.id), hostname=device.hostname, site=estate.sites[device.site_id].name,
                       device_class=device.device_class, tags=device.tags, group=device.room)


class PolicyHours:
    """The policy engine's labels for device-hours, worked out once per kind of device and hour: devices
    that the same rules apply to (same winner, exceptions and windows) share their answers."""

    def __init__(self, estate: Estate, policies: Sequence[Policy] = (),
                 calendars: Mapping[str, Calendar] | None = None) -> None:
        self.estate = estate
        self.policies = tuple(policies)
        self.calendars = calendars or {}
        self._devices: dict[int, tuple[DevicePolicy, tuple]] = {}
        self._hours: dict[tuple, tuple[tuple[str, Decimal], ...]] = {}
        self._days: dict[tuple, bool] = {}

    def device(self, device: DeviceInfo) -> DevicePolicy:
        return self._device(device)[0]

    def _device(self, device: DeviceInfo) -> tuple[DevicePolicy, tuple]:
        found = self._devices.get(device.id)
        if found is None:
            zone = self.estate.sites[device.site_id].zone
            if not self.policies:
                found = (DevicePolicy(None, None, False), ("none", zone.key))
            else:
                ctx = context(self.policies, self.calendars, facts(device, self.estate))
                winner = ctx.winner
                kind = (winner.name if winner else None, ctx.tz.key, ctx.never, ctx.overrides, ctx.exams,
                        ctx.maintenance)
                found = (DevicePolicy(ctx, winner.name if winner else None,
                                      bool(winner and winner.power.mode is not Mode.OBSERVE)), kind)
            self._devices[device.id] = found
        return found

    def classify(self, device: DeviceInfo, hour: datetime) -> tuple[tuple[str, Decimal], ...]:
        """(label, share of the hour) for each part of the device's UTC ``hour``."""
        policy, kind = self._device(device)
        key = (kind, hour)
        found = self._hours.get(key)
        if found is None:
            zone = self.estate.sites[device.site_id].zone
            found = self._hours[key] = _parts(policy.context, zone, hour)
        return found

    @property
    def classifier(self) -> Classifier:
        return self.classify

    def school_day(self, device: DeviceInfo, day: date) -> bool:
        """Whether the device's policy (or the default hours) has the school open on ``day``."""
        policy, kind = self._device(device)
        key = (kind, day)
        found = self._days.get(key)
        if found is None:
            found = self._days[key] = open_hours(policy.context, self.estate.sites[device.site_id].zone, day)[0]
        return found


def open_hours(ctx: Context | None, tz, day: date) -> tuple[bool, list[tuple[datetime, datetime]]]:
    """Whether ``day`` is a school day for the device, and its hours on that day (UTC)."""
    if ctx is None or ctx.winner is None:
        if not DEFAULT_HOURS.is_school_day(day):
            return False, []
        return True, [(instant(day, DEFAULT_HOURS.opens, tz).astimezone(UTC),
                       instant(day, DEFAULT_HOURS.closes, tz).astimezone(UTC))]
    spans = [(s.start.astimezone(UTC), s.end.astimezone(UTC)) for s in spans_on(ctx, day) if s.basis in _OPEN_BASES]
    # A term's Saturday is a term day to the calendar, but with no school hours it is not a school day.
    return is_open(ctx, day_of(ctx, day)) and bool(spans), spans


def _parts(ctx: Context | None, tz, hour: datetime) -> tuple[tuple[str, Decimal], ...]:
    start, end = hour.astimezone(UTC), hour.astimezone(UTC) + HOUR
    day = start.astimezone(tz).date()
    school_day, spans = open_hours(ctx, tz, day)
    cuts = {start, end}
    for s, e in spans:
        cuts.update(t for t in (s, e) if start < t < end)
    if ctx is not None:
        for d in (day - timedelta(days=1), day, day + timedelta(days=1)):
            for span in spans_on(ctx, d):
                cuts.update(t.astimezone(UTC) for t in (span.start, span.end) if start < t.astimezone(UTC) < end)
        for override in ctx.overrides:
            cuts.update(t.astimezone(UTC) for t in (override.starts, override.expires)
                        if t is not None and start < t.astimezone(UTC) < end)
    edges = sorted(cuts)
    shares: dict[str, Decimal] = {}
    for a, b in itertools.pairwise(edges):
        middle = a + (b - a) / 2
        if any(s <= middle < e for s, e in spans):
            label = Label(Part.SCHOOL_HOURS, school_day)
        else:
            decision = decide_in(ctx, middle) if ctx is not None else None
            if decision is not None and decision.intent is Intent.KEEP_ON and decision.basis in _KEPT_ON:
                label = Label(Part.KEPT_ON, school_day, decision.basis.value)
            else:
                label = Label(Part.OUT_OF_HOURS, school_day)
        text = str(label)
        shares[text] = shares.get(text, Decimal(0)) + Decimal(int((b - a).total_seconds())) / 3600
    return tuple(shares.items())
