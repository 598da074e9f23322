"""/metrics as an operator's Prometheus relies on it: figures that match the register, in either format.

Reports go in through the real agent API (the app with its lifespan and ingest writer) on SQLite and
PostgreSQL; the expected figures are worked out from what the test sent, not read back from /metrics.
"""

from __future__ import annotations

import shutil
import threading
import time as clock
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from importlib.metadata import version
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agent.protocol import PROTOCOL_VERSION, DeviceClass, PowerState, ReportBatch
from controller.api.app import create_app
from controller.db import session_scope
from controller.energy import carbon
from controller.energy.accounting import energy_summary, energy_totals
from controller.energy.savings import savings_summary
from controller.energy.tariff import set_tariff
from controller.estate import counters
from controller.estate.summary import GONE_AFTER, History, ratchet, settled_until, summarise
from controller.lifecycle.service import move
from controller.lifecycle.states import State
from controller.metrics import BacklogCollector, EstateCache, Reloading
from controller.policy.store import PolicyStore
from controller.power.models import WakeRequest
from controller.register.enrollment import create_token
from controller.register.ingest import AgentIdentity, IngestWriter
from controller.register.models import ActionRecord, Agent, Device, EnergyBucket
from controller.settings import Settings
from controller.timeutil import utcnow
from tests.conftest import REPO
from tests.factories import T0, batch_json, consecutive, enroll_json, inventory

ENROLL = "/api/v1/agent/enroll"
REPORTS = "/api/v1/agent/reports"
OPENMETRICS = "application/openmetrics-text; version=1.0.0"
Samples = dict[tuple[str, frozenset], float]


def make_client(engine: Engine, tmp_path, cache_seconds: float) -> TestClient:
    settings = Settings(data_dir=tmp_path, metrics_cache_seconds=cache_seconds, metrics_history_seconds=cache_seconds)
    return TestClient(create_app(settings, engine))


@pytest.fixture
def client(engine: Engine, tmp_path) -> Iterator[TestClient]:
    with make_client(engine, tmp_path, cache_seconds=0) as client:
        yield client


