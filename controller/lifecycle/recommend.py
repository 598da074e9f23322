"""What to do with each device in service, and why: pure rules over facts gathered by ``queries``.

Each rule gives one sentence a bursar can act on. A device old enough for refresh but still able to run
the next operating system is advised to be extended (more RAM, an SSD) rather than replaced, with the
embodied carbon that avoids: a replacement's footprint for the years the extension buys.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from controller.lifecycle.embodied import Figure
from controller.lifecycle.os_support import SupportEnd, describe, support_end
from controller.lifecycle.states import State

GIB = 2**30


class Kind(enum.StrEnum):
    REFRESH_DUE = "refresh_due"
    EXTEND = "extend"
    WARRANTY_ENDED = "warranty_ended"
    WARRANTY_ENDING = "warranty_ending"
    OS_SUPPORT_ENDED = "os_support_ended"
    OS_SUPPORT_ENDING = "os_support_ending"
    BATTERY_WORN = "battery_worn"
    BELOW_SPEC = "below_spec"
    NOT_SEEN = "not_seen"
    UNDERUSED = "underused"


@dataclass(frozen=True)
class Policy:
    """Editable defaults (DOMAIN.md: schools refresh desktops and laptops at 4-5 years, tablets at about 3)."""

    refresh_years: Mapping[str, float] = field(default_factory=lambda: {
        "desktop": 5, "laptop": 4, "server": 7, "tablet": 3, "chromebook": 4, "thin_client": 6, "monitor": 7})
    notice_days: int = 90
    battery_min_health: float = 0.6
    stale_days: int = 30
    underused_hours_per_week: float = 2.0
    min_memory_gib: float = 4.0
    upgrade_memory_gib: float = 8.0
    extension_years: float = 2.0
    os_notice_days: int = 183  # an OS upgrade or ESU takes a term to plan: warn six months ahead


@dataclass(frozen=True)
class DeviceFacts:
    device_id: int
    hostname: str
    site: str
    device_class: str
    state: str
    purchase_date: date | None = None
    warranty_end: date | None = None
    os_end_of_support: date | None = None
    os_name: str | None = None
    os_version: str | None = None
    os_esu: bool = False  # enrolled in Extended Security Updates
    cpu_model: str | None = None
    memory_bytes: int | None = None
    has_ssd: bool | None = None  # None: no disk reported, or the OS did not say
    battery_health: float | None = None  # worst full/design capacity of its batteries
    last_seen: datetime | None = None
    active_hours_per_week: float | None = None  # None: not observed for a whole window
    embodied: Figure | None = None


@dataclass(frozen=True)
class Recommendation:
    device_id: int
    hostname: str
    site: str
    kind: str
    reason: str
    avoided_kg_co2e: float | None = None


ACTIVE_STATES = frozenset({State.DEPLOYED, State.REDEPLOYED})
CONSIDERED = frozenset({State.IN_STOCK, State.DEPLOYED, State.IN_REPAIR, State.REDEPLOYED})


def recommend(devices: Iterable[DeviceFacts], policy: Policy, today: date, now: datetime) -> list[Recommendation]:
    out: list[Recommendation] = []
    for d in sorted(devices, key=lambda d: (d.site, d.hostname.casefold(), d.device_id)):
        if d.state not in CONSIDERED:
            continue
        out += [Recommendation(d.device_id, d.hostname, d.site, kind, reason, avoided)
                for kind, reason, avoided in _rules(d, policy, today, now)]
    return out


def _rules(d: DeviceFacts, policy: Policy, today: date, now: datetime) -> list[tuple[Kind, str, float | None]]:
    found: list[tuple[Kind, str, float | None]] = []
    spec_problems = below_spec(d, policy)
    if age := _refresh_age(d, policy, today):
        found.append(_refresh_or_extend(d, policy, age, spec_problems))
    found += _dated(d.warranty_end, "warranty", Kind.WARRANTY_ENDED, Kind.WARRANTY_ENDING, policy.notice_days, today)
    support = os_end(d)
    if support is not None:
        found += _dated(support.ends, f"{support.what} security support", Kind.OS_SUPPORT_ENDED,
                        Kind.OS_SUPPORT_ENDING, policy.os_notice_days, today, f" ({support.source})")
    if d.battery_health is not None and d.battery_health < policy.battery_min_health:
        found.append((Kind.BATTERY_WORN, f"battery holds {d.battery_health:.0%} of its design capacity "
                      f"(replace below {policy.battery_min_health:.0%})", None))
    if spec_problems:
        found.append((Kind.BELOW_SPEC, "; ".join(spec_problems), None))
    stale = d.last_seen is not None and now - d.last_seen > timedelta(days=policy.stale_days)
    if d.state in ACTIVE_STATES and stale:
        found.append((Kind.NOT_SEEN, f"not seen for {(now - d.last_seen).days} days while {d.state}: "
                      "find it, or record it lost or disposed", None))
    if (d.state in ACTIVE_STATES and not stale and d.active_hours_per_week is not None
            and d.active_hours_per_week < policy.underused_hours_per_week):
        found.append((Kind.UNDERUSED, f"in use {d.active_hours_per_week:.1f} h a school week (under "
                      f"{policy.underused_hours_per_week:g} h): redeploy it where it is needed", None))
    return found


def _refresh_age(d: DeviceFacts, policy: Policy, today: date) -> float | None:
    limit = policy.refresh_years.get(d.device_class)
    if d.purchase_date is None or limit is None:
        return None
    age = (today - d.purchase_date).days / 365.25
    return age if age >= limit else None


def _refresh_or_extend(d: DeviceFacts, policy: Policy, age: float,
                       spec_problems: list[str]) -> tuple[Kind, str, float | None]:
    due = f"{age:.1f} years old ({d.device_class} refresh at {policy.refresh_years[d.device_class]:g})"
    if spec_problems and not _only_memory(spec_problems):
        return Kind.REFRESH_DUE, due, None
    if d.memory_bytes is None:
        return Kind.REFRESH_DUE, f"{due}; its specification is unknown: check whether it can be extended", None
    upgrades = []
    if d.memory_bytes is not None and d.memory_bytes < policy.upgrade_memory_gib * GIB:
        upgrades.append(f"add RAM ({d.memory_bytes / GIB:g} → {policy.upgrade_memory_gib:g} GiB)")
    if d.has_ssd is False:
        upgrades.append("fit an SSD")
    advice = " and ".join(upgrades) if upgrades else "no upgrade needed"
    avoided = None
    if d.embodied is not None:
        avoided = round(d.embodied.kg_co2e * policy.extension_years / d.embodied.lifetime_years, 1)
    carbon = f"; avoids {avoided:g} kgCO2e of a replacement's embodied carbon" if avoided is not None else ""
    return (Kind.EXTEND, f"{due} but fit for {policy.extension_years:g} more years: {advice}{carbon}", avoided)


def _only_memory(problems: list[str]) -> bool:
    return all(p.startswith("RAM") for p in problems)


def _dated(end: date | None, what: str, ended: Kind, ending: Kind, notice_days: int,
           today: date, source: str = "") -> list[tuple[Kind, str, None]]:
    if end is None:
        return []
    if end < today:
        return [(ended, f"{what} ended on {end.isoformat()}{source}", None)]
    if (end - today).days <= notice_days:
        return [(ending, f"{what} ends on {end.isoformat()}, in {(end - today).days} days{source}", None)]
    return []


def os_end(d: DeviceFacts) -> SupportEnd | None:
    """When the device's OS stops getting security updates: its register entry's date if it has one (a
    Chromebook's auto-update expiry from the Google Admin import), else the shipped data for what its
    agent reports, at its ESU date when the device is enrolled."""
    if d.os_end_of_support is not None:
        return SupportEnd(d.os_end_of_support, "operating-system", "the device's register entry")
    return support_end(d.os_name, d.os_version, d.os_esu)


def below_spec(d: DeviceFacts, policy: Policy) -> list[str]:
    """What stops the device running today's or the next OS: too little RAM, a CPU Windows 11 refuses."""
    problems = []
    if d.memory_bytes is not None and d.memory_bytes < policy.min_memory_gib * GIB:
        problems.append(f"RAM {d.memory_bytes / GIB:g} GiB, below the {policy.min_memory_gib:g} GiB minimum")
    if describe(d.os_name, d.os_version).family == "Windows 10" and windows11_cpu(d.cpu_model) is False:
        problems.append(f"CPU {d.cpu_model} cannot run Windows 11 (needs Intel 8th generation or AMD Zen+)")
    return problems


_INTEL_CORE = re.compile(r"\bi[3579]-(\d{3,5})")
_RYZEN = re.compile(r"\bRyzen\s+\d\s+(?:PRO\s+)?(\d)(\d{3})([A-Z]*)", re.IGNORECASE)


def windows11_cpu(cpu_model: str | None) -> bool | None:
    """True or False for Intel Core and AMD Ryzen; None where the model alone does not tell."""
    text = cpu_model or ""
    if "Core(TM) Ultra" in text or "Core Ultra" in text:
        return True
    if m := _INTEL_CORE.search(text):
        digits = m.group(1)
        generation = int(digits[:2]) if len(digits) == 5 or (len(digits) == 4 and digits[0] == "1") else int(digits[0])
        return generation >= 8 if len(digits) > 3 else False
    if m := _RYZEN.search(text):
        series, suffix = int(m.group(1)), m.group(3).upper()
        if series == 2:  # Ryzen 2000 desktop parts are Zen+; the 2000 APUs (G, U, H) are still Zen
            return not any(s in suffix for s in ("G", "U", "H"))
        return series >= 3
    return None
