"""Right-sizing servers: how much of its processor and memory each server used over the last days, what it
drew, and which of a site's servers could share one virtualisation host, with the kWh, pounds and kgCO2e
that consolidation would save (the Becta / Oxford Low Carbon ICT virtualisation question).

Use comes from the agent's reports (``cpu_percent`` over each interval, ``memory_percent`` at its end), so
the window is limited to the reports kept (``report_retention_days``). Energy, pounds and carbon are the
energy package's one total (``energy_totals``): each hour priced at the site's tariff and its year's
carbon factor. A saving is a share of the candidates' own priced hours, so it carries their tariff bands.

The model, and each assumption a bursar should see stated (all overridable from the command line):

- a server is a candidate when its 95th-percentile CPU is at most ``candidate_cpu_percent``: low enough
  that ``ratio`` such servers, plus the hypervisor's overhead, fit one host below ``HOST_TARGET_CPU``;
- a site's ``n`` candidates move to ceil(n / ratio) hosts, each drawing ``1 + host_overhead`` times the
  candidates' mean draw (a busier host draws a little more than one of the lightly loaded servers it
  replaces, which already draw most of their peak power); servers cannot be consolidated across sites;
- the room's cooling and power distribution scale every IT kWh by ``pue``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlmodel import Session, col, select

from controller.energy.accounting import Total, energy_totals
from controller.register.enrollment import site_by_name
from controller.register.models import Device, Site
from controller.register.models import Report as ReportRow
from controller.timeutil import as_utc

SERVER = "server"
DEFAULT_DAYS = 30
# Virtual guests per host: the Association of Teachers and Lecturers ran four virtual servers per physical
# box and halved its server room's boxes (silicon.com case study, 26 March 2007); Becta's and Oxford Low
# Carbon ICT's school guidance asks the same question without fixing a ratio. An assumption: edit it.
CONSOLIDATION_RATIO = 4
# The hypervisor's CPU overhead and the extra power of a host carrying its guests, as a share. Servers at
# 10% CPU already draw up to 90% of their maximum power (Pretorius et al. 2011, cited by virtualflow.net,
# "Virtualisation key to green data centre", 2014), so a busy host draws only a little more than one idle one.
HOST_OVERHEAD = Decimal("0.2")
# A host is planned to run at most this busy at its guests' combined 95th percentile, leaving headroom.
HOST_TARGET_CPU = 70.0
# Power usage effectiveness of the room: the Uptime Institute's 2023 global survey average is 1.58; a
# school's server cupboard with a split air-conditioner is of that order, one without cooling nearer 1.0.
PUE = Decimal("1.5")
PERCENTILE = 95
# Typical server utilisation before virtualisation: 6-12% (McKinsey, cited by the New York Times, Glanz 2012).

WH = Decimal("0.001")
PENNY = Decimal("0.01")
GRAM = Decimal("0.001")
TENTH = Decimal("0.1")


def _round(value: Decimal, places: Decimal) -> Decimal:
    return value.quantize(places, ROUND_HALF_UP)


@dataclass(frozen=True)
class Assumptions:
    ratio: int = CONSOLIDATION_RATIO
    host_overhead: Decimal = HOST_OVERHEAD
    pue: Decimal = PUE
    host_target_cpu: float = HOST_TARGET_CPU

    @property
    def candidate_cpu_percent(self) -> float:
        """The most a server's 95th-percentile CPU may be for ``ratio`` of them to fit one host."""
        return round(self.host_target_cpu / (self.ratio * (1 + float(self.host_overhead))), 1)

    def describe(self) -> str:
        return (f"candidates: 95th-percentile CPU at most {self.candidate_cpu_percent:g}% "
                f"({self.ratio} guests + {self.host_overhead * 100:g}% overhead within {self.host_target_cpu:g}% "
                f"of one host); {self.ratio} guests per host; each host draws {1 + self.host_overhead:g} × "
                f"the candidates' mean; PUE {self.pue:g}")


@dataclass(frozen=True)
class ServerUse:
    device_id: int
    site: str
    hostname: str
    reported_hours: Decimal  # time covered by its reports in the window
    cpu_mean: Decimal | None  # percent, weighted by each report's length
    cpu_p95: Decimal | None
    memory_mean: Decimal | None  # percent; None: its agent does not report memory
    memory_p95: Decimal | None
    memory_gib: Decimal | None  # installed
    mean_watts: Decimal  # the window's kWh over its hours
    kwh: Decimal
    pounds: Decimal | None  # None: no tariff covers its hours
    kg_co2e: Decimal
    candidate: bool


@dataclass(frozen=True)
class Consolidation:
    site: str
    servers: int
    candidates: tuple[str, ...]  # hostnames
    hosts: int  # hosts the candidates would need
    guest_memory_gib: Decimal | None  # memory the candidates use at their mean: what the hosts must hold
    kwh_saved: Decimal  # over the window, at the wall (× PUE)
    pounds_saved: Decimal | None
    kg_co2e_saved: Decimal
    kwh_saved_per_year: Decimal
    pounds_saved_per_year: Decimal | None


@dataclass(frozen=True)
class Rightsizing:
    start: datetime
    end: datetime
    assumptions: str
    servers: tuple[ServerUse, ...]
    consolidations: tuple[Consolidation, ...]


