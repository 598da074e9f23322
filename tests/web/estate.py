"""A small estate for the console's tests: two sites, five devices with a few days of energy, a user per role.

Written straight to the database, as a controller would after enrolment and ingest, so each test starts
from known figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Engine

from controller.db import session_scope
from controller.register.models import Device, DeviceMac, EnergyBucket, Site
from controller.timeutil import hour_floor, utcnow
from controller.web.accounts import Role, add_user

PASSWORD = "correct horse battery staple"
USERS = {Role.network_manager: "nora", Role.bursar: "barry", Role.auditor: "audrey"}
KWH = 3.6e6


@dataclass(frozen=True)
class Estate:
    hillside: int  # site ids
    riverside: int
    devices: dict[str, int]  # hostname -> device id


def seed(engine: Engine) -> Estate:
    with session_scope(engine) as session:
        hillside, riverside = Site(name="Hillside Primary"), Site(name="Riverside Academy")
        session.add_all([hillside, riverside])
        session.flush()
        layout = [("HILL-R12-PC01", hillside, "R12"), ("HILL-R12-PC02", hillside, "R12"),
                  ("HILL-LIB-PC01", hillside, "Library"), ("RIV-ICT1-PC01", riverside, "ICT1"),
                  ("RIV-ICT1-PC02", riverside, "ICT1")]
        devices = {}
        now = hour_floor(utcnow())
        for n, (hostname, site, room) in enumerate(layout, start=1):
            device = Device(site_id=site.id, hostname=hostname, device_class="desktop", vendor="Dell Inc.",
                            model="OptiPlex 7010", serial=f"SN{n:04d}", room=room, last_seen=now)
            session.add(device)
            session.flush()
            session.add(DeviceMac(mac=f"00:1a:2b:3c:4d:{n:02x}", device_id=device.id))
            for hours_ago in range(1, 49):  # two days at 0.05 kWh an hour
                session.add(EnergyBucket(device_id=device.id, hour=now - timedelta(hours=hours_ago), state="idle",
                                         method="model", joules=0.05 * KWH, seconds=3600))
            devices[hostname] = device.id
        session.flush()
        for role, name in USERS.items():
            add_user(session, name, role, PASSWORD, ["Riverside Academy"] if role is Role.auditor else [], "test")
        return Estate(hillside.id, riverside.id, devices)
