"""Turns collector readings into one :class:`protocol.Report` per interval.

The sampler keeps the readings taken at the end of the previous interval (at creation for the
first) and measures each new interval between those and fresh ones: mean CPU load, time asleep,
energy from RAPL counters. Every energy figure is labelled with its method, and the power model's
estimate is always included so the controller can calibrate it against the measurements.

Inventory rides along on the first report, whenever it changes and at least daily; the count and
names of signed-in users change all day and do not count as a change.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from agent.collectors import COLLECTORS
from agent.collectors.activity import ActivityReading, cpu_percent_between
from agent.collectors.rapl import energy_between
from agent.config import AgentConfig
from agent.labels import load_labels
from agent.platform.base import BatteryDraw, RaplReading
from agent.protocol import (
    MAX_INTERVAL_SECONDS,
    MAX_WATTS,
    Activity,
    DeviceClass,
    EnergySample,
    Insomnia,
    Inventory,
    PowerMethod,
    PowerState,
    ProtocolError,
    Report,
    UpdateStatus,
    WakeReadiness,
    from_wire,
    to_wire,
)

INVENTORY_REFRESH = timedelta(hours=24)
VOLATILE_INVENTORY_FIELDS = ("user_count", "user_names")
MAX_DETAIL = 128
MIN_ADVANCE_SECONDS = 1.0  # a RAPL counter ticks every millisecond or so: over a second it must have moved

T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- the power model -------------------------------------------------------------------------------

@dataclass(frozen=True)
class PowerModel:
    idle_watts: float
    max_watts: float
    sleep_watts: float
    source: str = ""

    def awake_watts(self, cpu_percent: float) -> float:
        """Linear in CPU load between idle and full load: the usual first-order server and PC model."""
        return self.idle_watts + (self.max_watts - self.idle_watts) * cpu_percent / 100


class PowerModelError(ValueError):
    """A power model file that would produce nonsense watts."""


def parse_power_models(text: str, defaults: Mapping[DeviceClass, PowerModel] | None = None,
                       ) -> dict[DeviceClass, PowerModel]:
    """Models by device class from power_models.json text, over ``defaults`` for classes it omits."""
    models = dict(defaults or {})
    try:
        entries = json.loads(text)["models"]
    except (ValueError, KeyError, TypeError) as exc:
        raise PowerModelError(f"a power model file needs a \"models\" object: {exc}") from None
    for name, entry in entries.items():
        try:
            device_class = DeviceClass(name)
        except ValueError:
            raise PowerModelError(f"{name!r} is not a device class; use one of {[c.value for c in DeviceClass]}"
                                  ) from None
        try:
            model = PowerModel(idle_watts=float(entry["idle_watts"]), max_watts=float(entry["max_watts"]),
                               sleep_watts=float(entry["sleep_watts"]), source=str(entry.get("source", "")))
        except (KeyError, TypeError, ValueError):
            raise PowerModelError(f"{name}: idle_watts, max_watts and sleep_watts must all be numbers") from None
        if not 0 <= model.idle_watts <= model.max_watts <= MAX_WATTS or not 0 <= model.sleep_watts <= MAX_WATTS:
            raise PowerModelError(f"{name}: watts must satisfy 0 <= idle_watts <= max_watts <= {MAX_WATTS:g} "
                                  f"and 0 <= sleep_watts <= {MAX_WATTS:g}")
        models[device_class] = model
    missing = set(DeviceClass) - set(models)
    if missing:
        raise PowerModelError(f"no power model for {sorted(c.value for c in missing)}")
    return models


def load_power_models(override: Path | None) -> dict[DeviceClass, PowerModel]:
    """The shipped defaults, with a site's override file laid over them."""
    # A plain path, not importlib.resources: that pulls in zipfile, a third of a MiB the agent keeps.
    models = parse_power_models((Path(__file__).parent / "power_models.json").read_text("utf-8"))
    if override is not None:
        try:
            text = override.read_text("utf-8")
        except OSError as exc:
            raise PowerModelError(f"cannot read the power model file {override}: {exc.strerror}") from None
        models = parse_power_models(text, models)
    return models


# --- interval arithmetic -----------------------------------------------------------------------------

def activity_state(cpu_percent: float, idle_seconds: float | None, config: AgentConfig) -> PowerState:
    """ACTIVE if someone gave input within the idle threshold or the CPU was busy, else IDLE."""
    recent_input = idle_seconds is not None and idle_seconds <= config.idle_threshold_seconds
    return PowerState.ACTIVE if recent_input or cpu_percent > config.busy_cpu_percent else PowerState.IDLE


def _measured(method: PowerMethod, state: PowerState, seconds: float, joules: float, detail: str) -> EnergySample:
    """A measured figure, unless it implies a draw no machine has: a driver reporting in the wrong
    unit must cost that one figure, not the whole report (the protocol refuses such energy)."""
    if joules > MAX_WATTS * max(seconds, 1.0):
        return EnergySample(method=method, state=state, seconds=seconds, status="unavailable: implausible reading",
                            detail=detail)
    return EnergySample(method=method, state=state, seconds=seconds, joules=joules, detail=detail)


