"""Stored SNMP readings → the energy accounting's hourly buckets, method ``metered``.

Who the energy belongs to:
- a device in the meter map gets the sum of its feeds (an outlet, a PoE port, a whole PDU or UPS),
  which the accounting then prefers over that device's model estimate;
- the polled device itself (PDU, UPS, PoE switch) gets what flowed through it that the map does not
  attribute to anyone else, so each metered joule is counted once: a PDU's total minus its mapped
  outlets. A printer or switch whose own draw no MIB reports gets nothing rather than a guess.

Recomputing is idempotent. Each run recomputes whole hours from the stored readings and writes to
EnergyBucket only the difference from what it wrote before (the ``SnmpMeteredHour`` ledger), so a
re-poll, a replayed reading or a second run adds nothing, and an edited meter map moves energy
between devices instead of adding it.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from agent.protocol import PowerMethod, PowerState
from controller.energy.hourly import BucketSum, hour_shares
from controller.energy.rollup import reopen
from controller.register.models import Device, DeviceMac, EnergyBucket
from controller.snmp.loads import DEVICE, Load, find, from_json
from controller.snmp.mapping import Feed, MeteredDevice, combine
from controller.snmp.metering import PowerReading, metered_energy
from controller.snmp.models import SnmpMeteredHour, SnmpReading, SnmpTarget
from controller.timeutil import hour_floor

log = logging.getLogger(__name__)
METERED = PowerMethod.METERED.value
HOUR = timedelta(hours=1)
Polled = tuple[datetime, Mapping[str, Load]]


@dataclass(frozen=True)
class TargetHistory:
    """One target's readings in time order."""

    address: str
    device_id: int | None
    readings: Sequence[Polled]

    def nearest(self, at: datetime, within: timedelta) -> Polled | None:
        """The reading closest to ``at`` and no further than ``within`` from it: readings of one poll
        round are seconds apart, so a dual-supply server's two PDUs are read as one moment."""
        times = [t for t, _ in self.readings]
        i = bisect.bisect_left(times, at)
        near = [self.readings[j] for j in (i - 1, i) if 0 <= j < len(self.readings)]
        best = min(near, key=lambda r: abs(r[0] - at), default=None)
        return best if best is not None and abs(best[0] - at) <= within else None


def own_reading(at: datetime, loads: Mapping[str, Load], mapped: Sequence[Feed]) -> PowerReading | None:
    """What flowed through the device and was not mapped to another device; None when unknown."""
    total = loads.get(DEVICE)
    if total is None or total.watts is None or any(f.outlet is None and f.port is None for f in mapped):
        return None
    attributed = 0.0
    for feed in mapped:
        key = find(loads, feed.outlet, feed.port)
        watts = loads[key].watts if key is not None else None
        if watts is None:
            return None
        attributed += watts
    return PowerReading(at, max(total.watts - attributed, 0.0), None if mapped else total.energy)


def series(histories: Sequence[TargetHistory], entries: Iterable[tuple[int, MeteredDevice]],
           align: timedelta = timedelta(minutes=2)) -> dict[int, list[PowerReading]]:
    """Power readings over time for every metered device id: polled devices first, then mapped ones."""
    entries = list(entries)
    mapped: dict[str, list[Feed]] = {}
    for _, entry in entries:
        for feed in entry.feeds:
            mapped.setdefault(feed.address, []).append(feed)
    found: dict[int, list[PowerReading]] = {}
    for history in histories:
        if history.device_id is None:
            continue
        own = [r for at, loads in history.readings
               if (r := own_reading(at, loads, mapped.get(history.address, ()))) is not None]
        if own:
            found.setdefault(history.device_id, []).extend(own)
    by_address = {h.address: h for h in histories}
    for device_id, entry in entries:
        first = by_address.get(entry.feeds[0].address)
        readings = []
        for at, _ in first.readings if first else ():
            seen = {}
            for feed in entry.feeds:
                history = by_address.get(feed.address)
                polled = history.nearest(at, align) if history else None
                if polled is not None:
                    seen[feed.address] = polled
            reading = combine(entry, seen)
            if reading is not None:
                readings.append(reading)
        found[device_id] = readings
    return found


def hourly(readings: Iterable[PowerReading], max_gap: timedelta) -> dict[tuple[datetime, str], BucketSum]:
    """Metered energy per (UTC hour, state): each interval spread over the hours it covers."""
    sums: dict[tuple[datetime, str], BucketSum] = {}
    for interval in metered_energy(readings, max_gap):
        state = (PowerState.ACTIVE if interval.joules > 0 else PowerState.OFF).value
        for hour, share in hour_shares(interval.start, interval.end):
            bucket = sums.setdefault((hour, state), BucketSum())
            bucket.joules += interval.joules * share
            bucket.seconds += interval.seconds * share
    return sums


