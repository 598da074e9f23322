"""The bursar report for a trust over a short term, every figure worked out by hand first.

The term is Hilltop Primary's "Autumn term", Monday 3 to Friday 14 November 2025: 12 days, 288 hours,
GMT (so London time is UTC), no bank holiday, 2025's carbon factor 0.177 kgCO2e/kWh throughout. Every
device reports every hour of the 12 days from Monday 00:00 (nothing attributed), and every one is a
laptop or a server, so no monitor is counted.

Hilltop Primary: tariff "day" weekdays 07:00-19:00 at 30 p/kWh, "night" otherwise at 15 p/kWh. Its
policy `hilltop` (force, shutdown) keeps school hours 08:00-16:00 on weekdays and never powers down
servers. Its calendar has this one term, and covers 1 Aug 2025-31 Aug 2026 (the default), so 2025-26
has 10 school days by it and 365 - 10 = 355 other days.
  Each weekday: day rate 07:00-19:00 = 12 h, night 12 h; out of hours (00-08, 16-24) = 4 h day
  (07-08, 16-19) + 12 h night. Over the term: 120 day hours, 168 night hours; out of hours 40 day
  hours + 120 night hours on school days, and 48 night hours at the weekend (other days).
- HT-LIB-01 (Library) idle at 15 W all term (model):
    used 288 h × 15 W = 4.320 kWh; 15 × (120 × 30 + 168 × 15) / 1000 = 91.8 p.
    waste (idle out of hours): 160 h × 15 = 2.400 kWh on school days, 48 h × 15 = 0.720 kWh on the
    weekend: 3.120 kWh, 15 × (40 × 30 + 168 × 15) / 1000 = 55.8 p, so 17.885 p/kWh.
- HT-ICT-01 (ICT Suite) active 08:00-16:00 on weekdays at 25 W, reported off at 0.5 W otherwise:
    used 80 h × 25 = 2.000 kWh (all at the day rate: 60 p) + 208 h × 0.5 = 0.104 kWh
    (40 day hours, 168 night hours: 0.5 × (1200 + 2520) / 1000 = 1.86 p) = 2.104 kWh, 61.86 p.
  The policy shut it down at 16:00 every weekday, needed again at 08:00 on the next weekday; it
  was off all that time. Claimed: Monday-Thursday 16 h each (4 day, 12 night), the first Friday
  64 h (4 day, 60 night), the second Friday 8 h before the term ends (3 day, 5 night): 200 h,
  39 day and 161 night. Saved (15 W idle - 0.5 W off) = 14.5 W × 200 h = 2.900 kWh;
  14.5 × (39 × 30 + 161 × 15) / 1000 = 51.9825 p (£0.5198 to the hundredth of a penny).
- HT-SRV-01 (Office) a server idle at 120 W (model), never powered down by the policy:
    used 288 × 120 = 34.560 kWh; 120 × 6.12 = 734.4 p. Out of hours it is kept on by policy,
    never waste: 208 h × 120 = 24.960 kWh; 120 × (40 × 30 + 168 × 15) / 1000 = 446.4 p.

Dale Infant: no tariff (its energy is unpriced), no pupils. Its policy `dale` (observe) keeps the same
hours; its calendar ends on Friday 7 November (`covers` stops there), so 10-14 November are unknown
days, which the engine treats as school days: 10 school days and 2 other days again, and the report
names the calendar's end. No calendar covers 2025-26, so the year has 195 school days, 170 others.
- DL-HALL-01 (Hall) idle at 15 W all term, measured by its battery: used 4.320 kWh, unpriced; waste
  3.120 kWh (2.400 on school days, 0.720 at the weekend). Its policy only observed, at 16:00 each
  weekday (the same 200 h of windows as the ICT suite's): had it acted, the laptop would have drawn
  its 0.5 W off instead of 15 W idle: (15 - 0.5) × 200 h = 2.900 kWh, unpriced, 0.5133 kg.

Totals:
  used      4.320 + 2.104 + 34.560 + 4.320 = 45.304 kWh; £ (Hilltop only) 91.8 + 61.86 + 734.4 =
            888.06 p = £8.8806 ("£8.88"); 45.304 × 0.177 = 8.018808 kg; 4.320 kWh unpriced.
  saved     2.900 kWh, £0.5198 ("52p"), 2.900 × 0.177 = 0.5133 kg.
  baseline  45.304 + 2.900 = 48.204 kWh, £8.8806 + £0.5198 = £9.4004, 8.018808 + 0.5133 = 8.532108 kg.
  waste     3.120 + 3.120 = 6.240 kWh, 55.8 p priced (Hilltop's half), 6.240 × 0.177 = 1.10448 kg.
  kept on   24.960 kWh, £4.464, 24.960 × 0.177 = 4.41792 kg.
Coverage: every site's devices reported from Monday 3 November, on all 10 school days.
Recommendations (annual value from the days observed):
  Library   2.400 / 10 × 10 + 0.720 / 2 × 355 = 2.4 + 127.8 = 130.2 kWh a year; at the waste's own
            17.885 p/kWh, 130.2 × 55.8 / 3.12 = 2328.58 p = £23.29; 130.2 × 0.177 = 23.0454 kg.
  Hall      2.400 / 10 × 195 + 0.720 / 2 × 170 = 46.8 + 61.2 = 108.0 kWh a year, unpriced;
            108 × 0.177 = 19.116 kg. Its policy observes, so the advice is to enforce it.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from controller.reports import bursar, service, sources
from controller.reports.layout import bursar_document
from controller.reports.periods import parse_period
from controller.reports.render import csv_zip, html
from tests.controller.energy.estate import action, bucket, device, site

TERM_START = datetime(2025, 11, 3, tzinfo=UTC)  # Monday
HOURS = [TERM_START + timedelta(hours=h) for h in range(12 * 24)]
NOW = datetime(2025, 11, 20, 12, tzinfo=UTC)
TRUST = "Vale Learning Trust"
TARIFF = [{"name": "day", "days": "weekdays", "start": "07:00", "end": "19:00", "pence_per_kwh": "30"},
          {"name": "night", "days": "all", "start": "00:00", "end": "00:00", "pence_per_kwh": "15"}]
POLICIES = {
    "hilltop-2025-26.yaml": "name: hilltop-2025-26\nnation: england\nterms:\n"
                            "  - {name: Autumn term, start: 2025-11-03, end: 2025-11-14}\n",
    "dale-2025-26.yaml": "name: dale-2025-26\nnation: england\ncovers: {start: 2025-08-01, end: 2025-11-07}\n"
                         "terms:\n  - {name: Michaelmas term, start: 2025-09-03, end: 2025-11-07}\n",
    "hilltop.yaml": "name: hilltop\napplies_to:\n  sites: [Hilltop Primary]\ncalendar: hilltop-2025-26.yaml\n"
                    "school_hours:\n  weekdays: \"08:00-16:00\"\nidle:\n  minutes_without_input: 20\n"
                    "action: shutdown\nmode: force\nexceptions:\n  never_power_down:\n"
                    "    - device_classes: [server]\n",
    "dale.yaml": "name: dale\napplies_to:\n  sites: [Dale Infant]\ncalendar: dale-2025-26.yaml\n"
                 "school_hours:\n  weekdays: \"08:00-16:00\"\nidle:\n  minutes_without_input: 20\n"
                 "action: shutdown\nmode: observe\n",
}


def school_hour(hour: datetime) -> bool:
    return hour.weekday() < 5 and 8 <= hour.hour < 16


def build(session: Session) -> None:
    hilltop = site(session, "Hilltop Primary", tariff=TARIFF, trust=TRUST, pupils=210)
    dale = site(session, "Dale Infant", tariff=None, trust=TRUST)
    library = device(session, hilltop, "HT-LIB-01", "laptop", "Library")
    suite = device(session, hilltop, "HT-ICT-01", "laptop", "ICT Suite")
    server = device(session, hilltop, "HT-SRV-01", "server", "Office")
    hall = device(session, dale, "DL-HALL-01", "laptop", "Hall")
    for hour in HOURS:
        bucket(session, library, hour, "idle", "model", 15)
        if school_hour(hour):
            bucket(session, suite, hour, "active", "model", 25)
        else:
            bucket(session, suite, hour, "off", "model", 0.5)
        bucket(session, server, hour, "idle", "model", 120)
        bucket(session, hall, hour, "idle", "battery", 15)
    weekdays = [TERM_START + timedelta(days=d) for d in range(12) if (TERM_START + timedelta(days=d)).weekday() < 5]
    for day in weekdays:
        shut = day + timedelta(hours=16)
        back = day + timedelta(days=3 if day.weekday() == 4 else 1, hours=8)
        action(session, suite, shut, until=back)
        action(session, hall, shut, outcome="observed", mode="observe", until=back)
    session.commit()


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    for name, text in POLICIES.items():
        (directory / name).write_text(text)
    return directory


@pytest.fixture
def report(engine, policy_dir):
    with Session(engine) as session:
        build(session)
        inputs = service.load_inputs(policy_dir)
        scope = sources.resolve_scope(session, trust=TRUST)
        period = parse_period("autumn-2025", calendars=[c for s in scope.sites for c in inputs.site_calendars(s.name)])
        yield bursar.build(session, scope, period, inputs, NOW)


def exact(value: float | None, places: int) -> float | None:
    """A float figure to the Wh or the gram (3 places) or the hundredth of a penny (4)."""
    return None if value is None else round(value, places)


def test_the_period_is_hilltops_short_term(report):
    assert (report.period.first.isoformat(), report.period.last.isoformat()) == ("2025-11-03", "2025-11-14")


def test_used_saved_baseline_waste_and_kept_on_match_the_hand_arithmetic(report):
    figures = {"used": report.used, "saved": report.saved, "baseline": report.baseline, "waste": report.wasted,
               "kept on": report.kept_on}
    assert {name: (exact(f.kwh, 3), exact(f.pounds, 4), exact(f.kg_co2e, 3)) for name, f in figures.items()} == {
        "used": (45.304, 8.8806, 8.019),
        "saved": (2.9, 0.5198, 0.513),
        "baseline": (48.204, 9.4004, 8.532),
        "waste": (6.24, 0.558, 1.104),
        "kept on": (24.96, 4.464, 4.418),
    }
    assert exact(report.unpriced_kwh, 3) == 4.32
    assert [(k.name, k.why, exact(k.kept_on.kwh, 3)) for k in report.kept_on_devices] == [
        ("HT-SRV-01", "never powered down", 24.96)]


def test_each_site_line_prices_only_what_a_tariff_covers_and_says_why_a_saving_is_zero(report):
    lines = {s.site: s for s in report.sites}
    assert lines["Dale Infant"].savings_note == ("no savings yet: observe mode; it would have saved 2.9 kWh "
                                                 "(unpriced: no tariff set, 0.5 kgCO2e)")
    assert lines["Hilltop Primary"].savings_note == ""
    would = report.would_have_saved
    assert (exact(would.kwh, 3), would.pounds, exact(would.kg_co2e, 3)) == (2.9, None, 0.513)
    assert (exact(lines["Hilltop Primary"].used.kwh, 3), exact(lines["Hilltop Primary"].used.pounds, 4)) == (
        40.984, 8.8806)
    assert (exact(lines["Dale Infant"].used.kwh, 3), lines["Dale Infant"].used.pounds) == (4.32, None)
    assert (lines["Dale Infant"].saved.kwh, lines["Dale Infant"].saved.pounds) == (0.0, 0.0)


def test_recommendations_are_annualised_from_the_days_observed_with_their_basis(report):
    library, hall = report.recommendations
    assert (library.room, exact(library.annual.kwh, 3), exact(library.annual.pounds, 2),
            exact(library.annual.kg_co2e, 3)) == ("Library", 130.2, 23.29, 23.045)
    assert library.action == "power down idle machines sooner in Library (Hilltop Primary)"
    assert library.basis == (
        "from 10 school days observed of 10 in 2025-26 by term calendar hilltop-2025-26: 2.4 kWh idle out of "
        "hours ÷ 10 × 10 + 0.7 kWh on 2 other days observed ÷ 2 × 355 = 130.2 kWh a year; × 17.9 p/kWh; "
        "× 0.17700 kgCO2e/kWh")
    assert not library.provisional  # 10 school days observed: the minimum
    assert (hall.room, exact(hall.annual.kwh, 3), hall.annual.pounds, exact(hall.annual.kg_co2e, 3)) == (
        "Hall", 108.0, None, 19.116)
    assert hall.action == "switch policy dale from observe to enforce for Hall (Dale Infant)"
    assert hall.basis.startswith("from 10 school days observed of 195 in a typical English school year (no term "
                                 "calendar covers 2025-26)")
    assert "no tariff set, so unpriced" in hall.basis
    assert hall.sentence() == ("switch policy dale from observe to enforce for Hall (Dale Infant): about "
                               "unpriced: no tariff set and 19.1 kgCO2e a year (108.0 kWh)")


def test_the_data_behind_the_figures_is_every_school_day_of_the_term(report):
    assert [(c.site, c.first_report.isoformat(), c.school_days, c.observed_school_days, c.complete)
            for c in report.coverage] == [("Dale Infant", "2025-11-03", 10, 10, True),
                                          ("Hilltop Primary", "2025-11-03", 10, 10, True)]
    assert report.coverage[0].sentence() == ("Dale Infant: devices reporting since 3 Nov 2025: data on 10 of 10 "
                                             "school days")


def test_the_calendar_that_ends_inside_the_term_is_named(report):
    assert report.calendar_notes == (
        "Dale Infant: term dates end on 07 November 2025; later days were treated as school days",)


def test_the_html_and_csv_say_the_same_rounded_figures_and_unpriced_where_there_is_no_tariff(report):
    document = bursar_document(report)
    page = html(document)
    assert ("Vale Learning Trust used 45.3 kWh (£8.88, 8.0 kgCO2e) in autumn-2025 (03 Nov 2025 to 14 Nov 2025, "
            "Europe/London). Power management saved 2.9 kWh (52p, 0.5 kgCO2e) against the baseline.") in page
    assert "4.3 kWh fell in hours no tariff covers and is not priced" in page
    assert "£0.00" not in page and "£0 " not in page
    tables = zipfile.ZipFile(io.BytesIO(csv_zip(document)))
    assert all(tables.read(name).startswith(b"\xef\xbb\xbf") for name in tables.namelist())  # Excel reads £
    summary = list(csv.reader(io.StringIO(tables.read("summary.csv").decode("utf-8-sig"))))
    assert summary == [["Figure", "kWh", "£", "kgCO2e"],
                       ["Used", "45.3", "8.88", "8.0"],
                       ["Saved by power management", "2.9", "0.52", "0.5"],
                       ["Baseline (without power management)", "48.2", "9.40", "8.5"],
                       ["Idle out of hours (waste)", "6.2", "0.56", "1.1"],
                       ["Kept on by policy out of hours (not waste)", "25.0", "4.46", "4.4"]]
    sites = list(csv.reader(io.StringIO(tables.read("sites.csv").decode("utf-8-sig"))))
    assert sites[1][:5] == ["Dale Infant", "1", "4.3", "unpriced: no tariff set", "0.8"]
    methods = list(csv.reader(io.StringIO(tables.read("methods.csv").decode("utf-8-sig"))))
    assert methods[1:] == [["model", "estimated from the machine's power model and what it was doing",
                            "no (estimated)", "41.0", "90.5"],
                           ["battery", "measured from the laptop's battery as it ran on it", "yes", "4.3", "9.5"],
                           ["Total", "", "", "45.3", "100.0"]]
