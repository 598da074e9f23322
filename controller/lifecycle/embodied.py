"""Embodied carbon: what making a device emitted, per model where a manufacturer published it, else per
class; and the two ways to report it (DOMAIN.md):

- amortised over the device's actual life: a share of the total for each day in service, so a device
  kept longer spreads the same carbon thinner (the case for extending rather than replacing);
- all in the year of purchase (GHG Protocol Scope 3, category 2).

Shipped figures are in ``data/`` with their source; a school's own figures (``EmbodiedFactor`` rows,
``caretaker lifecycle embodied import``) beat them, per model or per class.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache, cached_property
from pathlib import Path

from sqlmodel import Session, select

from controller.lifecycle.models import EmbodiedFactor
from controller.lifecycle.states import Refused

DATA = Path(__file__).with_name("data")
OVERRIDE_FIELDS = ("device_class", "vendor", "model", "kg_co2e", "lifetime_years", "source")


@dataclass(frozen=True)
class Figure:
    kg_co2e: float
    lifetime_years: float
    source: str
    basis: str  # "model" or "class", and whether shipped or the school's own: "model (override)"


_VENDOR_NOISE = re.compile(r"\b(inc|corp|corporation|co|ltd|limited|computer|technologies|international)\b\.?")
_VENDOR_ALIASES = {"hewlett-packard": "hp", "hewlett packard": "hp", "hpe": "hp", "dell emc": "dell"}


def vendor_key(vendor: str | None) -> str:
    """SMBIOS says "Dell Inc." or "LENOVO"; the footprint sheets say "Dell", "Lenovo"."""
    text = _VENDOR_NOISE.sub("", (vendor or "").casefold()).replace(",", " ").strip()
    text = " ".join(text.split())
    return _VENDOR_ALIASES.get(text, text)


def model_key(model: str | None) -> str:
    return " ".join((model or "").casefold().replace("-", " ").split())


@dataclass(frozen=True)
class Factors:
    """Shipped and overriding figures, keyed by (class, vendor key, model key); "" keys a whole class."""

    shipped: dict[tuple[str, str, str], Figure]
    overrides: dict[tuple[str, str, str], Figure]

    def lookup(self, device_class: str | None, vendor: str | None = None, model: str | None = None) -> Figure | None:
        """The school's model figure, then the manufacturer's, then the school's class figure, then ours."""
        cls = (device_class or "").casefold()
        v, m = vendor_key(vendor), model_key(model)
        if m:
            for table, models in ((self.overrides, self._override_models), (self.shipped, self._shipped_models)):
                if (hit := _model_match(table, models.get((cls, v), ()), cls, v, m)) is not None:
                    return hit
        return self.overrides.get((cls, "", "")) or self.shipped.get((cls, "", ""))

    @cached_property
    def _shipped_models(self) -> dict[tuple[str, str], list[str]]:
        return _models_by_maker(self.shipped)

    @cached_property
    def _override_models(self) -> dict[tuple[str, str], list[str]]:
        return _models_by_maker(self.overrides)


def _models_by_maker(table: dict[tuple[str, str, str], Figure]) -> dict[tuple[str, str], list[str]]:
    """Model keys per (class, vendor), shortest first, so a lookup scans one maker's models only."""
    found: dict[tuple[str, str], list[str]] = {}
    for cls, vendor, model in table:
        if model:
            found.setdefault((cls, vendor), []).append(model)
    return {k: sorted(v, key=lambda m: (len(m), m)) for k, v in found.items()}


def _model_match(table: dict[tuple[str, str, str], Figure], models: Iterable[str], cls: str, vendor: str,
                 model: str) -> Figure | None:
    """The exact model, else the shortest published name that starts with it ("Latitude 5400" finds
    "Latitude 5400" before "Latitude 5400 Chromebook")."""
    if (exact := table.get((cls, vendor, model))) is not None:
        return exact
    longer = next((m for m in models if m.startswith(model + " ")), None)
    return table[(cls, vendor, longer)] if longer is not None else None


