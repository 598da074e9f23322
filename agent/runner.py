"""The agent's main loop: collect on the interval, spool, deliver the backlog, back off while the
controller is away.

Collecting never waits for delivery: a report is reserved a sequence number and written to the spool
before anything is sent, so an outage only grows the backlog, which drains oldest first once the
controller answers. The sampler, the transport, the clock and the sleep are all injected, so tests
drive hours of outage in milliseconds against fakes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from agent import credentials as credentials_file
from agent.client import (
    Backoff,
    ClientError,
    ControllerUnavailable,
    PayloadTooLarge,
    ReportsRejected,
    Unauthorized,
)
from agent.config import AgentConfig
from agent.credentials import Credentials, CredentialsError
from agent.processes import running
from agent.protocol import MAX_BATCH_REPORTS, MAX_INTERVAL_SECONDS, BatchAck, EnrollResponse, Inventory, Report
from agent.relay import Relay
from agent.spool import Spool

if TYPE_CHECKING:
    from agent.enforcer import Enforcer

LOG = logging.getLogger("caretaker.agent")

MIN_INTERVAL_SECONDS = 1  # a controller answering 0 must not turn the agent into a busy loop
LOG_EVERY_SECONDS = 600.0  # a persisting failure is logged again at most this often
ENFORCE_EVERY_SECONDS = 60.0  # how often the power schedule is looked at


class Transport(Protocol):
    """What the runner needs from the controller; agent.client.Client is the real one."""

    def enroll(self, token: str, inventory: Inventory) -> EnrollResponse: ...

    def send(self, credentials: Credentials, reports: Sequence[str],
             schedule_version: str | None = None) -> BatchAck: ...


class Sampler(Protocol):
    """What the runner needs from the collectors; agent.sampler.Sampler is the real one."""

    def report(self, seq: int) -> Report: ...

    def inventory(self) -> Inventory: ...


@dataclass(frozen=True)
class Delivery:
    """What one attempt to empty the spool achieved. ``error`` is None when the spool was emptied;
    otherwise ``reason`` says in one line, for an operator, what went wrong and what happens next."""

    delivered: tuple[int, ...] = ()
    rejected: tuple[int, ...] = ()
    error: ClientError | None = None
    reason: str = ""


class DeliveryFailed(Exception):
    """``once`` could not get its report acknowledged. The message is one line, safe to print."""


class Runner:
    """The loop and its two steps, ``collect`` and ``deliver``. The caller owns the spool and closes it."""

    def __init__(self, config: AgentConfig, spool: Spool, sampler: Sampler, transport: Transport,
                 credentials: Credentials | None, *, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], object] | None = None, backoff: Backoff | None = None,
                 log: logging.Logger = LOG, enforcer: Enforcer | None = None, relay: Relay | None = None) -> None:
        if credentials is None and not config.token:
            raise ValueError("the agent has no credentials and no enrolment token")
        if credentials is not None and not credentials.issued_to(sampler.inventory()):
            credentials = _forget_cloned(config, credentials, spool, log)
        self._config = config
        self._spool = spool
        self._sampler = sampler
        self._transport = transport
        self._credentials = credentials
        self._credentials_refused = False
        self._monotonic = monotonic
        self._stopping = threading.Event()
        # The default sleep is the stop event itself, so a signal ends the wait at once.
        self._sleep = sleep or self._stopping.wait
        self._backoff = backoff or Backoff()
        self._log = log
        self._warn = _RateLimitedWarning(log, monotonic)
        self.interval_seconds = _clamp_interval(config.interval_seconds)
        self._enforcer = enforcer  # carries out the controller's power schedule, online or not
        self._relay = relay or Relay()  # sends the magic packets the controller orders, if elected relay

    @property
    def credentials(self) -> Credentials | None:
        return self._credentials

    def stop(self) -> None:
        """Ask ``run`` to return; safe from a signal handler. The step in progress finishes first."""
        self._stopping.set()

    def collect(self) -> int:
        """Measure one interval and spool it; returns its seq."""
        seq = self._spool.reserve_seq()
        report = self._sampler.report(seq)
        if self._enforcer is not None:
            report = replace(report, actions=self._enforcer.drain())
            watched = self._enforcer.watched_processes
            if watched:
                report = replace(report, activity=replace(report.activity, processes_watched=watched,
                                                          processes_running=running(watched)))
        relayed = self._relay.take_sent()
        if relayed:
            report = replace(report, relayed_wakes=relayed)
        dropped = self._spool.put(report)
        if dropped:
            self._warn("spool-full", f"spool is full ({self._spool.max_bytes} bytes): dropped the {dropped} "
                                     "oldest unsent report(s)")
        return seq

    def deliver(self) -> Delivery:
        """Enrol if needed, then send the backlog oldest first until it is empty or sending fails."""
        try:
            self._enroll_if_needed()
        except Unauthorized as error:
            return Delivery(error=error, reason=f"the controller refused the enrolment token ({error})")
        except ClientError as error:
            return Delivery(error=error, reason=f"enrolment failed: {error}")
        return self._flush()

    def once(self) -> int:
        """Collect one report and deliver it (after any backlog); returns its seq once acknowledged."""
        seq = self.collect()
        outcome = self.deliver()
        if seq in outcome.delivered:
            return seq
        if seq in outcome.rejected:
            raise DeliveryFailed(f"the controller rejected report {seq} as invalid")
        raise DeliveryFailed(f"report {seq} stays spooled: {outcome.reason or 'delivery was interrupted'}")

    def run(self) -> None:
        """Until ``stop``: collect every interval, deliver after each collection, back off on failure.

        The first report is collected one interval after start, so it covers a whole interval; the
        backlog left by an earlier run (and enrolment, if needed) is delivered straight away.
        """
        last_collect = self._monotonic()
        deliver_at: float | None = last_collect
        enforce_at = last_collect
        while not self._stopping.is_set():
            now = self._monotonic()
            if self._enforcer is not None and now >= enforce_at:
                self._enforce()
                enforce_at = now + min(ENFORCE_EVERY_SECONDS, self.interval_seconds)
            if now >= last_collect + self.interval_seconds:
                self._collect_and_log()
                last_collect = now
                if deliver_at is None:
                    deliver_at = now
            if deliver_at is not None and now >= deliver_at and not self._stopping.is_set():
                deliver_at = self._attempt_delivery(now)
            wake = last_collect + self.interval_seconds
            if deliver_at is not None:
                wake = min(wake, deliver_at)
            if self._enforcer is not None:
                wake = min(wake, enforce_at)
            self._sleep(max(0.0, wake - self._monotonic()))

    # --- internals ------------------------------------------------------------------------------

    def _collect_and_log(self) -> None:
        try:
            self.collect()
        except Exception as exc:
            # A collector bug must not stop reporting altogether (nor, later, enforcement): the next
            # interval tries again, and the gap shows in the sequence numbers.
            self._warn("collect", f"collecting a report failed: {type(exc).__name__}: {exc}")

    def _enforce(self) -> None:
        try:
            self._enforcer.tick()
        except Exception as exc:
            self._warn("enforce", f"enforcing the power schedule failed: {type(exc).__name__}: {exc}")

    def _attempt_delivery(self, now: float) -> float | None:
        """Deliver once; returns when to try again (None: nothing pending until the next report)."""
        outcome = self.deliver()
        if outcome.error is None:
            if self._backoff.failures:
                self._log.info("controller answering again after %d failed attempt(s); backlog delivered",
                               self._backoff.failures)
                self._warn.clear()
            self._backoff.reset()
            return None
        retry_after = getattr(outcome.error, "retry_after", None)
        delay = self._backoff.next_delay() if retry_after is None else self._backoff.at_least(retry_after)
        self._warn(type(outcome.error).__name__,
                   f"{outcome.reason}; {self._spool.stats().pending} report(s) spooled, "
                   f"next try in {delay:.0f} s")
        return now + delay

    def _enroll_if_needed(self) -> None:
        if self._credentials is not None and not (self._credentials_refused and self._config.token):
            return
        inventory = self._sampler.inventory()
        answer = self._transport.enroll(self._config.token, inventory)
        creds = Credentials.from_enrollment(self._config.controller, answer, inventory)
        credentials_file.save(self._config.credentials_file, creds)
        self._credentials = creds
        self._credentials_refused = False
        self._log.info("enrolled at %s as agent %s (device %d, site %s)",
                       creds.controller, creds.agent_id, creds.device_id, creds.site)
        self._set_interval(answer.report_interval_seconds)

    def _flush(self) -> Delivery:
        assert self._credentials is not None  # deliver() enrolled first
        delivered: list[int] = []
        rejected: list[int] = []

        def outcome(error: ClientError | None = None, reason: str = "") -> Delivery:
            return Delivery(tuple(delivered), tuple(rejected), error, reason or str(error or ""))

        size = max(1, min(self._config.batch_size, MAX_BATCH_REPORTS))
        while not self._stopping.is_set():
            batch = self._spool.oldest(size)
            if not batch:
                return outcome()
            seqs = [seq for seq, _ in batch]
            try:
                texts = [text for _, text in batch]
                held = self._enforcer.schedule_version if self._enforcer is not None else None
                ack = (self._transport.send(self._credentials, texts) if held is None
                       else self._transport.send(self._credentials, texts, schedule_version=held))
            except PayloadTooLarge as error:
                if len(batch) > 1:
                    size = len(batch) // 2
                    continue
                # Alone and still too large: it can never be delivered, and must not block the rest.
                rejected += self._reject(seqs, error)
                continue
            except ReportsRejected as error:
                named = [seq for seq in error.seqs if seq in seqs]
                if not named:
                    return outcome(error)
                rejected += self._reject(named, error)
                continue
            except Unauthorized as error:
                self._credentials_refused = True
                return outcome(error, self._credentials_refused_reason(error))
            except ClientError as error:
                return outcome(error)
            self._set_interval(ack.report_interval_seconds)
            if ack.schedule is not None and self._enforcer is not None:
                self._enforcer.update(ack.schedule)
            if ack.wake_orders:
                self._relay.accept(ack.wake_orders)
            acked = set(ack.accepted) | set(ack.duplicate)
            done = [seq for seq in seqs if seq in acked]
            self._spool.remove(done)
            delivered += done
            refused = [r for r in ack.rejected if r.seq in seqs and r.seq not in acked]
            if refused:
                reasons = "; ".join(r.reason for r in refused[:3]) + (" …" if len(refused) > 3 else "")
                rejected += self._reject([r.seq for r in refused], ClientError(reasons))
            if len(done) + len(refused) < len(seqs):
                return outcome(ControllerUnavailable(
                    f"the controller acknowledged only {len(done)} of {len(seqs)} reports sent"))
        return outcome()

    def _reject(self, seqs: list[int], error: ClientError) -> list[int]:
        self._spool.reject(seqs)
        self._log.warning("dropped report(s) %s: the controller will never accept them (%s)",
                          ", ".join(map(str, seqs)), error)
        return seqs

    def _set_interval(self, seconds: int) -> None:
        interval = _clamp_interval(seconds)
        if interval != self.interval_seconds:
            self._log.info("report interval is now %d s (was %d s), as the controller asks",
                           interval, self.interval_seconds)
            self.interval_seconds = interval

    def _credentials_refused_reason(self, error: Unauthorized) -> str:
        agent = self._credentials.agent_id if self._credentials else "?"
        if self._config.token:
            return f"the controller refused the credentials of agent {agent} ({error}); enrolling again " \
                   "with the token given"
        return f"the controller refused the credentials of agent {agent} ({error}); nothing is deleted; " \
               "run the agent with --token <a new enrolment token> to enrol again"


class _RateLimitedWarning:
    """One warning line per kind of trouble, then at most one per ``every`` seconds while it lasts,
    saying how many were held back, so a night-long outage is a few lines rather than hundreds."""

    def __init__(self, log: logging.Logger, monotonic: Callable[[], float],
                 every: float = LOG_EVERY_SECONDS) -> None:
        self._log = log
        self._monotonic = monotonic
        self._every = every
        self._last: dict[str, tuple[float, int]] = {}  # kind -> (logged at, held back since)

    def __call__(self, kind: str, message: str) -> None:
        now = self._monotonic()
        logged_at, held = self._last.get(kind, (None, 0))
        if logged_at is not None and now - logged_at < self._every:
            self._last[kind] = (logged_at, held + 1)
            return
        self._log.warning("%s%s", message, f" ({held} similar held back)" if held else "")
        self._last[kind] = (now, 0)

    def clear(self) -> None:
        self._last.clear()


def _forget_cloned(config: AgentConfig, cloned: Credentials, spool: Spool, log: logging.Logger) -> None:
    """Credentials (and spool) copied with a disk image belong to the machine it was taken from.

    Reporting with them would merge two machines into one device and collide their sequence numbers,
    so this machine enrols as itself, and the reports spooled on the original are not sent as ours.
    """
    if not config.token:
        raise CredentialsError(f"{config.credentials_file} was issued to agent {cloned.agent_id} on other hardware "
                               "(a cloned disk image?); enrol this machine with --token <enrolment token>")
    inherited = [seq for seq, _ in spool.oldest(max(spool.stats().pending, 1))]
    spool.reject(inherited)
    log.warning("credentials of agent %s were issued to other hardware (a cloned disk image?): enrolling this "
                "machine afresh; %d report(s) spooled on the original machine discarded", cloned.agent_id,
                len(inherited))


def _clamp_interval(seconds: int) -> int:
    return max(MIN_INTERVAL_SECONDS, min(int(seconds), MAX_INTERVAL_SECONDS))
