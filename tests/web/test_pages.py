"""The console's pages and forms do what they say, through the real app (TestClient, in-process)."""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from controller.power.models import WakeRequest
from controller.register.models import ChangeRecord
from controller.timeutil import hour_floor, utcnow
from tests.web.conftest import sign_in


def test_the_overview_counts_devices_and_this_weeks_energy_by_site(client):
    sign_in(client, "barry")
    page = client.get("/").text
    hillside = re.search(r"Hillside Primary</a></th>(.*?)</tr>", page, re.S).group(1)
    cells = re.findall(r'<td class="num">([^<]*)</td>', hillside)
    assert sum(int(c) for c in cells[:5]) == 3  # three devices, whatever their state
    # The seed gives every desktop 0.05 kWh in each of the 48 hours before this one, and the energy package
    # counts its monitor on with it (the catalogue's 25 W): 0.075 kWh an hour. The week began on Monday at
    # 00:00 London time, so only the hours since then count; this hour's silence adds at most 1.3 Wh each.
    now = hour_floor(utcnow())
    local = now.astimezone(ZoneInfo("Europe/London"))
    monday = (local - timedelta(days=local.weekday())).replace(hour=0)
    hours_this_week = sum(1 for h in range(1, 49) if now - timedelta(hours=h) >= monday)
    assert cells[-1].endswith(" kWh")
    assert abs(float(cells[-1].removesuffix(" kWh")) - 3 * 0.075 * hours_this_week) <= 0.05 + 3 * 0.0013
    assert "<td>no power-downs yet</td>" in hillside  # saved: the reason, not a bare zero
    # The seed's buckets began 48 hours ago: the data column says since when, over this week's school days.
    assert re.search(r"<td>\d of \d school days? \(reporting since \d+ \w+ \d{4}\)</td>", hillside), hillside


def test_devices_filter_by_room_and_search(client):
    sign_in(client, "barry")
    library = client.get("/devices", params={"room": "Library"}).text
    assert re.findall(r'<a href="/devices/\d+">([^<]+)</a>', library) == ["HILL-LIB-PC01"]
    found = client.get("/devices", params={"q": "r12"}).text
    assert re.findall(r'<a href="/devices/\d+">([^<]+)</a>', found) == ["HILL-R12-PC01", "HILL-R12-PC02"]


def test_a_device_page_charts_its_daily_energy(client, estate):
    sign_in(client, "barry")
    page = client.get(f"/devices/{estate.devices['HILL-R12-PC01']}").text
    drawn = re.search(r'<img class="chart" src="data:image/svg\+xml;base64,([^"]+)" alt="([^"]+)"', page)
    svg = base64.b64decode(drawn.group(1)).decode()
    assert svg.startswith("<svg") and "energy per day" in svg  # matplotlib keeps the title as text
    assert "3.6 kWh in all" in drawn.group(2)  # 48 h × (0.05 kWh + its monitor's 0.025 kWh)
    daily = [float(v) for v in re.findall(r'<td class="num">([\d.]+)</td>', page)]
    missing = re.findall(r'<td class="num">no data(?: \([\d.]+ estimated\))?</td>', page)  # today, before 01:00
    # Every seeded hour once, and this hour's silence (off at 1 W + its monitor at 0.3 W) so far; the days
    # before the seed are marked as having no data, in the table and the chart's description.
    assert len(daily) + len(missing) == 14 and 48 * 0.075 <= sum(daily) <= 48 * 0.075 + 0.0014
    assert f"with {len(missing)} day(s) without data" in drawn.group(2) and "no data" in svg


