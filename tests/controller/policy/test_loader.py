"""Policy files: what loads, and mistakes reported as file:line:column: key: message."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

import pytest

from controller.policy.loader import PolicyError, load
from controller.policy.model import Action, Intent, Mode, Selector
from tests.conftest import REPO

VALID = """\
name: hillside
applies_to:
  sites: [Hillside Primary]
school_hours:
  weekdays: "08:30-16:00"
idle:
  minutes_without_input: 20
action: shutdown
"""

CALENDAR = """\
name: la-2025-26
nation: england
terms:
  - name: Spring term
    start: 2026-01-05
    end: 2026-03-27
    half_term: {start: 2026-02-16, end: 2026-02-20}
inset_days: [2026-01-05]
"""


def problems_in(tmp_path: Path, text: str, name: str = "policy.yaml") -> list[str]:
    (tmp_path / name).write_text(text)
    with pytest.raises(PolicyError) as caught:
        load([tmp_path / name])
    return [str(p).removeprefix(f"{tmp_path}/") for p in caught.value.problems]


def test_a_minimal_policy_loads_with_safe_defaults(tmp_path):
    (tmp_path / "policy.yaml").write_text(VALID)
    (policy,) = load([tmp_path / "policy.yaml"]).policies
    assert policy.name == "hillside" and policy.applies_to.sites == ("Hillside Primary",)
    assert policy.power.mode is Mode.OBSERVE  # a new policy only observes
    assert policy.power.action is Action.SHUTDOWN
    assert policy.timezone == "Europe/London"
    assert [len(day) for day in policy.power.hours.days] == [1, 1, 1, 1, 1, 0, 0]


def test_named_days_override_weekdays_and_take_several_ranges(tmp_path):
    (tmp_path / "policy.yaml").write_text(VALID.replace('  weekdays: "08:30-16:00"\n', (
        '  weekdays: "08:00-21:30"\n  friday: "08:00-17:00"\n  saturday: ["09:00-12:00", "13:00-16:00"]\n'
        '  monday: closed\n')))
    hours = load([tmp_path / "policy.yaml"]).policies[0].power.hours
    assert [", ".join(map(str, day)) for day in hours.days] == [
        "", "08:00-21:30", "08:00-21:30", "08:00-21:30", "08:00-17:00", "09:00-12:00, 13:00-16:00", ""]


def test_exceptions_and_windows_are_read_in_the_site_time_zone(tmp_path):
    (tmp_path / "policy.yaml").write_text(VALID + """\
exceptions:
  never_power_down:
    - tags: [server, signage]
    - device_classes: [server]
  exam_windows:
    - {name: GCSE, groups: [Sports Hall], start: 2026-05-07, end: 2026-06-24, hours: "07:30-18:00"}
  overrides:
    - {name: Coursework, effect: keep_on, groups: [Art Suite], start: 2026-03-16 17:00, expires: 2026-03-20 22:00}
    - {name: Boiler, effect: power_down, action: hibernate, expires: "2026-07-01T12:00:00+00:00"}
maintenance_windows:
  - {name: Updates, weekdays: [wednesday, Saturday], start: "02:00", minutes: 90}
