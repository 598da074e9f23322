"""Each device's energy over a period, split the ways reports need: by state and method, in school hours
or out of them, on school days or not, with its cost and the energy its sleeps and shutdowns avoided.

School hours are the device's winning power policy's (the same engine that powers devices down, so a
report and the schedule never disagree); a device no policy powers down is judged by ``DEFAULT_HOURS``.
An hour bucket straddling the end of the school day is split in proportion to the minutes on each side.

Out-of-hours waste is idle energy outside school hours: what a power-down would have removed (energy
while active is somebody working late). The saving is measured against a baseline in which every device
stayed idle whenever it was asleep or off: saved = seconds asleep or off × idle watts − what it drew.
Idle watts are the device's own measured idle draw when it has at least an hour of it, else the
default for its class.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from agent.protocol import PowerMethod, PowerState
from controller.models import Device, EnergyBucket, Site
from controller.policy.calendar import Calendar
from controller.policy.engine import Context, context, day_of, is_open, spans_on
from controller.policy.model import Basis, DeviceFacts, Mode, Policy
from controller.policy.walltime import instant, zone
from controller.reports.rates import Rates

JOULES_PER_KWH = 3.6e6
MEASURED_METHODS = frozenset({PowerMethod.METERED, PowerMethod.RAPL, PowerMethod.BATTERY})
# Devices no policy powers down: open 08:00-17:00 Monday to Friday (said in every report's basis).
DEFAULT_HOURS = (time(8), time(17))
DEFAULT_HOURS_TEXT = "08:00-17:00 Monday to Friday"
_OPEN_BASES = (Basis.SCHOOL_HOURS, Basis.WAKE_BEFORE_SCHOOL)
_HOUR = timedelta(hours=1)


@dataclass
class DeviceUsage:
    device: Device
    site: Site
    policy: str | None  # the winning power policy, None when nothing powers it down
    enforcing: bool  # a winning policy in a mode that acts (not observe)
    ctx: Context | None = field(default=None, repr=False)
    joules: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # by state
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # by state
    joules_by_method: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    joules_by_year: dict[int, float] = field(default_factory=lambda: defaultdict(float))  # local calendar year
    pence: float = 0.0
    waste_joules_school_days: float = 0.0  # idle out of school hours on days the school is open
    waste_joules_other_days: float = 0.0  # idle on weekends, holidays, bank holidays
    waste_pence: float = 0.0
    idle_watts: float = 0.0
    saved_joules: float = 0.0
    saved_pence: float = 0.0

    @property
    def total_joules(self) -> float:
        return sum(self.joules.values())

    @property
    def waste_joules(self) -> float:
        return self.waste_joules_school_days + self.waste_joules_other_days

    @property
    def powered_seconds(self) -> float:
        return self.seconds[PowerState.ACTIVE] + self.seconds[PowerState.IDLE]

    @property
    def utilisation(self) -> float | None:
        """Active hours / powered hours; None when the device was never on."""
        powered = self.powered_seconds
        return self.seconds[PowerState.ACTIVE] / powered if powered else None


@dataclass(frozen=True)
class DayCounts:
    """How many of the period's days the school was open, for annualising a period's waste."""

    school_days: int
    other_days: int


class _Hours:
    """Open hours per (policy, local date), worked out once: spans_on is the costly part."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str | None, date], tuple[bool, list[tuple[datetime, datetime]]]] = {}

    def on(self, ctx: Context | None, tz: ZoneInfo, day: date) -> tuple[bool, list[tuple[datetime, datetime]]]:
        key = (ctx.winner.name if ctx and ctx.winner else None, day)
        if key not in self._cache:
            self._cache[key] = _open_hours(ctx, tz, day)
        return self._cache[key]


def _open_hours(ctx: Context | None, tz: ZoneInfo, day: date) -> tuple[bool, list[tuple[datetime, datetime]]]:
    if ctx is None or ctx.winner is None:
        if day.weekday() >= 5:
            return False, []
        return True, [(instant(day, DEFAULT_HOURS[0], tz).astimezone(UTC), instant(day, DEFAULT_HOURS[1], tz)
                       .astimezone(UTC))]
    opened = is_open(ctx, day_of(ctx, day))
    spans = [(s.start.astimezone(UTC), s.end.astimezone(UTC)) for s in spans_on(ctx, day) if s.basis in _OPEN_BASES]
    return opened, spans


def device_context(device: Device, site: Site, policies: Sequence[Policy],
                   calendars: Mapping[str, Calendar]) -> Context | None:
    if not policies:
        return None
    facts = DeviceFacts(device_id=str(device.id), hostname=device.hostname, site=site.name,
                        device_class=device.device_class, tags=tuple(device.tags or ()), group=device.room)
    return context(policies, calendars, facts)


def account(devices: Iterable[Device], sites: Mapping[int, Site], buckets: Sequence[EnergyBucket], rates: Rates,
            policies: Sequence[Policy] = (), calendars: Mapping[str, Calendar] | None = None) -> list[DeviceUsage]:
    """One DeviceUsage per device (devices with no energy included: they count for coverage)."""
    calendars = calendars or {}
    hours = _Hours()
    usage: dict[int, DeviceUsage] = {}
    for device in devices:
        site = sites[device.site_id]
        ctx = device_context(device, site, policies, calendars)
        winner = ctx.winner if ctx else None
        usage[device.id] = DeviceUsage(device, site, winner.name if winner else None,
                                       bool(winner and winner.power.mode is not Mode.OBSERVE), ctx)
    for bucket in buckets:
        row = usage[bucket.device_id]
        tz = zone(row.site.timezone)
        start = bucket.hour.astimezone(UTC)
        local_day = start.astimezone(tz).date()
        opened, spans = hours.on(row.ctx, tz, local_day)
        inside = sum(max(0.0, (min(start + _HOUR, e) - max(start, s)).total_seconds()) for s, e in spans) / 3600
        price = rates.pence_per_kwh(row.site.id, start)
        row.joules[bucket.state] += bucket.joules
        row.seconds[bucket.state] += bucket.seconds
        row.joules_by_method[bucket.method] += bucket.joules
        row.joules_by_year[local_day.year] += bucket.joules
        row.pence += bucket.joules / JOULES_PER_KWH * price
        if bucket.state == PowerState.IDLE:
            waste = bucket.joules * (1 - inside)
            if opened:
                row.waste_joules_school_days += waste
            else:
                row.waste_joules_other_days += waste
            row.waste_pence += waste / JOULES_PER_KWH * price
    for row in usage.values():
        idle_seconds = row.seconds[PowerState.IDLE]
        row.idle_watts = (row.joules[PowerState.IDLE] / idle_seconds if idle_seconds >= 3600
                          else rates.idle_watts(row.device.device_class))
    for bucket in buckets:
        if bucket.state in (PowerState.SLEEP, PowerState.OFF):
            row = usage[bucket.device_id]
            saved = max(0.0, bucket.seconds * row.idle_watts - bucket.joules)
            row.saved_joules += saved
            row.saved_pence += saved / JOULES_PER_KWH * rates.pence_per_kwh(row.site.id, bucket.hour)
    return list(usage.values())


def day_counts(days: Iterable[date], ctx: Context | None) -> DayCounts:
    """School days and other days among ``days`` for a device's policy (weekdays without one)."""
    school = other = 0
    for day in days:
        opened = is_open(ctx, day_of(ctx, day)) if ctx and ctx.winner else day.weekday() < 5
        school, other = (school + 1, other) if opened else (school, other + 1)
    return DayCounts(school, other)


def measured(method: str) -> bool:
    return method in MEASURED_METHODS
