"""Each device's energy over a period, split the ways reports need: by state and method, in school hours
or out of them, on school days or not, with its cost and its out-of-hours waste.

School hours are the device's winning power policy's (the same engine that powers devices down, so a
report and the schedule never disagree); a device no policy powers down is judged by ``DEFAULT_HOURS``.
An hour bucket straddling the end of the school day is split in proportion to the minutes on each side.

Out-of-hours waste is idle energy outside school hours: what a power-down would have removed (energy
while active is somebody working late). Unlike the energy package's waste ranking (fixed hours, awake
energy, one total), a report needs each device's own policy hours and the split between school days and
other days, to annualise a recommendation. Energy, prices and carbon factors all come from the energy
package's hour lines and ``Pricer``, so the sums here match its own; savings are its ``savings_summary``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from agent.protocol import PowerState
from controller.energy.accounting import Pricer
from controller.energy.inputs import MEASURED
from controller.energy.lines import HourLine
from controller.energy.school_hours import SchoolHours
from controller.policy.calendar import Calendar
from controller.policy.engine import Context, context, day_of, is_open, spans_on
from controller.policy.model import Basis, DeviceFacts, Mode, Policy
from controller.policy.walltime import instant, zone
from controller.register.models import Device, Site

# Devices no policy powers down: the energy package's school day, so its before/after and these agree.
DEFAULT_HOURS = SchoolHours()
DEFAULT_HOURS_TEXT = (f"{DEFAULT_HOURS.opens:%H:%M}-{DEFAULT_HOURS.closes:%H:%M} on weekdays other than "
                      "English bank holidays")
_OPEN_BASES = (Basis.SCHOOL_HOURS, Basis.WAKE_BEFORE_SCHOOL)
_HOUR = timedelta(hours=1)


@dataclass
class DeviceUsage:
    """One device's figures over a period, in kWh, pence, kgCO2e and seconds (floats: display only)."""

    device: Device
    site: Site
    policy: str | None  # the winning power policy, None when nothing powers it down
    enforcing: bool  # a winning policy in a mode that acts (not observe)
    ctx: Context | None = field(default=None, repr=False)
    kwh: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # by state
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # by state
    kwh_by_method: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    kwh_by_year: dict[int, float] = field(default_factory=lambda: defaultdict(float))  # local calendar year
    pence: float = 0.0
    unpriced_kwh: float = 0.0  # hours before the site's first tariff
    kg_co2e: float = 0.0
    waste_kwh_school_days: float = 0.0  # idle out of school hours on days the school is open
    waste_kwh_other_days: float = 0.0  # idle on weekends, holidays, bank holidays
    waste_pence: float = 0.0
    waste_kg: float = 0.0

    @property
    def total_kwh(self) -> float:
        return sum(self.kwh.values())

    @property
    def waste_kwh(self) -> float:
        return self.waste_kwh_school_days + self.waste_kwh_other_days

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
        self._cache: dict[tuple[str | None, str, date], tuple[bool, list[tuple[datetime, datetime]]]] = {}

    def on(self, ctx: Context | None, tz: ZoneInfo, day: date) -> tuple[bool, list[tuple[datetime, datetime]]]:
        key = (ctx.winner.name if ctx and ctx.winner else None, tz.key, day)  # no policy: the site's zone
        if key not in self._cache:
            self._cache[key] = _open_hours(ctx, tz, day)
        return self._cache[key]


def _open_hours(ctx: Context | None, tz: ZoneInfo, day: date) -> tuple[bool, list[tuple[datetime, datetime]]]:
    if ctx is None or ctx.winner is None:
        if not DEFAULT_HOURS.is_school_day(day):
            return False, []
        return True, [(instant(day, DEFAULT_HOURS.opens, tz).astimezone(UTC),
                       instant(day, DEFAULT_HOURS.closes, tz).astimezone(UTC))]
    spans = [(s.start.astimezone(UTC), s.end.astimezone(UTC)) for s in spans_on(ctx, day) if s.basis in _OPEN_BASES]
    # A term's Saturday is a term day to the calendar, but with no school hours it is not a school day.
    return is_open(ctx, day_of(ctx, day)) and bool(spans), spans


def device_context(device: Device, site: Site, policies: Sequence[Policy],
                   calendars: Mapping[str, Calendar]) -> Context | None:
    if not policies:
        return None
    facts = DeviceFacts(device_id=str(device.id), hostname=device.hostname, site=site.name,
                        device_class=device.device_class, tags=tuple(device.tags or ()), group=device.room)
    return context(policies, calendars, facts)


def account(devices: Iterable[Device], sites: Mapping[int, Site], lines: Sequence[HourLine], pricer: Pricer,
            policies: Sequence[Policy] = (),
            calendars: Mapping[str, Calendar] | None = None) -> list[DeviceUsage]:
    """One DeviceUsage per device (devices with no energy included: they count for coverage), from the
    energy package's hour lines, priced and converted to carbon by its ``Pricer``."""
    calendars = calendars or {}
    hours = _Hours()
    usage: dict[int, DeviceUsage] = {}
    for device in devices:
        site = sites[device.site_id]
        ctx = device_context(device, site, policies, calendars)
        winner = ctx.winner if ctx else None
        usage[device.id] = DeviceUsage(device, site, winner.name if winner else None,
                                       bool(winner and winner.power.mode is not Mode.OBSERVE), ctx)
    for line in lines:
        row = usage[line.device_id]
        tz = zone(row.site.timezone)
        start = line.hour.astimezone(UTC)
        local_day = start.astimezone(tz).date()
        kwh, seconds = float(line.wh) / 1000, float(line.seconds)
        rate = pricer.rate(row.site.id, start)
        pence_per_kwh = float(rate) if rate is not None else 0.0
        kg_per_kwh = float(pricer.factor(row.site.id, start).kg_per_kwh)
        row.kwh[line.state] += kwh
        row.seconds[line.state] += seconds
        row.kwh_by_method[line.method] += kwh
        row.kwh_by_year[local_day.year] += kwh
        row.pence += kwh * pence_per_kwh
        row.unpriced_kwh += kwh if rate is None else 0.0
        row.kg_co2e += kwh * kg_per_kwh
        if line.state == PowerState.IDLE:
            opened, spans = hours.on(row.ctx, tz, local_day)
            inside = sum(max(0.0, (min(start + _HOUR, e) - max(start, s)).total_seconds()) for s, e in spans) / 3600
            waste = kwh * (1 - inside)
            if opened:
                row.waste_kwh_school_days += waste
            else:
                row.waste_kwh_other_days += waste
            row.waste_pence += waste * pence_per_kwh
            row.waste_kg += waste * kg_per_kwh
    return list(usage.values())


def day_counts(days: Sequence[date], ctx: Context | None, tz: ZoneInfo) -> DayCounts:
    """School days (open, with school hours) and other days among ``days``, by the same rule as the waste."""
    school = sum(1 for day in days if _open_hours(ctx, tz, day)[0])
    return DayCounts(school, len(days) - school)


def measured(method: str) -> bool:
    return method in MEASURED
