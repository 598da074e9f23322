"""Headless Chromium (Debian's /usr/bin/chromium, driven by playwright) against a real `caretaker serve`.

Each role signs in and walks its pages; a network manager wakes a device and takes one through disposal;
sign-in works from the keyboard alone; pages fit a 1366×768 laptop screen and a 390 px phone, and
axe-core finds nothing on them. Screenshots of every page
visited go to $CARETAKER_TEST_ARTIFACTS (default tests/artifacts/).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from controller import migrate
from controller.db import make_engine
from controller.lifecycle.models import Asset, Transition
from controller.power.models import WakeRequest
from controller.register.models import ActionRecord
from tests.conftest import REPO, ControllerProcess, start_controller
from tests.web.estate import PASSWORD, USERS, Estate, seed

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("CARETAKER_TEST_ARTIFACTS", REPO / "tests" / "artifacts")) / "console"
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}

sync_api = pytest.importorskip("playwright.sync_api")
axe = pytest.importorskip("axe_playwright_python.sync_playwright")


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
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ControllerProcess, Estate]]:
    """One controller for the module: each test works on devices of its own, so they do not meet."""
    tmp_path = tmp_path_factory.mktemp("console")
    url = f"sqlite:///{tmp_path / 'caretaker.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    estate = seed(engine)
    engine.dispose()
    running = start_controller(url, tmp_path)
    yield running, estate
    running.stop()


@pytest.fixture
def page(browser, console) -> Iterator:
    context = browser.new_context(viewport=LAPTOP, base_url=console[0].url)
    opened = context.new_page()
    yield opened
    context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page, name: str) -> None:
    page.goto("/")
    assert page.url.endswith("/signin?next=/")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))


def db(console) -> Session:
    return Session(make_engine(console[0].database_url))


MENUS = {
    "network_manager": ["Overview", "Devices", "Sites", "Policies", "Wake", "Conflicts", "Lifecycle", "Insomnia",
                        "Reports", "Users"],
    "bursar": ["Overview", "Devices", "Sites", "Policies", "Conflicts", "Lifecycle", "Insomnia", "Reports"],
    "auditor": ["Overview", "Devices", "Sites", "Policies", "Conflicts", "Lifecycle", "Insomnia", "Reports"],
}


@pytest.mark.slow
def test_each_role_signs_in_and_walks_the_pages_its_menu_offers(browser, console):
    for role, name in USERS.items():
        context = browser.new_context(viewport=LAPTOP, base_url=console[0].url)
        page = context.new_page()
        sign_in(page, name)
        menu = page.get_by_role("navigation", name="Main").get_by_role("link")
        assert menu.all_inner_texts() == MENUS[role]
        for item in MENUS[role]:
            page.get_by_role("navigation", name="Main").get_by_role("link", name=item).click()
            page.wait_for_load_state()
            assert page.get_by_role("heading", level=1).count() == 1
            assert page.locator(".error").count() == 0, page.content()
            shot(page, f"{role}-{item.lower()}")
        page.goto("/devices")
        hostnames = page.locator("tbody td:first-child").all_inner_texts()
        if role == "auditor":  # granted Riverside Academy only
            assert hostnames == ["RIV-ICT1-PC01", "RIV-ICT1-PC02"]
        else:
            assert len(hostnames) == 5
        page.goto("/users")
        assert ("Users and API tokens" in page.content()) == (role == "network_manager")
        page.goto("/")
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(re.compile(r"/signin$"))
        context.close()


def test_a_network_manager_wakes_a_device_from_its_page(page, console):
    estate = console[1]
    sign_in(page, "nora")
    page.goto("/devices")
    page.get_by_label("Search").fill("HILL-LIB")
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name="HILL-LIB-PC01").click()
    page.get_by_label("Reason to wake").fill("library open evening")
    page.get_by_role("button", name="Wake this device").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Wake this device?"  # one press asks first
    page.get_by_role("button", name="Wake it").click()
    assert page.get_by_role("status").inner_text().startswith("Wake requested")
    shot(page, "wake-device")
    device_id = estate.devices["HILL-LIB-PC01"]
    with db(console) as session:
        wake = session.exec(select(WakeRequest).where(WakeRequest.device_id == device_id)).one()
        audit = session.exec(select(ActionRecord).where(ActionRecord.device_id == device_id,
                                                        ActionRecord.kind == "wake")).all()
    assert wake.requested_by == "user:nora" and wake.reason == "library open evening"
    assert wake.mac == "00:1a:2b:3c:4d:03"
    assert [a.actor for a in audit if a.outcome == "queued"] == ["user:nora"]


def _move(page, device_id: int, target: str, reason: str, **fields: str) -> None:
    page.goto(f"/lifecycle/devices/{device_id}")
    page.get_by_label("Move to").select_option(target)
    page.get_by_label("Reason").fill(reason)
    for label, value in fields.items():
        field = page.get_by_label(label, exact=True)
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    page.get_by_role("button", name="Move", exact=True).click()
    page.wait_for_load_state()


def test_a_device_goes_through_disposal_only_with_its_evidence(page, console):
    estate = console[1]
    device_id = estate.devices["HILL-R12-PC02"]
    sign_in(page, "nora")
    _move(page, device_id, "retired", "end of life, 7 years old")
    _move(page, device_id, "awaiting_disposal", "collected for the WEEE skip")
    _move(page, device_id, "sanitised", "wiped")  # no sanitisation evidence yet
    assert "without disposal evidence" in page.get_by_role("alert").inner_text()
    shot(page, "disposal-refused-without-evidence")
    _move(page, device_id, "sanitised", "wiped", **{"Method": "purge", "Certificate reference": "CERT-0042",
                                                    "Sanitised on": "2026-11-20"})
    _move(page, device_id, "disposed", "collected by the recycler",
          **{"Outcome": "recycled", "Waste transfer note reference": "WTN-2026-118", "Carrier": "GreenLift Ltd",
             "Recycler": "ReTech Recycling", "Accreditation": "ADISA", "Collected on": "2026-11-21"})
    assert page.get_by_role("status").inner_text() == "Lifecycle move recorded."
    assert "disposed" in page.locator("#life + p").inner_text()
    shot(page, "disposal-done")
    with db(console) as session:
        asset = session.get(Asset, device_id)
        moves = session.exec(select(Transition.to_state).where(Transition.device_id == device_id)
                             .order_by(Transition.id)).all()
    assert (asset.state, asset.outcome) == ("disposed", "recycled")
    assert moves[-4:] == ["retired", "awaiting_disposal", "sanitised", "disposed"]  # the refused move left no row


def test_sign_in_works_from_the_keyboard_alone(page):
    page.goto("/signin")
    # The form has focus as the page opens (autofocus lands at the next rendering step after load, so wait for it).
    sync_api.expect(page.locator("#name")).to_be_focused(timeout=5_000)
    page.keyboard.type("barry")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"  # a visible ring
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/$"))
    assert "barry (bursar)" in page.locator(".who").inner_text()
    page.keyboard.press("Tab")  # the skip link comes first, shows itself when focused, and jumps past the menu
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    assert page.locator(".skip").bounding_box()["x"] >= 0
    shot(page, "keyboard-skip-link")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def _luminance(rgb: str) -> float:
    channels = [int(c) / 255 for c in re.findall(r"\d+", rgb)[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(foreground: str, background: str) -> float:
    light, dark = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


READ_COLOURS = """selector => [...document.querySelectorAll(selector)].slice(0, 3).map(e => {
  let bg = e, colour = 'rgba(0, 0, 0, 0)';
  while (bg && (colour = getComputedStyle(bg).backgroundColor) === 'rgba(0, 0, 0, 0)') bg = bg.parentElement;
  return [getComputedStyle(e).color, bg ? colour : 'rgb(255, 255, 255)'];
})"""


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_pages_fit_the_screen_label_every_field_read_with_enough_contrast_and_pass_axe(browser, console, viewport):
    context = browser.new_context(viewport=viewport, base_url=console[0].url)
    page = context.new_page()
    sign_in(page, "nora")
    device = console[1].devices["HILL-R12-PC01"]
    for path in ("/", "/devices", f"/devices/{device}", "/lifecycle", f"/lifecycle/devices/{device}", "/users",
                 "/wake", "/reports", "/policies", "/policies/explain", "/sites", "/sites/Riverside%20Academy"):
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], path
        violations = axe.Axe().run(page).response["violations"]
        assert violations == [], (path, [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
                                         for v in violations])
        unlabelled = page.evaluate("""[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
            .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.name)""")
        assert unlabelled == [], (path, unlabelled)
        for selector in ("main p, main td", "main a", ".top a", "button", "th", "label"):
            for foreground, background in page.evaluate(READ_COLOURS, selector):
                assert _contrast(foreground, background) >= 4.5, (path, selector, foreground, background)
    landmarks = page.evaluate("['header', 'nav', 'main', 'footer'].map(t => document.querySelectorAll(t).length)")
    assert landmarks == [1, 1, 1, 1]
    context.close()
