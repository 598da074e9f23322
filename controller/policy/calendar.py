"""A site's school calendar: which kind of day a date is, from term dates, INSET days and bank holidays.

Term dates are per site (community schools take the local authority's, academies set their own) and
come from YAML or an iCalendar file. Bank holidays differ by nation and come from the ``holidays``
library, so they never need typing in. A date is, in this order of precedence:

    bank holiday > closure > INSET day > half term > term > holiday (inside the calendar's cover)

and ``unknown`` beyond every calendar's cover (bank holidays are known for any year), which the
engine treats as a school day: not knowing must never switch machines off in the middle of a lesson.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache

import holidays


class Nation(enum.StrEnum):
    ENGLAND = "england"
    WALES = "wales"
    SCOTLAND = "scotland"
    NORTHERN_IRELAND = "northern_ireland"


# The ``holidays`` library's United Kingdom subdivisions.
SUBDIVISION = {Nation.ENGLAND: "ENG", Nation.WALES: "WLS", Nation.SCOTLAND: "SCT", Nation.NORTHERN_IRELAND: "NIR"}


class DayKind(enum.StrEnum):
    TERM = "term"
    INSET = "inset"
    HALF_TERM = "half_term"
    HOLIDAY = "holiday"
    BANK_HOLIDAY = "bank_holiday"
    CLOSURE = "closure"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class DateSpan:
    """Whole days from ``first`` to ``last`` inclusive, as schools publish them."""

    first: date
    last: date
    name: str = ""
    source: str = ""

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last

    def __str__(self) -> str:
        return f"{self.first.isoformat()} to {self.last.isoformat()}"


@dataclass(frozen=True)
class Day:
    date: date
    kind: DayKind
    name: str = ""
    source: str = ""
    calendar: str = ""

    @property
    def is_school_day(self) -> bool:
        """Pupils or staff are in: term days and INSET days. Unknown days count, to fail safe."""
        return self.kind in (DayKind.TERM, DayKind.INSET, DayKind.UNKNOWN)

    def describe(self) -> str:
        label = self.kind.replace("_", " ")
        return f"{self.date:%a %Y-%m-%d} is {label}" + (f" ({self.name})" if self.name else "")


@dataclass(frozen=True)
class Calendar:
    name: str
    nation: Nation
    covers: DateSpan
    terms: tuple[DateSpan, ...] = ()
    half_terms: tuple[DateSpan, ...] = ()
    inset_days: tuple[DateSpan, ...] = ()
    closures: tuple[DateSpan, ...] = ()
    description: str = ""
    source: str = ""

    def day(self, day: date) -> Day:
        bank_holiday = bank_holidays(self.nation, day.year).get(day)
        if bank_holiday is not None:
            return Day(day, DayKind.BANK_HOLIDAY, f"{bank_holiday}, {self.nation.replace('_', ' ').title()}",
                       f"holidays library, GB-{SUBDIVISION[self.nation]}", self.name)
        if day not in self.covers:
            return Day(day, DayKind.UNKNOWN, f"beyond calendar {self.name}, which covers {self.covers}",
                       self.source, self.name)
        for kind, spans in ((DayKind.CLOSURE, self.closures), (DayKind.INSET, self.inset_days),
                            (DayKind.HALF_TERM, self.half_terms), (DayKind.TERM, self.terms)):
            for span in spans:
                if day in span:
                    return Day(day, kind, span.name, span.source, self.name)
        return Day(day, DayKind.HOLIDAY, "school holiday", self.source, self.name)


@cache
def bank_holidays(nation: Nation, year: int) -> Mapping[date, str]:
    return dict(holidays.country_holidays("GB", subdiv=SUBDIVISION[nation], years=year))


def classify(calendars: Sequence[Calendar], day: date) -> Day:
    """The day as the policy's calendars see it, read in the order the policy lists them.

    Neighbouring academic years overlap in the summer (a Scottish term starts in August), so a
    calendar that names the day (term, INSET, closure…) wins over one that only knows it as holiday.
    """
    fallback: Day | None = None
    for calendar in calendars:
        found = calendar.day(day)
        if found.kind not in (DayKind.HOLIDAY, DayKind.UNKNOWN):
            return found
        if fallback is None or fallback.kind is DayKind.UNKNOWN:
            fallback = found
    return fallback if fallback is not None else Day(day, DayKind.UNKNOWN, "no calendar")
