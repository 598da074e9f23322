"""A teacher's wake button, end to end: a real `caretaker serve`, real agents reporting in, a staff API token
(a timetable system) over HTTPS-less loopback HTTP, and a teacher on a phone in headless Chromium.

Two real `caretaker-agent run` processes stand for two PCs (their inventory overlays give each a hostname and
a NIC on loopback, so the controller wakes them directly and a UDP listener on this machine catches the magic
packets, byte for byte: no packet leaves the machine). One PC is in the teacher's room (ICT Suite), one in a
room that is not theirs (Library). The network manager grants the room with `caretaker user add … --role
staff --site … --room …` and `caretaker apitoken create … --role staff …`, and puts each PC in its room
with `caretaker device set HOSTNAME --room R`.
"""

from __future__ import annotations

import json
import re
import subprocess
import time as clock
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from controller import tls
from controller.db import make_engine
from controller.policy.walltime import zone
from controller.power.models import WakeRequest
from controller.register.models import Device
from controller.timeutil import utcnow
from tests.conftest import BIN, ControllerProcess, start_controller
from tests.controller.power.builders import Listener, magic
from tests.test_enforcement_end_to_end import wait_for
from tests.web.test_console_browser import axe, shot
from tests.web.test_console_browser import browser as browser  # the module's Chromium, as a fixture

pytestmark = pytest.mark.slow

SITE = "Hillside Primary"
PASSWORD = "a long enough passphrase"
PCS = {"HILL-ICT-01": ("ICT Suite", "02:00:00:00:0a:01", "127.0.0.21"),
       "HILL-LIB-01": ("Library", "02:00:00:00:0b:01", "127.0.0.22")}
PER_USER = 4  # staff wake requests a user or token may make in an hour, for this test


@dataclass
class School:
    controller: ControllerProcess
    listener: Listener
    token: str  # the timetable system's staff token
    devices: dict[str, int]
    since: datetime
    ca: Path

    def api(self, method: str, path: str, **kwargs) -> httpx.Response:
        return httpx.request(method, f"{self.controller.url}{path}", timeout=30, verify=str(self.ca),
                             headers={"Authorization": f"Bearer {self.token}"}, **kwargs)

    def packets(self, seconds: float, settle: float = 1.5) -> list[tuple[float, bytes]]:
        """Magic packets caught within ``seconds`` (and ``settle`` seconds after the first, for any extra one),
        with the time each arrived."""
        caught, deadline = [], clock.monotonic() + seconds
        while clock.monotonic() < deadline:
            try:
                packet = self.listener.receive()
                caught.append((clock.time(), packet))
                deadline = min(deadline, clock.monotonic() + settle)
            except TimeoutError:
                continue
        return caught


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[School]:
    tmp_path = tmp_path_factory.mktemp("staff-wake")
    listener = Listener.open()
    listener.sock.settimeout(0.5)
    ca, ca_key = tls.create_ca(tmp_path, "Test school CA")
    cert, key = tls.issue_server_certificate(ca, ca_key, ["127.0.0.1", "localhost"], tmp_path)
    controller = start_controller(f"sqlite:///{tmp_path / 'caretaker.db'}", tmp_path, tls=(cert, key, ca), env={
        "CARETAKER_REPORT_INTERVAL_SECONDS": "1", "CARETAKER_WAKE_LOCAL_NETWORKS": '["127.0.0.0/8"]',
        "CARETAKER_WAKE_PORT": str(listener.port), "CARETAKER_WAKE_REWAKE_SECONDS": "1",
        "CARETAKER_STAFF_WAKES_PER_USER_PER_HOUR": str(PER_USER)})
    agents = []
    try:
        since = utcnow() - timedelta(minutes=1)
        enrol = controller.cli("token", "create", "--site", SITE).stdout.strip()
        for name, (_, mac, address) in PCS.items():
            state = tmp_path / name
            state.mkdir()
            (state / "overlay.json").write_text(json.dumps({
                "hostname": name, "machine_id": f"machine-{name}", "device_class": "desktop",
                "smbios": {"vendor": "Dell Inc.", "model": "OptiPlex 7010", "serial": f"SN-{name}",
                           "uuid": f"uuid-{name}"},
                "nics": [{"name": "eth0", "mac": mac, "ipv4": [address], "ipv4_prefixes": [8]}]}))
            agents.append(subprocess.Popen(
                [str(BIN / "caretaker-agent"), "run", "--controller", controller.url, "--token", enrol,
                 "--ca-file", str(ca), "--state-dir", str(state), "--interval", "1",
                 "--session-address", str(state / "session.sock"), "--inventory-overlay", str(state / "overlay.json")],
                stdout=(state / "agent.log").open("ab"), stderr=subprocess.STDOUT))
        devices = wait_for(lambda: _rooms_set(controller), what="both PCs in the register")
        password = tmp_path / "password"
        password.write_text(PASSWORD + "\n")
        controller.cli("user", "add", "tess", "--role", "staff", "--site", SITE, "--room", "ICT Suite",
                       "--password-file", str(password))
        token = json.loads(controller.cli("apitoken", "create", "timetable", "--role", "staff", "--site", SITE,
                                          "--room", "ict suite", "--json").stdout)["token"]
        yield School(controller, listener, token, devices, since, ca)
    finally:
        for agent in agents:
            agent.terminate()
        for agent in agents:
            agent.wait(timeout=15)
        controller.stop()
        listener.close()


