"""Reporting periods as a bursar names them, turned into aware instants in the site's local time.

* ``FY2025-26``: the financial year, 1 April 2025 to 31 March 2026;
* ``2025-26``: the academic year, 1 September 2025 to 31 August 2026 (SECR for academy trusts);
* ``autumn-2025``: a term, from the site's policy calendars (its first to its last day);
* ``2025-09-01..2025-12-31``: any range of whole days, both ends included.

A period runs from local midnight of its first day to local midnight after its last day, so a year
that contains the March and October clock changes is 8,760 hours long, and a term starting in BST and
ending in GMT starts at 23:00 UTC and ends at 00:00 UTC. Pure: no database, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from controller.errors import DomainError
from controller.policy.calendar import Calendar
from controller.policy.walltime import instant, zone

_FINANCIAL = re.compile(r"FY(\d{4})-(\d{2})", re.IGNORECASE)
_ACADEMIC = re.compile(r"(\d{4})-(\d{2})")
_TERM = re.compile(r"([a-z]+)-(\d{4})", re.IGNORECASE)
_RANGE = re.compile(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})")


class PeriodError(ValueError, DomainError):
    """A period a person typed that names no span of days; the message says what is accepted."""


@dataclass(frozen=True)
class Period:
    label: str
    kind: str  # financial_year, academic_year, term, range
    first: date
    last: date  # inclusive
    timezone: str

    @property
    def start(self) -> datetime:
        """Local midnight at the start of the first day, in the site's zone."""
        return instant(self.first, time(0), zone(self.timezone))

    @property
    def end(self) -> datetime:
        """Local midnight after the last day (exclusive)."""
        return instant(self.last + timedelta(days=1), time(0), zone(self.timezone))

    @property
    def start_utc(self) -> datetime:
        return self.start.astimezone(UTC)

    @property
    def end_utc(self) -> datetime:
        return self.end.astimezone(UTC)

    @property
    def hours(self) -> float:
        return (self.end_utc - self.start_utc).total_seconds() / 3600

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    def describe(self) -> str:
        return f"{self.label} ({self.first:%d %b %Y} to {self.last:%d %b %Y}, {self.timezone})"

    def year_before(self) -> Period:
        """The same span a year earlier, for the prior-year comparison SECR asks for."""
        return Period(_year_earlier_label(self), self.kind, _year_earlier(self.first), _year_earlier(self.last),
                      self.timezone)


def parse_period(text: str, timezone: str = "Europe/London", calendars: Iterable[Calendar] = ()) -> Period:
    """The period ``text`` names; terms are looked up in ``calendars`` (a site's policy calendars)."""
    text = text.strip()
    zone(timezone)  # an unknown zone fails here, not halfway through a report
    if match := _FINANCIAL.fullmatch(text):
        first_year = _two_years(match, text)
        return Period(f"FY{first_year}-{(first_year + 1) % 100:02d}", "financial_year", date(first_year, 4, 1),
                      date(first_year + 1, 3, 31), timezone)
    if match := _ACADEMIC.fullmatch(text):
        first_year = _two_years(match, text)
        return Period(f"{first_year}-{(first_year + 1) % 100:02d}", "academic_year", date(first_year, 9, 1),
                      date(first_year + 1, 8, 31), timezone)
    if match := _RANGE.fullmatch(text):
        return date_range(_date(match.group(1)), _date(match.group(2)), timezone)
    if match := _TERM.fullmatch(text):
        return term(match.group(1), int(match.group(2)), calendars, timezone)
    raise PeriodError(f"period {text!r} is not FY2025-26 (April-March), 2025-26 (September-August), "
                      "a term such as autumn-2025, or 2025-09-01..2025-12-31")


def date_range(first: date, last: date, timezone: str = "Europe/London") -> Period:
    if last < first:
        raise PeriodError(f"the period ends ({last}) before it starts ({first})")
    return Period(f"{first.isoformat()}..{last.isoformat()}", "range", first, last, timezone)


def term(season: str, year: int, calendars: Iterable[Calendar], timezone: str = "Europe/London") -> Period:
    """The term whose name starts with ``season`` ("autumn") and which begins in ``year``."""
    season = season.lower()
    found = [span for calendar in calendars for span in calendar.terms
             if span.name.lower().startswith(season) and span.first.year == year]
    if not found:
        known = sorted({f"{s.name.split()[0].lower()}-{s.first.year}" for c in calendars for s in c.terms if s.name})
        hint = f"; the site's calendars have {', '.join(known)}" if known else "; the site has no policy calendar"
        raise PeriodError(f"no {season} term starting in {year}{hint}")
    span = min(found, key=lambda s: s.first)
    return Period(f"{season}-{year}", "term", span.first, span.last, timezone)


def _two_years(match: re.Match, text: str) -> int:
    first_year, second = int(match.group(1)), int(match.group(2))
    if (first_year + 1) % 100 != second:
        raise PeriodError(f"period {text!r}: {second:02d} does not follow {first_year}")
    return first_year


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise PeriodError(f"{text!r} is not a date: {exc}") from None


def _year_earlier(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def _year_earlier_label(period: Period) -> str:
    if period.kind == "financial_year":
        return f"FY{period.first.year - 1}-{period.first.year % 100:02d}"
    if period.kind == "academic_year":
        return f"{period.first.year - 1}-{period.first.year % 100:02d}"
    return f"{_year_earlier(period.first).isoformat()}..{_year_earlier(period.last).isoformat()}"


@dataclass(frozen=True)
class Choice:
    value: str  # what parse_period reads: "autumn-2025", "2025-26", "FY2025-26"
    label: str  # what a person reads: "Autumn term 2025 (3 Sep to 19 Dec): this term"


def choices(calendars: Iterable[Calendar], today: date) -> list[Choice]:
    """The periods a bursar would ask about, from the site's own calendars: this term first (or the last one
    that has started), then the other terms begun in the last year, then this and last academic and financial
    years. Terms that have not started yet are left out: there is nothing to report."""
    terms: dict[str, tuple[date, date, str]] = {}
    for calendar in calendars:
        for span in calendar.terms:
            value = f"{span.name.split()[0].lower()}-{span.first.year}" if span.name else ""
            if value and span.first <= today and today - span.first < timedelta(days=366) and (
                    value not in terms or span.first < terms[value][0]):
                terms[value] = (span.first, span.last, span.name)
    ordered = sorted(terms.items(), key=lambda item: item[1][0], reverse=True)
    found = []
    for index, (value, (first, last, name)) in enumerate(ordered):
        when = "this term" if first <= today <= last else ("the last term" if index == 0 else "")
        found.append(Choice(value, f"{name} {first.year} ({first:%-d %b} to {last:%-d %b %Y})"
                                   + (f": {when}" if when else "")))
    academic = today.year if today.month >= 9 else today.year - 1
    financial = today.year if today.month >= 4 else today.year - 1
    found += [Choice(f"{academic}-{(academic + 1) % 100:02d}", f"Academic year {academic}-{(academic + 1) % 100:02d} "
                                                              "(September to August)"),
              Choice(f"{academic - 1}-{academic % 100:02d}", f"Academic year {academic - 1}-{academic % 100:02d}"),
              Choice(f"FY{financial}-{(financial + 1) % 100:02d}", f"Financial year {financial}-"
                                                                  f"{(financial + 1) % 100:02d} (April to March)"),
              Choice(f"FY{financial - 1}-{financial % 100:02d}", f"Financial year {financial - 1}-"
                                                                f"{financial % 100:02d}")]
    return found
