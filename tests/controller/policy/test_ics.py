"""Term dates imported from the iCalendar files academies publish."""

from __future__ import annotations

from datetime import date

import pytest

from controller.policy.calendar import DayKind
from controller.policy.ics import IcsError, parse_ics
from controller.policy.loader import load
from controller.policy.walltime import zone
from tests.conftest import REPO

LONDON = zone("Europe/London")


def ics(*events: str) -> bytes:
    body = "".join(f"BEGIN:VEVENT\r\nUID:{n}@test\r\nDTSTAMP:20250601T000000Z\r\n{e}\r\nEND:VEVENT\r\n"
                   for n, e in enumerate(events))
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{body}END:VCALENDAR\r\n".encode()


def event(summary: str, start: str, end: str | None = None) -> str:
    kind = "VALUE=DATE:" if len(start) == 8 else ""
    lines = [f"SUMMARY:{summary}", f"DTSTART;{kind}{start}" if kind else f"DTSTART:{start}"]
    if end is not None:
        lines.append(f"DTEND;{kind}{end}" if kind else f"DTEND:{end}")
    return "\r\n".join(lines)


def spans(found) -> list[tuple[date, date]]:
    return [(s.first, s.last) for s in found]


@pytest.mark.parametrize(("summary", "field"), [
    ("INSET Day", "inset_days"),
    ("Staff Training Day - school closed to students", "inset_days"),
    ("Teacher professional development day", "inset_days"),
    ("October Half Term", "half_terms"),
    ("Half-term", "half_terms"),
    ("Christmas Holidays", "closures"),
    ("School closed - boiler replacement", "closures"),
    ("Spring Term", "terms"),
])
def test_events_are_sorted_by_the_words_in_their_summary(summary, field):
    found = parse_ics(ics(event(summary, "20260105", "20260107")), "school.ics", LONDON)
    assert spans(getattr(found, field)) == [(date(2026, 1, 5), date(2026, 1, 6))]  # DTEND is exclusive
    others = {"terms", "half_terms", "inset_days", "closures"} - {field}
    assert not any(getattr(found, other) for other in others)


def test_term_starts_and_ends_are_paired_by_name_year_after_year():
    found = parse_ics(ics(event("Autumn Term starts", "20250903"), event("Autumn Term ends", "20251219"),
                          event("Autumn Term starts", "20260902"), event("Autumn Term ends", "20261218"),
                          event("Spring Term 2 begins", "20260223"), event("Spring Term 2 finishes", "20260327")),
                      "school.ics", LONDON)
    assert spans(found.terms) == [(date(2025, 9, 3), date(2025, 12, 19)), (date(2026, 2, 23), date(2026, 3, 27)),
                                  (date(2026, 9, 2), date(2026, 12, 18))]
    assert found.ignored == ()


def test_a_term_start_without_an_end_is_reported_not_guessed():
    found = parse_ics(ics(event("Summer Term starts", "20260413")), "school.ics", LONDON)
    assert found.terms == ()
    assert found.ignored == ("Summer Term starts (2026-04-13, no matching end)",)


def test_timed_events_count_on_their_local_date():
    # 23:30 UTC on 1 September is 00:30 BST on the 2nd.
    found = parse_ics(ics(event("INSET day", "20250901T233000Z", "20250902T010000Z"),
                          event("INSET day", "20260105T083000Z", "20260105T153000Z")), "school.ics", LONDON)
    assert spans(found.inset_days) == [(date(2025, 9, 2), date(2025, 9, 2)), (date(2026, 1, 5), date(2026, 1, 5))]


def test_other_events_and_recurring_ones_are_listed_as_ignored():
    found = parse_ics(ics(event("Year 11 Parents' Evening", "20251113T163000Z", "20251113T190000Z"),
                          event("INSET day", "20260105") + "\r\nRRULE:FREQ=YEARLY"), "school.ics", LONDON)
    assert found.inset_days == ()
    assert found.ignored == ("Year 11 Parents' Evening (2025-11-13)", "INSET day (2026-01-05, recurring)")


@pytest.mark.parametrize(("data", "message"), [
    (b"this is not a calendar", "school.ics: not an iCalendar file"),
    (ics("SUMMARY:INSET day\r\nDTSTART:2025x"), "school.ics: event 'INSET day' has a date that is not a date"),
    (ics("SUMMARY:INSET day"), "school.ics: event 'INSET day' has no DTSTART"),
])
def test_a_broken_file_is_an_error_naming_it(data, message):
    with pytest.raises(IcsError) as caught:
        parse_ics(data, "school.ics", LONDON)
    assert str(caught.value).startswith(message)


def test_the_example_academy_calendar_comes_from_its_ics_file():
    policy_set = load([REPO / "policies" / "calendars" / "northgate-academy-2025-26.yaml"])
    academy = policy_set.calendars["northgate-academy-2025-26"]
    assert [(t.name, t.first, t.last) for t in academy.terms] == [
        ("Autumn Term", date(2025, 9, 3), date(2025, 12, 18)),
        ("Spring Term", date(2026, 1, 6), date(2026, 3, 27)),
        ("Summer Term", date(2026, 4, 13), date(2026, 7, 21))]
    assert academy.day(date(2025, 9, 1)).kind is DayKind.INSET  # a timed event, 08:30-15:30
    assert academy.day(date(2025, 12, 19)).kind is DayKind.CLOSURE  # the academy breaks up a day before the LA
    assert academy.day(date(2026, 2, 16)).kind is DayKind.HALF_TERM
    (note,) = policy_set.notes
    assert "ignored 3 event(s)" in note and "Year 11 Mock Exams" in note
