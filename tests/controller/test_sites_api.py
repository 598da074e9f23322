"""Sites over the real controller's API and console: network managers change them, every reading role sees
the sites it may, hostile bodies get a 4xx that says why and change nothing, and the console's form says in
words what is wrong. The same update_site() as `caretaker site set` does the work (tests/controller/reports/
test_trust_from_site_set.py drives the CLI)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ControllerProcess, start_controller

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse battery"


@pytest.fixture
def served(database_url, tmp_path) -> Iterator[tuple[ControllerProcess, dict[str, dict[str, str]]]]:
    running = start_controller(database_url, tmp_path)
    for name in ("Aire Primary", "Calder Academy"):
        running.cli("token", "create", "--site", name)
    bearers = {}
    for role, sites in (("network_manager", []), ("bursar", []), ("auditor", ["Aire Primary"])):
        created = running.cli("apitoken", "create", f"{role}-sites", "--role", role,
                              *[a for s in sites for a in ("--site", s)])
        bearers[role] = {"Authorization": f"Bearer {created.stdout.strip().split()[-1]}"}
    (tmp_path / "password").write_text(PASSWORD + "\n")
    running.cli("user", "add", "nadia", "--role", "network_manager", "--password-file", str(tmp_path / "password"))
    yield running, bearers
    running.stop()


def test_sites_over_the_api_and_the_console(served):
    """One controller per backend for both (starting one, with its users and tokens, is the expensive part)."""
    controller, bearers = served
    sites_are_changed_by_managers_and_seen_by_role(controller, bearers)
    the_console_page_changes_a_site_and_says_what_is_wrong(controller)


def sites_are_changed_by_managers_and_seen_by_role(controller: ControllerProcess, bearers: dict) -> None:
    api = f"{controller.url}/api/v1/sites"
    with httpx.Client(timeout=30) as http:
        changed = http.patch(f"{api}/Aire Primary", headers=bearers["network_manager"],
                             json={"trust": "Aire Valley Trust", "pupils": 210, "postcode": "ls28 7tq",
                                   "nation": "england", "timezone": "Europe/London"})
        assert changed.status_code == 200, changed.text
        assert {k: changed.json()[k] for k in ("trust", "pupils", "postcode", "outcode", "nation")} == {
            "trust": "Aire Valley Trust", "pupils": 210, "postcode": "LS28 7TQ", "outcode": "LS28",
            "nation": "england"}
        assert [c["after"] for c in changed.json()["history"]][-1] == {
            "trust": "Aire Valley Trust", "pupils": 210, "postcode": "LS28 7TQ", "nation": "england"}

        assert [s["name"] for s in http.get(api, headers=bearers["auditor"]).json()] == ["Aire Primary"]
        assert http.get(f"{api}/Calder Academy", headers=bearers["auditor"]).status_code == 404
        assert [s["name"] for s in http.get(api, headers=bearers["bursar"]).json()] == ["Aire Primary",
                                                                                        "Calder Academy"]
        assert http.patch(f"{api}/Aire Primary", headers=bearers["bursar"], json={"pupils": 1}).status_code == 403
        assert http.patch(f"{api}/Aire Primary", json={"pupils": 1}).status_code == 401

        hostile = [
            ({"trust": "Changed", "pupils": -1}, 422, "pupils"),
            ({"pupils": "12"}, 422, "pupils"),
            ({"pupils": True}, 422, "pupils"),
            ({"pupils": 10**12}, 422, "pupils"),
            ({"colour": "red"}, 422, "colour"),
            ({"timezone": "../../../etc/passwd"}, 422, "is not an IANA time zone"),
            ({"timezone": None}, 422, "needs a time zone"),
            ({"name": None}, 422, "cannot be null"),
            ({"postcode": "LS1\x00 1AA"}, 422, "control character"),
            ({"postcode": "BT1 1AA"}, 422, "is in Northern Ireland, not England"),
            ({"nation": "atlantis"}, 422, "is not one of england, wales, scotland, northern-ireland"),
            ({"name": "Calder Academy"}, 409, "there is already a site called 'Calder Academy'"),
            ([1, 2], 422, "body"),
        ]
        for body, status, reason in hostile:
            answer = http.patch(f"{api}/Aire Primary", headers=bearers["network_manager"], json=body)
            assert (answer.status_code, reason in answer.json()["detail"]) == (status, True), (body, answer.text)
        for name in ("Nowhere", "Aire%00Primary", "x" * 2000):
            assert http.get(f"{api}/{name}", headers=bearers["bursar"]).status_code in (404, 422), name
        assert http.patch(f"{api}/Nowhere", headers=bearers["network_manager"], json={}).status_code == 404
        after = http.get(f"{api}/Aire Primary", headers=bearers["bursar"]).json()
        assert (after["trust"], after["pupils"], len(after["history"])) == ("Aire Valley Trust", 210, 2)


def the_console_page_changes_a_site_and_says_what_is_wrong(controller: ControllerProcess) -> None:
    with httpx.Client(base_url=controller.url, timeout=30) as browser:
        assert browser.post("/signin", data={"name": "nadia", "password": PASSWORD}).status_code == 303
        listing = browser.get("/sites")
        assert listing.status_code == 200 and 'href="/sites/Calder%20Academy"' in listing.text
        csrf = CSRF.search(browser.get("/sites/Calder Academy").text).group(1)
        form = {"csrf_token": csrf, "new_name": "Calder Academy", "trust": "Aire Valley Trust", "pupils": "1150",
                "postcode": "HX1", "nation": "england", "timezone": "Europe/London"}
        refused = browser.post("/sites/Calder Academy", data=form)
        assert refused.status_code == 400
        assert "Postcode &#39;HX1&#39; is not a UK postcode (e.g. LS6 2QZ)." in refused.text
        assert 'value="1150"' in refused.text  # what was typed is kept
        saved = browser.post("/sites/Calder Academy", data={**form, "postcode": "HX1 1AA",
                                                             "new_name": "Calder High"})
        assert (saved.status_code, saved.headers["location"]) == (303, "/sites/Calder%20High?done=saved")
        page = browser.get(saved.headers["location"]).text
        assert "Site saved." in page and "HX1 1AA" in page and "user:nadia" in page
    shown = controller.cli("site", "show", "Calder High", "--json").stdout
    assert '"trust": "Aire Valley Trust"' in shown and '"pupils": 1150' in shown