""")
    (policy,) = load([tmp_path / "policy.yaml"]).policies
    assert policy.never_power_down[0].tags == ("server", "signage")
    assert policy.never_power_down[1].device_classes == ("server",)
    (exam,) = policy.exam_windows
    assert (exam.first, exam.last, str(exam.hours), exam.selector.groups) == (
        date(2026, 5, 7), date(2026, 6, 24), "07:30-18:00", ("Sports Hall",))
    coursework, boiler = policy.overrides
    assert coursework.intent is Intent.KEEP_ON
    assert coursework.starts.isoformat() == "2026-03-16T17:00:00+00:00"  # GMT in March
    assert coursework.expires.isoformat() == "2026-03-20T22:00:00+00:00"
    assert (boiler.intent, boiler.action, boiler.starts) == (Intent.POWER_DOWN, Action.HIBERNATE, None)
    assert boiler.expires.isoformat() == "2026-07-01T13:00:00+01:00"  # an offset is kept, shown in BST
    (window,) = policy.maintenance
    assert (window.weekdays, window.start, window.minutes) == ((2, 5), time(2, 0), 90)


def test_a_policy_names_its_calendars_relative_to_its_own_file(tmp_path):
    (tmp_path / "calendars").mkdir()
    (tmp_path / "calendars" / "la.yaml").write_text(CALENDAR)
    (tmp_path / "policy.yaml").write_text(VALID + "calendar: calendars/la.yaml\n")
    policy_set = load([tmp_path / "policy.yaml"])
    assert policy_set.policies[0].power.calendars == ("la-2025-26",)
    assert policy_set.calendars["la-2025-26"].half_terms[0].first == date(2026, 2, 16)


def test_several_policies_share_a_file_and_a_directory_loads_every_yaml_file(tmp_path):
    (tmp_path / "a.yaml").write_text(VALID + "---\n" + VALID.replace("hillside", "library").replace(
        "  sites: [Hillside Primary]", "  groups: [Library]"))
    (tmp_path / "b.yml").write_text("name: servers\napplies_to: all\nexceptions:\n  never_power_down:\n"
                                    "    - tags: [server]\n")
    (tmp_path / "notes.txt").write_text("not a policy")
    policy_set = load([tmp_path])
    assert [p.name for p in policy_set.policies] == ["hillside", "library", "servers"]
    assert policy_set.policies[2].applies_to == Selector(source=f"{tmp_path}/b.yml:2")


def test_all_example_policies_load():
    policy_set = load([REPO / "policies"])
    assert sorted(p.name for p in policy_set.policies) == [
        "always-on-servers", "hillside-primary", "northgate-academy", "northgate-library-laptops", "riverside-college"]
    assert sorted(policy_set.calendars) == ["example-la-2025-26", "example-la-2026-27", "northgate-academy-2025-26"]


# Each mistake: the change to the valid policy above, and the one line that reports it.
MISTAKES = [
    pytest.param(VALID.replace('weekdays: "08:30-16:00"', 'monday: "25:00-16:00"'),
                 "policy.yaml:5:11: school_hours.monday: '25:00' is not a time (HH:MM)", id="not-a-time"),
    pytest.param(VALID.replace('"08:30-16:00"', '"16:00-08:30"'),
                 "policy.yaml:5:13: school_hours.weekdays: '16:00-08:30' ends before it starts (a range cannot cross "
                 "midnight; use 24:00)", id="range-backwards"),
    pytest.param(VALID.replace('"08:30-16:00"', '"8.30 to 4"'),
                 "policy.yaml:5:13: school_hours.weekdays: '8.30 to 4' is not a time range (HH:MM-HH:MM)",
                 id="not-a-range"),
    pytest.param(VALID.replace("school_hours:", "schol_hours:"),
                 "policy.yaml:4:1: schol_hours: unknown key 'schol_hours' (did you mean 'school_hours'?)",
                 id="misspelt-key"),
    pytest.param(VALID.replace("action: shutdown", "action: shutdown\nmode: aggressive"),
                 "policy.yaml:9:7: mode: 'aggressive' is not one of observe, passive, warn, force", id="bad-choice"),
    pytest.param(VALID.replace("  sites: [Hillside Primary]", "  sites: Hillside Primary"),
                 "policy.yaml:3:10: applies_to.sites: expected a list, e.g. [a, b] or lines starting with '- '",
                 id="not-a-list"),
    pytest.param(VALID.replace("  minutes_without_input: 20", "  minutes_without_input: twenty"),
                 "policy.yaml:7:26: idle.minutes_without_input: 'twenty' is not a whole number", id="not-a-number"),
    pytest.param(VALID.replace("  minutes_without_input: 20", "  cpu_below_percent: 150"),
                 "policy.yaml:7:22: idle.cpu_below_percent: 150 is out of range (0.1 to 100)", id="out-of-range"),
    pytest.param(VALID.replace("action: shutdown\n", ""),
                 "policy.yaml:1:1: missing required key 'action': a policy that powers devices down needs "
                 "school_hours, idle and action", id="missing-action"),
    pytest.param(VALID.replace("name: hillside\n", ""),
                 "policy.yaml:1:1: missing required key 'name'", id="missing-name"),
    pytest.param(VALID.replace("action: shutdown", "action: shutdown\naction: sleep"),
                 "policy.yaml:9:1: action: 'action' is given twice (first on line 8)", id="repeated-key"),
    pytest.param(VALID.replace("  sites: [Hillside Primary]", "  sites: [Hillside Primary"),
                 "policy.yaml:4:13: not valid YAML: while parsing a flow sequence expected ',' or ']', but got ':'",
                 id="yaml-syntax"),
    pytest.param(VALID.replace("  sites: [Hillside Primary]", "  device_classes: [workstation]"),
                 "policy.yaml:3:19: applies_to.device_classes: 'workstation' is not a device class (desktop, laptop, "
                 "server, unknown)", id="unknown-device-class"),
    pytest.param(VALID.replace("  sites: [Hillside Primary]", "  {}"),
                 "policy.yaml:3:3: applies_to: applies_to is empty: write `applies_to: all` to mean every device",
                 id="empty-applies-to"),
    pytest.param(VALID + "timezone: Europe/Londn\n",
                 "policy.yaml:9:11: timezone: 'Europe/Londn' is not a time zone (e.g. Europe/London)", id="time-zone"),
    pytest.param(VALID + 'wake_before_school: "09:00"\n',
                 "policy.yaml:9:21: wake_before_school: 09:00 is not before school starts on monday (08:30-16:00)",
                 id="wake-after-start"),
    pytest.param(VALID + "calendar: calendars/missing.yaml\n",
                 "policy.yaml:9:11: calendar: cannot read calendar {dir}/calendars/missing.yaml: No such file or "
                 "directory", id="missing-calendar"),
    pytest.param(VALID + "exceptions:\n  overrides:\n    - {name: Coursework, effect: keep_on}\n",
                 "policy.yaml:11:7: exceptions.overrides[0]: missing required key 'expires'", id="override-no-expiry"),
    pytest.param(VALID + "exceptions:\n  overrides:\n    - {name: Late, effect: keep_on, expires: tomorrow}\n",
                 "policy.yaml:11:46: exceptions.overrides[0].expires: 'tomorrow' is not a date and time "
                 "(YYYY-MM-DD HH:MM)", id="override-bad-expiry"),
    pytest.param(VALID + "exceptions:\n  overrides:\n    - {name: Late, effect: keep_on, action: sleep, "
                 "expires: 2026-03-20}\n",
                 "policy.yaml:11:45: exceptions.overrides[0].action: only a power_down override takes an action",
                 id="keep-on-with-action"),
    pytest.param(VALID + "exceptions:\n  exam_windows:\n    - {name: GCSE, start: 2026-06-24, end: 2026-05-07}\n",
                 "policy.yaml:11:44: exceptions.exam_windows[0].end: the exam window ends (2026-05-07) before it "
                 "starts (2026-06-24)", id="exam-backwards"),
    pytest.param(VALID + "exceptions:\n  never_power_down:\n    - {}\n",
                 "policy.yaml:11:7: exceptions.never_power_down[0]: an empty never_power_down entry would exempt "
                 "every device: name tags, device_classes, groups, devices or sites", id="exempt-everything"),
    pytest.param(VALID + "maintenance_windows:\n  - {weekdays: [wednesdy], start: \"02:00\", minutes: 90}\n",
                 "policy.yaml:10:17: maintenance_windows[0].weekdays[0]: 'wednesdy' is not a weekday "
                 "(monday … sunday)", id="bad-weekday"),
    pytest.param(VALID.replace('weekdays: "08:30-16:00"', "weekdays: closed"),
                 "policy.yaml:5:3: school_hours: no day has school hours, so every hour would be out of hours: give "
                 "the hours devices are needed", id="never-open"),
    pytest.param(VALID + "exceptions: [overrides]\n",
                 "policy.yaml:9:13: exceptions: expected a mapping with keys such as never_power_down, exam_windows, "
                 "overrides", id="exceptions-not-a-mapping"),
    pytest.param("name: idle-only\napplies_to: all\n",
                 "policy.yaml:1:1: the policy does nothing: give it school_hours, idle and action, or exceptions or "
                 "maintenance_windows", id="does-nothing"),
    pytest.param("", "policy.yaml:1:1: the file is empty", id="empty-file"),
]


@pytest.mark.parametrize(("text", "expected"), MISTAKES)
def test_each_mistake_is_one_line_naming_file_line_column_and_key(tmp_path, text, expected):
    assert problems_in(tmp_path, text) == [expected.format(dir=tmp_path)]


CALENDAR_MISTAKES = [
    pytest.param(CALENDAR.replace("inset_days: [2026-01-05]", "inset_days: [2026-01-10]"),
                 "la.yaml:8:14: inset_days[0]: INSET day 2026-01-10 is a Saturday", id="inset-at-weekend"),
    pytest.param(CALENDAR.replace("{start: 2026-02-16, end: 2026-02-20}", "{start: 2026-04-13, end: 2026-04-17}"),
                 "la.yaml:7:16: terms[0].half_term: half term 2026-04-13 to 2026-04-17 is not inside Spring term "
                 "(2026-01-05 to 2026-03-27)", id="half-term-outside-term"),
    pytest.param(CALENDAR.replace("end: 2026-03-27", "end: 2026-02-30"),
                 "la.yaml:6:10: terms[0].end: '2026-02-30' is not a date (YYYY-MM-DD)", id="not-a-date"),
    pytest.param(CALENDAR.replace("nation: england", "nation: cornwall"),
                 "la.yaml:2:9: nation: 'cornwall' is not one of england, wales, scotland, northern_ireland",
                 id="unknown-nation"),
    pytest.param(CALENDAR.replace("end: 2026-03-27", "end: 2025-03-27"),
                 "la.yaml:6:10: terms[0].end: term ends (2025-03-27) before it starts (2026-01-05)",
                 id="term-backwards"),
    pytest.param("name: empty\nnation: wales\n",
                 "la.yaml:1:1: a calendar needs terms, or an ics file that has them", id="no-dates"),
    pytest.param("name: academy\nnation: england\nics: academy.ics\n",
                 "la.yaml:3:6: ics: cannot read {dir}/academy.ics: No such file or directory", id="missing-ics"),
]


@pytest.mark.parametrize(("text", "expected"), CALENDAR_MISTAKES)
def test_calendar_mistakes_point_into_the_calendar_file(tmp_path, text, expected):
    assert problems_in(tmp_path, text, name="la.yaml") == [expected.format(dir=tmp_path)]


def test_a_policy_with_a_broken_calendar_reports_both_places(tmp_path):
    (tmp_path / "la.yaml").write_text(CALENDAR.replace("nation: england", "nation: cornwall"))
    problems = problems_in(tmp_path, VALID + "calendar: la.yaml\n")
    assert problems == [
        "la.yaml:2:9: nation: 'cornwall' is not one of england, wales, scotland, northern_ireland",
        f"policy.yaml:9:11: calendar: calendar {tmp_path}/la.yaml has mistakes (listed with its own lines)",
    ]


def test_every_independent_mistake_is_reported_at_once(tmp_path):
    text = VALID.replace('weekdays: "08:30-16:00"', 'monday: "25:00-16:00"\n  tuesday: "9-5"').replace(
        "action: shutdown", "action: reboot\nmode: aggressive")
    assert problems_in(tmp_path, text) == [
        "policy.yaml:5:11: school_hours.monday: '25:00' is not a time (HH:MM)",
        "policy.yaml:6:12: school_hours.tuesday: '9' is not a time (HH:MM)",
        "policy.yaml:9:9: action: 'reboot' is not one of shutdown, sleep, hibernate",
        "policy.yaml:10:7: mode: 'aggressive' is not one of observe, passive, warn, force",
    ]


def test_two_policies_with_one_name_are_a_mistake(tmp_path):
    (tmp_path / "a.yaml").write_text(VALID)
    (tmp_path / "b.yaml").write_text(VALID)
    with pytest.raises(PolicyError) as caught:
        load([tmp_path])
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path}/b.yaml:1:7: name: another policy is already called 'hillside' ({tmp_path}/a.yaml:1)"]


def test_calendars_of_one_policy_must_share_a_nation(tmp_path):
    (tmp_path / "eng.yaml").write_text(CALENDAR)
    (tmp_path / "sct.yaml").write_text(CALENDAR.replace("la-2025-26", "sct").replace("england", "scotland"))
    assert problems_in(tmp_path, VALID + "calendar: [eng.yaml, sct.yaml]\n") == [
        "policy.yaml:9:11: calendar: the calendars of one policy must be for one nation, not england (la-2025-26) "
        "and scotland (sct)"]


def test_times_are_read_as_written_not_as_yaml_1_1_numbers(tmp_path):
    # Unquoted, YAML 1.1 reads 16:00 as 960 (base 60) and 2026-03-20 22:00 as a timestamp.
    (tmp_path / "policy.yaml").write_text(VALID.replace('"08:30-16:00"', "[09:00-12:00, 13:00-16:00]") + (
        "wake_before_school: 08:15\nexceptions:\n  overrides:\n"
        "    - {name: Late, effect: keep_on, expires: 2026-03-20 22:00}\n"))
    policy = load([tmp_path / "policy.yaml"]).policies[0]
    assert str(policy.power.hours.days[0][1]) == "13:00-16:00"
    assert policy.power.wake_before_school == time(8, 15)
    assert policy.overrides[0].expires.replace(tzinfo=None) == datetime(2026, 3, 20, 22, 0)