def test_a_mode_switch_shows_its_projected_impact_then_switches_and_is_logged(client, engine):
    csrf = sign_in(client, "nora")
    listing = client.get("/policies").text
    assert "hillside-primary" in listing and ">observe<" in listing.replace("\n", "").replace(" ", "")
    confirm = client.get("/policies/hillside-primary/mode", params={"mode": "warn"})
    assert confirm.status_code == 200
    assert "applies to <strong>3</strong> devices" in confirm.text  # Hillside Primary's three
    assert "The last week, replayed" in confirm.text
    switched = client.post("/policies/hillside-primary/mode", data={"csrf_token": csrf, "mode": "warn"})
    assert switched.status_code == 303
    assert "warn (switched from observe)" in client.get("/policies").text
    with Session(engine) as session:
        logged = session.exec(select(ChangeRecord).where(ChangeRecord.action == "set_mode")).one()
    assert (logged.actor, logged.before, logged.after) == ("user:nora", {"mode": "observe"}, {"mode": "warn"})


def test_validate_and_explain_read_the_policies_without_changing_them(client):
    sign_in(client, "audrey")
    assert "The policy files are valid." in client.get("/policies/validate").text
    explained = client.get("/policies/explain", params={"device": "RIV-ICT1-PC01", "at": "2026-02-16 18:30"})
    assert explained.status_code == 200 and "Decision" in explained.text
    hidden = client.get("/policies/explain", params={"device": "HILL-R12-PC01", "at": "2026-02-16 18:30"})
    assert hidden.status_code == 400 and "no device" in hidden.text  # not one of the auditor's sites


def test_waking_a_room_asks_first_then_queues_one_wake_per_device_in_it(client, engine):
    csrf = sign_in(client, "nora")
    form = {"csrf_token": csrf, "site": "Hillside Primary", "room": "R12", "reason": "lesson at 09:00"}
    asked = client.post("/wake/room", data=form)
    assert asked.status_code == 200 and "Wake every device in R12?" in asked.text
    assert 'name="confirmed" value="yes"' in asked.text and 'value="lesson at 09:00"' in asked.text
    with Session(engine) as session:
        assert session.exec(select(WakeRequest)).all() == []  # one press woke nothing
    response = client.post("/wake/room", data={**form, "confirmed": "yes"})
    assert response.status_code == 200 and "2 wake(s) queued in R12" in response.text
    with Session(engine) as session:
        wakes = session.exec(select(WakeRequest).order_by(WakeRequest.device_id)).all()
    assert [(w.requested_by, w.reason) for w in wakes] == [("user:nora", "lesson at 09:00")] * 2


