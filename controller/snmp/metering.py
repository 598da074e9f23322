"""From polled power readings over time to metered energy: the ``metered`` method of the accounting.

Two readings bracket an interval. The device's own energy register is the better witness when it
moved by enough counts to be precise; otherwise (a coarse register over a short interval, a reset,
no register at all) the interval is the mean of the two power readings times its length. An
interval longer than ``max_gap`` (a missed poll, a device that was unreachable) yields nothing:
unknown energy stays unknown rather than being invented.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from agent.protocol import MAX_WATTS, EnergySample, PowerMethod, PowerState
from controller.snmp.readings import EnergyCounter


@dataclass(frozen=True)
class PowerReading:
    """One poll's figures for one metered load: watts now, and the energy register if there is one."""

    at: datetime
    watts: float | None = None
    energy: EnergyCounter | None = None


@dataclass(frozen=True)
class MeteredEnergy:
    start: datetime
    end: datetime
    joules: float
    detail: str

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def sample(self, state: PowerState) -> EnergySample:
        """The wire form, once the accounting knows what state the device was in."""
        return EnergySample(PowerMethod.METERED, state, self.seconds, self.joules, detail=self.detail)


def counter_delta(before: EnergyCounter, after: EnergyCounter, seconds: float) -> float | None:
    """Joules the register counted between two readings ``seconds`` apart; None when it was reset.

    A register that went down was reset, unless it is an unsigned counter that wrapped and the
    wrapped difference is physically possible in the time. A changed reset timestamp is a reset
    even when the count went up.
    """
    if before.since is not None and after.since is not None and before.since != after.since:
        return None
    delta = after.joules - before.joules
    if delta >= 0:
        return delta
    if after.wraps_at_joules is not None:
        wrapped = after.wraps_at_joules - before.joules + after.joules
        if 0 <= wrapped <= MAX_WATTS * seconds:
            return wrapped
    return None


def metered_energy(readings: Iterable[PowerReading], max_gap: timedelta = timedelta(minutes=20),
                   min_counts: int = 10) -> list[MeteredEnergy]:
    """Energy for each interval between consecutive readings (sorted by time first).

    The register is used when it advanced by at least ``min_counts`` counts (so its rounding costs
    at most a tenth), or when there is no pair of power readings to fall back on.
    """
    ordered = sorted(readings, key=lambda r: r.at)
    intervals = []
    for before, after in pairwise(ordered):
        seconds = (after.at - before.at).total_seconds()
        if seconds <= 0 or seconds > max_gap.total_seconds():
            continue
        joules, detail = _interval(before, after, seconds, min_counts)
        if joules is not None and 0 <= joules <= MAX_WATTS * seconds:
            intervals.append(MeteredEnergy(before.at, after.at, joules, detail))
    return intervals


def _interval(before: PowerReading, after: PowerReading, seconds: float, min_counts: int) -> tuple[float | None, str]:
    registers = before.energy is not None and after.energy is not None
    delta = counter_delta(before.energy, after.energy, seconds) if before.energy and after.energy else None
    step = after.energy.resolution_joules if after.energy else None
    if delta is not None and (step is None or delta >= min_counts * step):
        return delta, "energy register"
    if before.watts is not None and after.watts is not None:
        why = ("; register reset" if delta is None else "; register too coarse for the interval") if registers else ""
        return (before.watts + after.watts) / 2 * seconds, f"mean of power readings{why}"
    if delta is not None:
        return delta, "energy register (coarse)"
    return None, ""
