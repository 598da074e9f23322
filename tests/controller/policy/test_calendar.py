"""Which kind of day a date is: term, half term, INSET, holiday, and bank holidays by nation."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest

from controller.policy.calendar import Calendar, DateSpan, DayKind, Nation, classify
from controller.policy.loader import load
from tests.conftest import REPO
from tests.controller.policy.builders import school_calendar

ENGLAND = school_calendar()


@pytest.mark.parametrize(("day", "kind", "name"), [
    (date(2026, 2, 10), DayKind.TERM, "Spring term"),
    (date(2026, 2, 16), DayKind.HALF_TERM, "Spring half term"),
    (date(2026, 1, 5), DayKind.INSET, "INSET day"),  # an INSET day inside the term is still INSET
    (date(2026, 4, 6), DayKind.BANK_HOLIDAY, "Easter Monday, England"),
    (date(2026, 5, 4), DayKind.BANK_HOLIDAY, "May Day, England"),  # a bank holiday in term time
    (date(2026, 4, 1), DayKind.HOLIDAY, "school holiday"),  # Easter holidays: inside the cover, no term
    (date(2026, 8, 12), DayKind.HOLIDAY, "school holiday"),  # summer holidays
    (date(2026, 9, 10), DayKind.UNKNOWN, None),  # beyond the calendar's cover
    (date(2026, 12, 25), DayKind.BANK_HOLIDAY, "Christmas Day, England"),  # bank holidays are known any year
])
def test_a_date_in_england(day, kind, name):
    found = ENGLAND.day(day)
    assert found.kind is kind
    if name is not None:
        assert found.name == name


@pytest.mark.parametrize(("day", "nation", "kind"), [
    # Easter Monday is a bank holiday in England, Wales and Northern Ireland but not in Scotland.
    (date(2026, 4, 6), Nation.ENGLAND, DayKind.BANK_HOLIDAY),
    (date(2026, 4, 6), Nation.WALES, DayKind.BANK_HOLIDAY),
    (date(2026, 4, 6), Nation.NORTHERN_IRELAND, DayKind.BANK_HOLIDAY),
    (date(2026, 4, 6), Nation.SCOTLAND, DayKind.TERM),
    # St Andrew's Day (Monday 30 November 2026) is Scottish only.
    (date(2026, 11, 30), Nation.SCOTLAND, DayKind.BANK_HOLIDAY),
    (date(2026, 11, 30), Nation.ENGLAND, DayKind.TERM),
    # The Battle of the Boyne, 12 July (a Monday in 2027), is Northern Irish only.
    (date(2027, 7, 12), Nation.NORTHERN_IRELAND, DayKind.BANK_HOLIDAY),
    (date(2027, 7, 12), Nation.ENGLAND, DayKind.TERM),
    (date(2027, 7, 12), Nation.SCOTLAND, DayKind.TERM),
    # St Patrick's Day (Tuesday 17 March 2026) is Northern Irish only.
    (date(2026, 3, 17), Nation.NORTHERN_IRELAND, DayKind.BANK_HOLIDAY),
    (date(2026, 3, 17), Nation.WALES, DayKind.TERM),
    # 2 January is a bank holiday in Scotland only; the late-August one everywhere but Scotland.
    (date(2026, 1, 2), Nation.SCOTLAND, DayKind.BANK_HOLIDAY),
    (date(2026, 1, 2), Nation.ENGLAND, DayKind.TERM),
    (date(2026, 8, 31), Nation.ENGLAND, DayKind.BANK_HOLIDAY),
    (date(2026, 8, 31), Nation.SCOTLAND, DayKind.TERM),
])
def test_bank_holidays_follow_the_nation(day, nation, kind):
    # A calendar that is all term, so only a bank holiday can make the day anything else.
    all_term = Calendar("all-term", nation, covers=DateSpan(date(2025, 8, 1), date(2027, 8, 31)),
                        terms=(DateSpan(date(2025, 8, 1), date(2027, 8, 31), "Term"),))
    assert all_term.day(day).kind is kind


def test_a_closure_beats_an_inset_day_and_the_term():
    polling = school_calendar(closures=(DateSpan(date(2026, 1, 5), date(2026, 1, 6), "Polling station"),))
    assert [polling.day(date(2026, 1, d)).kind for d in (5, 6, 7)] == [DayKind.CLOSURE, DayKind.CLOSURE, DayKind.TERM]


def test_school_days_are_term_and_inset_days_and_unknown_ones():
    assert [ENGLAND.day(d).is_school_day for d in (date(2026, 2, 10), date(2026, 1, 5), date(2026, 9, 10))] == [
        True, True, True]
    assert [ENGLAND.day(d).is_school_day for d in (date(2026, 2, 16), date(2026, 4, 6), date(2026, 4, 1))] == [
        False, False, False]


def test_the_calendar_that_names_a_day_wins_over_one_that_only_knows_it_as_holiday():
    # A Scottish school year starts in mid-August, inside the previous year's default cover.
    this_year = school_calendar("sct-2025-26", Nation.SCOTLAND)
    next_year = school_calendar("sct-2026-27", Nation.SCOTLAND, covers=DateSpan(date(2026, 8, 1), date(2027, 8, 31)),
                                terms=(DateSpan(date(2026, 8, 18), date(2026, 10, 9), "Autumn term"),),
                                half_terms=(), inset_days=())
    found = classify([this_year, next_year], date(2026, 8, 19))
    assert (found.kind, found.calendar) == (DayKind.TERM, "sct-2026-27")
    assert classify([this_year, next_year], date(2026, 8, 12)).kind is DayKind.HOLIDAY
    assert classify([this_year, next_year], date(2027, 9, 8)).kind is DayKind.UNKNOWN
    assert classify([], date(2026, 2, 16)).kind is DayKind.UNKNOWN


@pytest.mark.parametrize("name", ["example-la-2025-26", "example-la-2026-27", "northgate-academy-2025-26"])
def test_the_example_calendars_have_190_pupil_days_and_5_inset_days(name):
    calendar = load([REPO / "policies"]).calendars[name]
    year_start = date(2025 if "2025" in name else 2026, 9, 1)
    days = (year_start + timedelta(days=n) for n in range(365))
    # A Saturday in term is a term day too (a college may open): pupil days are the weekdays.
    kinds = Counter(calendar.day(day).kind for day in days if day.weekday() < 5)
    assert (kinds[DayKind.TERM], kinds[DayKind.INSET]) == (190, 5)


def test_the_two_example_la_years_join_up():
    calendars = load([REPO / "policies" / "primary.yaml"]).calendars
    both = [calendars["example-la-2025-26"], calendars["example-la-2026-27"]]
    assert classify(both, date(2026, 9, 3)).name == "Autumn term"
    assert classify(both, date(2026, 7, 20)).name == "Summer term"
    assert Path(calendars["example-la-2026-27"].source.split(":")[0]).name == "example-la-2026-27.yaml"
