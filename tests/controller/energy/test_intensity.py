"""Grid carbon intensity: read from recorded-shape answers, cached, optional, and used to place maintenance."""

from __future__ import annotations

import json
import socket
import threading
import time as clock
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from controller.cli import app
from controller.energy.intensity import (
    IntensityPeriod,
    cached,
    forecast,
    http_getter,
    lowest_carbon_window,
    outcode,
    parse_periods,
    store,
)
from controller.policy.dispatch import SchedulePlanner
from controller.policy.loader import load
from controller.policy.model import DeviceFacts
from controller.policy.schedule import compile_schedule
from controller.policy.store import PolicyStore
from controller.register.models import Device, Site
from tests.conftest import REPO, free_port

FIXTURES = REPO / "tests" / "fixtures" / "carbon_intensity"
REGIONAL = json.loads((FIXTURES / "regional_fw48h_RG10_2025-11-10.json").read_text())
NATIONAL = json.loads((FIXTURES / "national_fw48h_2025-11-10.json").read_text())
MONDAY = datetime(2025, 11, 10, tzinfo=UTC)  # GMT: London wall time is UTC
NINETY = timedelta(minutes=90)


def at(hhmm: str, day: int = 0) -> datetime:
    return MONDAY + timedelta(days=day, hours=int(hhmm[:2]), minutes=int(hhmm[3:]))


def test_postcodes_give_their_outcode_and_northern_ireland_none():
    assert [outcode(p) for p in ("RG10 6AB", "rg106ab", "EC1A 1BB", "M1 1AE", "BT7 1NN", "nonsense", None)] == [
        "RG10", "RG10", "EC1A", "M1", None, None, None]


def test_regional_and_national_answers_parse_to_half_hours():
    regional, national = parse_periods(REGIONAL), parse_periods(NATIONAL)
    assert len(regional) == len(national) == 96  # 48 hours of half-hours
    assert regional[0] == IntensityPeriod(at("00:00"), at("00:30"), 182)
    assert regional[6].forecast == 121 and national[6].forecast == 130


def test_the_lowest_carbon_ninety_minutes_between_midnight_and_six():
    periods = parse_periods(REGIONAL)
    # Monday 00:00-06:00: 182 176 171 165 158 150 | 121 118 119 | 140 152 169; the three half-hours from
    # 03:00 average (121+118+119)/3 = 119.3, below 02:30's 129.7 and 03:30's 125.7.
    assert lowest_carbon_window(periods, at("00:00"), at("06:00"), NINETY) == at("03:00")
    # Tuesday: 160 143 128 | 102 99 104 | 131 ...: from 01:30, (102+99+104)/3 = 101.7.
    assert lowest_carbon_window(periods, at("00:00", 1), at("06:00", 1), NINETY) == at("01:30", 1)


def test_no_forecast_or_a_hole_in_it_keeps_the_fixed_time():
    assert lowest_carbon_window([], at("00:00"), at("06:00"), NINETY) is None
    periods = [p for p in parse_periods(REGIONAL) if p.start != at("03:30")]  # the cheapest stretch has a hole
    assert lowest_carbon_window(periods, at("00:00"), at("06:00"), NINETY) == at("04:00")  # (119+140+152)/3 = 137
    assert lowest_carbon_window(parse_periods(REGIONAL), at("00:00"), at("01:00"), NINETY) is None


class _Recorded(BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        body = json.dumps(REGIONAL if "/regional/" in self.path else NATIONAL).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorded_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Recorded)
    _Recorded.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_forecast_is_fetched_once_then_served_from_the_cache_even_when_the_api_is_gone(engine, recorded_api):
    with Session(engine) as session:
        first = forecast(session, "RG10", at("00:00"), at("06:00"), base=recorded_api)
        session.commit()
    assert first.source == "api" and first.periods[6].forecast == 121
    assert _Recorded.requests == ["/regional/intensity/2025-11-10T00:00Z/fw48h/postcode/RG10"]
    unreachable = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with Session(engine) as session:
        again = forecast(session, "RG10", at("00:00"), at("06:00"), base=unreachable)
    assert again.source == "cache" and again.periods == first.periods and again.problem is None
    assert len(_Recorded.requests) == 1