def percentile(values: Sequence[float], pct: int = PERCENTILE) -> float:
    """Nearest-rank percentile: the smallest value at least ``pct``% of the values are at or below."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def _percent(value: float | None) -> Decimal | None:
    return None if value is None else _round(Decimal(str(value)), TENTH)


def _server_rows(session: Session, site: str | None, site_ids: Sequence[int] | None) -> list[tuple[Device, str]]:
    query = select(Device, Site.name).join(Site, col(Site.id) == Device.site_id).where(Device.device_class == SERVER)
    if site is not None:
        query = query.where(Site.name == site)
    if site_ids is not None:
        query = query.where(col(Device.site_id).in_(list(site_ids)))
    return list(session.exec(query.order_by(Site.name, Device.hostname, Device.id)))


def _use(session: Session, device_id: int, start: datetime, end: datetime) -> tuple[Decimal, list, list]:
    rows = session.exec(select(ReportRow.start, ReportRow.end, ReportRow.cpu_percent, ReportRow.memory_percent)
                        .where(ReportRow.device_id == device_id, ReportRow.start >= start,
                               ReportRow.start < end)).all()
    cpu = [(float((as_utc(b) - as_utc(a)).total_seconds()), c) for a, b, c, _ in rows]
    memory = [m for *_, m in rows if m is not None]
    return Decimal(str(sum(s for s, _ in cpu))), cpu, memory


def rightsize(session: Session, now: datetime, days: int = DEFAULT_DAYS, site: str | None = None,
              assumptions: Assumptions = Assumptions(), site_ids: Sequence[int] | None = None) -> Rightsizing:
    """What `caretaker lifecycle rightsize`, the console and the audit pack show."""
    if site is not None:
        site_by_name(session, site)  # a misspelt site is an error, not an estate without servers
    end = as_utc(now)
    start = end - timedelta(days=days)
    servers = _server_rows(session, site, site_ids)
    totals = (energy_totals(session, start, end, ("device_id",), device_ids=[d.id for d, _ in servers], now=now)
              .groups if servers else {})
    hours = Decimal(str((end - start).total_seconds())) / 3600
    found: list[ServerUse] = []
    energy: dict[int, Total] = {}
    for device, site_name in servers:
        total = energy[device.id] = totals.get((str(device.id),), Total())
        seconds, cpu, memory = _use(session, device.id, start, end)
        cpu_mean = sum(s * c for s, c in cpu) / float(seconds) if seconds else None
        cpu_p95 = percentile([c for _, c in cpu]) if cpu else None
        memory_bytes = (device.inventory or {}).get("memory_bytes")
        found.append(ServerUse(
            device.id, site_name, device.hostname, _round(seconds / 3600, PENNY), _percent(cpu_mean),
            _percent(cpu_p95), _percent(sum(memory) / len(memory) if memory else None),
            _percent(percentile(memory) if memory else None),
            _round(Decimal(memory_bytes) / 2**30, TENTH) if memory_bytes else None,
            _round(total.wh / hours, TENTH), _round(total.wh / 1000, WH),
            _round(total.pence / 100, PENNY) if total.wh and total.priced else None, _round(total.grams / 1000, GRAM),
            cpu_p95 is not None and cpu_p95 <= assumptions.candidate_cpu_percent))
    by_site: dict[str, list[ServerUse]] = defaultdict(list)
    for server in found:
        by_site[server.site].append(server)
    plans = [plan for name, members in by_site.items()
             if (plan := consolidate(name, members, energy, assumptions, days)) is not None]
    return Rightsizing(start, end, assumptions.describe(), tuple(found), tuple(plans))


def consolidate(site: str, members: Sequence[ServerUse], energy: dict[int, Total], assumptions: Assumptions,
                days: int) -> Consolidation | None:
    """A site's candidates on ceil(n / ratio) hosts: what that saves, or None when it saves nothing."""
    candidates = [s for s in members if s.candidate]
    if len(candidates) < 2:
        return None
    combined = Total()
    for server in candidates:
        combined.merge(energy[server.device_id])
    if not combined.wh:
        return None
    hosts = math.ceil(len(candidates) / assumptions.ratio)
    kept = Decimal(hosts) * (1 + assumptions.host_overhead) / len(candidates)  # the hosts' share of today's draw
    saved = (1 - kept) * assumptions.pue  # the share of the candidates' kWh saved, at the wall
    if saved <= 0:
        return None
    year = Decimal(365) / days
    pounds = combined.pence / 100 * saved if combined.priced else None
    memory = [s.memory_mean * s.memory_gib / 100 for s in candidates
              if s.memory_mean is not None and s.memory_gib is not None]
    return Consolidation(
        site, len(members), tuple(s.hostname for s in candidates), hosts,
        _round(sum(memory, Decimal(0)), TENTH) if len(memory) == len(candidates) else None,
        _round(combined.wh / 1000 * saved, WH), None if pounds is None else _round(pounds, PENNY),
        _round(combined.grams / 1000 * saved, GRAM), _round(combined.wh / 1000 * saved * year, WH),
        None if pounds is None else _round(pounds * year, PENNY))
