"""Reading the register for recommendations, metrics and the audit pack (reports, web console).

Devices created before the lifecycle existed have no ``Asset`` row yet; they count as deployed, which is
what ``service.asset_of`` makes of them on first use.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from controller.lifecycle import utilisation
from controller.lifecycle.embodied import Factors, amortised_kg, purchase_year_kg, service_end
from controller.lifecycle.evidence import completeness
from controller.lifecycle.models import Asset, DisposalBatch, DisposalEvidence
from controller.lifecycle.recommend import CONSIDERED, DeviceFacts, Policy, Recommendation, os_end, recommend
from controller.lifecycle.service import evidence_of
from controller.lifecycle.states import LEAVING, State
from controller.policy.calendar import Calendar
from controller.policy.model import Policy as PowerPolicy
from controller.register.models import Device, Site

# The DfE register fields a person must fill (serial comes from the agent or the import).
REQUIRED_FIELDS = ("serial", "assigned_to", "location", "purchase_date", "warranty_end", "os_end_of_support",
                   "review_date")


MaySee = Callable[[int], bool]


def _everyone(_site_id: int) -> bool:
    return True


def _rows(session: Session, site: str | None = None,
          may_see: MaySee = _everyone) -> list[tuple[Device, Asset | None, str]]:
    """Devices with their register entry and site name; ``may_see`` (a site id test) hides other sites."""
    query = (select(Device, Asset, Site.name).join(Site, col(Site.id) == Device.site_id)
             .join(Asset, col(Asset.device_id) == Device.id, isouter=True))
    if site is not None:
        query = query.where(Site.name == site)
    rows = session.exec(query.order_by(Site.name, Device.hostname, Device.id)).all()
    return [r for r in rows if may_see(r[0].site_id)]


def _state(asset: Asset | None) -> str:
    return asset.state if asset is not None else State.DEPLOYED.value


def lifecycle_facts(session: Session, factors: Factors, now: datetime, site: str | None = None,
                    may_see: MaySee = _everyone, hours_per_week: Mapping[int, float] | None = None
                    ) -> list[DeviceFacts]:
    hours = hours_per_week or {}
    facts = []
    for device, asset, site_name in _rows(session, site, may_see):
        inventory = device.inventory or {}
        disks = [d.get("ssd") for d in inventory.get("disks") or []]
        healths = [b["full_wh"] / b["design_wh"] for b in inventory.get("batteries") or []
                   if b.get("design_wh") and b.get("full_wh") is not None]
        facts.append(DeviceFacts(
            device_id=device.id, hostname=device.hostname, site=site_name, device_class=device.device_class,
            state=_state(asset),
            purchase_date=asset.purchase_date if asset else None,
            warranty_end=asset.warranty_end if asset else None,
            os_end_of_support=asset.os_end_of_support if asset else None,
            os_name=device.os_name, os_version=device.os_version, os_esu=bool(asset and asset.os_esu),
            cpu_model=(inventory.get("cpu") or {}).get("model"), memory_bytes=inventory.get("memory_bytes"),
            has_ssd=True if True in disks else (False if disks and all(d is False for d in disks) else None),
            battery_health=min(healths) if healths else None,
            last_seen=device.last_seen, active_hours_per_week=hours.get(device.id),
            embodied=factors.lookup(device.device_class, device.vendor, device.model)))
    return facts


def recommendations(session: Session, factors: Factors, policy: Policy, now: datetime,
                    site: str | None = None, may_see: MaySee = _everyone, policies: Sequence[PowerPolicy] = (),
                    calendars: Mapping[str, Calendar] | None = None) -> list[Recommendation]:
    """Every rule's advice; under-use is ``utilisation``'s figure (hours in use per school week)."""
    hours = {u.device_id: float(u.hours_per_week)
             for u in utilisation.measure(session, now, site=site, policies=policies, calendars=calendars)
             if u.hours_per_week is not None}
    return recommend(lifecycle_facts(session, factors, now, site, may_see, hours), policy, now.date(), now)


def lifecycle_stage_counts(session: Session) -> dict[tuple[str, str], int]:
    """Devices per (site name, lifecycle state), for the metrics collector."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    state = func.coalesce(Asset.state, State.DEPLOYED.value)
    query = (select(Site.name, state, func.count()).select_from(Device)
             .join(Site, col(Site.id) == Device.site_id)
             .join(Asset, col(Asset.device_id) == Device.id, isouter=True).group_by(Site.name, state))
    for site_name, stage, count in session.exec(query).all():
        counts[(site_name, stage)] += count
    return dict(counts)


@dataclass(frozen=True)
class Completeness:
    filled: int
    required: int

    @property
    def percent(self) -> float:
        return round(100 * self.filled / self.required, 1) if self.required else 100.0


def register_completeness(session: Session) -> dict[str, Completeness]:
    """Per site: how many of the DfE register fields are filled for devices still in service."""
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for device, asset, site_name in _rows(session):
        if _state(asset) not in CONSIDERED:
            continue
        values = [device.serial] + [getattr(asset, f) if asset else None for f in REQUIRED_FIELDS[1:]]
        tally[site_name][0] += sum(v not in (None, "") for v in values)
        tally[site_name][1] += len(REQUIRED_FIELDS)
    return {site: Completeness(*t) for site, t in sorted(tally.items())}


