"""Calendar files: term dates, half terms, INSET days and closures in YAML, optionally from an .ics file.

    name: example-la-2025-26
    nation: england                  # bank holidays: england, wales, scotland or northern_ireland
    terms:
      - {name: Autumn term, start: 2025-09-04, end: 2025-12-19,
         half_term: {start: 2025-10-27, end: 2025-10-31}}
    inset_days: [2025-09-02, {date: 2025-11-21, name: Staff training}]
    closures: [{name: Polling station, start: 2026-05-07}]
    ics: northgate-academy-2025-26.ics   # merged with anything listed above
    covers: {start: 2025-08-01, end: 2026-08-31}   # default: 1 August before to 31 August after

Dates outside ``covers`` are unknown to this calendar (the engine treats unknown days as school days).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from controller.policy.calendar import Calendar, DateSpan, Nation
from controller.policy.ics import IcsDates, IcsError, parse_ics
from controller.policy.model import DEFAULT_TIMEZONE
from controller.policy.walltime import zone
from controller.policy.yamlnodes import Node, Problems

CALENDAR_KEYS = ("name", "description", "nation", "covers", "terms", "inset_days", "closures", "ics")
TERM_KEYS = ("name", "start", "end", "half_term")
SPAN_KEYS = ("name", "start", "end")
INSET_KEYS = ("date", "name")


def read_calendar(document: Node, problems: Problems) -> Calendar | None:
    """The calendar in ``document``, or None after adding what is wrong with it to ``problems``."""
    fields = problems.attempt(lambda: document.mapping(CALENDAR_KEYS, required=("name", "nation")))
    if fields is None:
        return None
    before = len(problems.items)
    name = problems.attempt(fields["name"].text)
    nation = problems.attempt(lambda: fields["nation"].choice(Nation))
    description = (problems.attempt(fields["description"].text) or "") if "description" in fields else ""
    terms: list[DateSpan] = []
    half_terms: list[DateSpan] = []
    if "terms" in fields:
        _read_terms(fields["terms"], problems, terms, half_terms)
    inset_days = _each(fields.get("inset_days"), problems, _inset_day)
    closures = _each(fields.get("closures"), problems, lambda item: _span(item, "closure", end_required=False))
    for item in _each(fields.get("ics"), problems, lambda item: item, single_allowed=True):
        dates = problems.attempt(lambda item=item: _ics(item))
        if dates is None:
            continue
        terms += dates.terms
        half_terms += dates.half_terms
        inset_days += dates.inset_days
        closures += dates.closures
        if dates.ignored:
            shown = "; ".join(dates.ignored[:3]) + ("; …" if len(dates.ignored) > 3 else "")
            problems.notes.append(f"{item.source}: {item.scalar()}: ignored {len(dates.ignored)} event(s) that are "
                                  f"not terms, half terms, INSET days or closures: {shown}")
    covers = problems.attempt(lambda: _span(fields["covers"], "covers")) if "covers" in fields else None
    if len(problems.items) > before:
        return None
    days = [d for spans in (terms, half_terms, inset_days, closures) for s in spans for d in (s.first, s.last)]
    if not days:
        problems.add(document.problem("a calendar needs terms, or an ics file that has them"))
        return None
    if covers is None:
        covers = DateSpan(_first_of_august_before(min(days)), _last_of_august_after(max(days)), "default cover")
    return Calendar(name=name, nation=nation, covers=covers, terms=tuple(terms), half_terms=tuple(half_terms),
                    inset_days=tuple(inset_days), closures=tuple(closures), description=description,
                    source=document.source)


def _each(node: Node | None, problems: Problems, read, single_allowed: bool = False) -> list:
    """``read`` applied to every item of the list ``node``, keeping the items that are right."""
    if node is None:
        return []
    items = [node] if single_allowed and not node.is_sequence else problems.attempt(lambda: list(node.items())) or []
    return [value for item in items if (value := problems.attempt(lambda item=item: read(item))) is not None]


def _ics(node: Node) -> IcsDates:
    file = Path(node.path).parent / node.text()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise node.invalid(f"cannot read {file}: {exc.strerror}") from None
    try:
        return parse_ics(data, str(file), zone(DEFAULT_TIMEZONE))
    except IcsError as exc:
        raise node.invalid(str(exc)) from None


def _read_terms(node: Node, problems: Problems, terms: list[DateSpan], half_terms: list[DateSpan]) -> None:
    for item in problems.attempt(lambda: list(node.items())) or []:
        term = problems.attempt(lambda item=item: _span(item, "term", TERM_KEYS))
        if term is None:
            continue
        terms.append(term)
        half_node = item.mapping(TERM_KEYS).get("half_term")
        if half_node is None:
            continue
        what = f"{term.name} half term"
        half = problems.attempt(lambda half_node=half_node, what=what: _span(half_node, what))
        if half is not None and (half.first not in term or half.last not in term):
            problems.add(half_node.problem(f"half term {half} is not inside {term.name} ({term})"))
        elif half is not None:
            half_terms.append(half)


def _span(node: Node, what: str, keys: tuple[str, ...] = SPAN_KEYS, end_required: bool = True) -> DateSpan:
    required = ("start", "end") if end_required else ("start",)
    fields = node.mapping(keys, required=("name", *required) if what == "term" else required)
    first = fields["start"].day()
    last = fields["end"].day() if "end" in fields else first
    if last < first:
        raise fields["end"].invalid(f"{what} ends ({last}) before it starts ({first})")
    name = fields["name"].text() if "name" in fields else what
    return DateSpan(first, last, name, node.source)


def _inset_day(node: Node) -> DateSpan:
    if node.is_mapping:
        fields = node.mapping(INSET_KEYS, required=("date",))
        at = fields["date"]
        name = fields["name"].text() if "name" in fields else "INSET day"
    else:
        at, name = node, "INSET day"
    day = at.day()
    if day.weekday() >= 5:
        raise at.invalid(f"INSET day {day} is a {day:%A}")
    return DateSpan(day, day, name, node.source)


def _first_of_august_before(day: date) -> date:
    return date(day.year if day.month >= 8 else day.year - 1, 8, 1)


def _last_of_august_after(day: date) -> date:
    return date(day.year if day.month <= 8 else day.year + 1, 8, 31)