@cache
def shipped() -> dict[tuple[str, str, str], Figure]:
    figures: dict[tuple[str, str, str], Figure] = {}
    with (DATA / "embodied_classes.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            figures[(row["device_class"], "", "")] = Figure(float(row["embodied_kg_co2e"]),
                                                            float(row["lifetime_years"]), row["source"], "class")
    with (DATA / "boavizta_embodied.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            key = (row["device_class"], vendor_key(row["vendor"]), model_key(row["model"]))
            classes = figures[(row["device_class"], "", "")]
            figures.setdefault(key, Figure(
                float(row["embodied_kg_co2e"]), float(row["lifetime_years"] or classes.lifetime_years),
                f"Boavizta: {row['vendor']} {row['model']} ({row['report_date']}), {row['source']} (ODbL)", "model"))
    return figures


def load(session: Session) -> Factors:
    overrides = {(r.device_class.casefold(), vendor_key(r.vendor), model_key(r.model)):
                 Figure(r.kg_co2e, r.lifetime_years, r.source, ("model" if r.model else "class") + " (override)")
                 for r in session.exec(select(EmbodiedFactor)).all()}
    return Factors(shipped(), overrides)


def parse_overrides(text: str) -> list[EmbodiedFactor]:
    """Rows of device_class,vendor,model,kg_co2e,lifetime_years,source; every row checked before any is used."""
    reader = csv.DictReader(io.StringIO(text))
    if missing := [f for f in OVERRIDE_FIELDS if f not in (reader.fieldnames or [])]:
        raise Refused(f"embodied-carbon CSV lacks column(s) {', '.join(missing)}")
    rows: list[EmbodiedFactor] = []
    for line, row in enumerate(reader, start=2):
        try:
            kg, life = float(row["kg_co2e"]), float(row["lifetime_years"])
        except (TypeError, ValueError):
            raise Refused(f"line {line}: kg_co2e and lifetime_years must be numbers") from None
        if not row["device_class"].strip() or not row["source"].strip() or kg < 0 or life <= 0:
            raise Refused(f"line {line}: needs a device_class, a source, kg_co2e >= 0 and lifetime_years > 0")
        rows.append(EmbodiedFactor(device_class=row["device_class"].strip(), vendor=row["vendor"].strip(),
                                   model=row["model"].strip(), kg_co2e=kg, lifetime_years=life,
                                   source=row["source"].strip()))
    return rows


def store_overrides(session: Session, rows: Iterable[EmbodiedFactor]) -> int:
    """Insert or replace each override by (class, vendor, model)."""
    count = 0
    for row in rows:
        existing = session.exec(select(EmbodiedFactor).where(
            EmbodiedFactor.device_class == row.device_class, EmbodiedFactor.vendor == row.vendor,
            EmbodiedFactor.model == row.model)).first()
        if existing is not None:
            existing.kg_co2e, existing.lifetime_years, existing.source = row.kg_co2e, row.lifetime_years, row.source
            row = existing
        session.add(row)
        count += 1
    return count


def service_end(purchased: date, lifetime_years: float, disposed: date | None, today: date) -> date:
    """The end of the device's actual life: its disposal, else the later of today and its expected end."""
    if disposed is not None:
        return disposed
    return max(today, purchased + timedelta(days=round(lifetime_years * 365.25)))


def amortised_kg(total_kg: float, purchased: date, end: date, year: int) -> float:
    """The share of ``total_kg`` falling in calendar ``year``: days in service that year ÷ days of life."""
    life_days = max((end - purchased).days, 1)
    first, last = max(purchased, date(year, 1, 1)), min(end, date(year + 1, 1, 1))
    return total_kg * max((last - first).days, 0) / life_days


def purchase_year_kg(total_kg: float, purchased: date, year: int) -> float:
    return total_kg if purchased.year == year else 0.0