def disposal_evidence_completeness(session: Session) -> dict[str, Completeness]:
    """Per site: how much of the disposal evidence is recorded for devices leaving or gone."""
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for device, asset, site_name in _rows(session):
        if asset is None or State(asset.state) not in LEAVING:
            continue
        filled, required = completeness(evidence_of(session, device.id, asset.batch_id))
        tally[site_name][0] += filled
        tally[site_name][1] += required
    return {site: Completeness(*t) for site, t in sorted(tally.items())}


@dataclass(frozen=True)
class SupportGap:
    device_id: int
    hostname: str
    site: str
    warranty_end: date | None
    os_end_of_support: date | None
    warranty_passed: bool
    os_support_passed: bool


def past_support(session: Session, today: date, policy: Policy | None = None) -> list[SupportGap]:
    """Devices in service whose warranty or operating-system support has ended."""
    policy = policy or Policy()
    gaps = []
    for d in lifecycle_facts(session, Factors({}, {}), datetime.combine(today, time(12), tzinfo=UTC)):
        if d.state not in CONSIDERED:
            continue
        support = os_end(d)
        os_date = support.ends if support is not None else None
        warranty = d.warranty_end is not None and d.warranty_end < today
        os_passed = os_date is not None and os_date < today
        if warranty or os_passed:
            gaps.append(SupportGap(d.device_id, d.hostname, d.site, d.warranty_end, os_date, warranty, os_passed))
    return gaps


@dataclass
class ForecastYear:
    site: str
    year: int
    devices: int = 0
    by_class: dict[str, int] = field(default_factory=dict)
    embodied_kg_co2e: float = 0.0  # replacements' embodied carbon, all in the year they are bought
    budget_pence: int = 0  # like-for-like at the original prices, where known
    priced: int = 0


def refresh_forecast(session: Session, factors: Factors, policy: Policy, today: date,
                     years: int = 5, may_see: MaySee = _everyone) -> list[ForecastYear]:
    """Devices due for refresh in each of the next ``years`` calendar years (overdue ones fall in this
    year), with their replacements' embodied carbon and original prices."""
    table: dict[tuple[str, int], ForecastYear] = {}
    for device, asset, site_name in _rows(session, may_see=may_see):
        limit = policy.refresh_years.get(device.device_class)
        if asset is None or asset.purchase_date is None or limit is None or State(asset.state) not in CONSIDERED:
            continue
        due = asset.purchase_date + timedelta(days=round(limit * 365.25))
        year = max(due.year, today.year)
        if year >= today.year + years:
            continue
        row = table.setdefault((site_name, year), ForecastYear(site_name, year))
        row.devices += 1
        row.by_class[device.device_class] = row.by_class.get(device.device_class, 0) + 1
        if figure := factors.lookup(device.device_class, device.vendor, device.model):
            row.embodied_kg_co2e = round(row.embodied_kg_co2e + figure.kg_co2e, 1)
        if asset.purchase_price_pence is not None:
            row.budget_pence += asset.purchase_price_pence
            row.priced += 1
    return [table[k] for k in sorted(table)]


@dataclass(frozen=True)
class EmbodiedLine:
    device_id: int
    hostname: str
    site: str
    device_class: str
    kg_co2e: float
    basis: str
    source: str
    purchase_date: date | None
    amortised_kg_co2e: float | None  # this year's share of the device's actual life
    purchase_year_kg_co2e: float | None  # all of it if bought this year (Scope 3, category 2)


def embodied_report(session: Session, factors: Factors, year: int, today: date,
                    site: str | None = None, may_see: MaySee = _everyone) -> list[EmbodiedLine]:
    """Each device's embodied carbon for a calendar year, both ways; undated devices show no share."""
    lines = []
    for device, asset, site_name in _rows(session, site, may_see):
        figure = factors.lookup(device.device_class, device.vendor, device.model)
        if figure is None:
            continue
        purchased = asset.purchase_date if asset else None
        amortised = bought = None
        if purchased is not None:
            end = service_end(purchased, figure.lifetime_years, asset.disposed_on, today)
            amortised = round(amortised_kg(figure.kg_co2e, purchased, end, year), 2)
            bought = purchase_year_kg(figure.kg_co2e, purchased, year)
        lines.append(EmbodiedLine(device.id, device.hostname, site_name, device.device_class, figure.kg_co2e,
                                  figure.basis, figure.source, purchased, amortised, bought))
    return lines


@dataclass(frozen=True)
class TransferNote:
    ref: str
    carrier: str | None
    recycler: str | None
    collected_on: date | None
    retain_until: date | None
    devices: int
    batch: str | None  # None: a note for one device
    must_keep: bool  # still inside its two years (or its collection date is unknown: keep it)


def transfer_notes(session: Session, today: date) -> list[TransferNote]:
    """Every WEEE waste transfer note on record and whether it must still be kept (2 years)."""
    notes = []
    for batch in session.exec(select(DisposalBatch).order_by(DisposalBatch.collected_on, DisposalBatch.name)).all():
        members = session.exec(select(func.count()).select_from(Asset).where(Asset.batch_id == batch.id)).one()
        notes.append(TransferNote(batch.transfer_note_ref, batch.carrier, batch.recycler, batch.collected_on,
                                  batch.retain_until, members, batch.name, today <= batch.retain_until))
    own = session.exec(select(DisposalEvidence).where(col(DisposalEvidence.transfer_note_ref).is_not(None))
                       .order_by(DisposalEvidence.collected_on, DisposalEvidence.device_id)).all()
    for row in own:
        notes.append(TransferNote(row.transfer_note_ref, row.carrier, row.recycler, row.collected_on,
                                  row.retain_until, 1, None, row.retain_until is None or today <= row.retain_until))
    return notes
