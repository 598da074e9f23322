"""A bursar gets this term's figures for one school from the console alone, on a laptop and on a phone.

Headless Chromium (Debian's /usr/bin/chromium, driven by playwright) against a real `caretaker serve`
whose policy directory holds the school's calendar (a term that started three weeks ago) and its power
policy, with a week of energy, a tariff and the policy's power-downs in the database. The bursar signs
in, opens Reports, keeps the school and the period the form offers first (this term), and reads used,
saved, £ and kgCO2e off the report page, which must be what the energy package says. axe-core finds no
violation on any page visited, nothing scrolls the page sideways, and the whole walk takes under a
minute of scripted steps at each size.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from controller import formatting as fmt
from controller import migrate
from controller.db import make_engine, session_scope
from controller.energy.accounting import energy_totals
from controller.energy.savings import savings_summary
from controller.energy.tariff import set_tariff
from controller.policy.walltime import zone
from controller.register.models import ActionRecord, Device, EnergyBucket, Site
from controller.reports.periods import date_range
from controller.timeutil import hour_floor, utcnow
from controller.web.accounts import Role, add_user
from tests.conftest import REPO, ControllerProcess, start_controller

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("CARETAKER_TEST_ARTIFACTS", REPO / "tests" / "artifacts")) / "console"
PASSWORD = "correct horse battery staple"
LONDON = zone("Europe/London")
SIZES = {"laptop": {"viewport": {"width": 1366, "height": 768}},
         "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True,
                   "has_touch": True}}
TARIFF = [{"name": "day", "days": "weekdays", "start": "07:00", "end": "19:00", "pence_per_kwh": "30.2"},
          {"name": "night", "days": "all", "start": "00:00", "end": "00:00", "pence_per_kwh": "15"}]

sync_api = pytest.importorskip("playwright.sync_api")
axe_playwright = pytest.importorskip("axe_playwright_python.sync_playwright")


def term() -> tuple[date, date]:
    today = utcnow().astimezone(LONDON).date()
    return today - timedelta(days=21), today + timedelta(days=30)


def write_policies(directory: Path) -> None:
    first, last = term()
    directory.mkdir()
    (directory / "hillside-calendar.yaml").write_text(
        f"name: hillside-terms\nnation: england\nterms:\n  - {{name: Current term, start: {first}, end: {last}}}\n")
    (directory / "hillside.yaml").write_text(
        "name: hillside-primary\napplies_to:\n  sites: [Hillside Primary]\ncalendar: hillside-calendar.yaml\n"
        "school_hours:\n  weekdays: \"08:00-16:00\"\nidle:\n  minutes_without_input: 20\naction: shutdown\n"
        "mode: force\n")


def seed(engine) -> None:
    """A week: PC01 idle at 40 W throughout; PC02 in use 08:00-16:00 on weekdays at 70 W, shut down by the
    policy at 16:00 until 08:00 the next morning and off (1 W) in between."""
    now = hour_floor(utcnow())
    with session_scope(engine) as session:
        school = Site(name="Hillside Primary", pupils=210)
        session.add(school)
        session.flush()
        set_tariff(session, school.id, "standard", datetime(2020, 1, 1, tzinfo=UTC), TARIFF)
        idle_pc = Device(site_id=school.id, hostname="HILL-R12-PC01", device_class="desktop", room="R12")
        used_pc = Device(site_id=school.id, hostname="HILL-R12-PC02-0123456789ABCDEFGHIJ", device_class="desktop",
                         room="R12")
        session.add_all([idle_pc, used_pc])
        session.flush()
        hour = now - timedelta(days=7)
        while hour < now:
            local = hour.astimezone(LONDON)
            session.add(EnergyBucket(device_id=idle_pc.id, hour=hour, state="idle", method="model",
                                     joules=40 * 3600, seconds=3600))
            in_use = local.weekday() < 5 and 8 <= local.hour < 16
            session.add(EnergyBucket(device_id=used_pc.id, hour=hour, state="active" if in_use else "off",
                                     method="model", joules=(70 if in_use else 1) * 3600, seconds=3600))
            if local.weekday() < 5 and local.hour == 16:
                session.add(ActionRecord(at=hour, site_id=school.id, device_id=used_pc.id, kind="shutdown",
                                         outcome="done", mode="force", reason="idle 20 min", actor="agent:test",
                                         details={"until": (hour + timedelta(hours=16)).isoformat()}))
            hour += timedelta(hours=1)
        add_user(session, "barry", Role.bursar, PASSWORD, [], "test")


def expected_figures(database_url: str) -> dict[str, str]:
    """This term's figures as the energy package gives them, written as every surface writes them."""
    first, last = term()
    period = date_range(first, last)
    now = utcnow()
    engine = make_engine(database_url)
    with Session(engine) as session:
        used = energy_totals(session, period.start_utc, min(period.end_utc, now), now=now).total
        saved = savings_summary(session, period.start_utc, period.end_utc, now=now)
    engine.dispose()
    return {"used kWh": fmt.kwh_text(used.wh / 1000), "used £": fmt.money_text(used.pence / 100),
            "used kgCO2e": fmt.kg_text(used.grams / 1000), "saved kWh": fmt.kwh_text(saved.saved_kwh),
            "saved £": fmt.money_text(saved.saved_gbp), "saved kgCO2e": fmt.kg_text(saved.saved_kgco2e)}


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("/usr/bin/chromium is missing; CI must run .ci/setup-chromium.sh")
        pytest.skip("/usr/bin/chromium is not installed (.ci/setup-chromium.sh installs it)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    tmp_path = tmp_path_factory.mktemp("bursar")
    url = f"sqlite:///{tmp_path / 'caretaker.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    seed(engine)
    engine.dispose()
    write_policies(tmp_path / "policies")
    running = start_controller(url, tmp_path, env={"CARETAKER_POLICY_DIR": str(tmp_path / "policies")})
    yield running
    running.stop()


def accessible(page, where: str) -> None:
    """axe-core's rules (WCAG 2.x A and AA, best practices) find nothing on the page as shown."""
    violations = axe_playwright.Axe().run(page).response["violations"]
    assert violations == [], (where, [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
                                      for v in violations])


def sign_in(page) -> None:
    page.goto("/")
    page.get_by_label("Name").fill("barry")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))


