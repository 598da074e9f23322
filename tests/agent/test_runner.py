"""The run loop against a fake controller and a fake clock: what reaches the controller, what stays
spooled, and what the operator reads in the log, through outages and refusals."""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent import credentials
from agent.client import (
    Backoff,
    ControllerUnavailable,
    PayloadTooLarge,
    ReportsRejected,
    Unauthorized,
)
from agent.config import AgentConfig
from agent.credentials import Credentials, CredentialsError
from agent.protocol import (
    Activity,
    BatchAck,
    EnrollResponse,
    Inventory,
    OperatingSystem,
    PowerState,
    RejectedReport,
    Report,
    Smbios,
)
from agent.runner import DeliveryFailed, Runner
from agent.spool import Spool

TOKEN = "tok-Rk3Vw8"
OLD_SECRET = "old-Fz2Qe5"
NEW_SECRET = "new-Yb6Tn1"
T0 = datetime(2026, 2, 16, 18, 0, tzinfo=UTC)
FROM_ONE = lambda: 0  # noqa: E731  (seqs 1, 2, 3… keep the expectations readable)


class FakeSampler:
    """The Sampler interface over canned data; ``fail_next`` makes the next report raise."""

    def __init__(self) -> None:
        self.fail_next = False

    def report(self, seq: int) -> Report:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("sensor vanished")
        start = T0 + timedelta(minutes=5 * seq)
        return Report(seq=seq, start=start, end=start + timedelta(minutes=5),
                      activity=Activity(state=PowerState.IDLE, cpu_percent=2.0))

    def inventory(self) -> Inventory:
        return Inventory(hostname="lab-07", os=OperatingSystem(name="Linux", version="Debian GNU/Linux 12"))


class FakeController:
    """The agent endpoints' contract, in memory, with ingest as idempotent as the real one."""

    def __init__(self) -> None:
        self.up = True
        self.secrets = {OLD_SECRET}
        self.tokens = {TOKEN}
        self.interval = 300
        self.max_batch: int | None = None  # bigger batches get 413
        self.too_large: set[int] = set()  # a batch holding any of these gets 413
        self.invalid: set[int] = set()  # named in a 422
        self.ignore: set[int] = set()  # silently left out of the ack
        self.refused: set[int] = set()  # answered in the ack's rejected list
        self.retry_after: float | None = None  # while down, answer 503 with this Retry-After
        self.received: list[int] = []  # every report stored, in arrival order
        self.batches: list[list[int]] = []  # every batch attempted, answered or not
        self.attempts_while_down = 0
        self.enrolments = 0

    def enroll(self, token: str, inventory: Inventory) -> EnrollResponse:
        if not self.up:
            raise ControllerUnavailable("cannot reach the controller")
        if token not in self.tokens:
            raise Unauthorized("answered 401: unknown token")
        self.enrolments += 1
        self.secrets.add(NEW_SECRET)
        return EnrollResponse(agent_id=f"ag-{self.enrolments}", secret=NEW_SECRET, device_id=7, site="north",
                              report_interval_seconds=self.interval)

    def send(self, creds: Credentials, reports: Sequence[str]) -> BatchAck:
        seqs = [json.loads(text)["seq"] for text in reports]
        self.batches.append(seqs)
        if not self.up:
            self.attempts_while_down += 1
            raise ControllerUnavailable("cannot reach the controller", self.retry_after)
        if creds.secret not in self.secrets:
            raise Unauthorized("answered 401: unknown agent")
        if (self.max_batch is not None and len(seqs) > self.max_batch) or self.too_large & set(seqs):
            raise PayloadTooLarge("answered 413")
        if self.invalid & set(seqs):
            raise ReportsRejected("answered 422: invalid report", tuple(sorted(self.invalid & set(seqs))))
        fresh = [s for s in seqs if s not in self.received and s not in self.ignore | self.refused]
        self.received += fresh
        return BatchAck(accepted=tuple(fresh), report_interval_seconds=self.interval,
                        duplicate=tuple(s for s in seqs if s not in fresh and s not in self.ignore | self.refused),
                        rejected=tuple(RejectedReport(s, f"report {s} overlaps one already counted")
                                       for s in seqs if s in self.refused))


class FakeTime:
    """A monotonic clock that only moves when the runner sleeps, running scheduled events as it passes them."""

    def __init__(self) -> None:
        self.now = 0.0
        self.events: list[tuple[float, Callable[[], None]]] = []
        self.naps = 0

    def at(self, when: float, action: Callable[[], None]) -> None:
        self.events.append((when, action))
        self.events.sort(key=lambda event: event[0])

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.naps += 1
        assert self.naps < 100_000, "the runner is spinning instead of sleeping"
        self.now += seconds
        while self.events and self.events[0][0] <= self.now:
            self.events.pop(0)[1]()