def resolve(session: Session, entries: Iterable[MeteredDevice]) -> list[tuple[int, MeteredDevice]]:
    """Meter-map entries with the register's device id; an entry naming no device is skipped (logged)."""
    resolved = []
    for entry in entries:
        kind, _, value = entry.device.partition(":")
        if kind == "id":
            device_id = int(value) if value.isdigit() and session.get(Device, int(value)) else None
        elif kind == "mac":
            device_id = session.exec(select(DeviceMac.device_id).where(DeviceMac.mac == value.lower())).first()
        else:
            column = Device.serial if kind == "serial" else Device.hostname
            device_id = session.exec(select(Device.id).where(column == value).order_by(col(Device.id))).first()
        if device_id is None:
            log.warning("snmp meter map: no device %s in the register; its feeds are not attributed", entry.device)
            continue
        resolved.append((device_id, entry))
    return resolved


@dataclass
class Accounted:
    devices: set[int] = field(default_factory=set)
    joules_added: float = 0.0


def account(session: Session, start: datetime, end: datetime, entries: Iterable[MeteredDevice] = (),
            max_gap: timedelta = timedelta(minutes=20)) -> Accounted:
    """Recompute, in the caller's transaction, the metered buckets of every UTC hour that an interval
    ending in [start, end] can touch: from ``max_gap`` before ``start`` (a new reading closes an
    interval that began up to then) to ``end``. Readings ``max_gap`` beyond are read too, since
    intervals cross hour edges."""
    first, last = hour_floor(start - max_gap), hour_floor(end)
    histories = _histories(session, first - max_gap, last + HOUR + max_gap)
    wanted: dict[tuple[int, datetime, str], BucketSum] = {}
    for device_id, readings in series(histories, resolve(session, entries)).items():
        for (hour, state), value in hourly(readings, max_gap).items():
            if first <= hour <= last:
                wanted[(device_id, hour, state)] = value
    ledger = {(row.device_id, row.hour, row.state): row for row in session.exec(
        select(SnmpMeteredHour).where(SnmpMeteredHour.hour >= first, SnmpMeteredHour.hour <= last))}
    done = Accounted()
    changed: dict[int, datetime] = {}
    for key in sorted(set(wanted) | set(ledger)):
        new, old = wanted.get(key, BucketSum()), ledger.get(key)
        joules, seconds = new.joules - (old.joules if old else 0.0), new.seconds - (old.seconds if old else 0.0)
        if abs(joules) < 1e-6 and abs(seconds) < 1e-6:
            continue
        _add_to_bucket(session, key, joules, seconds)
        if key not in wanted:
            session.delete(old)
        elif old is None:
            session.add(SnmpMeteredHour(device_id=key[0], hour=key[1], state=key[2], joules=new.joules,
                                        seconds=new.seconds))
        else:
            old.joules, old.seconds = new.joules, new.seconds
            session.add(old)
        done.devices.add(key[0])
        done.joules_added += joules
        changed[key[0]] = min(changed.get(key[0], key[1]), key[1])
    reopen(session, changed, end)  # a meter's reading of a rolled-up day re-opens it
    return done


def _histories(session: Session, since: datetime, until: datetime) -> list[TargetHistory]:
    rows = session.exec(select(SnmpTarget.id, SnmpTarget.address, SnmpTarget.device_id, SnmpReading.at,
                               SnmpReading.loads)
                        .join(SnmpReading, col(SnmpReading.target_id) == col(SnmpTarget.id))
                        .where(SnmpReading.at >= since, SnmpReading.at <= until)
                        .order_by(col(SnmpTarget.id), col(SnmpReading.at)))
    grouped: dict[int, tuple[str, int | None, list[Polled]]] = {}
    for target_id, address, device_id, at, loads in rows:
        grouped.setdefault(target_id, (address, device_id, []))[2].append((at, from_json(loads or {})))
    return [TargetHistory(address, device_id, readings) for address, device_id, readings in grouped.values()]


def _add_to_bucket(session: Session, key: tuple[int, datetime, str], joules: float, seconds: float) -> None:
    """Add to the bucket in SQL (joules = joules + Δ), so energy other writers put there is kept. A bucket
    left with no time is removed: an empty metered row would hide the device's model estimate."""
    device_id, hour, state = key
    table = EnergyBucket.__table__
    match = ((table.c.device_id == device_id) & (table.c.hour == hour) & (table.c.state == state)
             & (table.c.method == METERED))
    updated = session.execute(table.update().where(match).values(joules=table.c.joules + joules,
                                                                 seconds=table.c.seconds + seconds))
    if updated.rowcount == 0:
        session.add(EnergyBucket(device_id=device_id, hour=hour, state=state, method=METERED, joules=joules,
                                 seconds=seconds))
        session.flush()
    else:
        session.execute(table.delete().where(match & (table.c.seconds < 1e-6)))