def scrape(client: TestClient, accept: str | None = None) -> Samples:
    answer = client.get("/metrics", headers={"Accept": accept} if accept else {})
    assert answer.status_code == 200, answer.text
    parse = parse_openmetrics if accept == OPENMETRICS else parse_text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in parse(answer.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def series(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for sample_name, labels in samples if sample_name == name]


class Estate:
    """Enrolls machines through the API, each with an identity of its own, and posts their reports."""

    def __init__(self, client: TestClient, engine: Engine):
        self.client, self.engine = client, engine
        self.tokens: dict[str, str] = {}
        self.machines = 0

    def enroll(self, site: str = "Hillside Primary", device_class: DeviceClass = DeviceClass.DESKTOP) -> dict:
        if site not in self.tokens:
            with session_scope(self.engine) as session:
                self.tokens[site] = create_token(session, site, utcnow(), 30, "test").token
        self.machines += 1
        n = self.machines
        inv = inventory(hostname=f"PC{n:03d}", serial=f"SN{n:06d}", macs=(f"00:1a:2b:3c:{n // 256:02x}:{n % 256:02x}",),
                        machine_id=f"machine-{n}", uuid=f"4c4c4544-0000-0000-0000-{n:012d}", device_class=device_class)
        answer = self.client.post(ENROLL, json=enroll_json(self.tokens[site], inv))
        assert answer.status_code == 201, answer.text
        body = answer.json()
        return {"Authorization": f"Bearer {body['agent_id']}:{body['secret']}", "agent_id": body["agent_id"]}

    def post(self, machine: dict, first_seq: int, count: int, start: datetime, **kw) -> dict:
        headers = {"Authorization": machine["Authorization"]}
        answer = self.client.post(REPORTS, json=batch_json(consecutive(first_seq, count, start, **kw)), headers=headers)
        return answer.json()


@pytest.fixture
def estate(client: TestClient, engine: Engine) -> Estate:
    return Estate(client, engine)


def recent(minutes: float) -> datetime:
    return utcnow() - timedelta(minutes=minutes)


class TestEnergy:
    def test_energy_is_counted_by_site_device_class_state_and_method(self, client, estate, engine):
        estate.post(estate.enroll("Hillside Primary"), 1, 4, T0, watts=45.0)
        estate.post(estate.enroll("Hillside Primary"), 1, 2, T0, watts=60.0, state=PowerState.ACTIVE)
        estate.post(estate.enroll("Northgate Academy", DeviceClass.LAPTOP), 1, 3, T0, watts=12.0)

        samples = scrape(client)

        name = "caretaker_energy_joules_total"
        # A desktop is counted with its monitor (the catalogue's 25 W on); a laptop's screen is its own.
        assert value(samples, name, site="Hillside Primary", device_class="desktop", state="idle",
                     method="model") == pytest.approx(4 * 300 * (45.0 + 25.0))
        assert value(samples, name, site="Hillside Primary", device_class="desktop", state="active",
                     method="model") == pytest.approx(2 * 300 * (60.0 + 25.0))
        assert value(samples, name, site="Northgate Academy", device_class="laptop", state="idle",
                     method="model") == pytest.approx(3 * 300 * 12.0)
        # Since then they were silent, so off: attributed at the catalogue's off watts.
        assert value(samples, name, site="Northgate Academy", device_class="laptop", state="off",
                     method="attributed") > 0
        with Session(engine) as session:
            settled = settled_until(utcnow(), Settings().report_interval_seconds)
            total = energy_totals(session, T0, settled, ("estate",), now=settled).total
        assert sum(value(samples, name, **labels) for labels in series(samples, name)) == pytest.approx(
            float(total.wh) * 3600)

    def test_a_metered_hour_counts_once_however_many_methods_reported_it(self, client, estate, engine):
        """The same device-hour from an outlet meter and from the agent's model: the meter wins it, in the
        method series and in their sum, as in `caretaker energy summary`."""
        estate.post(estate.enroll(), 1, 12, T0, watts=45.0)  # the agent's hour: 45 W on its model
        with session_scope(engine) as session:
            device_id = session.exec(select(Device.id)).one()
            session.add(EnergyBucket(device_id=device_id, hour=T0, state="idle", method="metered",
                                     joules=50.0 * 3600, seconds=3600.0))

        samples = scrape(client)

        name = "caretaker_energy_joules_total"
        labels = {"site": "Hillside Primary", "device_class": "desktop", "state": "idle"}
        assert value(samples, name, method="metered", **labels) == pytest.approx(50.0 * 3600)
        assert value(samples, name, method="model", **labels) == 0.0  # not 45 W + 25 W on top
        with Session(engine) as session:
            summary = energy_summary(session, T0, T0 + timedelta(hours=1), group_by="estate", now=utcnow())
        assert summary.total.kwh == Decimal("0.050")  # 50 W for an hour, once

    def test_a_replayed_batch_adds_no_energy(self, client, estate):
        machine = estate.enroll()
        estate.post(machine, 1, 3, T0)
        before = scrape(client)
        assert estate.post(machine, 1, 3, T0)["duplicate"] == [1, 2, 3]
        after = scrape(client)
        labels = {"site": "Hillside Primary", "device_class": "desktop", "state": "idle", "method": "model"}
        assert value(after, "caretaker_energy_joules_total", **labels) == value(
            before, "caretaker_energy_joules_total", **labels) == pytest.approx(3 * 300 * (45.0 + 25.0))

    def test_the_hour_in_progress_is_not_counted_until_it_has_settled(self, client, estate):
        estate.post(estate.enroll(), 1, 1, recent(5))
        assert not series(scrape(client), "caretaker_energy_joules_total")

    def test_a_counter_is_never_exported_below_its_last_value(self):
        """A settled hour revised down (a late report replacing attributed silence) holds the counter
        where it was until the total passes it again: Prometheus would read a fall as a reset."""
        key = ("Hillside Primary", "desktop", "off", "attributed")
        first = History({key: 100.0}, {key[:2]: 5.0}, {key[:2]: 2.0}, {key[:2]: 0.0})
        revised = History({key: 90.0}, {key[:2]: 4.0}, {key[:2]: 3.0}, {key[:2]: 0.0})
        held = ratchet(first, revised)
        assert (held.energy_joules[key], held.carbon_grams[key[:2]], held.cost_pence[key[:2]]) == (100.0, 5.0, 3.0)
        grown = ratchet(held, History({key: 130.0}, {}, {}, {}))
        assert grown.energy_joules[key] == 130.0

    def test_a_restarted_replica_serves_the_counters_any_replica_exported(self, engine, tmp_path):
        """The counters last exported are kept in the database: a controller starting up serves them on its
        first scrape (working all history out in the background), and never exports below what another
        replica exported, so Prometheus behind a load balancer never reads a reset."""
        labels = {"site": "Hillside Primary", "device_class": "desktop", "state": "idle", "method": "model"}
        with make_client(engine, tmp_path, cache_seconds=0) as first:
            machines = Estate(first, engine)
            machines.post(machines.enroll(), 1, 4, T0, watts=45.0)
            exported = value(scrape(first), "caretaker_energy_joules_total", **labels)
        assert exported == pytest.approx(4 * 300 * (45.0 + 25.0))
        with session_scope(engine) as session:  # another replica, a moment later, exported a little more
            counters.store(session, History({tuple(labels.values()): exported + 500.0}, {}, {}, {}))
        with make_client(engine, tmp_path, cache_seconds=300) as restarted:
            assert value(scrape(restarted), "caretaker_energy_joules_total", **labels) == exported + 500.0
            clock.sleep(0.5)  # the background reload works the history out: it holds at the floor
            assert value(scrape(restarted), "caretaker_energy_joules_total", **labels) == exported + 500.0


class TestPowerNow:
    def test_power_now_sums_each_fresh_device_latest_report(self, client, estate):
        estate.post(estate.enroll(), 1, 3, recent(20), watts=45.0)
        estate.post(estate.enroll(), 1, 1, recent(10), watts=60.0, state=PowerState.ACTIVE)
        estate.post(estate.enroll(), 1, 3, T0, watts=200.0)  # silent for two days: not drawing power now

        samples = scrape(client)

        assert value(samples, "caretaker_power_watts", site="Hillside Primary", device_class="desktop",
                     method="model") == pytest.approx(45.0 + 60.0)

    def test_power_follows_the_latest_report_not_the_average(self, client, estate):
        machine = estate.enroll()
        estate.post(machine, 1, 2, recent(20), watts=80.0)
        estate.post(machine, 3, 1, recent(10), watts=20.0)

        samples = scrape(client)

        assert value(samples, "caretaker_power_watts", site="Hillside Primary", device_class="desktop",
                     method="model") == pytest.approx(20.0)


    def test_a_spool_flushed_late_does_not_replace_the_latest_report(self, client, estate):
        """An agent back online sends its newest report, then its spool: the older reports are stored
        and counted as energy, but power and state stay those of the newest."""
        machine = estate.enroll()
        estate.post(machine, 10, 1, recent(6), watts=20.0, state=PowerState.ACTIVE)
        assert estate.post(machine, 1, 3, recent(40), watts=90.0)["accepted"] == [1, 2, 3]

        samples = scrape(client)

        assert value(samples, "caretaker_power_watts", site="Hillside Primary", device_class="desktop",
                     method="model") == pytest.approx(20.0)
        assert value(samples, "caretaker_devices", site="Hillside Primary", device_class="desktop",
                     state="on") == 1

class TestDevicesByState:
    def test_each_device_is_counted_once_in_the_state_its_reports_show(self, client, estate):
        estate.post(estate.enroll(), 1, 1, recent(10), state=PowerState.ACTIVE)  # on
        estate.post(estate.enroll(), 1, 1, recent(10), state=PowerState.IDLE)  # idle
        estate.post(estate.enroll(), 1, 1, recent(10), state=PowerState.SLEEP)  # asleep
        estate.post(estate.enroll(), 1, 1, T0, state=PowerState.SLEEP)  # silent since sleeping: asleep
        estate.post(estate.enroll(), 1, 1, T0, state=PowerState.ACTIVE)  # silent for two days: off
        gone = utcnow() - GONE_AFTER - timedelta(days=1)
        estate.post(estate.enroll(), 1, 1, gone, state=PowerState.ACTIVE)  # silent too long to say: unknown
        estate.enroll()  # never reported: unknown

        samples = scrape(client)

        counts = {state: value(samples, "caretaker_devices", site="Hillside Primary", device_class="desktop",
                               state=state) for state in ("on", "idle", "asleep", "off", "unknown")}
        assert counts == {"on": 1, "idle": 1, "asleep": 2, "off": 1, "unknown": 2}

    def test_every_state_is_shown_even_when_no_device_is_in_it(self, client, estate):
        estate.post(estate.enroll(), 1, 1, recent(10))
        states = {labels["state"] for labels in series(scrape(client), "caretaker_devices")}
        assert states == {"on", "idle", "asleep", "off", "unknown"}


class TestCarbonAndCost:
    def test_carbon_is_each_hours_energy_at_its_years_grid_factor(self, client, estate):
        estate.post(estate.enroll(), 1, 4, T0, watts=45.0)  # 4 x 300 s x 45 W = 54,000 J = 0.015 kWh

        samples = scrape(client)

        # T0 falls in 2026, which has no published factor yet: the latest earlier one (2025) applies to
        # every hour, the reported one and the silence attributed since.
        joules = sum(value(samples, "caretaker_energy_joules_total", **labels)
                     for labels in series(samples, "caretaker_energy_joules_total"))
        assert joules > 4 * 300 * 45.0
        assert value(samples, "caretaker_carbon_grams_total", site="Hillside Primary",
                     device_class="desktop") == pytest.approx(joules / 3.6e6 * 177.0)
        assert value(samples, "caretaker_carbon_factor_grams_per_kwh", year="2025",
                     source=carbon.shipped().years[2025].source) == pytest.approx(177.0)

    def test_cost_is_priced_at_the_band_in_force_each_hour_and_unpriced_energy_is_left_out(self, client, estate,
                                                                                          engine):
        machine = estate.enroll()
        london = ZoneInfo("Europe/London")
        night = datetime.combine(T0.astimezone(london).date(), time(1, 0), london)  # 01:00-01:20 local
        day = night + timedelta(hours=12)  # 13:00-13:20 local
        with session_scope(engine) as session:
            site_id = session.exec(select(Device.site_id)).one()
            set_tariff(session, site_id, "economy 7", night - timedelta(hours=1), [
                {"name": "night", "start": "00:30", "end": "07:30", "pence_per_kwh": 15.0},
                {"name": "day", "start": "07:30", "end": "00:30", "pence_per_kwh": 30.2}])
        estate.post(machine, 1, 4, night - timedelta(hours=24), watts=45.0)  # before the tariff: unpriced
        estate.post(machine, 5, 4, night, watts=45.0)  # 0.015 kWh at night
        estate.post(machine, 9, 4, day, watts=90.0)  # 0.030 kWh by day

        samples = scrape(client)

        with Session(engine) as session:
            settled = settled_until(utcnow(), Settings().report_interval_seconds)
            total = energy_totals(session, night - timedelta(hours=24), settled, ("site",), now=settled).total
        assert total.unpriced_wh > 0 and total.pence > 0
        assert value(samples, "caretaker_cost_pence_total", site="Hillside Primary",
                     device_class="desktop") == pytest.approx(float(total.pence))


class TestSavings:
    def test_the_energy_policy_actions_saved_is_counted_where_the_device_is(self, client, estate, engine):
        machine = estate.enroll()
        estate.post(machine, 1, 12, T0, watts=45.0)  # an hour idle: its own idle draw
        estate.post(machine, 13, 24, T0 + timedelta(hours=1), watts=1.0, state=PowerState.OFF)  # shut down
        with session_scope(engine) as session:
            device = session.exec(select(Device)).one()
            session.add(ActionRecord(at=T0 + timedelta(hours=1), site_id=device.site_id, device_id=device.id,
                                     kind="shutdown", outcome="done", mode="force", reason="out of hours",
                                     actor="controller",
                                     details={"until": (T0 + timedelta(hours=3)).isoformat()}))
        with Session(engine) as session:
            expected = savings_summary(session, T0 - timedelta(days=1), utcnow()).saved_kwh

        samples = scrape(client)

        assert expected > 0
        assert value(samples, "caretaker_energy_saved_joules_total", site="Hillside Primary",
                     device_class="desktop") == pytest.approx(float(expected) * 3.6e6)

    def test_a_site_without_policy_actions_shows_a_zero_not_nothing(self, client, estate):
        estate.post(estate.enroll("Northgate Academy"), 1, 1, recent(10))
        assert ("caretaker_energy_saved_joules_total",
                frozenset({"site": "Northgate Academy", "device_class": "desktop"}.items())) in scrape(client)


class TestOutOfHours:
    def test_awake_devices_are_counted_when_their_policy_says_power_down(self, estate, engine, tmp_path):
        policy_dir = tmp_path / "policies"
        shutil.copytree(REPO / "policies", policy_dir)
        london = ZoneInfo("Europe/London")
        today = utcnow().astimezone(london).date()
        saturday = today - timedelta(days=(today.weekday() - 5) % 7 or 7)
        now = datetime.combine(saturday, time(13, 0), london).astimezone(UTC)  # a weekend: out of hours all day
        awake = [estate.enroll() for _ in range(2)]
        estate.post(awake[0], 1, 1, now - timedelta(minutes=10), state=PowerState.ACTIVE)
        estate.post(awake[1], 1, 1, now - timedelta(minutes=10), state=PowerState.IDLE)
        estate.post(estate.enroll(), 1, 1, now - timedelta(minutes=10), state=PowerState.SLEEP)
        estate.post(estate.enroll(), 1, 1, now - timedelta(hours=5), state=PowerState.ACTIVE)  # silent since

        policies = PolicyStore(policy_dir, engine).current()
        with Session(engine) as session:
            summary = summarise(session, now, 300, policies=policies)
            weekday = summarise(session, now - timedelta(days=3, hours=2), 300, policies=policies)  # Wed 11:00

        assert summary.out_of_hours == {("Hillside Primary", "desktop"): 2}
        assert weekday.out_of_hours == {("Hillside Primary", "desktop"): 0}

    def test_without_policies_no_device_is_out_of_hours(self, client, estate):
        estate.post(estate.enroll(), 1, 1, recent(10), state=PowerState.ACTIVE)
        assert value(scrape(client), "caretaker_devices_on_out_of_hours", site="Hillside Primary",
                     device_class="desktop") == 0


class TestWakes:
    def test_finished_wakes_are_counted_by_outcome_and_the_rest_shown_in_flight(self, client, estate, engine):
        estate.enroll()
        estate.enroll("Northgate Academy")
        with session_scope(engine) as session:
            device = session.exec(select(Device).where(Device.hostname == "PC001")).one()
            for status in ("confirmed", "confirmed", "failed", "queued", "sent"):
                session.add(WakeRequest(site_id=device.site_id, device_id=device.id, mac="00:1a:2b:3c:00:01",
                                        status=status, reason="test", requested_by="test", due_at=utcnow()))

        samples = scrape(client)

        finished = {(labels["site"], labels["outcome"]): value(samples, "caretaker_wake_requests_total", **labels)
                    for labels in series(samples, "caretaker_wake_requests_total")}
        assert finished == {("Hillside Primary", "confirmed"): 2, ("Hillside Primary", "failed"): 1,
                            ("Northgate Academy", "confirmed"): 0, ("Northgate Academy", "failed"): 0}
        in_flight = {labels["status"]: value(samples, "caretaker_wake_requests_open", **labels)
                     for labels in series(samples, "caretaker_wake_requests_open")}
        assert in_flight == {"queued": 1, "sent": 1}


class TestAFailingSection:
    def test_one_packages_failure_hides_its_figures_only_and_says_so(self, client, estate, monkeypatch, caplog):
        machine = estate.enroll()
        estate.post(machine, 1, 1, T0)
        estate.post(machine, 2, 1, recent(10))

        def broken(*args, **kwargs):
            raise RuntimeError("wake table unreadable")

        monkeypatch.setattr("controller.estate.summary.wakes_by_outcome", broken)
        monkeypatch.setattr("controller.estate.summary.saved_by_site", broken)
        samples = scrape(client)

        failed = {labels["section"]: value(samples, "caretaker_metrics_section_failed", **labels)
                  for labels in series(samples, "caretaker_metrics_section_failed")}
        assert failed == {"savings": 1, "wakes": 1, "lifecycle": 0, "out_of_hours": 0}
        assert not series(samples, "caretaker_wake_requests_total")
        assert not series(samples, "caretaker_energy_saved_joules_total")
        assert value(samples, "caretaker_devices", site="Hillside Primary", device_class="desktop", state="idle") == 1
        assert series(samples, "caretaker_energy_joules_total")
        assert "wake table unreadable" in caplog.text


class TestLifecycle:
    def test_devices_are_counted_by_their_asset_register_state(self, client, estate, engine):
        for _ in range(3):
            estate.enroll()  # agent-reported machines enter the register as deployed
        with session_scope(engine) as session:
            move(session, "PC002", State.IN_REPAIR, "cracked screen", "test")
            site_id = session.exec(select(Device.site_id)).first()
            session.add(Device(site_id=site_id, hostname="SPARE01", device_class="laptop"))  # not in the register

        samples = scrape(client)

        counts = {(labels["device_class"], labels["stage"]): value(samples, "caretaker_devices_lifecycle", **labels)
                  for labels in series(samples, "caretaker_devices_lifecycle")}
        assert counts == {("desktop", "deployed"): 2, ("desktop", "in_repair"): 1, ("laptop", "unregistered"): 1}


class TestAgents:
    def test_agents_are_counted_by_how_long_since_they_last_reported(self, client, estate, engine):
        silent = {"under_1d": timedelta(hours=3), "older": timedelta(days=30)}
        machines = {label: estate.enroll() for label in silent}
        estate.enroll()  # enrolled, never reported
        estate.post(estate.enroll(), 1, 1, recent(10))  # reporting now
        with session_scope(engine) as session:
            for label, age in silent.items():
                session.get(Agent, machines[label]["agent_id"]).last_seen = utcnow() - age

        samples = scrape(client)

        counts = {labels["last_seen"]: value(samples, "caretaker_agents", **labels)
                  for labels in series(samples, "caretaker_agents")}
        assert counts == {"under_15m": 1, "under_1h": 0, "under_1d": 1, "under_7d": 0, "older": 1, "never": 1}


class TestIngest:
    def test_reports_are_counted_by_outcome_and_each_request_is_timed(self, client, estate):
        machine = estate.enroll()
        estate.post(machine, 1, 3, T0)
        estate.post(machine, 2, 3, T0 + timedelta(minutes=5))  # 2 and 3 again, 4 new
        future = estate.post(machine, 10, 2, utcnow() + timedelta(days=1))
        assert [r["seq"] for r in future["rejected"]] == [10, 11]

        samples = scrape(client)

        assert value(samples, "caretaker_ingest_reports_total", outcome="accepted") == 4
        assert value(samples, "caretaker_ingest_reports_total", outcome="duplicate") == 2
        assert value(samples, "caretaker_ingest_reports_total", outcome="rejected") == 2
        assert value(samples, "caretaker_ingest_request_duration_seconds_count") == 3
        assert value(samples, "caretaker_ingest_request_duration_seconds_sum") > 0

    def test_the_backlog_is_the_writer_queue_at_scrape_time(self, engine):
        writer = IngestWriter(engine, 300)  # never started, so nothing drains its queue
        agent = AgentIdentity("a1", 1, 1)
        for seq in (1, 2):
            writer.submit(agent, ReportBatch(PROTOCOL_VERSION, tuple(consecutive(seq, 1))))
        (family,) = BacklogCollector(writer).collect()
        assert family.name == "caretaker_ingest_backlog"
        assert [s.value for s in family.samples] == [2]


class TestExposition:
    def test_openmetrics_is_served_when_asked_for_with_the_same_figures(self, client, estate):
        machine = estate.enroll()
        estate.post(machine, 1, 3, T0)
        estate.post(machine, 4, 3, recent(20))
        plain = client.get("/metrics")
        openmetrics = client.get("/metrics", headers={"Accept": OPENMETRICS})
        assert plain.headers["content-type"].startswith("text/plain")
        assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
        assert openmetrics.text.rstrip().endswith("# EOF")

        text, om = scrape(client), scrape(client, OPENMETRICS)

        for name in ("caretaker_energy_joules_total", "caretaker_power_watts", "caretaker_devices"):
            assert series(om, name), name
            for labels in series(om, name):
                assert value(om, name, **labels) == pytest.approx(value(text, name, **labels)), (name, labels)

    def test_the_build_is_identified_by_version(self, client):
        assert value(scrape(client), "caretaker_build_info", version=version("caretaker")) == 1

    def test_series_stay_few_however_many_devices_report(self, client, estate):
        for _ in range(25):
            machine = estate.enroll()
            estate.post(machine, 1, 1, T0)
            estate.post(machine, 2, 1, recent(10))

        samples = scrape(client)

        assert len(series(samples, "caretaker_devices")) == 5
        # Idle on the model as reported, and off (attributed) for the silence since.
        assert len(series(samples, "caretaker_energy_joules_total")) == 2
        assert len(series(samples, "caretaker_power_watts")) == 1
        label_names = {name for _, labels in samples for name, _ in labels}
        assert label_names <= {"site", "device_class", "state", "method", "last_seen", "outcome", "stage", "status",
                               "year", "source", "section", "version", "le", "kind", "reason"}


class TestCache:
    def test_the_estate_is_read_at_most_once_per_cache_period(self, engine, tmp_path):
        with make_client(engine, tmp_path, cache_seconds=3600) as client:
            estate = Estate(client, engine)
            machine = estate.enroll()
            estate.post(machine, 1, 1, T0)
            first = scrape(client)
            estate.post(machine, 2, 1, T0 + timedelta(minutes=5))
            second = scrape(client)

        labels = {"site": "Hillside Primary", "device_class": "desktop", "state": "idle", "method": "model"}
        assert value(second, "caretaker_energy_joules_total", **labels) == value(
            first, "caretaker_energy_joules_total", **labels) == pytest.approx(300 * (45.0 + 25.0))
        # The process's own counters are live, not cached.
        assert value(second, "caretaker_ingest_reports_total", outcome="accepted") == 2

    def test_a_stale_estate_is_reloaded_in_the_background(self, client, estate, engine):
        now = [0.0]
        cache = EstateCache(engine, 300, ttl=15, clock=lambda: now[0])
        estate.post(estate.enroll(), 1, 1, recent(10))
        assert sum(cache.get().devices.values()) == 1
        estate.post(estate.enroll(), 1, 1, recent(10))
        now[0] = 14.9
        assert sum(cache.get().devices.values()) == 1
        now[0] = 15.0
        assert until(lambda: sum(cache.get().devices.values()), 2) == 2


def until(read: Callable[[], object], expected: object, seconds: float = 10) -> object:
    """``read()`` once it returns ``expected`` (a background reload has landed), or its last answer."""
    deadline = clock.monotonic() + seconds
    while (current := read()) != expected and clock.monotonic() < deadline:
        clock.sleep(0.02)
    return current


class TestReloading:
    def test_the_first_read_loads_and_later_reads_within_the_ttl_do_not(self):
        loads = []
        value = Reloading("test", lambda: loads.append(1) or len(loads), ttl=60, clock=lambda: 0.0)
        assert [value.get(), value.get(), value.get()] == [1, 1, 1]

    def test_a_stale_value_is_served_at_once_while_it_reloads_in_the_background(self):
        now, release = [0.0], threading.Event()
        loads: list[int] = []

        def load() -> int:
            if loads:
                release.wait(10)  # a slow reload: the reader must not wait for it
            loads.append(1)
            return len(loads)

        value = Reloading("test", load, ttl=300, clock=lambda: now[0])
        assert value.get() == 1
        now[0] = 300.0
        started = clock.monotonic()
        assert value.get() == 1
        assert value.get() == 1  # one reload at a time
        assert clock.monotonic() - started < 1
        release.set()
        assert until(value.get, 2) == 2
        assert len(loads) == 2

    def test_a_failed_reload_keeps_the_previous_value(self, caplog):
        now = [0.0]
        results: list[int | Exception] = [1, RuntimeError("database gone"), 3]

        def load() -> int:
            result = results.pop(0)
            if isinstance(result, Exception):
                raise result
            return result

        value = Reloading("test", load, ttl=10, clock=lambda: now[0])
        assert value.get() == 1
        now[0] = 10.0
        value.get()
        assert until(lambda: "database gone" in caplog.text, True)
        assert value.get() == 1
        now[0] = 30.0
        assert until(value.get, 3) == 3

    def test_a_ttl_of_zero_loads_on_every_read(self):
        loads = []
        value = Reloading("test", lambda: loads.append(1) or len(loads), ttl=0)
        assert [value.get(), value.get()] == [1, 2]


class TestPerDevice:
    def test_there_are_no_per_device_series_by_default(self, client, estate):
        estate.post(estate.enroll(), 1, 1, recent(10))
        samples = scrape(client)
        assert not series(samples, "caretaker_device_power_watts")
        assert not series(samples, "caretaker_device_series_dropped")

    def test_per_device_series_are_capped_and_the_devices_left_out_are_counted(self, engine, tmp_path):
        settings = Settings(data_dir=tmp_path, metrics_cache_seconds=0, metrics_per_device=True,
                            metrics_per_device_limit=2)
        with TestClient(create_app(settings, engine)) as client:
            estate = Estate(client, engine)
            machines = [estate.enroll() for _ in range(3)]
            for machine, watts in zip(machines, (30.0, 40.0, 50.0), strict=True):
                estate.post(machine, 1, 1, recent(10), watts=watts)
            samples = scrape(client)

        shown = {labels["hostname"]: value(samples, "caretaker_device_power_watts", **labels)
                 for labels in series(samples, "caretaker_device_power_watts")}
        assert shown == {"PC001": pytest.approx(30.0), "PC002": pytest.approx(40.0)}  # the first two enrolled
        assert value(samples, "caretaker_device_series_dropped") == 1
        # The estate totals still count every device.
        assert value(samples, "caretaker_power_watts", site="Hillside Primary", device_class="desktop",
                     method="model") == pytest.approx(120.0)


class TestToken:
    @pytest.fixture
    def guarded(self, engine, tmp_path) -> Iterator[TestClient]:
        settings = Settings(data_dir=tmp_path, metrics_cache_seconds=0, metrics_token="s3cret-scrape")
        with TestClient(create_app(settings, engine)) as client:
            yield client

    def test_a_scrape_without_the_token_is_refused(self, guarded):
        answer = guarded.get("/metrics")
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert "caretaker_" not in answer.text

    def test_a_scrape_with_a_wrong_token_is_refused(self, guarded):
        assert guarded.get("/metrics", headers={"Authorization": "Bearer s3cret-scrapf"}).status_code == 401
        assert guarded.get("/metrics", headers={"Authorization": "Basic s3cret-scrape"}).status_code == 401

    def test_a_scrape_with_the_token_is_served(self, guarded):
        answer = guarded.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
        assert answer.status_code == 200
        assert "caretaker_build_info" in answer.text