@pytest.fixture
def silent_api() -> Iterator[str]:
    """A server that accepts connections and never answers, like a firewall that swallows packets."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_an_api_that_never_answers_gives_no_forecast_quickly_and_says_why(engine, silent_api):
    began = clock.monotonic()
    with Session(engine) as session:
        result = forecast(session, "RG10", at("00:00"), at("06:00"), get=http_getter(timeout=1.0), base=silent_api)
    assert result.source == "unavailable" and result.periods == () and "ReadTimeout" in (result.problem or "")
    assert clock.monotonic() - began < 5


POLICY = """\
name: oakfield
applies_to:
  sites: [Oakfield Primary]
maintenance_windows:
  - name: patch night
    weekdays: [monday, tuesday]
    start: "02:00"
    minutes: 90
    carbon_aware: {between: "00:00-06:00"}
"""


def test_a_carbon_aware_maintenance_window_moves_to_the_cleanest_ninety_minutes(tmp_path: Path):
    (tmp_path / "policy.yaml").write_text(POLICY)
    policies = load([tmp_path / "policy.yaml"]).policies
    device = DeviceFacts(device_id="1", hostname="OAK-PC01", site="Oakfield Primary", device_class="desktop")
    with_forecast = compile_schedule(policies, {}, device, MONDAY, days=3, intensity=parse_periods(REGIONAL))
    assert [(w.start.astimezone(UTC), w.end.astimezone(UTC)) for w in with_forecast.maintenance_windows] == [
        (at("03:00"), at("04:30")), (at("01:30", 1), at("03:00", 1))]
    fixed = compile_schedule(policies, {}, device, MONDAY, days=3)
    assert [w.start.astimezone(UTC) for w in fixed.maintenance_windows] == [at("02:00"), at("02:00", 1)]


def test_a_carbon_aware_range_shorter_than_the_window_is_refused(tmp_path: Path):
    (tmp_path / "policy.yaml").write_text(POLICY.replace('"00:00-06:00"', '"00:00-01:00"'))
    with pytest.raises(Exception, match="00:00-01:00 is shorter than the window's 90 minutes"):
        load([tmp_path / "policy.yaml"])


def test_the_planner_places_carbon_aware_maintenance_from_the_cached_forecast(engine, tmp_path: Path):
    (tmp_path / "oakfield.yaml").write_text(POLICY)
    with Session(engine) as session:
        site = Site(name="Oakfield Primary", postcode="RG10 6AB")
        session.add(site)
        session.flush()
        pc = Device(site_id=site.id, hostname="OAK-PC01", device_class="desktop")
        session.add(pc)
        store(session, "RG10", parse_periods(REGIONAL), MONDAY)  # what `caretaker energy intensity fetch` left
        session.commit()
        device_id = pc.id
    planner = SchedulePlanner(PolicyStore(tmp_path, engine), engine, hours=24, clock=lambda: at("00:05"))
    schedule = planner.schedule_for(device_id)
    maintenance = [(w.start.astimezone(UTC), w.end.astimezone(UTC)) for w in schedule.windows
                   if "patch night" in w.reason]
    assert maintenance[0] == (at("03:00"), at("04:30"))


def test_intensity_fetch_caches_each_sites_region_once(engine, database_url, recorded_api):
    with Session(engine) as session:
        session.add_all([Site(name="Oakfield Primary", postcode="RG10 6AB"),
                         Site(name="Birchwood", postcode="RG10 9XY")])
        session.commit()
    result = CliRunner().invoke(app, ["energy", "intensity", "fetch", "--api-url", recorded_api, "--json",
                                      "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert [r["region"] for r in json.loads(result.stdout)] == ["RG10"]
    assert len(_Recorded.requests) == 1 and _Recorded.requests[0].endswith("/fw48h/postcode/RG10")
    with Session(engine) as session:
        assert len(cached(session, "RG10", at("00:00"), at("00:00", 2))) == 96
