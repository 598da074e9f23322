"""Spreading one report's energy over the UTC hours it covers.

A report says how much energy a device drew over an interval by state and method; accounting sums
per device per hour. Within an interval we have no finer detail, so time and energy are spread in
proportion to the share of the interval inside each hour. Per state, only the best method reported
is accounted (ARCHITECTURE: metered > rapl > battery > model); the others stay on the report row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from agent.protocol import METHOD_PRIORITY, EnergySample, PowerState, Report
from controller.timeutil import as_utc, hour_floor

_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class BucketKey:
    hour: datetime
    state: PowerState
    method: str


@dataclass
class BucketSum:
    joules: float = 0.0
    seconds: float = 0.0


def best_samples(samples: Iterable[EnergySample]) -> dict[PowerState, EnergySample]:
    """Per state, the usable sample with the most trusted method."""
    rank = {method: i for i, method in enumerate(METHOD_PRIORITY)}
    best: dict[PowerState, EnergySample] = {}
    for sample in samples:
        if not sample.usable:
            continue
        current = best.get(sample.state)
        if current is None or rank[sample.method] < rank[current.method]:
            best[sample.state] = sample
    return best


def hour_shares(start: datetime, end: datetime) -> list[tuple[datetime, float]]:
    """(hour, fraction of [start, end) inside it) for each UTC hour the interval touches."""
    start, end = as_utc(start), as_utc(end)
    total = (end - start).total_seconds()
    shares = []
    hour = hour_floor(start)
    while hour < end:
        inside = (min(end, hour + _HOUR) - max(start, hour)).total_seconds()
        if inside > 0:
            shares.append((hour, inside / total))
        hour += _HOUR
    return shares


def add_report(report: Report, into: dict[BucketKey, BucketSum]) -> None:
    """Add one report's accounted energy to ``into``, keyed by hour, state and method."""
    shares = hour_shares(report.start, report.end)
    for state, sample in best_samples(report.energy).items():
        for hour, share in shares:
            bucket = into.setdefault(BucketKey(hour, state, sample.method.value), BucketSum())
            bucket.joules += (sample.joules or 0.0) * share
            bucket.seconds += sample.seconds * share