@pytest.fixture
def config(tmp_path: Path) -> AgentConfig:
    return AgentConfig(controller="https://controller.school.example", state_dir=tmp_path / "state",
                       interval_seconds=300, batch_size=50)


@pytest.fixture
def spool(config: AgentConfig) -> Iterator[Spool]:
    with Spool(config.spool_file, config.spool_max_bytes, clock_ms=FROM_ONE) as opened:
        yield opened


CREDS = Credentials(controller="https://controller.school.example", agent_id="ag-0", secret=OLD_SECRET,
                    device_id=7, site="north")


def make_runner(config: AgentConfig, spool: Spool, controller: FakeController, clock: FakeTime | None = None,
                creds: Credentials | None = CREDS, sampler: FakeSampler | None = None) -> Runner:
    clock = clock or FakeTime()
    return Runner(config, spool, sampler or FakeSampler(), controller, creds, monotonic=clock.monotonic,
                  sleep=clock.sleep, backoff=Backoff(base=2.0, cap=300.0, random=lambda: 1.0))


def pending(spool: Spool) -> list[int]:
    return [seq for seq, _ in spool.oldest(10_000)]


# --- one delivery ---------------------------------------------------------------------------------


def test_acknowledged_reports_leave_the_spool(config: AgentConfig, spool: Spool) -> None:
    controller = FakeController()
    runner = make_runner(config, spool, controller)
    for _ in range(3):
        runner.collect()

    outcome = runner.deliver()

    assert outcome.error is None
    assert outcome.delivered == (1, 2, 3)
    assert controller.received == [1, 2, 3]
    assert pending(spool) == []


def test_while_the_controller_is_down_nothing_leaves_the_spool(config: AgentConfig, spool: Spool) -> None:
    controller = FakeController()
    controller.up = False
    runner = make_runner(config, spool, controller)
    for _ in range(3):
        runner.collect()

    outcome = runner.deliver()

    assert isinstance(outcome.error, ControllerUnavailable)
    assert pending(spool) == [1, 2, 3]


def test_a_report_left_out_of_the_ack_stays_spooled(config: AgentConfig, spool: Spool) -> None:
    controller = FakeController()
    controller.ignore = {2}
    runner = make_runner(config, spool, controller)
    for _ in range(3):
        runner.collect()

    outcome = runner.deliver()

    assert outcome.error is not None
    assert pending(spool) == [2]


def test_reports_the_controller_calls_invalid_are_dropped_and_counted(config: AgentConfig, spool: Spool) -> None:
    controller = FakeController()
    controller.invalid = {2, 4}
    runner = make_runner(config, spool, controller)
    for _ in range(5):
        runner.collect()

    outcome = runner.deliver()

    assert outcome.error is None
    assert outcome.rejected == (2, 4)
    assert controller.received == [1, 3, 5]
    assert pending(spool) == []
    assert spool.stats().rejected == 2


def test_a_413_halves_the_batch_until_it_fits(config: AgentConfig, spool: Spool) -> None:
    controller = FakeController()
    controller.max_batch = 3
    runner = make_runner(replace(config, batch_size=8), spool, controller)
    for _ in range(10):
        runner.collect()

    outcome = runner.deliver()

    assert outcome.error is None
    assert [len(batch) for batch in controller.batches] == [8, 4, 2, 2, 2, 2, 2]
    assert controller.received == list(range(1, 11))


def test_a_report_too_large_to_send_even_alone_is_dropped_not_retried_forever(
        config: AgentConfig, spool: Spool) -> None:
    controller = FakeController()
    controller.too_large = {2}
    runner = make_runner(replace(config, batch_size=3), spool, controller)
    for _ in range(3):
        runner.collect()

    outcome = runner.deliver()

    assert outcome.error is None
    assert outcome.rejected == (2,)
    assert controller.received == [1, 3]
    assert spool.stats().rejected == 1


# --- the loop -------------------------------------------------------------------------------------


def test_an_outage_builds_a_backlog_that_drains_in_order_exactly_once(config: AgentConfig, spool: Spool) -> None:
    controller = FakeController()
    clock = FakeTime()
    runner = make_runner(config, spool, controller, clock)
    backlog_during_outage: list[int] = []
    clock.at(1000, lambda: setattr(controller, "up", False))
    clock.at(4590, lambda: backlog_during_outage.extend(pending(spool)))
    clock.at(4600, lambda: setattr(controller, "up", True))
    clock.at(6001, runner.stop)

    runner.run()

    collected = spool.stats().last_seq
    assert collected == 6000 // 300, "collection went on at the interval throughout the outage"
    assert len(backlog_during_outage) >= 10
    assert controller.received == list(range(1, collected + 1))
    assert pending(spool) == []
    assert 10 <= controller.attempts_while_down <= 25, "it kept trying, spaced out by the backoff"


