"""The controller's Prometheus metrics, built per app: nothing registers on import.

Two kinds of series:

* the estate (power now, devices by state and stage, agents by age, out of hours, wakes) and its
  all-history counters (energy, carbon, cost, savings), read from the database by ``EstateCollector``
  through ``Reloading`` caches: a scrape storm or several Prometheus servers cost one set of queries
  per ``metrics_cache_seconds`` (history: ``metrics_history_seconds``), and after the first scrape no
  scrape waits for those queries;
* the process's own ingest (reports by outcome, request latency, writer backlog), kept in memory.

Labels are site, device class, state and method by default. Per-device series (power now) are opt-in
(``metrics_per_device``) and capped (``metrics_per_device_limit``), with a gauge of the devices left out:
a large estate would otherwise make a series per device per scrape.

Units: joules, watts and grams are base units. Money has none in Prometheus; cost is in pence because
tariffs are quoted in p/kWh, so the counter is the tariff times kWh with no scaling to forget.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlmodel import Session

from controller.estate import counters
from controller.estate.summary import SECTIONS, EstateSummary, History, PerDevice, history, summarise
from controller.policy.store import PolicyStore
from controller.power.service import DispatchCounters
from controller.register.conflicts import count_conflicts
from controller.register.ingest import IngestWriter
from controller.settings import Settings
from controller.timeutil import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

# Ingest requests take milliseconds when healthy (group commit); the top buckets catch a stalled disk.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Reloading(Generic[T]):
    """A value recomputed by ``load`` at most once per ``ttl`` seconds, without making readers wait.

    The first ``get`` loads inline (there is nothing to serve yet), unless ``initial`` has a value to serve
    meanwhile (the counters last exported, kept in the database), which it then reloads at once. After
    that, a ``get`` that finds the value older than ``ttl`` starts one background reload and returns the
    previous value at once, so a scrape costs exposition only, however large the estate
    (bench/metrics_scrape.py); figures lag by up to ``ttl`` plus the reload's own time. ``ttl`` 0 means
    always current: every ``get`` loads inline.
    A failed reload is logged and the previous value kept; the next stale ``get`` tries again.
    """

    def __init__(self, name: str, load: Callable[[], T], ttl: float, clock: Callable[[], float] = time.monotonic,
                 initial: Callable[[], T | None] | None = None):
        self._name = name
        self._load = load
        self._initial = initial
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._value: T | None = None
        self._loaded = 0.0
        self._reloading = False

    def get(self, refresh: bool = True) -> T:
        """The value; with ``refresh`` False a stale one is served without starting its reload (the
        caller starts it later, with another ``get``, when it would not compete with the caller's work)."""
        with self._lock:
            if self._value is None and self._ttl > 0 and self._initial is not None:
                self._value = self._initial()  # served at once, and reloaded in the background below
                self._loaded = float("-inf")
            if self._value is None or self._ttl <= 0:
                self._value, self._loaded = self._load(), self._clock()
            elif refresh and self._clock() - self._loaded >= self._ttl and not self._reloading:
                self._reloading = True
                threading.Thread(target=self._reload, name=self._name, daemon=True).start()
            return self._value

    def _reload(self) -> None:
        try:
            value: T | None = self._load()
        except Exception:
            log.exception("%s: reload failed; serving the previous figures", self._name)
            value = None
        with self._lock:
            if value is not None:
                self._value, self._loaded = value, self._clock()
            self._reloading = False


class EstateCache:
    """The latest ``EstateSummary``: the estate now, reloaded every ``ttl`` seconds, and the all-history
    counters (energy, carbon, cost, savings: a scan of every hourly bucket), every ``history_ttl``."""

    def __init__(self, engine: Engine, report_interval_seconds: int, ttl: float,
                 clock: Callable[[], float] = time.monotonic, per_device_limit: int | None = None,
                 policies: PolicyStore | None = None, history_ttl: float = 0.0):
        self._engine = engine
        self._interval = report_interval_seconds
        self._per_device_limit = per_device_limit
        self._policies = policies
        self._exported: History | None = None  # the counters as last exported: they never go below it
        self._history = Reloading("metrics-history", self._load_history, history_ttl, clock, self._stored_history)
        self._summary = Reloading("metrics-estate", self._load_summary, ttl, clock)

    def get(self) -> EstateSummary:
        return self._summary.get()

    def _load_history(self) -> History:
        with Session(self._engine) as session:
            self._exported = history(session, utcnow(), self._interval, self._exported)
            return self._exported

    def _stored_history(self) -> History | None:
        with Session(self._engine) as session:
            self._exported = counters.load(session)
            return self._exported

    def _load_summary(self) -> EstateSummary:
        policies = self._policies.current() if self._policies is not None else None
        past = self._history.get(refresh=False)
        with Session(self._engine) as session:
            summary = summarise(session, utcnow(), self._interval, self._per_device_limit, policies, past)
        # The history reload starts after the estate is read: a thread working a year out in Python would
        # otherwise hold the GIL through the first scrape after a restart, which serves the stored counters.
        self._history.get()
        return summary


def _family(kind: type[GaugeMetricFamily] | type[CounterMetricFamily], name: str, documentation: str,
            labels: list[str], values: Mapping[tuple[str, ...], float], unit: str = "") -> Metric:
    """One family from a summary dict keyed by label values (sorted, so scrapes diff cleanly)."""
    family = kind(name, documentation, labels=labels, unit=unit)
    for label_values, value in sorted(values.items()):
        family.add_metric(list(label_values), value)
    return family


class EstateCollector(Collector):
    def __init__(self, cache: EstateCache):
        self._cache = cache

    def collect(self) -> Iterator[Metric]:
        s = self._cache.get()
        site_class = ["site", "device_class"]
        yield _family(CounterMetricFamily, "caretaker_energy_joules",
                      "Energy of settled hours, as caretaker energy summary counts it: one method per device-hour "
                      "(metered wins), so the method series add up without double counting.",
                      [*site_class, "state", "method"], s.history.energy_joules, unit="joules")
        yield _family(GaugeMetricFamily, "caretaker_power_watts",
                      "Estate power now: devices whose latest report is fresh, joules over seconds.",
                      [*site_class, "method"], s.power_watts, unit="watts")
        yield _family(GaugeMetricFamily, "caretaker_devices", "Devices by state (on, idle, asleep, off, unknown).",
                      [*site_class, "state"], s.devices)
        yield _family(GaugeMetricFamily, "caretaker_agents", "Working agents by time since they last reported.",
                      ["site", "last_seen"], s.agents)
        yield _family(CounterMetricFamily, "caretaker_energy_saved_joules",
                      "Energy saved by power-policy actions (counterfactual idle draw minus actual draw).",
                      site_class, s.history.saved_joules, unit="joules")
        yield _family(CounterMetricFamily, "caretaker_carbon_grams",
                      "Location-based carbon of the energy, each hour at its own year's grid factor (gCO2e).",
                      site_class, s.history.carbon_grams, unit="grams")
        yield _family(GaugeMetricFamily, "caretaker_carbon_factor_grams_per_kwh",
                      "The grid carbon factors in use, by year and source.", ["year", "source"], s.carbon_factors)
        yield _family(CounterMetricFamily, "caretaker_cost_pence",
                      "Cost of the energy at each site's tariff, standing charge excluded (pence).",
                      site_class, s.history.cost_pence)
        yield _family(GaugeMetricFamily, "caretaker_devices_lifecycle", "Devices by lifecycle stage.",
                      [*site_class, "stage"], s.lifecycle)
        yield _family(GaugeMetricFamily, "caretaker_devices_on_out_of_hours",
                      "Devices on or idle while their power policy says they should be off or asleep.",
                      site_class, s.out_of_hours)
        yield _family(CounterMetricFamily, "caretaker_wake_requests",
                      "Finished wake-on-LAN requests by outcome (confirmed: the machine reported in; failed).",
                      ["site", "outcome"], s.wake_requests)
        yield _family(GaugeMetricFamily, "caretaker_wake_requests_open",
                      "Wake-on-LAN requests in flight, by status (queued, ordered, sent).",
                      ["site", "status"], s.wakes_open)
        failed = {*s.failed, *s.history.failed}
        yield _family(GaugeMetricFamily, "caretaker_metrics_section_failed",
                      "1 when a section's figures could not be worked out at the last reload (see the log).",
                      ["section"], {(section,): int(section in failed) for section in SECTIONS})
        if s.per_device is not None:
            yield from _per_device(s.per_device)


def _per_device(per_device: PerDevice) -> Iterator[Metric]:
    power = GaugeMetricFamily("caretaker_device_power_watts", "One device's power now (opt-in, capped).",
                              labels=["site", "device_class", "device_id", "hostname"], unit="watts")
    for d in per_device.devices:
        power.add_metric([d.site, d.device_class, str(d.device_id), d.hostname], d.watts)
    yield power
    yield GaugeMetricFamily("caretaker_device_series_dropped",
                            "Devices left out of the per-device series by metrics_per_device_limit.",
                            value=per_device.dropped)


class BuildInfoCollector(Collector):
    def __init__(self, version_string: str):
        self._version = version_string

    def collect(self) -> Iterator[Metric]:
        yield InfoMetricFamily("caretaker_build", "The controller's version.", value={"version": self._version})


class BacklogCollector(Collector):
    """Batches waiting for the ingest writer: read from its queue at scrape time."""

    def __init__(self, writer: IngestWriter):
        self._writer = writer

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("caretaker_ingest_backlog", "Report batches waiting for the ingest writer.",
                                value=self._writer.backlog)


class WakeDispatchCollector(Collector):
    """The wake dispatcher's troubles since start, read from its counters at scrape time."""

    def __init__(self, counters: DispatchCounters):
        self._counters = counters

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily("caretaker_wake_dispatch_errors", "Wake dispatcher steps that failed on one wake "
                                  "(logged with its id; the other wakes carry on).", value=self._counters.errors)
        yield CounterMetricFamily("caretaker_wake_dispatch_step_failures", "Wake dispatcher steps that failed as a "
                                  "whole (the database away, say); tried again a second later.",
                                  value=self._counters.step_failures)
        yield CounterMetricFamily("caretaker_wake_reroutes", "Wakes routed again because their relay did not send "
                                  "them (gone quiet, or no longer elected).", value=self._counters.rerouted)


class ConflictCollector:
    """``caretaker_conflicts{kind}``: devices kept apart and shared credentials waiting for a person
    (register/conflicts.py), read at most once per ``ttl`` seconds."""

    KINDS = ("clone", "elsewhere", "shared")

    def __init__(self, engine: Engine, ttl: float):
        self._counts = Reloading("conflicts", lambda: _count_conflicts(engine), ttl)

    def collect(self) -> Iterator[Metric]:
        counts = self._counts.get()
        family = GaugeMetricFamily("caretaker_conflicts", "Unresolved conflicts a network manager must settle, "
                                   "by kind (clone, elsewhere: enrolled from another site, shared credential).",
                                   labels=["kind"])
        for kind in self.KINDS:
            family.add_metric([kind], counts.get(kind, 0))
        yield family


def _count_conflicts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return dict(count_conflicts(session))


@dataclass(frozen=True)
class IngestMetrics:
    """What the report route touches per request: pre-bound children, so it costs an add and an observe."""

    accepted: Counter
    duplicate: Counter
    rejected: Counter
    duration: Histogram


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    ingest: IngestMetrics
    signin_refused: Counter  # by reason: wrong (name or password), throttled, busy


def _version() -> str:
    try:
        return version("caretaker")
    except PackageNotFoundError:
        return "unknown"


def build_metrics(engine: Engine, writer: IngestWriter, settings: Settings,
                  clock: Callable[[], float] = time.monotonic, policies: PolicyStore | None = None,
                  wake: DispatchCounters | None = None) -> Metrics:
    """A registry of this app's collectors; called by the app factory, once per app. ``policies`` (the
    app's active policy set) is what devices on out of hours are judged by; without it none are."""
    registry = CollectorRegistry()
    per_device_limit = settings.metrics_per_device_limit if settings.metrics_per_device else None
    cache = EstateCache(engine, settings.report_interval_seconds, settings.metrics_cache_seconds, clock,
                        per_device_limit, policies, settings.metrics_history_seconds)
    registry.register(EstateCollector(cache))
    registry.register(BuildInfoCollector(_version()))
    registry.register(BacklogCollector(writer))
    if wake is not None:
        registry.register(WakeDispatchCollector(wake))
    from controller.snmp.metrics import SnmpCollector  # imports this module: loaded once it is

    registry.register(SnmpCollector(engine, settings.metrics_cache_seconds))
    reports = Counter("caretaker_ingest_reports", "Reports received from agents, by outcome.",
                      labelnames=["outcome"], registry=registry)
    duration = Histogram("caretaker_ingest_request_duration_seconds",
                         "Time to answer an authenticated report batch, until its acknowledgement is committed.",
                         buckets=LATENCY_BUCKETS, registry=registry)
    ingest = IngestMetrics(accepted=reports.labels("accepted"), duplicate=reports.labels("duplicate"),
                           rejected=reports.labels("rejected"), duration=duration)
    registry.register(ConflictCollector(engine, settings.metrics_cache_seconds))
    refused = Counter("caretaker_signin_refused", "Console sign-ins refused, by reason (wrong: name or "
                      "password; throttled: too many failures from the address or overall; busy: too many at once).",
                      labelnames=["reason"], registry=registry)
    for reason in ("wrong", "throttled", "busy"):
        refused.labels(reason)
    return Metrics(registry, ingest, refused)
