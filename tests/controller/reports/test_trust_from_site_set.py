"""A network manager describes a trust of three schools with `caretaker site set`, and the trust's audit pack
then covers exactly those schools, with intensity per pupil from the numbers entered.

The energy is written as hourly buckets (a fixture written for this test, not a capture): one laptop per
school idle at a known wattage all week, so each school's kWh is arithmetic. Everything about the sites goes
through the real `caretaker` process; the pack is read back from the real `caretaker report audit`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from sqlmodel import Session

from tests.conftest import BIN
from tests.controller.energy.estate import HOUR, MONDAY, bucket, device, site
from tests.controller.reports.estate import FLAT, WEEK, write_policies

TRUST = "Aire Valley Learning Trust"
SCHOOLS = {  # name: (watts, pupils, postcode as typed, nation)
    "Aire Primary": (10, 210, "ls28 7tq", "england"),
    "Calder Academy": (20, 1150, "HX1 1AA", "england"),
    "Wharfe College": (30, 2400, "LS29  8AB", "england"),
}
HOURS = 7 * 24


def caretaker(database_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "caretaker"), *args, "--database-url", database_url], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def schools(engine) -> None:
    with Session(engine) as session:
        for name, (watts, _, _, _) in SCHOOLS.items():
            laptop = device(session, site(session, name, tariff=FLAT), f"{name[:4].upper()}-LT01", "laptop")
            for hour in range(HOURS):
                bucket(session, laptop, MONDAY + hour * HOUR, "idle", "battery", watts)
        site(session, "Elsewhere School", tariff=FLAT)  # not in the trust
        session.commit()


def test_the_audit_pack_covers_the_trust_its_sites_were_set_to(schools, database_url, tmp_path: Path):
    before = caretaker(database_url, "report", "audit", "--trust", TRUST, "--period", WEEK, "--out",
                       str(tmp_path / "none.json"))
    assert (before.returncode, before.stderr.strip()) == (
        2, f"caretaker: error: no site belongs to a trust called {TRUST!r}")

    for name, (_, pupils, postcode, nation) in SCHOOLS.items():
        done = caretaker(database_url, "site", "set", name, "--trust", TRUST, "--pupils", str(pupils),
                         "--postcode", postcode, "--nation", nation, "--actor", "alice")
        assert done.returncode == 0, done.stderr

    listed = {s["name"]: s for s in json.loads(caretaker(database_url, "site", "list", "--json").stdout)}
    assert {n: (s["trust"], s["pupils"], s["postcode"], s["outcode"]) for n, s in listed.items()} == {
        "Aire Primary": (TRUST, 210, "LS28 7TQ", "LS28"),
        "Calder Academy": (TRUST, 1150, "HX1 1AA", "HX1"),
        "Wharfe College": (TRUST, 2400, "LS29 8AB", "LS29"),
        "Elsewhere School": (None, None, None, None),
    }

    out = tmp_path / "pack.json"
    pack = caretaker(database_url, "report", "audit", "--trust", TRUST, "--period", WEEK, "--format", "json",
                     "--out", str(out), "--policies", str(write_policies(tmp_path / "policies")))
    assert pack.returncode == 0, pack.stderr
    secr = {line["site"]: line for line in json.loads(out.read_text())["secr"]}
    assert sorted(secr) == sorted(SCHOOLS)  # the three set, and not the school outside the trust
    for name, (watts, pupils, _, _) in SCHOOLS.items():
        kwh = watts * HOURS / 1000  # 10 W for 168 h is 1.68 kWh
        assert secr[name]["pupils"] == pupils
        assert secr[name]["kwh"] == pytest.approx(kwh)
        assert secr[name]["kwh_per_pupil"] == pytest.approx(kwh / pupils)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # each case is a process; the API test
def test_a_rename_keeps_the_sites_history_and_mistakes_are_one_line(schools, database_url):  # covers both
    assert caretaker(database_url, "site", "set", "Aire Primary", "--trust", TRUST).returncode == 0
    renamed = caretaker(database_url, "site", "set", "Aire Primary", "--rename", "Aire Valley Primary")
    assert renamed.returncode == 0, renamed.stderr
    shown = json.loads(caretaker(database_url, "site", "show", "Aire Valley Primary", "--json").stdout)
    assert (shown["trust"], shown["devices"]) == (TRUST, 1)  # the same site: its device stayed
    assert [(c["action"], c["after"]) for c in shown["history"]] == [
        ("update", {"trust": TRUST}), ("update", {"name": "Aire Valley Primary"})]

    mistakes = [
        (["Nowhere"], "no site called 'Nowhere'; sites are Aire Valley Primary, Calder Academy, Elsewhere School, "
                      "Wharfe College"),
        (["Calder Academy", "--postcode", "LS1"], "postcode 'LS1' is not a UK postcode (e.g. LS6 2QZ)"),
        (["Calder Academy", "--timezone", "Europe/Leeds"],
         "time zone 'Europe/Leeds' is not an IANA time zone (e.g. Europe/London)"),
        (["Calder Academy", "--rename", "Wharfe College"], "there is already a site called 'Wharfe College'"),
    ]
    for args, message in mistakes:
        result = caretaker(database_url, "site", "set", *args)
        assert (result.returncode, result.stderr) == (2, f"caretaker: error: {message}\n"), args
    calder = json.loads(caretaker(database_url, "site", "show", "Calder Academy", "--json").stdout)
    assert (calder["postcode"], calder["pupils"], calder["history"]) == (None, None, [])  # nothing half-written
