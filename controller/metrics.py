"""The controller's Prometheus metrics, built per app: nothing registers on import.

Two kinds of series:

* the estate (energy, power now, devices by state, agents by age), read from the database at scrape
  time by ``EstateCollector`` through a cache, so a scrape storm or several Prometheus servers cost
  one set of queries per ``metrics_cache_seconds``;
* the process's own ingest (reports by outcome, request latency, writer backlog), kept in memory.

Labels are site, device class, state and method only. Per-device series are not offered yet: a
large estate would make thousands of series per metric; the device pages are the place for them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlmodel import Session

from controller.estate import EstateSummary, summarise
from controller.ingest import IngestWriter
from controller.settings import Settings
from controller.timeutil import utcnow

# Ingest requests take milliseconds when healthy (group commit); the top buckets catch a stalled disk.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class EstateCache:
    """The latest ``EstateSummary``, recomputed at most once per ``ttl`` seconds.

    The lock makes concurrent scrapes of a stale cache wait for one reload rather than each querying.
    """

    def __init__(self, engine: Engine, report_interval_seconds: int, ttl: float,
                 clock: Callable[[], float] = time.monotonic):
        self._engine = engine
        self._interval = report_interval_seconds
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._summary: EstateSummary | None = None
        self._loaded = 0.0

    def get(self) -> EstateSummary:
        with self._lock:
            if self._summary is None or self._clock() - self._loaded >= self._ttl:
                with Session(self._engine) as session:
                    self._summary = summarise(session, utcnow(), self._interval)
                self._loaded = self._clock()
            return self._summary


class EstateCollector(Collector):
    def __init__(self, cache: EstateCache):
        self._cache = cache

    def collect(self) -> Iterator[Metric]:
        summary = self._cache.get()
        energy = CounterMetricFamily("caretaker_energy_joules", "Energy accounted from agent reports.",
                                     labels=["site", "device_class", "state", "method"], unit="joules")
        for labels, joules in sorted(summary.energy_joules.items()):
            energy.add_metric(labels, joules)
        yield energy
        power = GaugeMetricFamily("caretaker_power_watts",
                                  "Estate power now: devices whose latest report is fresh, joules over seconds.",
                                  labels=["site", "device_class", "method"], unit="watts")
        for labels, watts in sorted(summary.power_watts.items()):
            power.add_metric(labels, watts)
        yield power
        devices = GaugeMetricFamily("caretaker_devices", "Devices by state (on, idle, asleep, off, unknown).",
                                    labels=["site", "device_class", "state"])
        for labels, count in sorted(summary.devices.items()):
            devices.add_metric(labels, count)
        yield devices
        agents = GaugeMetricFamily("caretaker_agents", "Working agents by time since they last reported.",
                                   labels=["site", "last_seen"])
        for labels, count in sorted(summary.agents.items()):
            agents.add_metric(labels, count)
        yield agents


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


def _version() -> str:
    try:
        return version("caretaker")
    except PackageNotFoundError:
        return "unknown"


def build_metrics(engine: Engine, writer: IngestWriter, settings: Settings,
                  clock: Callable[[], float] = time.monotonic) -> Metrics:
    """A registry of this app's collectors; called by the app factory, once per app."""
    registry = CollectorRegistry()
    cache = EstateCache(engine, settings.report_interval_seconds, settings.metrics_cache_seconds, clock)
    registry.register(EstateCollector(cache))
    registry.register(BuildInfoCollector(_version()))
    registry.register(BacklogCollector(writer))
    reports = Counter("caretaker_ingest_reports", "Reports received from agents, by outcome.",
                      labelnames=["outcome"], registry=registry)
    duration = Histogram("caretaker_ingest_request_duration_seconds",
                         "Time to answer an authenticated report batch, until its acknowledgement is committed.",
                         buckets=LATENCY_BUCKETS, registry=registry)
    ingest = IngestMetrics(accepted=reports.labels("accepted"), duplicate=reports.labels("duplicate"),
                           rejected=reports.labels("rejected"), duration=duration)
    return Metrics(registry, ingest)
