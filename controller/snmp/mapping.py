"""Which device each PDU outlet, PoE port or whole PDU/UPS feeds, so a metered reading can replace
that device's model estimate.

```yaml
metered:
  - device: serial:CZC1234XYZ            # as the register knows it: id:, serial:, hostname: or mac:
    feeds:                               # every supply it draws from; all must be read for a figure
      - {address: 10.20.5.9, outlet: 3}          # outlet index, or its name on the PDU
      - {address: 10.20.5.10, outlet: "SRV1 PSU2"}
  - device: hostname:library-ap
    feeds: [{address: 10.20.1.2, port: 5}]       # a PoE port
  - device: id:42
    feeds: [{address: 10.20.5.11}]               # the whole PDU or UPS feeds only this device
```
A dual-supply server counts only when every supply was read: half a server is worse than the
model estimate, because it looks measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from controller.errors import DomainError
from controller.snmp.loads import Load, find, poll_loads
from controller.snmp.metering import PowerReading
from controller.snmp.readings import DevicePoll

DEVICE_KEYS = ("id", "serial", "hostname", "mac")


class MappingError(ValueError, DomainError):
    """A meter map that cannot be used; the message names the entry."""


@dataclass(frozen=True)
class Feed:
    address: str
    outlet: str | None = None
    port: str | None = None

    def describe(self) -> str:
        if self.outlet is not None:
            return f"outlet {self.outlet} of {self.address}"
        if self.port is not None:
            return f"PoE port {self.port} of {self.address}"
        return self.address


@dataclass(frozen=True)
class MeteredDevice:
    device: str
    feeds: tuple[Feed, ...]


def load_meter_map(path: Path) -> tuple[MeteredDevice, ...]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise MappingError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise MappingError(f"{path} is not valid YAML: {exc}") from None
    return parse_meter_map(data)


def parse_meter_map(data: object) -> tuple[MeteredDevice, ...]:
    if not isinstance(data, dict) or set(data) - {"metered"} or not isinstance(data.get("metered", []), list):
        raise MappingError("a meter map is {metered: [{device, feeds}, …]}")
    entries, taken = [], {}
    for i, entry in enumerate(data.get("metered", [])):
        where = f"metered[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"device", "feeds"}:
            raise MappingError(f"{where}: expected device and feeds")
        device = str(entry["device"]).strip()
        kind, _, value = device.partition(":")
        if kind not in DEVICE_KEYS or not value:
            raise MappingError(f"{where}.device: write it as {', '.join(k + ':…' for k in DEVICE_KEYS)}")
        if not isinstance(entry["feeds"], list) or not entry["feeds"]:
            raise MappingError(f"{where}.feeds: list at least one feed")
        feeds = tuple(_feed(f, f"{where}.feeds[{j}]") for j, f in enumerate(entry["feeds"]))
        for feed in feeds:
            if feed in taken:
                raise MappingError(f"{where}: {feed.describe()} already feeds {taken[feed]}")
            taken[feed] = device
        entries.append(MeteredDevice(device, feeds))
    return tuple(entries)


def _feed(spec: object, where: str) -> Feed:
    if not isinstance(spec, dict) or "address" not in spec or set(spec) - {"address", "outlet", "port"}:
        raise MappingError(f"{where}: expected address and at most one of outlet or port")
    if "outlet" in spec and "port" in spec:
        raise MappingError(f"{where}: a feed is an outlet or a port, not both")
    outlet, port = spec.get("outlet"), spec.get("port")
    return Feed(str(spec["address"]), None if outlet is None else str(outlet), None if port is None else str(port))


def feed_reading(feed: Feed, at: datetime, loads: Mapping[str, Load]) -> PowerReading | None:
    """What one poll's loads say about one feed; None when they say nothing usable."""
    key = find(loads, feed.outlet, feed.port)
    load = loads[key] if key is not None else None
    return PowerReading(at, load.watts, load.energy) if load and load.watts is not None else None


def combine(entry: MeteredDevice, seen: Mapping[str, tuple[datetime, Mapping[str, Load]]]) -> PowerReading | None:
    """The device's draw from one poll per feed address (its time and loads): the sum over its
    feeds, or None unless every feed was read. The energy register is kept only for a single feed,
    where resets and wraps still mean something."""
    readings = []
    for feed in entry.feeds:
        polled = seen.get(feed.address)
        reading = feed_reading(feed, *polled) if polled is not None else None
        if reading is None:
            return None
        readings.append(reading)
    watts = sum(r.watts for r in readings if r.watts is not None)
    energy = readings[0].energy if len(readings) == 1 else None
    return PowerReading(max(r.at for r in readings), watts, energy)


def device_reading(entry: MeteredDevice, polls: Mapping[str, DevicePoll]) -> PowerReading | None:
    """The device's draw from the latest polls, by address (see ``combine``)."""
    return combine(entry, {address: (poll.at, poll_loads(poll)) for address, poll in polls.items() if poll.ok})
