"""The power catalogue: watts by state per device class and per model, shipped defaults plus the user's edits.

Accounting needs watts wherever nothing measured a device: for time with no reports, for the idle draw a
policy action avoided, and for the monitor that counts with each desktop. The shipped figures live in
``data/power_catalogue.yaml`` with their source; a stored override replaces one entry, so corrected
defaults still reach every entry nobody edited. A per-model entry (vendor + model) beats its class.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

import yaml
from sqlmodel import Session, select

from controller.energy.models import PowerCatalogueOverride
from controller.errors import DomainError
from controller.timeutil import utcnow

SHIPPED = Path(__file__).with_name("data") / "power_catalogue.yaml"
STATES = ("active", "idle", "sleep", "off")
FIELDS = ("device_class", "vendor", "model", "active_watts", "idle_watts", "sleep_watts", "off_watts", "source")
# Optional in an import (an entry without it keeps its class's ceiling), always in an export.
CEILING = "ceiling_watts"
MONITOR = "monitor"
UNKNOWN = "unknown"


class CatalogueError(ValueError, DomainError):
    """An entry a user tried to import that cannot be right; the message names the entry and the field."""


@dataclass(frozen=True)
class PowerProfile:
    """Watts by state for one class or model; ``origin`` says whether shipped, overridden or calibrated."""

    device_class: str
    vendor: str
    model: str
    active: Decimal
    idle: Decimal
    sleep: Decimal
    off: Decimal
    source: str
    monitors: int = 0
    origin: str = "shipped"
    ceiling: Decimal | None = None  # the most average power a report may claim; None: the class's

    def watts(self, state: str) -> Decimal:
        return {"active": self.active, "idle": self.idle, "sleep": self.sleep, "off": self.off}[state]

    def row(self) -> dict[str, object]:
        return {"device_class": self.device_class, "vendor": self.vendor, "model": self.model,
                "active_watts": float(self.active), "idle_watts": float(self.idle),
                "sleep_watts": float(self.sleep), "off_watts": float(self.off), "source": self.source,
                CEILING: float(self.ceiling) if self.ceiling is not None else None, "origin": self.origin}


# SMBIOS vendor strings and data-sheet manufacturer names for the same maker.
_VENDOR_SUFFIXES = re.compile(r"[,.]|\b(inc|corporation|corp|ltd|limited|co)\b")
_VENDOR_ALIASES = {"hewlett-packard": "hp", "hewlett packard": "hp", "lenovo group": "lenovo"}


def normal_vendor(vendor: str) -> str:
    """"Dell Inc." → "dell", "Hewlett-Packard" → "hp", "LENOVO" → "lenovo"."""
    text = " ".join(_VENDOR_SUFFIXES.sub(" ", vendor.casefold()).split())
    return _VENDOR_ALIASES.get(text, text)


def _key(device_class: str, vendor: str = "", model: str = "") -> tuple[str, str, str]:
    return device_class.strip().casefold(), normal_vendor(vendor), " ".join(model.casefold().split())


@dataclass(frozen=True)
class Catalogue:
    entries: Mapping[tuple[str, str, str], PowerProfile]
    rapl_wall_factor: Decimal

    def lookup(self, device_class: str | None, vendor: str | None = None, model: str | None = None) -> PowerProfile:
        """The model's entry, else its class's, else the ``unknown`` class (which always exists)."""
        device_class = device_class or UNKNOWN
        wanted = _key(device_class, vendor or "", model or "")
        if wanted in self.entries:
            return self.entries[wanted]
        if wanted[2]:
            # SMBIOS says "OptiPlex 7000"; a data sheet says "OptiPlex 7000 Tower": only an unambiguous prefix.
            near = [p for k, p in self.entries.items() if k[:2] == wanted[:2] and k[2].startswith(wanted[2] + " ")]
            if len(near) == 1:
                return near[0]
        return self.entries.get(_key(device_class)) or self.entries[_key(UNKNOWN)]

    def with_profiles(self, profiles: Iterable[PowerProfile]) -> Catalogue:
        """This catalogue with ``profiles`` added or replacing the entries they name."""
        added = {_key(p.device_class, p.vendor, p.model): p for p in profiles}
        return Catalogue({**self.entries, **added}, self.rapl_wall_factor)

    def ceiling(self, device_class: str | None, vendor: str | None = None, model: str | None = None) -> Decimal:
        """The most average power a device may report: its model's ceiling, else its class's, else unknown's."""
        for profile in (self.lookup(device_class, vendor, model), self.lookup(device_class), self.lookup(UNKNOWN)):
            if profile.ceiling is not None:
                return profile.ceiling
        raise CatalogueError("the unknown class has no ceiling_watts")

    def monitor(self) -> PowerProfile:
        return self.lookup(MONITOR)

    def profiles(self) -> list[PowerProfile]:
        return sorted(self.entries.values(), key=lambda p: (p.device_class, p.vendor, p.model))


