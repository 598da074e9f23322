"""The SNMP register in /metrics: registered targets by kind, and how many no profile recognised.

A device kept as ``host`` answered SNMP but nothing Caretaker knows how to read; the count is an
operator's cue to run ``caretaker snmp discover`` or ``snmp poll`` and report what it answered.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from controller.metrics import Reloading
from controller.register.models import Site
from controller.snmp.models import SnmpTarget
from controller.snmp.profiles import DeviceKind

Counts = dict[tuple[str, str], int]  # (site, kind) -> targets


def count_targets(session: Session) -> Counts:
    """Registered targets by site and kind; a target not yet polled successfully has kind "unknown"."""
    rows = session.exec(select(Site.name, SnmpTarget.kind, func.count())
                        .join(Site, col(Site.id) == col(SnmpTarget.site_id))
                        .group_by(Site.name, SnmpTarget.kind))
    return {(site, kind or "unknown"): n for site, kind, n in rows}


class SnmpCollector(Collector):
    def __init__(self, engine: Engine, ttl: float) -> None:
        self._counts = Reloading("metrics-snmp", lambda: self._load(engine), ttl)

    @staticmethod
    def _load(engine: Engine) -> Counts:
        with Session(engine) as session:
            return count_targets(session)

    def collect(self) -> Iterator[Metric]:
        counts = self._counts.get()
        targets = GaugeMetricFamily("caretaker_snmp_targets",
                                    "Registered SNMP targets by kind (host: no profile recognised what it is).",
                                    labels=["site", "kind"])
        hosts = GaugeMetricFamily("caretaker_snmp_targets_kept_as_host",
                                  "SNMP targets kept as host: they answered, but no profile says what they are.",
                                  labels=["site"])
        for (site, kind), n in sorted(counts.items()):
            targets.add_metric([site, kind], n)
        for site in sorted({site for site, _ in counts}):
            hosts.add_metric([site], counts.get((site, DeviceKind.HOST.value), 0))
        yield targets
        yield hosts
