"""Which local hours are "out of hours": outside the school day on school days, and all of any other day.

Both the before/after comparison and the waste ranking need the same answer, and both normalise per
school day, so the rule lives here once. School days come from the site's calendars
(controller/policy/calendar.py) when given; without them, weekdays that are not English bank holidays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING

from controller.policy.calendar import Calendar, Nation, bank_holidays, classify

if TYPE_CHECKING:
    from controller.energy.accounting import Classifier
    from controller.energy.inputs import Estate

OUT_OF_HOURS = "out_of_hours"
SCHOOL_HOURS = "school_hours"
_WHOLE = Decimal(1)


@dataclass(frozen=True)
class SchoolHours:
    opens: time = time(8, 0)
    closes: time = time(18, 0)
    calendars: tuple[Calendar, ...] = ()

    def is_school_day(self, day: date) -> bool:
        if day.weekday() >= 5:
            return False
        if self.calendars:
            return classify(self.calendars, day).is_school_day
        return day not in bank_holidays(Nation.ENGLAND, day.year)

    def out_of_hours(self, local: datetime) -> bool:
        """Whether a local time (the start of an accounted hour) falls outside the school day."""
        return not (self.is_school_day(local.date()) and self.opens <= local.time() < self.closes)

    def school_days(self, days: Sequence[date]) -> int:
        return sum(1 for day in days if self.is_school_day(day))

    def classifier(self, estate: Estate) -> Classifier:
        """Labels each device-hour ``out_of_hours`` or ``school_hours`` by these hours, in its site's zone."""
        zones = {site_id: site.zone for site_id, site in estate.sites.items()}

        def classify(device, hour: datetime) -> tuple[tuple[str, Decimal], ...]:
            local = hour.astimezone(zones[device.site_id])
            return ((OUT_OF_HOURS if self.out_of_hours(local) else SCHOOL_HOURS, _WHOLE),)

        return classify
