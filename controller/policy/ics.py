"""Term dates from an iCalendar (.ics) file, as academies publish them.

Schools name events in many ways, so events are sorted by words in their summary, first match wins:

    "INSET", "training day", "staff development", "professional development"   → INSET day(s)
    "half term", "half-term"                                                   → half term
    "<name> term [n] starts|begins|opens" … "<name> term [n] ends|finishes|closes" → a term, paired by name
    "holiday", "holidays", "closed", "closure", "break"                        → closure
    "term" (an event spanning the term)                                        → term

Anything else (parents' evenings, trips) is listed as ignored, so `caretaker policy check` can show
what was left out. Recurring events are ignored too: no school publishes its terms that way.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar

from controller.errors import DomainError
from controller.policy.calendar import DateSpan


class IcsError(ValueError, DomainError):
    pass


@dataclass(frozen=True)
class IcsDates:
    terms: tuple[DateSpan, ...] = ()
    half_terms: tuple[DateSpan, ...] = ()
    inset_days: tuple[DateSpan, ...] = ()
    closures: tuple[DateSpan, ...] = ()
    ignored: tuple[str, ...] = ()  # "summary (date)" of each event not understood


_INSET = re.compile(r"\binset\b|\btraining day|\bstaff development|\bprofessional development", re.IGNORECASE)
_HALF_TERM = re.compile(r"\bhalf[\s-]*term\b", re.IGNORECASE)
_TERM_EDGE = re.compile(r"^(?P<term>.*?\bterm\b(?:\s*\d+)?)\W*(?P<edge>starts?|begins?|opens|ends?|finishes|closes)\b",
                        re.IGNORECASE)
_CLOSURE = re.compile(r"\bholidays?\b|\bclosed\b|\bclosure\b|\bbreak\b", re.IGNORECASE)
_TERM = re.compile(r"\bterm\b", re.IGNORECASE)
_STARTS = ("start", "starts", "begin", "begins", "opens")


@dataclass(frozen=True)
class _Event:
    summary: str
    span: DateSpan


def parse_ics(data: bytes, name: str, tz: ZoneInfo) -> IcsDates:
    """Sort the events of ``data`` (the file ``name``) into term dates; timed events count on their local date."""
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise IcsError(f"{name}: not an iCalendar file: {exc}") from None
    found: dict[str, list[DateSpan]] = defaultdict(list)
    edges: dict[tuple[str, str], list[_Event]] = defaultdict(list)
    ignored: list[str] = []
    for component in calendar.walk("VEVENT"):
        event = _event(component, name, tz)
        summary = event.summary
        if component.get("RRULE") is not None:
            ignored.append(f"{summary} ({event.span.first}, recurring)")
        elif _INSET.search(summary):
            found["inset"].append(event.span)
        elif _HALF_TERM.search(summary):
            found["half_term"].append(event.span)
        elif edge := _TERM_EDGE.search(summary):
            key = " ".join(edge["term"].casefold().split())
            edges[key, "start" if edge["edge"].casefold() in _STARTS else "end"].append(event)
        elif _CLOSURE.search(summary):
            found["closure"].append(event.span)
        elif _TERM.search(summary):
            found["term"].append(event.span)
        else:
            ignored.append(f"{summary} ({event.span.first})")
    terms, unpaired = _pair(edges, name)
    return IcsDates(terms=tuple(sorted(found["term"] + terms, key=_first)),
                    half_terms=tuple(sorted(found["half_term"], key=_first)),
                    inset_days=tuple(sorted(found["inset"], key=_first)),
                    closures=tuple(sorted(found["closure"], key=_first)),
                    ignored=tuple(ignored + unpaired))


def _first(span: DateSpan) -> date:
    return span.first


def _event(component: icalendar.Event, name: str, tz: ZoneInfo) -> _Event:
    summary = " ".join(str(component.get("SUMMARY", "")).split()) or "(no summary)"
    start = _local_date(component, "DTSTART", name, summary, tz)
    if start is None:
        raise IcsError(f"{name}: event {summary!r} has no DTSTART")
    end = component.get("DTEND")
    if end is not None:
        last = _last_day(component.decoded("DTEND"), start, name, summary, tz)
    elif component.get("DURATION") is not None:
        duration = component.decoded("DURATION")
        last = _last_day(component.decoded("DTSTART") + duration, start, name, summary, tz)
    else:
        last = start
    return _Event(summary, DateSpan(start, max(start, last), summary, f"{name} (event {summary!r})"))


def _local_date(component: icalendar.Event, prop: str, name: str, summary: str, tz: ZoneInfo) -> date | None:
    if component.get(prop) is None:
        return None
    value = component.decoded(prop)
    return _as_date(value, name, summary, tz)


def _as_date(value: object, name: str, summary: str, tz: ZoneInfo) -> date:
    if isinstance(value, datetime):
        return (value.astimezone(tz) if value.tzinfo is not None else value).date()
    if isinstance(value, date):
        return value
    raise IcsError(f"{name}: event {summary!r} has a date that is not a date: {value!r}")


def _last_day(end: object, start: date, name: str, summary: str, tz: ZoneInfo) -> date:
    """The last day an event covers; DTEND is exclusive (a whole-day event's end is the next day)."""
    if isinstance(end, datetime):
        return _as_date(end - timedelta(microseconds=1), name, summary, tz)
    return _as_date(end, name, summary, tz) - timedelta(days=1)


def _pair(edges: dict[tuple[str, str], list[_Event]], name: str) -> tuple[list[DateSpan], list[str]]:
    """Match "… term starts" with the next "… term ends" of the same name, year after year."""
    terms: list[DateSpan] = []
    unpaired: list[str] = []
    for key in sorted({key for key, _ in edges}):
        starts = sorted(edges.get((key, "start"), []), key=lambda e: e.span.first)
        ends = sorted(edges.get((key, "end"), []), key=lambda e: e.span.first)
        while starts:
            start = starts.pop(0)
            end = next((e for e in ends if e.span.first >= start.span.first), None)
            if end is None:
                unpaired.append(f"{start.summary} ({start.span.first}, no matching end)")
                continue
            ends.remove(end)
            title = start.summary[:len(key)] if start.summary.casefold().startswith(key) else key
            terms.append(DateSpan(start.span.first, end.span.last, title.strip(),
                                  f"{name} (events {start.summary!r} and {end.summary!r})"))
        unpaired.extend(f"{e.summary} ({e.span.first}, no matching start)" for e in ends)
    return terms, unpaired