def fits(page, width: int, where: str) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width, where


@pytest.mark.parametrize("size", SIZES)
def test_a_bursar_reads_this_terms_used_saved_pounds_and_carbon_for_a_school(browser, console, size):
    context = browser.new_context(base_url=console.url, **SIZES[size])
    page = context.new_page()
    width = SIZES[size]["viewport"]["width"]
    began = time.monotonic()
    sign_in(page)
    fits(page, width, "overview")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()
    page.wait_for_url(re.compile(r"/reports$"))
    form = page.get_by_role("form", name="Energy report for a bursar")
    assert form.get_by_label("School or trust").input_value() == "site:Hillside Primary"
    assert form.get_by_label("Period").locator("option:checked").inner_text().endswith(": this term")
    fits(page, width, "reports")
    form.get_by_role("button", name="Show the report").click()
    page.wait_for_load_state()
    summary = page.locator("section").first.locator("p").first.inner_text()
    took = time.monotonic() - began
    page.screenshot(path=str(_artifact(f"bursar-report-{size}.png")), full_page=True)
    found = re.search(r"used ([\d,.]+ kWh) \((.+?), ([\d,.]+ kgCO2e)\) in .*? Power management saved "
                      r"([\d,.]+ kWh) \((.+?), ([\d,.]+ kgCO2e)\)", summary)
    assert found, summary
    assert dict(zip(("used kWh", "used £", "used kgCO2e", "saved kWh", "saved £", "saved kgCO2e"), found.groups(),
                    strict=True)) == expected_figures(console.database_url)
    assert took < 60, took
    fits(page, width, "report")
    accessible(page, "report")
    page.get_by_role("link", name="Back to the reports").click()
    accessible(page, "reports")
    page.goto("/")
    accessible(page, "overview")
    page.goto("/devices")
    fits(page, width, "devices")
    accessible(page, "devices")
    page.get_by_role("link", name=re.compile("HILL-R12-PC02")).click()
    fits(page, width, "device")
    accessible(page, "device")
    context.close()


def test_a_report_form_mistake_is_shown_on_the_form_with_what_was_typed(browser, console):
    context = browser.new_context(base_url=console.url, **SIZES["laptop"])
    page = context.new_page()
    sign_in(page)
    page.goto("/reports")
    form = page.get_by_role("form", name="Energy report for a bursar")
    form.get_by_label("Period").select_option("range")
    form.get_by_label("From").fill("2025-12-19")
    form.get_by_label("To (included)").fill("2025-09-01")
    form.get_by_role("button", name="Show the report").click()
    page.wait_for_load_state()
    assert page.get_by_role("alert").inner_text() == "The range ends (1 Sep 2025) before it starts (19 Dec 2025)."
    again = page.get_by_role("form", name="Energy report for a bursar")
    assert again.get_by_label("From").input_value() == "2025-12-19"  # what was typed is kept
    accessible(page, "reports with a mistake")
    context.close()


def _artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