def _decimal(entry: Mapping[str, object], field: str, where: str) -> Decimal:
    value = entry.get(field)
    try:
        watts = Decimal(str(value).strip())
    except (InvalidOperation, TypeError):
        raise CatalogueError(f"{where}: {field} must be a number of watts, not {value!r}") from None
    if not watts.is_finite() or watts < 0 or watts > 100_000:
        raise CatalogueError(f"{where}: {field} must be between 0 and 100000 W, not {value}")
    return watts


def profile_from(entry: Mapping[str, object], where: str, origin: str) -> PowerProfile:
    """One validated profile from a YAML mapping or CSV row; the message names the entry if it is wrong."""
    device_class = str(entry.get("device_class") or "").strip()
    if not device_class:
        raise CatalogueError(f"{where}: device_class is missing")
    vendor, model = str(entry.get("vendor") or "").strip(), str(entry.get("model") or "").strip()
    if bool(vendor) != bool(model):
        raise CatalogueError(f"{where}: give both vendor and model for a model entry, or neither for a class")
    source = str(entry.get("source") or "").strip()
    if not source:
        raise CatalogueError(f"{where}: source is missing (say where the figures come from)")
    watts = {state: _decimal(entry, f"{state}_watts", where) for state in STATES}
    if not watts["off"] <= watts["sleep"] <= watts["idle"] <= watts["active"]:
        raise CatalogueError(f"{where}: watts must not fall from off to sleep to idle to active "
                             f"(got {', '.join(f'{s} {w}' for s, w in watts.items())})")
    ceiling = None
    if entry.get(CEILING) not in (None, ""):
        ceiling = _decimal(entry, CEILING, where)
        if ceiling < watts["active"]:
            raise CatalogueError(f"{where}: {CEILING} ({ceiling}) is below active_watts ({watts['active']}): "
                                 "reports of what such a device really draws would be rejected")
    monitors = int(str(entry.get("monitors") or 0))
    return PowerProfile(device_class.casefold(), vendor, model, watts["active"], watts["idle"], watts["sleep"],
                        watts["off"], source[:500], monitors, origin, ceiling)


@cache
def shipped() -> Catalogue:
    data = yaml.safe_load(SHIPPED.read_text())
    entries: dict[tuple[str, str, str], PowerProfile] = {}
    for name, entry in data["classes"].items():
        profile = profile_from({"device_class": name, **entry}, f"{SHIPPED.name} {name}", "shipped")
        entries[_key(name)] = profile
    for i, entry in enumerate(data.get("models") or []):
        profile = profile_from(entry, f"{SHIPPED.name} models[{i}]", "shipped")
        entries[_key(profile.device_class, profile.vendor, profile.model)] = profile
    return Catalogue(entries, Decimal(str(data["rapl_wall_factor"])))


def load(session: Session) -> Catalogue:
    """The shipped catalogue with the stored overrides applied (a class keeps its shipped monitor count)."""
    base = shipped()
    entries = dict(base.entries)
    for row in session.exec(select(PowerCatalogueOverride)):
        key = _key(row.device_class, row.vendor, row.model)
        class_default = base.entries.get(_key(row.device_class))
        entries[key] = PowerProfile(
            row.device_class, row.vendor, row.model, Decimal(str(row.active_watts)), Decimal(str(row.idle_watts)),
            Decimal(str(row.sleep_watts)), Decimal(str(row.off_watts)), row.source,
            class_default.monitors if class_default else 0, "override",
            Decimal(str(row.ceiling_watts)) if row.ceiling_watts is not None else
            class_default.ceiling if class_default else None)
    return Catalogue(entries, base.rapl_wall_factor)


def parse(text: str, filename: str) -> list[PowerProfile]:
    """Entries from a CSV (header: the FIELDS, or Boavizta's footprint CSV) or a YAML list of mappings;
    all-or-nothing on errors."""
    if filename.lower().endswith(".csv"):
        reader = csv.DictReader(io.StringIO(text))
        if {"yearly_tec", "subcategory", "manufacturer"} <= set(reader.fieldnames or []):
            return parse_boavizta(text, shipped())
        missing = [f for f in FIELDS if f not in (reader.fieldnames or [])]
        if missing:
            raise CatalogueError(f"{filename}: CSV header lacks {', '.join(missing)}")
        rows: list[Mapping[str, object]] = list(reader)
    elif filename.lower().endswith((".yaml", ".yml")):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CatalogueError(f"{filename}: not valid YAML ({str(exc).splitlines()[0]})") from None
        rows = data.get("entries") if isinstance(data, dict) else data
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise CatalogueError(f"{filename}: expected a list of entries (or a mapping with 'entries:')")
    else:
        raise CatalogueError(f"{filename}: the file must end in .csv, .yaml or .yml")
    return [profile_from(row, f"{filename} entry {i + 1}", "override") for i, row in enumerate(rows)]


