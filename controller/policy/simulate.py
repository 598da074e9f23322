"""What the policies would have done to the estate over a past period, and the energy that would have saved.

Observed activity (each report: its interval, state, input idle, CPU, sessions, which of the policy's
``processes_absent`` names ran, measured energy) is replayed through the engine. At the end of each
awake report the engine is asked what it would do with the device in that state: when it would power
down is read from the device's compiled schedule (the engine's decision at every instant it could
change, compiled once per context of alike devices by ``plan``), and only what the device was doing is
judged per report (``engine.judge``), which is what lets a week of a trust answer in seconds
(bench/policy_preview.py); the figures are those of asking the engine per report. Where it would power
down, the device counts as off from then to the end of that power-down window: the energy it drew awake
in that time, less what it would have drawn off or asleep, is the saving. Observe mode acts on nothing,
so what its policies would have saved is kept apart (``observe_kwh``): the figure a network manager
weighs before switching to warn or force. Where the policy would warn, the countdown is assumed to run
out (no deferral can be seen after the fact); where it would skip because a user is signed in, nothing
is saved.

Pure: the caller supplies devices, observations and each device's off/sleep watts.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from controller.policy.calendar import Calendar
from controller.policy.engine import context, decide_in, judge
from controller.policy.model import Action, Activity, DeviceFacts, Intent, Mode, Outcome, Policy
from controller.policy.plan import plan
from controller.policy.schedule import Window

ACTING = (Outcome.ACT, Outcome.WARN, Outcome.RECORD_ONLY)
AWAKE = ("active", "idle")
# The reports of a power-down window past its first PROBE are summed in SQL, not read (``Tail``): an hour
# of reports is what the replay of an idle machine left on needs to power it down, nearly always.
PROBE = timedelta(hours=1)


class Observation(NamedTuple):
    """One report as the simulation needs it. A named tuple: a week of an estate is a hundred thousand of
    them, built three times faster than a frozen dataclass."""

    device_id: str
    start: datetime
    end: datetime
    state: str  # active, idle, sleep, off
    idle_seconds: float | None
    cpu_percent: float
    sessions: int
    joules: float | None  # awake energy over the interval; None: not measured, no saving counted
    slept_seconds: float = 0.0
    processes_watched: tuple[str, ...] = ()  # the processes_absent names the agent looked for
    processes_running: tuple[str, ...] = ()  # and those it found running


class Tail(NamedTuple):
    """A device's awake reports that start at or after ``start`` and before ``until``, a stretch of one
    power-down window past its first ``PROBE`` (``Reading.summed``), summed in SQL instead of read: a week
    of an estate left on at night is millions of reports, and nearly all of them come after the replay
    powered the device down in their window, so all the replay does with them is add up what they drew.

    When the replay reaches a tail with the device powered down until ``until`` (the power-down acted in
    the window the tail ends), every report of the tail is summed, none judged, the one across ``until``
    too (it starts before the device would wake): ``_saved`` of each is what it drew awake before ``until``
    less ``residual`` watts over those seconds, so the tail's is ``joules - residual * seconds`` as long as
    no report drew less than the residual (``lowest_watts``). Otherwise its reports must be judged one by one,
    or summed to another end (``Unjudged``).
    """

    device_id: str
    start: datetime  # UTC; no report of the tail starts before
    until: datetime  # UTC; nor at or after
    reports: int
    joules: float  # drawn awake before ``until`` by the reports with energy and awake time (the others save nothing)
    seconds: float  # awake before ``until``, of those
    lowest_watts: float | None  # the least any of those drew awake; None: there are none


class Unjudged(Exception):
    """Raised by ``simulate`` when the replay reached ``tails`` it was not powered down across: their reports
    must be judged one by one, so the caller reads them and replays again (controller.policy.replay)."""

    def __init__(self, tails: list[Tail]):
        super().__init__(f"{len(tails)} summed stretches of reports must be read to be judged")
        self.tails = tails


@dataclass(frozen=True)
class DeviceResult:
    device_id: str
    actions: int
    saved_kwh: float
    observe_kwh: float


@dataclass(frozen=True)
class Simulation:
    start: datetime
    end: datetime
    devices: int
    observations: int
    actions: Mapping[str, int]  # "shutdown/warn/act" -> count
    skipped: int  # passive mode, a user signed in
    saved_kwh: float  # by policies that act (passive, warn, force)
    observe_kwh: float  # what observe-mode policies would have saved, had they acted
    per_device: tuple[DeviceResult, ...] = field(default=())


def simulate(policies: Sequence[Policy], calendars: Mapping[str, Calendar], devices: Iterable[DeviceFacts],
             observations: Iterable[Observation], residual_watts: Mapping[str, Mapping[Action, float]],
             start: datetime, end: datetime, modes: Mapping[str, Mode] | None = None,
             quiet: Mapping[str, int] | None = None, tails: Iterable[Tail] = ()) -> Simulation:
    """Replay ``observations`` between ``start`` and ``end``; ``modes`` replaces policies' modes (projected impact).

    ``quiet`` counts, by device, reports of the period already known to be asleep or off: they are counted
    as observations (and their devices as replayed) without being passed, since only awake reports are
    replayed; a caller reading from the database leaves them there (controller.policy.replay). ``tails``
    stand for awake reports summed instead of passed (``Tail``); raises ``Unjudged`` naming those the
    replay would have had to judge, once it has replayed every device.
    """
    policies = _with_modes(policies, modes)
    devices = {d.device_id: d for d in devices}
    by_device: dict[str, list[Observation | Tail]] = defaultdict(list)
    quiet = {d: n for d, n in (quiet or {}).items() if d in devices and n}
    for device_id in quiet:
        by_device[device_id] = []
    observed = sum(quiet.values())
    for observation in observations:
        if observation.device_id in devices and start <= observation.end and observation.start < end:
            by_device[observation.device_id].append(observation)
            observed += 1
    for tail in tails:
        if tail.device_id in devices:
            by_device[tail.device_id].append(tail)
            observed += tail.reports
    schedules = plan(policies, calendars, [devices[d] for d in by_device], start, _compiled_days(start, end))
    powers = {p.name: p.power for p in policies if p.power is not None}
    timelines: dict[int, _Timeline] = {}  # by shared windows: plan compiles one schedule per context
    counts: Counter[str] = Counter()
    skipped = 0
    results = []
    unjudged: list[Tail] = []
    for device_id, rows in sorted(by_device.items()):
        schedule = schedules[device_id]
        timeline = timelines.get(id(schedule.windows))
        if timeline is None:
            timeline = timelines[id(schedule.windows)] = _Timeline(schedule.windows)
        power = powers.get(schedule.policy) if schedule.policy else None
        off_until: datetime | None = None
        off_action: Action | None = None
        observing = False
        joules_saved = joules_observed = 0.0
        acted = 0
        for row in sorted(rows, key=lambda r: r.start):
            if isinstance(row, Tail):
                joules = _tail_saved(row, off_until, residual_watts.get(device_id, {}).get(off_action, 0.0))
                if joules is None:
                    unjudged.append(row)
                    continue
            elif row.state not in AWAKE:
                continue
            elif off_until is not None and row.start < off_until:
                joules = _saved(row, off_until, residual_watts.get(device_id, {}).get(off_action, 0.0))
            else:
                joules = None
            if joules is not None:
                if observing:
                    joules_observed += joules
                else:
                    joules_saved += joules
                continue
            activity = Activity(None if row.idle_seconds is None else row.idle_seconds / 60, row.cpu_percent,
                                row.sessions, row.processes_running if row.processes_watched else None,
                                row.processes_watched or None)
            window = timeline.at(row.end)
            if window is None:  # past the compiled days: ask the engine
                device = devices[device_id]
                decision = decide_in(context(policies, calendars, replace(device, activity=activity)), row.end)
                intent, action, outcome = decision.intent, decision.action, decision.outcome
                mode = decision.mode
            else:
                intent, action, mode = window.intent, window.action, window.mode
                outcome = judge(power, activity)[1] if intent is Intent.POWER_DOWN and power else None
            if intent is not Intent.POWER_DOWN:
                continue
            if outcome is Outcome.RETRY_LATER:
                skipped += 1
            if outcome not in ACTING:
                continue
            acted += 1
            counts[f"{action}/{mode}"] += 1
            off_until = window.end.astimezone(UTC) if window else row.end
            off_action = action
            observing = outcome is Outcome.RECORD_ONLY
        results.append(DeviceResult(device_id, acted, joules_saved / 3.6e6, joules_observed / 3.6e6))
    if unjudged:
        raise Unjudged(unjudged)
    return Simulation(start, end, len(by_device), observed, dict(sorted(counts.items())),
                      skipped, sum(r.saved_kwh for r in results), sum(r.observe_kwh for r in results),
                      tuple(results))


Span = tuple[datetime | None, datetime | None]  # UTC; None: open on that side


class Reading(NamedTuple):
    """What of a device's awake reports a replay needs (``decisive_spans``): those in ``spans``, read, less
    those that start in one of ``summed``, summed by SQL as ``Tail``s."""

    spans: tuple[Span, ...]
    summed: tuple[tuple[datetime, datetime], ...]


def decisive_spans(policies: Sequence[Policy], calendars: Mapping[str, Calendar], devices: Iterable[DeviceFacts],
                   start: datetime, end: datetime, variants: Sequence[Mapping[str, Mode] | None] = (None,)
                   ) -> dict[str, Reading]:
    """By device, the spans in which an awake report can change its replay under any of ``variants`` (the
    ``modes`` each replay will be given), so a caller reading from the database can read those reports only
    and count the rest as ``quiet``: the figures are the same (tests/controller/policy/test_simulate.py);
    and within them, the stretches whose reports can be summed instead (``Tail``).

    A report matters when its end falls in a power-down window (the engine could act on it), when it
    starts before such a window ends (a power-down taken earlier in the window counts it as saved), or
    when its end falls outside the compiled days (the engine is asked). Any other report ends where the
    device should stay on, and no power-down reaches it, since an agent's reports never overlap (ingest
    refuses them): the replay counts it and does nothing else. That is most of a school day's reports.
    Devices that share a compiled schedule share one ``Reading``, so a caller can query them together.
    """
    devices = list(devices)
    days = _compiled_days(start, end)
    planned = [plan(_with_modes(policies, modes), calendars, devices, start, days) for modes in variants]
    shared: dict[tuple[int, ...], Reading] = {}
    result = {}
    for device in devices:
        windows = [schedules[device.device_id].windows for schedules in planned]
        key = tuple(map(id, windows))
        reading = shared.get(key)
        if reading is None:
            reading = shared[key] = Reading(_merged([span for each in windows for span in _spans_of(each)]),
                                            _stretches(windows))
        result[device.device_id] = reading
    return result


def _stretches(schedules: Sequence[Sequence[Window]]) -> tuple[tuple[datetime, datetime], ...]:
    """Each power-down window of ``schedules`` (one per variant) past its first ``PROBE``, up to its end.

    The windows are first cut wherever any variant's window starts or ends, so that a stretch lies inside
    one window of each variant: where that window ends with the stretch (in every variant when they share
    their edges, as a switch of mode leaves them), a power-down taken in it reaches the stretch's end and
    its tail is summed; elsewhere it is read (``Tail``). The reports of the first ``PROBE`` of each stretch
    (where the replay decides when to power down) are read.
    """
    down = [(w.start.astimezone(UTC), w.end.astimezone(UTC))
            for windows in schedules for w in windows if w.intent is Intent.POWER_DOWN]
    edges = sorted({edge for window in down for edge in window})
    return tuple((low + PROBE, high) for low, high in itertools.pairwise(edges)
                 if high - low > PROBE and any(a <= low and high <= b for a, b in down))


def _spans_of(windows: Sequence[Window]) -> list[Span]:
    if not windows:
        return [(None, None)]
    spans: list[Span] = [(None, windows[0].start.astimezone(UTC)), (windows[-1].end.astimezone(UTC), None)]
    spans += [(w.start.astimezone(UTC), w.end.astimezone(UTC)) for w in windows if w.intent is Intent.POWER_DOWN]
    return spans


def _merged(spans: list[Span]) -> tuple[Span, ...]:
    """``spans`` sorted, those that touch or overlap joined into one."""
    lowest = datetime.min.replace(tzinfo=UTC)
    merged: list[Span] = []
    for start, end in sorted(spans, key=lambda span: span[0] or lowest):
        if merged and (merged[-1][1] is None or (start or lowest) <= merged[-1][1]):
            last_end = merged[-1][1]
            merged[-1] = (merged[-1][0], None if last_end is None or end is None else max(last_end, end))
        else:
            merged.append((start, end))
    return tuple(merged)


def _with_modes(policies: Sequence[Policy], modes: Mapping[str, Mode] | None) -> Sequence[Policy]:
    if not modes:
        return policies
    return [replace(p, power=replace(p.power, mode=modes[p.name])) if p.power and p.name in modes else p
            for p in policies]


def _compiled_days(start: datetime, end: datetime) -> int:
    return max(1, min(31, (end - start).days + 2))


class _Timeline:
    """A compiled schedule's windows (back to back), found by instant: the engine's decision at every
    instant where it could change (controller.policy.schedule), so which window holds a report's end says
    what the engine would intend then, without asking it per report."""

    def __init__(self, windows: Sequence[Window]):
        self._windows = windows
        self._starts = [w.start.astimezone(UTC) for w in windows]  # UTC: the October night repeats an hour
        self._end = windows[-1].end.astimezone(UTC) if windows else None

    def at(self, moment: datetime) -> Window | None:
        at = moment.astimezone(UTC)
        index = bisect.bisect_right(self._starts, at) - 1
        if index < 0 or self._end is None or at >= self._end:
            return None
        return self._windows[index]


def _tail_saved(tail: Tail, off_until: datetime | None, residual: float) -> float | None:
    """Joules ``tail`` saves had the device been off or asleep (``residual`` watts) until ``off_until``, as
    ``_saved`` of each of its reports adds up (``Tail``); None when they must be judged instead."""
    if off_until != tail.until:
        return None
    if tail.lowest_watts is not None and tail.lowest_watts < residual:
        return None
    return tail.joules - residual * tail.seconds


def _saved(row: Observation, off_until: datetime, residual: float) -> float:
    """Joules the part of ``row`` before ``off_until`` drew awake, less the residual draw had it been off."""
    if row.joules is None:
        return 0.0
    awake_seconds = (row.end - row.start).total_seconds() - row.slept_seconds
    if awake_seconds <= 0:
        return 0.0
    overlap = (min(row.end.astimezone(UTC), off_until) - row.start.astimezone(UTC)).total_seconds()
    share = max(0.0, min(overlap, awake_seconds))
    return max(0.0, row.joules / awake_seconds - residual) * share
