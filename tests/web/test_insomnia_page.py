"""The console's "Machines that would not sleep" page: the week's waste by cause, within the reader's sites."""

from __future__ import annotations

import re
from datetime import timedelta

from controller.db import session_scope
from controller.register.models import AwakeHour
from controller.timeutil import hour_floor, utcnow
from controller.web.accounts import Role
from tests.web.conftest import sign_in
from tests.web.estate import USERS


def test_the_page_lists_what_held_machines_awake_and_only_in_the_readers_sites(client, engine, estate):
    now = hour_floor(utcnow())
    with session_scope(engine) as session:
        for hours_ago in range(1, 49):
            session.add(AwakeHour(device_id=estate.devices["HILL-R12-PC01"], hour=now - timedelta(hours=hours_ago),
                                  kind="display", what="Zoom meeting in progress", process="zoom.us", seconds=3600))
    sign_in(client, "barry")
    page = client.get("/insomnia").text
    row = re.search(r"<th scope=\"row\">display</th>(.*?)</tr>", page, re.S).group(1)
    assert "Zoom meeting in progress" in row and "zoom.us" in row
    assert re.findall(r'<td class="num">(\d+)</td>', row)[0] == "1"  # one device
    # The seed's other devices' hours had no reading: not reported (an older agent), never made up.
    assert sorted(re.findall(r'<th scope="row">(\w+)</th>', page)) == ["display", "not_reported"]
    assert "Hillside Primary / HILL-R12-PC01</a>" in page
    riverside = client.get("/insomnia", params={"site": "Riverside Academy"}).text
    assert "zoom.us" not in riverside

    client.cookies.clear()
    sign_in(client, USERS[Role.auditor])  # granted Riverside Academy only
    assert "zoom.us" not in client.get("/insomnia").text
