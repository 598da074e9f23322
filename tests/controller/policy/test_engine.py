"""The decision for a device at an instant: hours, calendar, idleness, modes, exceptions and precedence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time

import pytest

from controller.policy.engine import decide
from controller.policy.loader import load
from controller.policy.model import (
    Action,
    Activity,
    Basis,
    ExamWindow,
    IdleRule,
    Intent,
    MaintenanceWindow,
    Mode,
    Outcome,
    Override,
    Policy,
    Selector,
    Step,
    WarningSettings,
)
from tests.conftest import REPO
from tests.controller.policy.builders import (
    CALENDARS,
    IDLE,
    IN_USE,
    SITE,
    device,
    local,
    policy,
    power,
    time_range,
    weekly,
)


def decision(at: str, policies: list[Policy] | None = None, **device_changes):
    return decide(policies if policies is not None else [policy()], CALENDARS, device(**device_changes), local(at))


def basis_at(at: str, policies: list[Policy] | None = None, **device_changes) -> tuple[Intent, Basis]:
    found = decision(at, policies, **device_changes)
    return found.intent, found.basis


KEEP, DOWN = Intent.KEEP_ON, Intent.POWER_DOWN


# --- school hours and the calendar ------------------------------------------------------------------

@pytest.mark.parametrize(("at", "expected"), [
    ("2026-02-10 10:00", (KEEP, Basis.SCHOOL_HOURS)),  # a term Tuesday
    ("2026-02-10 08:30", (KEEP, Basis.SCHOOL_HOURS)),  # school hours include their start …
    ("2026-02-10 16:00", (DOWN, Basis.OUT_OF_HOURS)),  # … and end just before their end
    ("2026-02-10 18:30", (DOWN, Basis.OUT_OF_HOURS)),
    ("2026-02-10 06:00", (DOWN, Basis.OUT_OF_HOURS)),
    ("2026-02-14 10:00", (DOWN, Basis.OUT_OF_HOURS)),  # Saturday in term: no school hours
    ("2026-02-16 10:00", (DOWN, Basis.OUT_OF_HOURS)),  # half term
    ("2026-05-04 10:00", (DOWN, Basis.OUT_OF_HOURS)),  # May Day bank holiday in the summer term
    ("2026-04-01 10:00", (DOWN, Basis.OUT_OF_HOURS)),  # Easter holidays
    ("2026-01-05 10:00", (KEEP, Basis.SCHOOL_HOURS)),  # INSET day: staff are in
    ("2026-09-10 10:00", (KEEP, Basis.SCHOOL_HOURS)),  # beyond the calendar: treated as a school day
])
def test_school_hours_on_school_days_keep_devices_on(at, expected):
    assert basis_at(at) == expected


def test_a_policy_may_close_on_inset_days():
    closed = policy(power=power(open_on_inset_days=False))
    assert basis_at("2026-01-05 10:00", [closed]) == (DOWN, Basis.OUT_OF_HOURS)
    assert "the policy closes on INSET days" in [r.text for r in decision("2026-01-05 10:00", [closed]).rules]


def test_without_a_calendar_every_day_follows_the_weekly_hours():
    no_calendar = policy(power=power(calendars=()))
    assert basis_at("2026-02-16 10:00", [no_calendar]) == (KEEP, Basis.SCHOOL_HOURS)  # half term, unknown here
    assert basis_at("2026-02-14 10:00", [no_calendar]) == (DOWN, Basis.OUT_OF_HOURS)


def test_a_day_may_have_several_ranges_of_hours():
    split = policy(power=power(hours=weekly(None, wednesday="08:00-12:00,13:00-21:00")))
    assert [basis_at(f"2026-02-11 {t}", [split])[1] for t in ("11:00", "12:30", "20:00", "21:00")] == [
        Basis.SCHOOL_HOURS, Basis.OUT_OF_HOURS, Basis.SCHOOL_HOURS, Basis.OUT_OF_HOURS]


def test_a_college_open_on_saturday_mornings_in_term_only():
    college = policy(power=power(hours=weekly(saturday="09:00-13:00")))
    assert basis_at("2026-02-14 10:00", [college]) == (KEEP, Basis.SCHOOL_HOURS)
    assert basis_at("2026-04-04 10:00", [college]) == (DOWN, Basis.OUT_OF_HOURS)  # Saturday in the Easter holidays


# --- wake before school -----------------------------------------------------------------------------

@pytest.mark.parametrize(("at", "expected"), [
    ("2026-02-10 07:35", (KEEP, Basis.WAKE_BEFORE_SCHOOL)),  # a school day, after the wake
    ("2026-02-10 07:25", (DOWN, Basis.OUT_OF_HOURS)),  # before it
    ("2026-02-14 07:35", (DOWN, Basis.OUT_OF_HOURS)),  # Saturday
    ("2026-02-17 07:35", (DOWN, Basis.OUT_OF_HOURS)),  # half term
    ("2026-05-25 07:35", (DOWN, Basis.OUT_OF_HOURS)),  # Spring bank holiday
])
def test_wake_before_school_only_on_school_days(at, expected):
    assert basis_at(at, [policy(power=power(wake_before_school=time(7, 30)))]) == expected


# --- idle and modes ---------------------------------------------------------------------------------

STRICT_IDLE = IdleRule(minutes_without_input=20, cpu_below_percent=10, processes_absent=("obs64.exe",),
                       no_signed_in_session=True)


@pytest.mark.parametrize(("activity", "idle", "outcome"), [
    (Activity(45, 2, 0, ()), True, Outcome.ACT),
    (Activity(10, 2, 0, ()), False, Outcome.WAIT_FOR_IDLE),  # input 10 minutes ago
    (Activity(45, 60, 0, ()), False, Outcome.WAIT_FOR_IDLE),  # a render running
    (Activity(45, 2, 0, ("OBS64.EXE",)), False, Outcome.WAIT_FOR_IDLE),  # a recording, any case
    (Activity(45, 2, 1, ()), False, Outcome.WAIT_FOR_IDLE),  # someone signed in
    (Activity(None, 2, 0, ()), None, Outcome.AGENT_DECIDES),  # no desktop to ask: not known
    (Activity(45, 2, 0, None), None, Outcome.AGENT_DECIDES),
    (Activity(None, 60, 0, ()), False, Outcome.WAIT_FOR_IDLE),  # one known failure is enough
    (Activity(45, 2, 0, (), ("obs64.exe",)), True, Outcome.ACT),  # the agent looked for it: not running
    (Activity(45, 2, 0, ("obs64.exe",), ("OBS64.exe",)), False, Outcome.WAIT_FOR_IDLE),  # and found it
    (Activity(45, 2, 0, (), ("blender.exe",)), None, Outcome.AGENT_DECIDES),  # it looked for something else
    (None, None, Outcome.AGENT_DECIDES),  # the controller does not know; the agent will
])
def test_idle_means_every_criterion_holds_and_unknown_is_never_idle(activity, idle, outcome):
    forced = policy(power=power(idle=STRICT_IDLE, mode=Mode.FORCE))
    found = decision("2026-02-10 18:30", [forced], activity=activity)
    assert (found.idle, found.outcome) == (idle, outcome)
    assert len([r for r in found.rules if r.step is Step.IDLE]) == 4  # every criterion is explained


@pytest.mark.parametrize(("mode", "activity", "outcome"), [
    (Mode.OBSERVE, IDLE, Outcome.RECORD_ONLY),
    (Mode.OBSERVE, IN_USE, Outcome.WAIT_FOR_IDLE),
    (Mode.OBSERVE, None, Outcome.AGENT_DECIDES),
    (Mode.PASSIVE, IDLE, Outcome.ACT),
    (Mode.PASSIVE, replace(IDLE, sessions=1), Outcome.RETRY_LATER),
    (Mode.PASSIVE, replace(IDLE, sessions=None), Outcome.AGENT_DECIDES),
    (Mode.WARN, IDLE, Outcome.ACT),  # nobody to warn
    (Mode.WARN, replace(IDLE, sessions=2), Outcome.WARN),
    (Mode.FORCE, replace(IDLE, sessions=1), Outcome.ACT),
    (Mode.FORCE, IN_USE, Outcome.WAIT_FOR_IDLE),  # force still waits for idle
])
def test_the_mode_decides_what_happens_to_an_idle_device(mode, activity, outcome):
    found = decision("2026-02-10 18:30", [policy(power=power(mode=mode))], activity=activity)
    assert (found.intent, found.mode, found.outcome, found.action) == (DOWN, mode, outcome, Action.SHUTDOWN)


def test_warn_and_passive_carry_their_settings():
    warn = decision("2026-02-10 18:30", [policy(power=power(mode=Mode.WARN, warning=WarningSettings(5, 15, 3)))],
                    activity=replace(IDLE, sessions=1))
    assert (warn.warning, warn.retry_minutes) == (WarningSettings(5, 15, 3), None)
    assert "warn: 5-minute countdown; the user may defer 3 time(s) by 15 min" in [r.text for r in warn.rules]
    passive = decision("2026-02-10 18:30", [policy(power=power(mode=Mode.PASSIVE, retry_minutes=45))],
                       activity=replace(IDLE, sessions=1))
    assert (passive.warning, passive.retry_minutes) == (None, 45)


def test_a_device_kept_on_has_no_action_or_mode():
    found = decision("2026-02-10 10:00", activity=IDLE)
    assert (found.outcome, found.action, found.mode, found.idle) == (Outcome.KEEP_ON, None, None, None)


# --- exceptions -------------------------------------------------------------------------------------

SERVERS = Policy("always-on", Selector(), never_power_down=(Selector(tags=("server", "signage")),
                                                             Selector(device_classes=("server",))))


@pytest.mark.parametrize("changes", [{"tags": ("Server",)}, {"tags": ("kiosk", "signage")},
                                     {"device_class": "server"}])
def test_never_power_down_beats_everything(changes):
    shut = Override("Boiler", Selector(), Intent.POWER_DOWN, expires=local("2026-03-01 00:00"))
    policies = [policy(overrides=(shut,)), SERVERS]
    found = decision("2026-02-10 18:30", policies, activity=IDLE, **changes)
    assert (found.intent, found.basis, found.outcome) == (KEEP, Basis.NEVER_POWER_DOWN, Outcome.KEEP_ON)
    assert basis_at("2026-02-10 18:30", policies) == (DOWN, Basis.OVERRIDE)  # an ordinary desktop


COURSEWORK = Override("Art coursework", Selector(groups=("Art Suite",)), Intent.KEEP_ON,
                      starts=local("2026-03-16 17:00"), expires=local("2026-03-20 22:00"))


@pytest.mark.parametrize(("at", "group", "expected"), [
    ("2026-03-16 18:00", "Art Suite", (KEEP, Basis.OVERRIDE)),
    ("2026-03-20 21:59", "art suite", (KEEP, Basis.OVERRIDE)),
    ("2026-03-20 22:00", "Art Suite", (DOWN, Basis.OUT_OF_HOURS)),  # expired
    ("2026-03-16 16:59", "Art Suite", (DOWN, Basis.OUT_OF_HOURS)),  # not started yet
    ("2026-03-15 18:00", "Art Suite", (DOWN, Basis.OUT_OF_HOURS)),
    ("2026-03-16 18:00", "Music", (DOWN, Basis.OUT_OF_HOURS)),  # another room
])
def test_an_override_applies_only_while_in_force_and_only_to_its_devices(at, group, expected):
    assert basis_at(at, [policy(overrides=(COURSEWORK,))], group=group) == expected


def test_a_power_down_override_uses_the_policy_idle_and_mode_and_may_name_an_action():
    heating = Override("Heating failure", Selector(), Intent.POWER_DOWN, starts=local("2026-02-10 12:00"),
                       expires=local("2026-02-11 00:00"), action=Action.HIBERNATE)
    found = decision("2026-02-10 13:00", [policy(overrides=(heating,), power=power(mode=Mode.WARN))],
                     activity=replace(IDLE, sessions=1))
    assert (found.intent, found.basis, found.label, found.action, found.mode, found.outcome) == (
        DOWN, Basis.OVERRIDE, "Heating failure", Action.HIBERNATE, Mode.WARN, Outcome.WARN)
    plain = replace(heating, action=None)
    assert decision("2026-02-10 13:00", [policy(overrides=(plain,))]).action is Action.SHUTDOWN


def test_keep_on_wins_when_overrides_disagree():
    shut = Override("Close early", Selector(), Intent.POWER_DOWN, expires=local("2026-02-11 00:00"))
    assert basis_at("2026-02-10 13:00", [policy(overrides=(shut, replace(COURSEWORK, starts=None)))],
                    group="Art Suite") == (KEEP, Basis.OVERRIDE)


def test_a_power_down_override_without_a_power_policy_keeps_the_device_on():
    shut = Override("Close early", Selector(), Intent.POWER_DOWN, expires=local("2026-02-11 00:00"))
    found = decision("2026-02-10 13:00", [Policy("exceptions-only", Selector(), overrides=(shut,))])
    assert (found.intent, found.basis) == (KEEP, Basis.OVERRIDE)
    assert "no policy says what idle means" in found.rules[-1].text


EXAMS = ExamWindow("GCSE", Selector(groups=("Sports Hall",)), date(2026, 5, 7), date(2026, 6, 24),
                   time_range("07:30-18:00"))
UPDATES = MaintenanceWindow("Windows updates", Selector(), (2,), time(2, 0), 90)  # Wednesdays


@pytest.mark.parametrize(("at", "expected"), [
    ("2026-05-12 17:30", (KEEP, Basis.EXAM_WINDOW)),  # after school hours, inside the exam hours
    ("2026-05-12 18:00", (DOWN, Basis.OUT_OF_HOURS)),
    ("2026-05-12 07:00", (DOWN, Basis.OUT_OF_HOURS)),
    ("2026-05-16 10:00", (DOWN, Basis.OUT_OF_HOURS)),  # Saturday inside the range
    ("2026-05-26 10:00", (DOWN, Basis.OUT_OF_HOURS)),  # half term inside the range
    ("2026-06-25 17:30", (DOWN, Basis.OUT_OF_HOURS)),  # after the range
])
def test_an_exam_window_keeps_exam_rooms_on_during_open_days(at, expected):
    assert basis_at(at, [policy(exam_windows=(EXAMS,))], group="Sports Hall") == expected
    assert basis_at(at, [policy(exam_windows=(EXAMS,))], group="Library")[1] is not Basis.EXAM_WINDOW


@pytest.mark.parametrize(("at", "expected"), [
    ("2026-02-11 02:00", (KEEP, Basis.MAINTENANCE)),
    ("2026-02-11 03:29", (KEEP, Basis.MAINTENANCE)),
    ("2026-02-11 03:30", (DOWN, Basis.OUT_OF_HOURS)),  # then powered down again
    ("2026-02-12 02:30", (DOWN, Basis.OUT_OF_HOURS)),  # Thursday
    ("2026-02-18 02:30", (KEEP, Basis.MAINTENANCE)),  # half term: updates still run
])
def test_a_maintenance_window_keeps_devices_on_for_updates(at, expected):
    assert basis_at(at, [policy(maintenance=(UPDATES,))]) == expected


def test_a_maintenance_window_may_run_past_midnight():
    late = MaintenanceWindow("Patch night", Selector(), (1,), time(23, 0), 120)  # Tuesdays
    assert basis_at("2026-02-11 00:30", [policy(maintenance=(late,))]) == (KEEP, Basis.MAINTENANCE)
    assert basis_at("2026-02-11 01:00", [policy(maintenance=(late,))]) == (DOWN, Basis.OUT_OF_HOURS)


def test_exams_beat_maintenance_and_overrides_beat_both():
    all_day = replace(EXAMS, hours=None)
    assert basis_at("2026-05-13 02:30", [policy(exam_windows=(all_day,), maintenance=(UPDATES,))],
                    group="Sports Hall") == (KEEP, Basis.EXAM_WINDOW)
    shut = Override("Power cut drill", Selector(), Intent.POWER_DOWN, expires=local("2026-05-14 00:00"))
    assert basis_at("2026-05-13 02:30", [policy(exam_windows=(all_day,), maintenance=(UPDATES,), overrides=(shut,))],
                    group="Sports Hall") == (DOWN, Basis.OVERRIDE)


# --- precedence between overlapping policies --------------------------------------------------------

def named(name: str, priority: int = 0, **selector) -> Policy:
    return policy(name, Selector(**selector), priority=priority)


@pytest.mark.parametrize(("policies", "changes", "winner"), [
    ([named("site", sites=(SITE,)), named("library", groups=("Library",))], {"group": "Library"}, "library"),
    ([named("site", sites=(SITE,)), named("library", groups=("Library",))], {"group": "Hall"}, "site"),
    ([named("site", sites=(SITE,)), named("kiosks", tags=("kiosk",))], {"tags": ("kiosk",)}, "kiosks"),
    ([named("kiosks", tags=("kiosk",)), named("library", groups=("Library",))],
     {"tags": ("kiosk",), "group": "Library"}, "library"),
    ([named("library", groups=("Library",)), named("one-pc", devices=("HILL-R01-PC01",))], {"group": "Library"},
     "one-pc"),
    ([named("one-pc", devices=("hill-r01-pc01",))], {}, "one-pc"),  # hostnames in any case
    ([named("by-id", devices=("7",))], {}, "by-id"),  # or the register id
    ([named("site", sites=(SITE,)), named("laptops", device_classes=("laptop",))], {"device_class": "laptop"},
     "laptops"),
    ([named("everywhere"), named("site", sites=(SITE,))], {}, "site"),
    ([named("library", groups=("Library",)), named("library-here", groups=("Library",), sites=(SITE,))],
     {"group": "Library"}, "library-here"),
    ([named("b", sites=(SITE,)), named("a", sites=(SITE,))], {}, "a"),  # equal: alphabetical
    ([named("a", sites=(SITE,)), named("b", 10, sites=(SITE,))], {}, "b"),  # equal specificity: priority
    ([named("other", sites=("Northgate Academy",))], {}, None),
    ([SERVERS, named("site", sites=(SITE,))], {}, "site"),  # exceptions-only policies do not compete
])
def test_the_most_specific_policy_wins(policies, changes, winner):
    for order in (policies, policies[::-1]):  # the order files are read in never matters
        assert decision("2026-02-10 18:30", order, **changes).policy == winner


def test_the_explanation_says_why_the_winner_won():
    found = decision("2026-02-10 18:30", [named("site", sites=(SITE,)), named("library", groups=("Library",)),
                                          named("other", sites=("Northgate Academy",))], group="Library")
    texts = [r.text for r in found.rules if r.step in (Step.MATCH, Step.PRECEDENCE)]
    assert texts == [
        "policy 'site' applies (site Hillside Primary)",
        "policy 'library' applies (group Library)",
        "does not apply: 'other' (site Hillside Primary is not one of Northgate Academy)",
        "'library' wins over 'site': it names a group, which is more specific",
    ]


def test_exceptions_add_up_from_every_policy_that_applies():
    site = policy("site", Selector(sites=(SITE,)), exam_windows=(EXAMS,))
    hall = policy("hall", Selector(groups=("Sports Hall",)), power=power(mode=Mode.FORCE))
    found = decision("2026-05-12 17:30", [site, hall], group="Sports Hall")
    assert (found.policy, found.basis, found.label) == ("hall", Basis.EXAM_WINDOW, "GCSE")


def test_no_policy_leaves_the_device_alone():
    found = decision("2026-02-10 18:30", [named("other", sites=("Northgate Academy",))], activity=IDLE)
    assert (found.intent, found.basis, found.outcome, found.policy) == (KEEP, Basis.NO_POLICY, Outcome.KEEP_ON, None)


# --- time -------------------------------------------------------------------------------------------

def test_the_decision_is_in_site_time_whatever_zone_it_was_asked_in():
    found = decide([policy()], CALENDARS, device(), datetime(2026, 6, 10, 15, 30, tzinfo=UTC))  # 16:30 BST
    assert (found.at.isoformat(), found.basis) == ("2026-06-10T16:30:00+01:00", Basis.OUT_OF_HOURS)


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError, match="no time zone"):
        decide([policy()], CALENDARS, device(), datetime(2026, 2, 10, 18, 30))


def test_a_policy_naming_a_calendar_that_is_not_loaded_is_refused():
    with pytest.raises(ValueError, match="names calendar 'missing'"):
        decide([policy(power=power(calendars=("missing",)))], CALENDARS, device(), local("2026-02-10 18:30"))


# --- the examples, as `caretaker policy explain` shows them ------------------------------------------

def test_the_example_primary_on_a_half_term_evening():
    examples = load([REPO / "policies"])
    found = decide(examples.policies, examples.calendars, device(), local("2026-02-16 18:30"))
    assert (found.policy, found.intent, found.mode, found.action) == (
        "hillside-primary", DOWN, Mode.OBSERVE, Action.SHUTDOWN)
    calendar_rule = next(r for r in found.rules if r.step is Step.CALENDAR)
    assert calendar_rule.text == "Mon 2026-02-16 is half term (Spring term half term)"
    assert calendar_rule.source.endswith("policies/calendars/example-la-2025-26.yaml:17")
    mode_rule = next(r for r in found.rules if r.step is Step.MODE)
    assert mode_rule.source.endswith("policies/primary.yaml:21")


def test_the_example_library_laptops_follow_their_own_policy_and_the_academy_exams():
    examples = load([REPO / "policies"])
    laptop = device(site="Northgate Academy", group="Library", device_class="laptop", hostname="NORT-LT001")
    evening = decide(examples.policies, examples.calendars, laptop, local("2026-02-10 18:00"))
    assert (evening.policy, evening.basis) == ("northgate-library-laptops", Basis.SCHOOL_HOURS)  # open till 18:30
    hall = replace(laptop, group="Sports Hall")
    exam = decide(examples.policies, examples.calendars, hall, local("2026-05-12 17:45"))
    assert (exam.policy, exam.basis, exam.label) == ("northgate-academy", Basis.EXAM_WINDOW,
                                                     "GCSE and A level summer series")


def test_a_process_the_agent_did_not_look_for_is_named_in_the_explanation():
    forced = policy(power=power(idle=IdleRule(processes_absent=("obs64.exe", "blender.exe")), mode=Mode.FORCE))
    found = decision("2026-02-10 18:30", [forced], activity=Activity(processes=(), processes_watched=("obs64.exe",)))
    (rule,) = [r.text for r in found.rules if r.step is Step.IDLE]
    assert rule == "none of obs64.exe, blender.exe running (the agent did not look for blender.exe): unknown"