def test_reports_rejected_in_an_ack_are_dropped_and_the_rest_of_the_batch_delivered(
        config: AgentConfig, spool: Spool) -> None:
    controller = FakeController()
    controller.refused = {2}
    runner = make_runner(config, spool, controller)
    for _ in range(3):
        runner.collect()

    outcome = runner.deliver()

    assert outcome.error is None
    assert (outcome.delivered, outcome.rejected) == ((1, 3), (2,))
    assert controller.batches == [[1, 2, 3]], "one request: nothing was sent twice"
    assert pending(spool) == []


def test_a_503_with_retry_after_is_waited_out_not_hammered(config: AgentConfig, spool: Spool) -> None:
    controller = FakeController()
    controller.retry_after = 120
    clock = FakeTime()
    runner = make_runner(config, spool, controller, clock)
    clock.at(1, lambda: setattr(controller, "up", False))
    clock.at(1200, runner.stop)

    runner.run()

    assert 1 <= controller.attempts_while_down <= 1200 // 120, "no try sooner than Retry-After"


def test_delivery_resumes_within_the_backoff_cap_of_the_controller_returning(
        config: AgentConfig, spool: Spool) -> None:
    controller = FakeController()
    controller.interval = 3600
    clock = FakeTime()
    runner = make_runner(replace(config, interval_seconds=3600), spool, controller, clock)
    delivered_at: list[float] = []
    controller.up = False
    clock.at(9000, lambda: setattr(controller, "up", True))
    clock.at(9000 + 300, lambda: delivered_at.append(clock.now) if controller.received else None)
    clock.at(9500, runner.stop)

    runner.run()

    assert delivered_at, "the backlog was delivered within one backoff cap, not at the next interval"
    assert controller.received == [1, 2]


