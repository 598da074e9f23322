"""Wall-clock times at a site turned into instants, with one rule for the nights the clocks change.

A school writes "07:30" and means 07:30 on the clock on the wall, in GMT or BST alike. Two nights a
year a wall time is not one instant:
- autumn (clocks go back): 01:30 happens twice; it names the first, so a 01:30 job runs once;
- spring (clocks go forward): 01:30 never happens; it names the moment the clocks jump (in Europe/London
  01:00 GMT, which the wall shows as 02:00 BST), so a job set in the gap runs as soon as it can.
Durations are elapsed time: a 90-minute window from 01:30 on the spring night runs 02:00-03:30 BST.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo


@cache
def zone(key: str) -> ZoneInfo:
    return ZoneInfo(key)


def instant(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The instant ``wall`` on ``day`` names at the site, as an aware datetime in the site's zone."""
    naive = datetime.combine(day, wall)
    first = naive.replace(tzinfo=tz, fold=0)
    if _wall(first.astimezone(UTC), tz) == naive:
        return first
    return _end_of_gap(naive, tz)


def minutes_after_midnight(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    """``instant`` for a time written as minutes since midnight; 1440 is the following midnight."""
    if minutes >= 24 * 60:
        return instant(day + timedelta(days=1), time(0), tz)
    return instant(day, time(minutes // 60, minutes % 60), tz)


def _wall(moment: datetime, tz: ZoneInfo) -> datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


def _end_of_gap(naive: datetime, tz: ZoneInfo) -> datetime:
    """The first instant whose wall time is at or after ``naive``, a time the clocks skipped."""
    low = int(naive.replace(tzinfo=tz, fold=1).timestamp())  # read with the offset after the change: too early
    high = int(naive.replace(tzinfo=tz, fold=0).timestamp())  # read with the offset before: too late
    low, high = min(low, high), max(low, high)
    while high - low > 1:
        middle = (low + high) // 2
        if _wall(datetime.fromtimestamp(middle, UTC), tz) >= naive:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, tz)
