"""Insomnia: devices idle out of hours that their OS kept awake, what held them, and what each cause cost.

Waste is the energy package's one rule (``policy_hours.is_waste``, through ``savings.waste_by`` over
``energy_totals``): idle energy out of hours that no policy keeps on. Each wasted device-hour is then
put down to what the agent saw holding the machine in that hour (``AwakeHour``), by ``attribute``:

- the OS has no sleep timer: all of it (whatever held it, the machine would not have slept);
- otherwise the holders, each in proportion to the seconds it was seen holding;
- the agent looked and nothing held it: "nothing_held" (the OS timer is longer than the idle stretch);
- the agent did not look (an older agent, or it was not idle when it looked): "not_reported".

So the causes of an estate add up to its waste to the Wh, and a bursar can see which program or
setting costs most to leave alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlmodel import Session, col, select

from controller.energy.accounting import GRAM, HUNDREDTH_PENNY, WH, Total, energy_totals, jsonable
from controller.energy.accounting import round_half_up as _round
from controller.energy.inputs import load_estate
from controller.energy.policy_hours import PolicyHours
from controller.energy.savings import waste_by
from controller.policy.calendar import Calendar
from controller.policy.model import Policy
from controller.register.models import AwakeCause, AwakeHour
from controller.timeutil import as_utc, hour_floor

NOT_REPORTED = ("not_reported", "", "")
Cause = tuple[str, str, str]  # (kind, what, process)


def attribute(seen: Mapping[Cause, float]) -> list[tuple[Cause, Decimal]]:
    """The shares of one wasted device-hour each cause bears (adding up to 1): the one rule for blame."""
    if not seen:
        return [(NOT_REPORTED, Decimal(1))]
    timer = [c for c in seen if c[0] == AwakeCause.NO_SLEEP_TIMER]
    if timer:
        return [(timer[0], Decimal(1))]
    holders = {c: s for c, s in seen.items() if c[0] != AwakeCause.NOTHING_HELD and s > 0}
    if not holders:
        return [((AwakeCause.NOTHING_HELD.value, "", ""), Decimal(1))]
    whole = sum(Decimal(repr(s)) for s in holders.values())
    return [(cause, Decimal(repr(s)) / whole) for cause, s in sorted(holders.items())]


@dataclass
class _Blame:
    wh: Decimal = Decimal(0)
    pence: Decimal = Decimal(0)
    unpriced_wh: Decimal = Decimal(0)
    grams: Decimal = Decimal(0)
    idle_seconds: Decimal = Decimal(0)
    devices: set[int] = field(default_factory=set)

    def add(self, total: Total, share: Decimal, device_id: int) -> None:
        self.wh += total.wh * share
        self.pence += total.pence * share
        self.unpriced_wh += total.unpriced_wh * share
        self.grams += total.grams * share
        self.idle_seconds += total.seconds_by_state["idle"] * share
        self.devices.add(device_id)


@dataclass
class CauseRow:
    kind: str  # agent.protocol.HolderKind, an AwakeCause, or "not_reported"
    what: str
    process: str
    devices: int
    idle_hours: Decimal
    kwh: Decimal
    cost_gbp: Decimal | None  # None: no tariff covers these hours
    kgco2e: Decimal


@dataclass
class DeviceRow:
    device_id: int
    device: str  # "site / hostname"
    idle_hours: Decimal
    kwh: Decimal
    cost_gbp: Decimal | None
    causes: list[str]  # "kind: what (process)", costliest first


@dataclass
class InsomniaReport:
    start: datetime
    end: datetime
    causes: list[CauseRow]
    devices: list[DeviceRow]
    kwh: Decimal
    cost_gbp: Decimal | None
    kgco2e: Decimal

    def to_json(self) -> dict[str, object]:
        return jsonable(asdict(self))


def cause_text(cause: Cause) -> str:
    kind, what, process = cause
    return f"{kind}: {what}" + (f" ({process})" if process and process != what else "") if what else kind


def _pounds(blame: _Blame) -> Decimal | None:
    return None if blame.wh and blame.unpriced_wh == blame.wh else _round(blame.pence / 100, HUNDREDTH_PENNY)


def insomnia(session: Session, start: datetime, end: datetime, site_ids: Sequence[int] | None = None,
             policies: Sequence[Policy] = (), calendars: Mapping[str, Calendar] | None = None,
             now: datetime | None = None) -> InsomniaReport:
    """The estate's out-of-hours idle waste over [start, end), put down to what held each device awake."""
    estate = load_estate(session, site_ids)
    hours = PolicyHours(estate, policies, calendars)
    totals = energy_totals(session, start, end, ("device_id", "hour", "policy", "state"), estate=estate, now=now,
                           classifier=hours.classifier)
    wasted = waste_by(totals)
    seen: dict[tuple[int, str], dict[Cause, float]] = defaultdict(dict)
    if wasted:
        rows = session.exec(select(AwakeHour).where(col(AwakeHour.device_id).in_(list(estate.devices)),
                                                    col(AwakeHour.hour) >= hour_floor(as_utc(start)),
                                                    col(AwakeHour.hour) < as_utc(end))).all()
        for row in rows:
            seen[(row.device_id, as_utc(row.hour).isoformat())][(row.kind, row.what, row.process)] = row.seconds
    by_cause: dict[Cause, _Blame] = defaultdict(_Blame)
    by_device: dict[int, _Blame] = defaultdict(_Blame)
    device_causes: dict[int, dict[Cause, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    everything = _Blame()
    for (device_text, hour), total in wasted.items():
        device_id = int(device_text)
        for cause, share in attribute(seen.get((device_id, hour), {})):
            by_cause[cause].add(total, share, device_id)
            device_causes[device_id][cause] += total.wh * share
        by_device[device_id].add(total, Decimal(1), device_id)
        everything.add(total, Decimal(1), device_id)
    causes = [CauseRow(kind, what, process, len(b.devices), _round(b.idle_seconds / 3600, Decimal("0.01")),
                       _round(b.wh / 1000, WH), _pounds(b), _round(b.grams / 1000, GRAM))
              for (kind, what, process), b in sorted(by_cause.items(), key=lambda kv: (-kv[1].wh, kv[0]))]
    devices = [DeviceRow(d, f"{estate.sites[estate.devices[d].site_id].name} / {estate.devices[d].hostname}",
                         _round(b.idle_seconds / 3600, Decimal("0.01")), _round(b.wh / 1000, WH), _pounds(b),
                         [cause_text(c) for c, _ in sorted(device_causes[d].items(), key=lambda kv: (-kv[1], kv[0]))])
               for d, b in sorted(by_device.items(), key=lambda kv: (-kv[1].wh, kv[0]))]
    return InsomniaReport(start, end, causes, devices, _round(everything.wh / 1000, WH), _pounds(everything),
                          _round(everything.grams / 1000, GRAM))
