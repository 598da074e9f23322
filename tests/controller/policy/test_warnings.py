"""`caretaker policy check` warns, without failing, about what would quietly go wrong."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from controller.policy.calendar import DateSpan
from controller.policy.model import ExamWindow, Intent, Override, Selector
from controller.policy.warnings import overlapping_terms, policy_warnings
from tests.controller.policy.builders import CALENDARS, device, local, policy


def test_an_exception_that_matches_no_device_in_the_register_is_a_warning():
    signage = replace(policy(), never_power_down=(Selector(tags=("signage",), source="p.yaml:9"),),
                      exam_windows=(ExamWindow("GCSE", Selector(groups=("Hall",)), date(2026, 5, 11),
                                               date(2026, 5, 11), source="p.yaml:12"),),
                      overrides=(Override("Open evening", Selector(groups=("Hall",)), Intent.KEEP_ON,
                                          local("2026-05-12 21:00"), source="p.yaml:15"),))
    found = policy_warnings([signage], {}, date(2026, 2, 1), [device(tags=("kiosk",))])
    assert [w.split(":")[0] + ":" + w.split(":")[1] for w in found] == ["p.yaml:9", "p.yaml:12", "p.yaml:15"]
    assert "matches no device in the register" in found[0]
    assert policy_warnings([signage], {}, date(2026, 2, 1), [device(tags=("signage",), group="Hall")]) == []
    assert policy_warnings([signage], {}, date(2026, 2, 1), None) == []  # no database: not checked


def test_calendars_that_have_ended_or_end_soon_are_warnings():
    school = policy()
    last = max(CALENDARS[name].covers.last for name in school.power.calendars)
    assert policy_warnings([school], CALENDARS, last.replace(day=1), None)[0].endswith(
        "days after it are treated as school days: add next year's calendar")
    assert "ended on" in policy_warnings([school], CALENDARS, last.replace(year=last.year + 1), None)[0]
    assert policy_warnings([school], CALENDARS, last.replace(year=last.year - 1), None) == []


def test_overlapping_terms_are_a_warning():
    calendar = next(iter(CALENDARS.values()))
    first = calendar.terms[0]
    clash = replace(calendar, terms=(*calendar.terms, DateSpan(first.last, first.last.replace(day=28), "Typo term")))
    assert any("term Typo term" in w for w in overlapping_terms(clash))
    assert overlapping_terms(calendar) == []
