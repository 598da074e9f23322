"""Each device's energy over a period as reports need it, from the energy package's one total.

``usage_for`` asks ``energy_totals`` once, grouped by device, policy part, state and method, with the
policy engine labelling each part of each device-hour (controller.energy.policy_hours): school hours,
kept on by a policy on purpose, or out of hours. So a report's kWh, pounds and kgCO2e are the figures
`caretaker energy summary` and /metrics give for the same devices and hours, to the Wh.

Waste is the energy package's rule (``waste_by``): idle energy out of hours that no policy keeps on,
what a power-down policy would remove (energy while active is somebody working late). It is split
between school days and other days, to annualise a recommendation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from controller.energy.accounting import Total, energy_totals
from controller.energy.inputs import MEASURED, DeviceInfo, Estate
from controller.energy.policy_hours import Label, Part, PolicyHours, is_waste
from controller.register.models import Site


@dataclass
class DeviceUsage:
    """One device's exact totals over a period, and what its policies say of it."""

    device: DeviceInfo
    site: Site
    policy: str | None  # the winning power policy, None when nothing powers it down
    enforcing: bool  # a winning policy in a mode that acts (not observe)
    used: Total = field(default_factory=Total)
    waste_school_days: Total = field(default_factory=Total)  # idle out of school hours on days it is open
    waste_other_days: Total = field(default_factory=Total)  # idle on weekends, holidays, bank holidays
    kept_on: Total = field(default_factory=Total)  # out of hours, while a policy keeps it on on purpose
    kept_on_by: set[str] = field(default_factory=set)  # the policy exceptions behind ``kept_on``

    @property
    def waste(self) -> Total:
        found = Total()
        found.merge(self.waste_school_days)
        found.merge(self.waste_other_days)
        return found

    @property
    def total_kwh(self) -> float:
        return float(self.used.wh) / 1000

    @property
    def kwh_by_method(self) -> dict[str, float]:
        return {method: float(wh) / 1000 for method, wh in self.used.by_method.items()}

    @property
    def kwh_by_year(self) -> dict[int, float]:
        years: dict[int, float] = {}
        for (year, _), (_, wh) in self.used.by_year.items():
            years[year] = years.get(year, 0.0) + float(wh) / 1000
        return years


def usage_for(session, estate: Estate, hours: PolicyHours, sites: Mapping[int, Site], start: datetime,
              end: datetime, now: datetime) -> list[DeviceUsage]:
    """One DeviceUsage per device of ``estate`` (devices with no energy included: they count for coverage)."""
    usages: dict[int, DeviceUsage] = {}
    for device in sorted(estate.devices.values(), key=lambda d: (d.site_id, d.hostname, d.id)):
        said = hours.device(device)
        usages[device.id] = DeviceUsage(device, sites[device.site_id], said.policy, said.enforcing)
    totals = energy_totals(session, start, end, ("device_id", "policy", "state", "method"), estate=estate, now=now,
                           classifier=hours.classifier)
    for (device_id, label_text, state, _), total in totals.groups.items():
        usage = usages[int(device_id)]
        usage.used.merge(total)
        label = Label.parse(label_text)
        if label.part is Part.KEPT_ON:
            usage.kept_on.merge(total)
            usage.kept_on_by.add(label.reason)
        elif is_waste(label, state):
            (usage.waste_school_days if label.school_day else usage.waste_other_days).merge(total)
    return list(usages.values())


def measured(method: str) -> bool:
    return method in MEASURED


def merged(totals: Sequence[Total]) -> Total:
    found = Total()
    for total in totals:
        found.merge(total)
    return found