def test_a_new_api_token_is_shown_once_and_only_its_prefix_afterwards(client):
    csrf = sign_in(client, "nora")
    created = client.post("/apitokens", data={"csrf_token": csrf, "name": "finance-export", "role": "bursar",
                                              "days": "30"}).text
    token = re.search(r'value="(ct_[^"]+)"', created).group(1)
    assert client.get("/devices", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    later = client.get("/users").text
    assert token not in later and token[:10] + "…" in later


def test_a_short_password_is_refused_with_a_message_and_nothing_is_added(client):
    csrf = sign_in(client, "nora")
    response = client.post("/users", data={"csrf_token": csrf, "name": "sam", "role": "bursar", "password": "short"})
    assert response.status_code == 400 and "at least 12 characters" in response.text
    assert ">sam<" not in client.get("/users").text


def test_a_signed_in_bursar_reads_a_report_and_an_auditor_only_for_granted_sites(client):
    sign_in(client, "barry")
    assert 'action="/reports/bursar"' in client.get("/reports").text
    shown = client.get("/reports/bursar", params={"scope": "site:Hillside Primary", "period": "2025-26"})
    assert shown.status_code == 200 and shown.headers["content-disposition"] == "inline"
    assert "Energy report: Hillside Primary" in shown.text and 'href="/reports/report.css"' in shown.text
    csv = client.get("/reports/bursar", params={"scope": "site:Hillside Primary", "period": "2025-26",
                                                "format": "csv"})
    assert csv.status_code == 200 and csv.headers["content-disposition"].startswith("attachment;")
    client.cookies.clear()
    sign_in(client, "audrey")
    refused = client.get("/reports/bursar", params={"scope": "site:Hillside Primary", "period": "2025-26"})
    assert refused.status_code == 403 and "You may not see Hillside Primary" in refused.text
    assert 'role="alert"' in refused.text and "<form" in refused.text  # the form again, to choose another


def test_disabling_a_user_and_revoking_a_token_ask_first(client, engine):
    csrf = sign_in(client, "nora")
    asked = client.post("/users/barry/disable", data={"csrf_token": csrf})
    assert asked.status_code == 200 and "Disable barry?" in asked.text and 'href="/users"' in asked.text
    assert "active" in re.search(r"<td>barry</td>.*?</tr>", client.get("/users").text, re.S).group(0)
    created = client.post("/apitokens", data={"csrf_token": csrf, "name": "finance-export", "role": "bursar"}).text
    token = re.search(r'value="(ct_[^"]+)"', created).group(1)
    token_id = re.search(r'action="/apitokens/(\d+)/revoke"', client.get("/users").text).group(1)
    asked = client.post(f"/apitokens/{token_id}/revoke", data={"csrf_token": csrf})
    assert asked.status_code == 200 and "Revoke this API token?" in asked.text
    assert client.get("/devices", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    done = client.post(f"/apitokens/{token_id}/revoke", data={"csrf_token": csrf, "confirmed": "yes"})
    assert done.status_code == 303
    assert client.get("/devices", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_network_manager_sets_a_devices_room_and_tags_and_the_page_says_where_each_came_from(client, estate):
    csrf = sign_in(client, "nora")
    device = estate.devices["HILL-R12-PC01"]
    saved = client.post(f"/devices/{device}/labels", data={"csrf_token": csrf, "set_room": "Hall",
                                                            "add_tags": "signage, exam-room"}, follow_redirects=True)
    assert "Room and tags saved" in saved.text
    assert "Hall (hand)" in saved.text and "signage (hand), exam-room (hand)" in saved.text
    refused = client.post(f"/devices/{device}/labels", data={"csrf_token": csrf, "add_tags": "=cmd|x"},
                          follow_redirects=True)
    assert "is not a tag" in refused.text
    cleared = client.post(f"/devices/{device}/labels", data={"csrf_token": csrf, "clear_room": "yes"},
                          follow_redirects=True).text
    assert "R12 (register)" in cleared  # the asset register's room again


def test_the_bulk_action_tags_every_device_of_a_filtered_list(client, engine):
    csrf = sign_in(client, "nora")
    done = client.post("/devices/labels", data={"csrf_token": csrf, "room": "R12", "add_tags": "signage"},
                       follow_redirects=True)
    assert "2 of 2 device(s) updated." in done.text
    tagged = client.get("/devices", params={"tag": "signage"}).text
    assert re.findall(r'<a href="/devices/\d+">([^<]+)</a>', tagged) == ["HILL-R12-PC01", "HILL-R12-PC02"]
    sign_in(client, "barry")
    assert client.post("/devices/labels", data={"csrf_token": csrf, "add_tags": "x"}).status_code in (403, 401)
    with Session(engine) as session:
        assert len(session.exec(select(ChangeRecord).where(ChangeRecord.action == "labels")).all()) == 2


def test_the_utilisation_page_proposes_idle_pcs_for_redeployment_from_the_readers_sites_only(client):
    """The seed's PCs were idle for the 48 hours they reported: 0 h in use, under the 2 h threshold, each
    saving a new desktop's embodied carbon. An auditor granted Riverside sees Riverside's PCs only."""
    sign_in(client, "audrey")
    page = client.get("/lifecycle/utilisation")
    assert page.status_code == 200
    redeploy = page.text.split("<h2>Devices to redeploy</h2>", 1)[1].split("<h2>", 1)[0]
    assert re.findall(r'<a href="/devices/\d+">([^<]+)</a>', redeploy) == ["RIV-ICT1-PC01", "RIV-ICT1-PC02"]
    assert "HILL-" not in page.text
    assert "Riverside Academy / ICT1" in page.text and "<h2>Servers</h2>" in page.text
