"""The console's report form and its error pages, as a browser sees them (FastAPI's TestClient, real app).

The seeded Hillside Primary follows the shipped primary-school example, whose calendars are the example
LA's 2025-26 and 2026-27 term dates.
"""

from __future__ import annotations

from datetime import date

from controller.policy import loader
from controller.reports.periods import choices
from tests.conftest import REPO
from tests.web.conftest import sign_in

CALENDARS = [loader.load([REPO / "policies"]).calendars[name] for name in ("example-la-2025-26", "example-la-2026-27")]


def test_the_periods_offered_start_with_this_term_from_the_schools_own_calendar():
    offered = choices(CALENDARS, date(2026, 2, 10))
    assert offered[0].value == "spring-2026"
    assert offered[0].label == "Spring term 2026 (5 Jan to 27 Mar 2026): this term"
    assert [c.value for c in offered[1:]] == ["autumn-2025", "2025-26", "2024-25", "FY2025-26", "FY2024-25"]
    # In the Easter holidays nothing is "this term": the last one is first, and named so.
    assert choices(CALENDARS, date(2026, 4, 1))[0].label.endswith(": the last term")


def test_the_form_offers_the_schools_terms_and_a_range_of_dates(client):
    sign_in(client, "barry")
    page = client.get("/reports").text
    assert '<option value="site:Hillside Primary" selected>' in page
    assert '<option value="range">A range of dates (below)</option>' in page
    assert 'type="date"' in page and 'name="start"' in page and 'name="end"' in page


def test_a_mistake_comes_back_on_the_form_in_words_with_what_was_typed(client):
    sign_in(client, "barry")
    asked = {"scope": "site:Hillside Primary", "period": "range", "start": "2025-12-19", "end": "2025-09-01"}
    answer = client.get("/reports/bursar", params=asked)
    assert answer.status_code == 400 and answer.headers["content-type"].startswith("text/html")
    assert "The range ends (1 Sep 2025) before it starts (19 Dec 2025)." in answer.text
    assert 'value="2025-12-19"' in answer.text and '<option value="range" selected>' in answer.text
    missing = client.get("/reports/bursar", params={"scope": "site:Hillside Primary", "period": "autumn-2031"})
    assert missing.status_code == 400 and "No autumn term starting in 2031" in missing.text
    unknown = client.get("/reports/bursar", params={"scope": "site:Nowhere School", "period": "2025-26"})
    assert unknown.status_code == 404 and "Nowhere School" in unknown.text


def test_console_errors_are_pages_with_the_message_and_a_way_back(client):
    sign_in(client, "barry")
    missing = client.get("/devices/99999", headers={"Referer": "http://testserver/devices?q=HILL"})
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "No device with id 99999" in missing.text and 'href="/devices?q=HILL"' in missing.text
    forbidden = client.get("/users")  # a bursar is not a network manager
    assert forbidden.status_code == 403 and "The bursar role may not do this" in forbidden.text
    assert 'aria-label="Main"' in forbidden.text  # the menu is still there
    wrong = client.get("/devices/not-a-number")
    assert wrong.status_code in (404, 422) and "<h1>" in wrong.text
    api = client.get("/api/v1/reports/bursar", params={"site": "Hillside Primary", "period": "Autumn 2026"})
    assert api.status_code == 400 and "detail" in api.json()  # scripts keep their JSON
