"""Reporting periods: a financial year, an academic year, a term and a range, in the site's local time."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from controller.policy.calendar import Calendar, DateSpan, Nation
from controller.reports.periods import PeriodError, date_range, parse_period

AUTUMN = DateSpan(date(2025, 9, 4), date(2025, 12, 19), "Autumn term")
SPRING = DateSpan(date(2026, 1, 5), date(2026, 3, 27), "Spring term")
CALENDAR = Calendar("example", Nation.ENGLAND, DateSpan(date(2025, 8, 1), date(2026, 8, 31)), (AUTUMN, SPRING))


def test_a_financial_year_runs_from_april_to_march_in_british_summer_time_at_both_ends():
    period = parse_period("FY2025-26")
    assert (period.first, period.last) == (date(2025, 4, 1), date(2026, 3, 31))
    # 1 April 2025 and 1 April 2026 are both in BST: local midnight is 23:00 UTC the evening before.
    assert period.start_utc == datetime(2025, 3, 31, 23, tzinfo=UTC)
    assert period.end_utc == datetime(2026, 3, 31, 23, tzinfo=UTC)
    assert period.hours == 365 * 24  # the October hour gained and the March hour lost cancel out


def test_an_academic_year_runs_from_september_to_august():
    period = parse_period("2025-26")
    assert (period.first, period.last, period.kind) == (date(2025, 9, 1), date(2026, 8, 31), "academic_year")
    assert period.start_utc == datetime(2025, 8, 31, 23, tzinfo=UTC)
    assert period.end_utc == datetime(2026, 8, 31, 23, tzinfo=UTC)


def test_a_term_comes_from_the_sites_calendar_and_crosses_the_october_clock_change():
    period = parse_period("autumn-2025", calendars=[CALENDAR])
    assert (period.first, period.last, period.kind) == (AUTUMN.first, AUTUMN.last, "term")
    assert period.start_utc == datetime(2025, 9, 3, 23, tzinfo=UTC)  # starts in BST
    assert period.end_utc == datetime(2025, 12, 20, 0, tzinfo=UTC)  # ends in GMT
    days = (AUTUMN.last - AUTUMN.first).days + 1
    assert period.hours == days * 24 + 1  # 26 October 2025 had 25 hours


def test_a_range_across_the_march_change_is_an_hour_short():
    period = parse_period("2026-03-28..2026-03-29")
    assert period.start_utc == datetime(2026, 3, 28, 0, tzinfo=UTC)
    assert period.end_utc == datetime(2026, 3, 29, 23, tzinfo=UTC)
    assert period.hours == 47


def test_periods_follow_the_sites_own_time_zone():
    period = parse_period("FY2025-26", timezone="Europe/Dublin")
    assert period.start.tzinfo is not None and str(period.start.tzinfo) == "Europe/Dublin"


def test_the_prior_year_is_the_same_span_a_year_earlier():
    assert parse_period("FY2025-26").year_before().label == "FY2024-25"
    assert parse_period("2025-26").year_before().first == date(2024, 9, 1)
    assert date_range(date(2024, 2, 29), date(2024, 3, 1)).year_before().first == date(2023, 2, 28)


@pytest.mark.parametrize("text, message", [
    ("2025-27", "27 does not follow 2025"),
    ("FY2025-25", "25 does not follow 2025"),
    ("last year", "is not FY2025-26"),
    ("2025-13-01..2025-12-31", "is not a date"),
    ("2025-12-31..2025-09-01", "ends (2025-09-01) before it starts"),
    ("summer-2025", "no summer term starting in 2025; the site's calendars have autumn-2025, spring-2026"),
])
def test_a_malformed_period_says_what_is_wrong(text, message):
    with pytest.raises(PeriodError) as caught:
        parse_period(text, calendars=[CALENDAR])
    assert message in str(caught.value)


def test_a_term_without_a_calendar_says_the_site_has_none():
    with pytest.raises(PeriodError, match="the site has no policy calendar"):
        parse_period("autumn-2025")