def rapl_sample(previous: RaplReading | None, current: RaplReading, seconds: float, state: PowerState,
                slept: bool) -> EnergySample:
    """The RAPL energy between two readings, or why there is none (never a silent zero)."""
    def unavailable(status: str) -> EnergySample:
        return EnergySample(method=PowerMethod.RAPL, state=state, seconds=seconds, status=status)

    if current.status != "ok":
        return unavailable(current.status)
    before = {counter.zone: counter for counter in previous.counters} if previous and previous.status == "ok" else {}
    # Zones readable at both ends count; one that could not be read at either end is named, not summed.
    counters = [counter for counter in current.counters if counter.zone in before]
    if not counters:
        return unavailable("unavailable: first reading")
    if slept and any(counter.energy_uj < before[counter.zone].energy_uj for counter in counters):
        # Some firmware zeroes the counters on resume; reading that as a wrap would invent energy.
        return unavailable("unavailable: counter reset by suspend")
    # A powered package or DIMM always uses some energy: a counter that stood still is broken, not 0 J.
    frozen = [c for c in counters if c.energy_uj == before[c.zone].energy_uj] if seconds >= MIN_ADVANCE_SECONDS else []
    if len(frozen) == len(counters):
        return EnergySample(method=PowerMethod.RAPL, state=state, seconds=seconds,
                            status="unavailable: counter not advancing",
                            detail="+".join(c.name for c in frozen)[:MAX_DETAIL])
    counters = [c for c in counters if c not in frozen]
    microjoules = sum(energy_between(before[counter.zone], counter) for counter in counters)
    left_out = [*current.unreadable, *(f"{c.name} ({c.zone}): unreadable at the start"
                                       for c in current.counters if c.zone not in before),
                *(f"{c.name} ({c.zone}): counter not advancing" for c in frozen)]
    detail = "+".join(counter.name for counter in counters) + (f"; left out {', '.join(left_out)}" if left_out else "")
    return _measured(PowerMethod.RAPL, state, seconds, microjoules / 1e6, detail[:MAX_DETAIL])


def battery_sample(previous: BatteryDraw | None, current: BatteryDraw, seconds: float,
                   state: PowerState) -> EnergySample:
    """The mean of the draws at both ends of the interval, when the battery powered all of it."""
    def unavailable(status: str) -> EnergySample:
        return EnergySample(method=PowerMethod.BATTERY, state=state, seconds=seconds, status=status,
                            detail=current.detail[:MAX_DETAIL])

    if not current.discharging:
        return unavailable("unavailable: on AC")
    if current.watts is None:
        return unavailable("unavailable: no discharge rate")
    if previous is None:
        return unavailable("unavailable: first reading")
    if not previous.discharging or previous.watts is None:
        return unavailable("unavailable: on AC for part of the interval")
    return _measured(PowerMethod.BATTERY, state, seconds, (previous.watts + current.watts) / 2 * seconds,
                     current.detail[:MAX_DETAIL])


def model_samples(model: PowerModel, device_class: DeviceClass, cpu_percent: float, state: PowerState,
                  awake_seconds: float, slept_seconds: float) -> tuple[EnergySample, ...]:
    samples = []
    if awake_seconds > 0:
        samples.append(EnergySample(
            method=PowerMethod.MODEL, state=state, seconds=awake_seconds,
            joules=model.awake_watts(cpu_percent) * awake_seconds,
            detail=f"{device_class.value} {model.idle_watts:g}-{model.max_watts:g} W by CPU load"))
    if slept_seconds > 0:
        samples.append(EnergySample(
            method=PowerMethod.MODEL, state=PowerState.SLEEP, seconds=slept_seconds,
            joules=model.sleep_watts * slept_seconds, detail=f"{device_class.value} sleep {model.sleep_watts:g} W"))
    return tuple(samples)


def inventory_fingerprint(inventory: Inventory) -> str:
    """What the machine is, as canonical JSON, leaving out who happens to be signed in.

    Compared only with the one the sampler last sent, in this process, so the text itself serves: a
    hash would need hashlib, whose OpenSSL binding costs the agent half a MiB of memory.
    """
    wire = to_wire(inventory)
    for name in VOLATILE_INVENTORY_FIELDS:
        wire.pop(name, None)
    return json.dumps(wire, sort_keys=True, separators=(",", ":"))


# --- the sampler ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Readings:
    """The counters one interval is measured between."""

    activity: ActivityReading
    rapl: RaplReading | None
    battery: BatteryDraw | None