def _rooms_set(controller: ControllerProcess) -> dict[str, int] | None:
    """Both PCs enrolled, then each put in its room by hand, as a network manager does."""
    engine = make_engine(controller.database_url)
    try:
        with Session(engine) as session:
            found = {d.hostname: d.id for d in session.exec(select(Device)).all() if d.hostname in PCS}
    finally:
        engine.dispose()
    if len(found) < len(PCS):
        return None
    for hostname in found:
        controller.cli("device", "set", hostname, "--room", PCS[hostname][0])
    return found



def test_a_timetable_systems_staff_token_wakes_its_room_now_and_later_and_nothing_else(school):
    rooms = school.api("GET", "/api/v1/staff/rooms").json()
    assert [(r["site"], r["room"], r["devices"]) for r in rooms] == [(SITE, "ICT Suite", 1)]  # not the Library
    for elsewhere in ("/api/v1/wake", "/api/v1/conflicts", "/api/v1/energy/summary", "/api/v1/audit"):
        assert school.api("GET", elsewhere).status_code == 403, elsewhere

    refused = school.api("POST", "/api/v1/staff/wake", json={"site": SITE, "room": "Library"})
    assert (refused.status_code, refused.json()["detail"]) == (403, "not one of your rooms")

    now = school.api("POST", "/api/v1/staff/wake", json={"site": SITE, "room": "ICT Suite"})
    assert now.status_code == 202, now.text
    assert [q["hostname"] for q in now.json()["queued"]] == ["HILL-ICT-01"]
    (packet,) = {p for _, p in school.packets(10)}
    assert packet == magic(PCS["HILL-ICT-01"][1])  # the ICT PC's MAC, never the Library's

    def woke() -> list[dict]:
        return [w for w in school.api("GET", "/api/v1/staff/wakes").json() if w["status"] == "confirmed"]

    (confirmed,) = wait_for(woke, seconds=30, what="the PC reporting in after its wake")
    assert confirmed["hostname"] == "HILL-ICT-01" and confirmed["outcome"].startswith("confirmed: the device reported")

    # A backup server that needs the room awake later today: a time on the site's clock, a few seconds ahead.
    due = (datetime.now().astimezone() + timedelta(seconds=8)).replace(microsecond=0)
    at = due.astimezone(zone("Europe/London")).strftime("%H:%M:%S")
    later = school.api("POST", "/api/v1/staff/wake", json={"site": SITE, "room": "ICT Suite", "at": at})
    assert later.status_code == 202, later.text
    assert datetime.fromisoformat(later.json()["due_at"]) == due
    caught = school.packets(20)
    assert [p for _, p in caught] == [magic(PCS["HILL-ICT-01"][1])]
    assert caught[0][0] >= due.timestamp()  # not sent before its time
    engine = make_engine(school.controller.database_url)
    try:
        with Session(engine) as session:
            (scheduled,) = session.exec(select(WakeRequest).where(WakeRequest.due_at == due)).all()
            assert scheduled.sent_at >= due and scheduled.requested_by == "token:timetable"
    finally:
        engine.dispose()

    # Three requests so far (one refused); the limit is four an hour, then 429 with the wait.
    assert school.api("POST", "/api/v1/staff/wake", json={"site": SITE, "room": "ICT Suite"}).status_code == 202
    limited = school.api("POST", "/api/v1/staff/wake", json={"site": SITE, "room": "ICT Suite"})
    assert limited.status_code == 429 and 3500 <= int(limited.headers["Retry-After"]) <= 3600
    assert limited.json()["detail"].startswith("too many wake requests from you in the last hour")

    audit = json.loads(school.controller.cli("audit", "--since", f"{school.since.astimezone():%Y-%m-%d %H:%M}",
                                             "--json").stdout)
    requests = [(line["kind"], line["details"]["after"]["room"]) for line in audit
                if line["entry"] == "change" and line["actor"] == "token:timetable"]
    assert sorted(requests) == sorted([("staff_wake_refused", "Library"), ("staff_wake_queued", "ICT Suite"),
                                       ("staff_wake_queued", "ICT Suite"), ("staff_wake_queued", "ICT Suite"),
                                       ("staff_wake_limited", "ICT Suite")])


def test_a_teacher_wakes_their_room_from_a_phone_and_sees_which_woke(school, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=school.controller.url,
                                  ignore_https_errors=True)
    page = context.new_page()
    try:
        page.goto("/")
        page.get_by_label("Name").fill("tess")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/staff$"))
        assert page.get_by_role("heading", level=2).all_inner_texts() == ["ICT Suite", "Which woke"]
        assert "Library" not in page.content() and "HILL-LIB-01" not in page.content()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        violations = axe.Axe().run(page).response["violations"]
        assert violations == [], [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in violations]
        before = page.locator("ul.woken .status-confirmed").count()  # the timetable system's wakes, earlier
        page.get_by_role("button", name="Wake ICT Suite now").click()
        page.wait_for_url(re.compile(r"/staff\?done="))
        assert page.get_by_role("status").inner_text() == "1 PC(s) in ICT Suite will be woken now"

        def confirmed() -> bool:
            page.reload()
            return page.locator("ul.woken .status-confirmed").count() > before

        wait_for(confirmed, seconds=30, what="the phone page showing the PC woke")
        assert "HILL-ICT-01" in page.locator("ul.woken").inner_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        shot(page, "staff-phone")
        assert page.goto("/devices").status == 403  # nothing else of the console is theirs
    finally:
        context.close()

