"""`caretaker simulate`: a virtual school estate that behaves like one, on the real protocol.

The behaviour model is pure, so most of this pins it down at fixed moments of a fixed week; one test
runs the real command against a real controller on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from collections import Counter
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from agent.protocol import DeviceClass, PowerMethod, PowerState
from controller.db import make_engine
from controller.register.identity import fingerprint_of, ignored_mac_reason, normalise_serial
from controller.register.models import Report as ReportRow
from controller.simulate.estate import (
    WHITE_BOX,
    Habit,
    Rapl,
    boundaries,
    build_estate,
    day_plan,
    plan_sites,
    report_for,
    used_on,
)
from tests.conftest import BIN, ControllerProcess

LONDON = ZoneInfo("Europe/London")
ESTATE = build_estate(plan_sites(300, 3), seed=1)
PEOPLE = [d for d in ESTATE if d.device_class is not DeviceClass.SERVER]
FIVE_MINUTES = timedelta(minutes=5)


def london(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=LONDON)


def reports_at(devices, start: datetime):
    return [r for r in (report_for(d, 1, start, start + FIVE_MINUTES) for d in devices) if r is not None]


TUESDAY = date(2026, 11, 17)
SUNDAY = date(2026, 11, 22)


class TestEstate:
    def test_the_same_seed_builds_the_same_estate_and_another_seed_another(self):
        again = build_estate(plan_sites(300, 3), seed=1)
        other = build_estate(plan_sites(300, 3), seed=2)
        assert again == ESTATE
        assert {d.serial for d in other}.isdisjoint(d.serial for d in ESTATE if d.vendor != WHITE_BOX)

    def test_sites_have_mixed_sizes_with_the_first_the_biggest(self):
        sites = plan_sites(1000, 4)
        assert [s.name for s in sites] == ["Northgate Academy", "Hillside Primary", "Riverside College",
                                           "Meadowbank Primary"]
        assert sum(s.devices for s in sites) == 1000
        assert sites[0].devices == max(s.devices for s in sites) > 3 * min(s.devices for s in sites)

    def test_an_estate_needs_a_device_per_site(self):
        with pytest.raises(ValueError, match="each site needs at least one"):
            plan_sites(2, 3)

    def test_about_70_percent_desktops_25_laptops_5_servers(self):
        share = {c: n / len(ESTATE) for c, n in Counter(d.device_class for d in ESTATE).items()}
        assert share[DeviceClass.DESKTOP] == pytest.approx(0.70, abs=0.03)
        assert share[DeviceClass.LAPTOP] == pytest.approx(0.25, abs=0.03)
        assert share[DeviceClass.SERVER] == pytest.approx(0.05, abs=0.02)

    def test_hostnames_say_site_room_and_seat(self):
        names = {d.hostname for d in ESTATE}
        assert {"NORT-SRV01", "NORT-R01-PC01", "HILL-LT001", "RIVE-R01-PC01"} <= names
        assert all(re.fullmatch(r"[A-Z]{4}-(SRV\d\d|R\d\d-PC\d\d|LT\d{3})", n) for n in names)

    def test_identifiers_are_unique_and_macs_are_real_hardware_addresses(self):
        macs = [nic.mac for d in ESTATE for nic in d.nics]
        assert len(set(macs)) == len(macs)
        assert all(ignored_mac_reason("Ethernet", mac) is None for mac in macs)
        originals = [d for d in ESTATE if d.clone_of is None]
        for identifier in ("hostname", "smbios_uuid", "machine_id"):
            values = [getattr(d, identifier) for d in originals]
            assert len(set(values)) == len(values), identifier
        serials = [d.serial for d in ESTATE if d.vendor != WHITE_BOX]
        assert len(set(serials)) == len(serials)

    def test_models_come_from_the_shipped_catalogue_with_their_vendors(self):
        dell = [d for d in ESTATE if d.vendor == "Dell Inc."]
        assert dell and all(re.fullmatch(r"[0-9A-Z]{7}", d.serial) for d in dell)
        assert {d.model for d in ESTATE if d.device_class is DeviceClass.SERVER} <= {
            "PowerEdge R440", "PowerEdge T340", "PowerEdge R640", "ProLiant DL380 Gen10",
            "ProLiant MicroServer Gen10 Plus", "ThinkSystem SR250"}
        assert all(d.os.name == "Darwin" for d in ESTATE if d.vendor == "Apple Inc.")

    def test_laptops_report_a_worn_battery_and_nothing_else_does(self):
        for device in ESTATE:
            batteries = device.inventory().batteries
            if device.device_class is DeviceClass.LAPTOP:
                (battery,) = batteries
                assert 0.7 * battery.design_wh <= battery.full_wh <= battery.design_wh
            else:
                assert batteries == ()

    def test_a_few_white_box_pcs_carry_the_firmware_placeholder_serial(self):
        white = [d for d in ESTATE if d.serial == WHITE_BOX]
        assert 1 <= len(white) <= 10
        assert all(normalise_serial(d.serial, d.vendor) is None for d in white)

    def test_cloned_images_share_machine_id_and_uuid_with_a_neighbour_but_not_their_hardware(self):
        clones = [d for d in ESTATE if d.clone_of]
        assert len(clones) == 2
        by_name = {d.hostname: d for d in ESTATE}
        for clone in clones:
            source = by_name[clone.clone_of]
            assert (clone.machine_id, clone.smbios_uuid) == (source.machine_id, source.smbios_uuid)
            assert (clone.model, clone.site) == (source.model, source.site)
            assert fingerprint_of(clone.inventory()).macs.isdisjoint(fingerprint_of(source.inventory()).macs)
            assert clone.serial != source.serial
        assert ESTATE[-len(clones):] == tuple(clones), "clones come last, so they enroll after their source"


class TestBehaviour:
    def test_on_a_school_day_most_machines_are_in_use_during_lessons(self):
        reports = reports_at(PEOPLE, london(TUESDAY, 10))
        active = [r for r in reports if r.activity.state is PowerState.ACTIVE]
        assert len(active) > 0.6 * len(PEOPLE)
        assert all(r.activity.sessions == 1 for r in active)

    def test_overnight_a_third_or_so_are_left_on_idle_and_nobody_uses_them(self):
        reports = reports_at(PEOPLE, london(TUESDAY, 2))
        assert 0.25 * len(PEOPLE) <= len(reports) <= 0.45 * len(PEOPLE)
        assert {r.activity.state for r in reports} == {PowerState.IDLE}

    def test_machines_switched_off_at_night_send_nothing(self):
        off = [d for d in PEOPLE if d.behaviour.habit is Habit.SWITCHES_OFF]
        assert len(reports_at(off, london(TUESDAY, 2))) < 0.15 * len(off)

    def test_at_weekends_most_machines_are_off(self):
        assert len(reports_at(PEOPLE, london(SUNDAY, 14))) < 0.35 * len(PEOPLE)

    def test_servers_report_around_the_clock(self):
        servers = [d for d in ESTATE if d.device_class is DeviceClass.SERVER]
        for moment in (london(TUESDAY, 2), london(TUESDAY, 11), london(SUNDAY, 15)):
            assert len(reports_at(servers, moment)) == len(servers)

    def test_machines_come_on_in_the_morning_in_local_time_across_the_clock_changes(self):
        # The Mondays before and after each change: school starts at the same local time, an hour apart in UTC.
        for monday in (date(2026, 3, 23), date(2026, 3, 30), date(2026, 10, 19), date(2026, 10, 26)):
            starts = []
            for device in PEOPLE:
                plan = day_plan(device.behaviour, monday)
                if plan[0].awake or not used_on(device.behaviour, monday):
                    continue  # left on or asleep since last week, or not used at all
                first = next(s for s in plan if s.awake)
                starts.append(first.start.astimezone(LONDON).time())
            assert len(starts) > 0.4 * len(PEOPLE)
            assert min(starts) >= time(7, 30) and max(starts) <= time(8, 40), monday

    def test_the_days_of_the_clock_changes_have_23_and_25_hours(self):
        device = PEOPLE[0]
        for day, hours in ((date(2026, 3, 29), 23), (date(2026, 3, 30), 24), (date(2026, 10, 25), 25)):
            plan = day_plan(device.behaviour, day)
            assert all(a.end == b.start for a, b in itertools.pairwise(plan))
            assert (plan[-1].end - plan[0].start) == timedelta(hours=hours)

    def test_a_report_is_the_same_however_often_it_is_asked_for(self):
        device = ESTATE[20]
        start = london(TUESDAY, 11)
        assert report_for(device, 7, start, start + FIVE_MINUTES) == report_for(device, 7, start, start + FIVE_MINUTES)

    def test_model_energy_follows_the_class_watts_and_activity(self):
        start = london(TUESDAY, 2)
        watts = {DeviceClass.DESKTOP: (38, 52), DeviceClass.LAPTOP: (10, 14), DeviceClass.SERVER: (97, 133)}
        for device in ESTATE:
            report = report_for(device, 1, start, start + FIVE_MINUTES)
            if report is None or report.activity.state is not PowerState.IDLE:
                continue
            (model,) = [s for s in report.energy if s.method is PowerMethod.MODEL]
            low, high = watts[device.device_class]
            assert low <= model.joules / model.seconds <= high, device.hostname

    def test_rapl_is_reported_by_some_linux_machines_and_denied_to_others(self):
        start = london(TUESDAY, 10)
        seen = Counter()
        for device in ESTATE:
            report = report_for(device, 1, start, start + FIVE_MINUTES)
            if report is None:
                continue
            rapl = [s for s in report.energy if s.method is PowerMethod.RAPL]
            if device.rapl is Rapl.NONE:
                assert not rapl
                continue
            (sample,) = rapl
            (model,) = [s for s in report.energy if s.method is PowerMethod.MODEL]
            if device.rapl is Rapl.OK:
                assert 0.55 < sample.joules / model.joules < 0.75  # CPU package and DRAM only
            else:
                assert (sample.usable, sample.status) == (False, "unavailable: permission")
            seen[device.rapl] += 1
        assert seen[Rapl.OK] and seen[Rapl.DENIED]

    def test_a_laptop_that_sleeps_reports_the_time_it_slept(self):
        sleepers = [d for d in PEOPLE if d.behaviour.habit is Habit.SLEEPS and used_on(d.behaviour, TUESDAY)]
        assert sleepers
        for laptop in sleepers:
            report = report_for(laptop, 1, london(TUESDAY, 7), london(TUESDAY, 17))
            assert report.activity.slept_seconds > 0
            (asleep,) = [s for s in report.energy if s.state is PowerState.SLEEP]
            assert asleep.seconds == report.activity.slept_seconds

    def test_a_report_covers_only_the_time_the_machine_was_awake(self):
        for device in PEOPLE:
            plan = day_plan(device.behaviour, TUESDAY)
            if plan[0].awake or not used_on(device.behaviour, TUESDAY):
                continue
            boot = next(s for s in plan if s.awake).start
            report = report_for(device, 1, boot - timedelta(minutes=3), boot + timedelta(minutes=2))
            assert report.start == boot
            return
        pytest.fail("no machine was switched on that morning")

    def test_reports_say_which_of_the_watched_processes_run_and_a_few_are_left_running_all_day(self):
        watched = ("obs64.exe", "blender.exe")
        running = Counter()
        for device in PEOPLE:
            morning = report_for(device, 1, london(TUESDAY, 10), london(TUESDAY, 10, 5), watched=watched)
            evening = report_for(device, 2, london(TUESDAY, 19), london(TUESDAY, 19, 5), watched=watched)
            for report in (r for r in (morning, evening) if r is not None):
                assert report.activity.processes_watched == watched
                running[report.activity.processes_running] += 1
            if morning is not None and evening is not None:
                assert morning.activity.processes_running == evening.activity.processes_running  # all day
        assert 0 < sum(n for names, n in running.items() if names) < 0.2 * sum(running.values())
        unwatched = report_for(PEOPLE[0], 1, london(TUESDAY, 10), london(TUESDAY, 10, 5))
        assert unwatched.activity.processes_watched == () == unwatched.activity.processes_running

    def test_each_device_reports_at_its_own_phase_and_intervals_tile(self):
        start, end = london(TUESDAY, 9), london(TUESDAY, 10)
        phases = set()
        for device in ESTATE[:50]:
            times = list(boundaries(device, start, end, 300))
            assert len(times) == 12
            assert all(b - a == timedelta(seconds=300) for a, b in itertools.pairwise(times))
            phases.add(times[0].second + 60 * times[0].minute)
        assert len(phases) > 25


def simulate(controller: ControllerProcess, state, *args: str) -> str:
    result = subprocess.run([str(BIN / "caretaker"), "simulate", "--controller", controller.url,
                             "--database-url", controller.database_url, "--state", str(state), *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def summary(output: str) -> dict[str, int]:
    """The counts of the final line, e.g. "done: 20 devices on 2 sites, enrolled 20, sent 9, accepted 9, …"."""
    done = next(line for line in output.splitlines() if line.startswith("done:"))
    return {word: int(n) for word, n in re.findall(r"(enrolled|accepted|duplicate|rejected|errors) (\d+)", done)}


def test_a_simulated_estate_enrolls_reports_and_carries_on_where_it_stopped(controller, tmp_path):
    state = tmp_path / "simulate.json"
    first = summary(simulate(controller, state, "--devices", "20", "--sites", "2", "--history", "1",
                             "--duration", "0"))
    assert first["enrolled"] == 20 and first["errors"] == 0 and first["rejected"] == 0
    assert first["accepted"] > 24 * 12  # a day of five-minute reports, from the server at least

    devices = json.loads(controller.cli("devices", "--json").stdout)
    assert len(devices) == 20
    assert len({d["site"] for d in devices}) == 2
    conflicts = json.loads(controller.cli("devices", "--conflicts", "--json").stdout)
    assert conflicts and all("cloned disk image" in d["conflict_reason"] for d in conflicts)

    engine = make_engine(controller.database_url)
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(ReportRow)).one() == first["accepted"]
    engine.dispose()

    again = summary(simulate(controller, state, "--history", "1", "--duration", "0"))
    assert again["enrolled"] == 0 and again["duplicate"] == 0 and again["errors"] == 0
    assert len(json.loads(controller.cli("devices", "--json").stdout)) == 20


def test_without_tokens_or_a_database_it_says_what_to_give(tmp_path):
    result = subprocess.run([str(BIN / "caretaker"), "simulate", "--controller", "http://127.0.0.1:9", "--devices", "3",
                             "--state", str(tmp_path / "s.json"), "--duration", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "give --token (one per site), or --data-dir/--database-url" in result.stderr