def load_overlay(path: Path | None) -> dict[str, Any]:
    """``--inventory-overlay``: a JSON object whose keys replace the collected inventory's fields.

    Tests use it to put several agents on one machine on different simulated subnets, each as a
    device of its own (hostname, machine_id, smbios and nics); checked once, at start.
    """
    if path is None:
        return {}
    try:
        overlay = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"{path}: not JSON: {exc}") from None
    if not isinstance(overlay, dict):
        raise ProtocolError(f"{path}: an inventory overlay must be a JSON object")
    return overlay


def overlaid(inventory: Inventory, overlay: Mapping[str, Any]) -> Inventory:
    return from_wire(Inventory, {**to_wire(inventory), **overlay})


class Sampler:
    """Create once when the agent starts; each :meth:`report` covers the time since the last one.

    ``collectors`` defaults to the agent's own; tests pass stand-ins with the same interface.
    """

    def __init__(self, config: AgentConfig, clock: Callable[[], datetime] = utc_now, *,
                 collectors: Sequence[ModuleType | Any] = COLLECTORS) -> None:
        self._config = config
        self._clock = clock
        self._collectors = tuple(collectors)
        self._models = load_power_models(config.power_models_file)
        self._last_end = clock()
        self._previous = self._readings()
        self._sent_fingerprint: str | None = None
        self._sent_at: datetime | None = None
        self._sent_updates: UpdateStatus | None = None
        self._overlay = load_overlay(config.inventory_overlay)
        self._labels = load_labels(config.labels_file)

    def _read(self, kind: type[T]) -> T | None:
        for collector in self._collectors:
            if collector.PROVIDES is kind:
                return collector.collect(self._config.root) if collector.supported(self._config.root) else None
        return None

    def _readings(self) -> _Readings:
        activity = self._read(ActivityReading)
        if activity is None:
            raise RuntimeError("no activity collector: a report cannot be made without one")
        return _Readings(activity=activity, rapl=self._read(RaplReading), battery=self._read(BatteryDraw))

    def inventory(self) -> Inventory:
        """What the machine is now; user names only if the site configured the agent to send them."""
        inventory = self._read(Inventory)
        if inventory is None:
            raise RuntimeError("no inventory collector")
        inventory = replace(inventory, wake=self._read(WakeReadiness))
        inventory = inventory if self._config.send_user_names else replace(inventory, user_names=())
        inventory = replace(inventory, room=self._labels.room, tags=self._labels.tags)
        return overlaid(inventory, self._overlay) if self._overlay else inventory

    def _inventory_due(self, fingerprint: str, now: datetime) -> bool:
        return (self._sent_at is None or fingerprint != self._sent_fingerprint
                or now - self._sent_at >= INVENTORY_REFRESH)

    def report(self, seq: int) -> Report:
        """The interval from the previous report's end (or the sampler's creation) to now.

        An interval longer than the protocol allows (a laptop asleep over a weekend) is cut to its
        most recent ``MAX_INTERVAL_SECONDS``; the time before that goes unreported.
        """
        end = self._clock()
        start = max(self._last_end, end - timedelta(seconds=MAX_INTERVAL_SECONDS))
        span = (end - start).total_seconds()
        previous, current = self._previous, self._readings()
        slept = min(span, max(0.0, current.activity.slept_seconds - previous.activity.slept_seconds))
        awake = span - slept
        cpu = cpu_percent_between(previous.activity, current.activity)
        state = activity_state(cpu, current.activity.idle_seconds, self._config)
        activity = Activity(state=state, cpu_percent=round(cpu, 2), idle_seconds=current.activity.idle_seconds,
                            idle_source=current.activity.idle_source, sessions=current.activity.sessions,
                            slept_seconds=slept, memory_percent=current.activity.memory_percent)

        inventory = self.inventory()
        energy: list[EnergySample] = []
        if awake > 0 and current.rapl is not None:
            energy.append(rapl_sample(previous.rapl, current.rapl, awake, state, slept > 0))
        if awake > 0 and current.battery is not None:
            energy.append(battery_sample(previous.battery, current.battery, awake, state))
        energy.extend(model_samples(self._models[inventory.device_class], inventory.device_class, cpu, state,
                                    awake, slept))

        fingerprint = inventory_fingerprint(inventory)
        include_inventory = self._inventory_due(fingerprint, end)
        # Only an idle machine raises the question of what keeps it awake (and the tools are not free).
        insomnia = self._read(Insomnia) if state is PowerState.IDLE and awake > 0 else None
        updates = self._read(UpdateStatus)
        report = Report(seq=seq, start=start, end=end, activity=activity, energy=tuple(energy),
                        inventory=inventory if include_inventory else None, insomnia=insomnia,
                        updates=updates if updates != self._sent_updates else None)
        # Only a report that was built moves the interval on; a refused one is retried from the same start.
        self._last_end, self._previous = end, current
        if include_inventory:
            self._sent_fingerprint, self._sent_at = fingerprint, end
        self._sent_updates = updates
        return report