# ENERGY STAR typical energy consumption, E = 8.76 × Σ(P_mode × share_mode) (DOMAIN.md): the shares of the
# year a notebook and a desktop spend off, asleep and idle. The desktop shares are reported, not verified.
TEC_SHARES = {"laptop": (Decimal("0.60"), Decimal("0.10"), Decimal("0.30")),
              "desktop": (Decimal("0.55"), Decimal("0.05"), Decimal("0.40"))}
BOAVIZTA_CLASSES = {"Laptop": "laptop", "Desktop": "desktop"}


def from_tec(base: PowerProfile, vendor: str, model: str, yearly_kwh: Decimal, source: str) -> PowerProfile | None:
    """A model's watts from its data sheet's yearly TEC: off and sleep as its class, idle solved from the
    ENERGY STAR formula, active at its class's active/idle ratio. None when the figures cannot fit."""
    off_share, sleep_share, idle_share = TEC_SHARES[base.device_class]
    idle = (yearly_kwh / Decimal("8.76") - off_share * base.off - sleep_share * base.sleep) / idle_share
    idle = idle.quantize(Decimal("0.1"))
    if idle < base.sleep:
        return None
    active = (idle * base.active / base.idle).quantize(Decimal("0.1"))
    return PowerProfile(base.device_class, vendor, model, active, idle, base.sleep, base.off, source[:500],
                        base.monitors, "override")


def parse_boavizta(text: str, base: Catalogue) -> list[PowerProfile]:
    """Per-model entries from Boavizta's footprint CSV (ODbL; manufacturers' data sheets): the laptops and
    desktops that give a yearly TEC."""
    profiles = []
    for row in csv.DictReader(io.StringIO(text)):
        device_class = BOAVIZTA_CLASSES.get(row.get("subcategory", ""))
        try:
            yearly = Decimal(row.get("yearly_tec") or "")
        except InvalidOperation:
            continue
        if device_class is None or not yearly.is_finite() or yearly <= 0:
            continue
        source = (f"idle from the data sheet's TEC {yearly} kWh/year by the ENERGY STAR formula; "
                  f"Boavizta footprint data (ODbL), {row.get('sources', '').strip()}")
        profile = from_tec(base.lookup(device_class), row["manufacturer"].strip(), row["name"].strip(), yearly,
                           source)
        if profile is not None:
            profiles.append(profile)
    return profiles


def import_profiles(session: Session, profiles: Iterable[PowerProfile]) -> int:
    """Store each profile as an override, replacing any earlier one for the same key. The caller commits."""
    count = 0
    existing = {_key(r.device_class, r.vendor, r.model): r for r in session.exec(select(PowerCatalogueOverride))}
    for profile in profiles:
        row = existing.get(_key(profile.device_class, profile.vendor, profile.model)) or PowerCatalogueOverride(
            device_class=profile.device_class, vendor=profile.vendor, model=profile.model,
            active_watts=0, idle_watts=0, sleep_watts=0, off_watts=0, source="")
        row.active_watts, row.idle_watts = float(profile.active), float(profile.idle)
        row.sleep_watts, row.off_watts = float(profile.sleep), float(profile.off)
        row.ceiling_watts = float(profile.ceiling) if profile.ceiling is not None else None
        row.source, row.updated_at = profile.source, utcnow()
        session.add(row)
        existing[_key(profile.device_class, profile.vendor, profile.model)] = row
        count += 1
    return count


def export_csv(catalogue: Catalogue) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*FIELDS, CEILING, "origin"], lineterminator="\n")
    writer.writeheader()
    for profile in catalogue.profiles():
        writer.writerow(profile.row())
    return out.getvalue()


def export_yaml(catalogue: Catalogue) -> str:
    return yaml.safe_dump({"entries": [p.row() for p in catalogue.profiles()]}, sort_keys=False)


def with_measured(profile: PowerProfile, measured: Mapping[str, Decimal], source: str) -> PowerProfile:
    """The profile with each state's watts replaced by the device's own measured mean, where there is one."""
    if not measured:
        return profile
    watts = {state: measured.get(state, profile.watts(state)) for state in STATES}
    return replace(profile, active=watts["active"], idle=watts["idle"], sleep=watts["sleep"], off=watts["off"],
                   source=source, origin="calibrated")