def test_the_controller_sets_the_interval(config: AgentConfig, spool: Spool) -> None:
    controller = FakeController()
    controller.interval = 60
    clock = FakeTime()
    runner = make_runner(config, spool, controller, clock)
    first_at, then_every, stop_at = 300, 60, 1201
    clock.at(stop_at, runner.stop)

    runner.run()

    # The first report comes after the configured interval; its ack asks for 60 s from then on.
    assert runner.interval_seconds == then_every
    assert controller.received == list(range(1, 2 + (stop_at - first_at) // then_every))


def test_a_controller_asking_for_a_zero_interval_does_not_make_the_agent_spin(
        config: AgentConfig, spool: Spool) -> None:
    controller = FakeController()
    controller.interval = 0
    clock = FakeTime()
    runner = make_runner(config, spool, controller, clock)
    clock.at(400, runner.stop)

    runner.run()

    assert runner.interval_seconds == 1
    assert clock.naps < 500


def test_a_failing_collection_is_logged_and_the_next_interval_collects_again(
        config: AgentConfig, spool: Spool, caplog: pytest.LogCaptureFixture) -> None:
    controller = FakeController()
    clock = FakeTime()
    sampler = FakeSampler()
    sampler.fail_next = True
    runner = make_runner(config, spool, controller, clock, sampler=sampler)
    clock.at(301 + 300, runner.stop)

    with caplog.at_level(logging.WARNING):
        runner.run()

    assert controller.received == [2], "seq 1 was reserved, then lost to the failure: a gap, never a reuse"
    assert "sensor vanished" in caplog.text


def test_stop_ends_a_real_wait_at_once(config: AgentConfig, spool: Spool) -> None:
    spool.close()  # the runner's thread opens its own: a SQLite connection stays in its thread
    started: queue.Queue[Runner] = queue.Queue()

    def run() -> None:
        with Spool(config.spool_file, config.spool_max_bytes, clock_ms=FROM_ONE) as own:
            runner = Runner(config, own, FakeSampler(), FakeController(), CREDS)
            started.put(runner)
            runner.run()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    runner = started.get(timeout=5)
    thread.join(0.3)
    assert thread.is_alive(), "the runner waits out its 300 s interval"

    runner.stop()

    thread.join(2.0)
    assert not thread.is_alive()


# --- credentials ----------------------------------------------------------------------------------


def test_without_credentials_the_agent_enrols_once_and_keeps_them(config: AgentConfig, spool: Spool) -> None:
    controller = FakeController()
    controller.interval = 120
    clock = FakeTime()
    runner = make_runner(replace(config, token=TOKEN), spool, controller, clock, creds=None)
    clock.at(1000, runner.stop)

    runner.run()

    assert controller.enrolments == 1
    assert credentials.load(config.credentials_file) == runner.credentials
    assert runner.credentials is not None and runner.credentials.secret == NEW_SECRET
    assert controller.received == list(range(1, 1000 // 120 + 1))


def test_refused_credentials_delete_nothing_and_are_logged_once(
        config: AgentConfig, spool: Spool, caplog: pytest.LogCaptureFixture) -> None:
    controller = FakeController()
    controller.secrets = set()
    clock = FakeTime()
    runner = make_runner(config, spool, controller, clock)
    clock.at(550, runner.stop)

    with caplog.at_level(logging.INFO, logger="caretaker.agent"):
        runner.run()

    assert len(controller.batches) > 3, "it kept trying"
    assert pending(spool) == [1]
    assert controller.enrolments == 0, "no token, no re-enrolment"
    refusals = [r for r in caplog.records if "refused the credentials" in r.getMessage()]
    assert len(refusals) == 1
    assert "--token" in refusals[0].getMessage()
    assert OLD_SECRET not in caplog.text


def test_refused_credentials_with_a_token_given_enrol_again_and_deliver(
        config: AgentConfig, spool: Spool, caplog: pytest.LogCaptureFixture) -> None:
    controller = FakeController()
    controller.secrets = set()
    runner = make_runner(replace(config, token=TOKEN), spool, controller)
    runner.collect()

    with caplog.at_level(logging.INFO, logger="caretaker.agent"):
        first = runner.deliver()
        second = runner.deliver()

    assert isinstance(first.error, Unauthorized)
    assert second.error is None and second.delivered == (1,)
    assert controller.enrolments == 1
    assert credentials.load(config.credentials_file) == runner.credentials
    for secret in (TOKEN, OLD_SECRET, NEW_SECRET):
        assert secret not in caplog.text


def test_a_refused_enrolment_token_is_said_plainly(config: AgentConfig, spool: Spool) -> None:
    controller = FakeController()
    controller.tokens = set()
    runner = make_runner(replace(config, token=TOKEN), spool, controller, creds=None)

    outcome = runner.deliver()

    assert isinstance(outcome.error, Unauthorized)
    assert "refused the enrolment token" in outcome.reason
    assert TOKEN not in outcome.reason
    assert not config.credentials_file.exists()


def test_no_credentials_and_no_token_is_a_configuration_error(config: AgentConfig, spool: Spool) -> None:
    with pytest.raises(ValueError, match="no enrolment token"):
        make_runner(config, spool, FakeController(), creds=None)


# --- once -----------------------------------------------------------------------------------------


def test_once_returns_when_its_report_is_acknowledged(config: AgentConfig, spool: Spool) -> None:
    controller = FakeController()

    seq = make_runner(config, spool, controller).once()

    assert controller.received == [seq]
    assert pending(spool) == []


def test_once_fails_with_one_line_and_keeps_the_report_when_the_controller_is_down(
        config: AgentConfig, spool: Spool) -> None:
    controller = FakeController()
    controller.up = False

    with pytest.raises(DeliveryFailed) as caught:
        make_runner(config, spool, controller).once()

    assert "stays spooled" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert pending(spool) == [1]


# --- cloned disk images ---------------------------------------------------------------------------


class ClonedMachineSampler(FakeSampler):
    """This machine's hardware differs from the hardware the stored credentials were issued to."""

    def inventory(self) -> Inventory:
        return Inventory(hostname="lab-07", os=OperatingSystem(name="Linux", version="Debian GNU/Linux 12"),
                         smbios=Smbios(uuid="4c4c4544-0000-0000-0000-00000000c10e"))


CLONED_CREDS = replace(CREDS, hardware={"uuid": "4c4c4544-0038-4d10-8052-b2c04f4e4e31", "macs": []})


def test_credentials_cloned_with_a_disk_image_are_not_used_and_this_machine_enrols_as_itself(
        config: AgentConfig, spool: Spool, caplog: pytest.LogCaptureFixture) -> None:
    inherited = [spool.reserve_seq() for _ in range(2)]
    for seq in inherited:
        spool.put(FakeSampler().report(seq))
    controller = FakeController()

    with caplog.at_level(logging.WARNING, logger="caretaker.agent"):
        runner = make_runner(replace(config, token=TOKEN), spool, controller, creds=CLONED_CREDS,
                             sampler=ClonedMachineSampler())
    runner.collect()
    outcome = runner.deliver()

    assert controller.enrolments == 1 and runner.credentials.agent_id != CREDS.agent_id
    assert outcome.delivered == (3,), "only what this machine measured is sent"
    assert spool.stats().rejected == 2
    assert "cloned disk image" in caplog.text


def test_cloned_credentials_without_a_token_stop_the_agent_with_a_clear_reason(
        config: AgentConfig, spool: Spool) -> None:
    with pytest.raises(CredentialsError, match=r"cloned disk image.*--token"):
        make_runner(config, spool, FakeController(), creds=CLONED_CREDS, sampler=ClonedMachineSampler())
