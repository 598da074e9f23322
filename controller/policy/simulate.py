"""What the policies would have done to the estate over a past period, and the energy that would have saved.

Observed activity (each report: its interval, state, input idle, CPU, sessions, which of the policy's
``processes_absent`` names ran, measured energy) is replayed through the engine. At the end of each
awake report the engine is asked what it would do with the device in that state. Where it would power
down, the device counts as off from then to the end of that power-down window: the energy it drew awake
in that time, less what it would have drawn off or asleep, is the saving. Observe mode acts on nothing,
so what its policies would have saved is kept apart (``observe_kwh``): the figure a network manager
weighs before switching to warn or force. Where the policy would warn, the countdown is assumed to run
out (no deferral can be seen after the fact); where it would skip because a user is signed in, nothing
is saved.

Pure: the caller supplies devices, observations and each device's off/sleep watts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from controller.policy.calendar import Calendar
from controller.policy.engine import context, decide_in
from controller.policy.model import Action, Activity, DeviceFacts, Intent, Mode, Outcome, Policy
from controller.policy.plan import plan

ACTING = (Outcome.ACT, Outcome.WARN, Outcome.RECORD_ONLY)
AWAKE = ("active", "idle")


@dataclass(frozen=True)
class Observation:
    """One report as the simulation needs it."""

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
             start: datetime, end: datetime, modes: Mapping[str, Mode] | None = None) -> Simulation:
    """Replay ``observations`` between ``start`` and ``end``; ``modes`` replaces policies' modes (projected impact)."""
    if modes:
        policies = [replace(p, power=replace(p.power, mode=modes[p.name])) if p.power and p.name in modes else p
                    for p in policies]
    devices = {d.device_id: d for d in devices}
    by_device: dict[str, list[Observation]] = defaultdict(list)
    for observation in observations:
        if observation.device_id in devices and start <= observation.end and observation.start < end:
            by_device[observation.device_id].append(observation)
    days = max(1, min(31, (end - start).days + 2))
    schedules = plan(policies, calendars, [devices[d] for d in by_device], start, days)
    counts: Counter[str] = Counter()
    skipped = 0
    results = []
    for device_id, rows in sorted(by_device.items()):
        device = devices[device_id]
        ctx = context(policies, calendars, device)
        windows = schedules[device_id].power_down_windows
        off_until: datetime | None = None
        off_action: Action | None = None
        observing = False
        joules_saved = joules_observed = 0.0
        acted = 0
        for row in sorted(rows, key=lambda r: r.start):
            if row.state not in AWAKE:
                continue
            if off_until is not None and row.start < off_until:
                joules = _saved(row, off_until, residual_watts.get(device_id, {}).get(off_action, 0.0))
                if observing:
                    joules_observed += joules
                else:
                    joules_saved += joules
                continue
            activity = Activity(None if row.idle_seconds is None else row.idle_seconds / 60, row.cpu_percent,
                                row.sessions, row.processes_running if row.processes_watched else None,
                                row.processes_watched or None)
            decision = decide_in(replace(ctx, device=replace(device, activity=activity)), row.end)
            if decision.intent is not Intent.POWER_DOWN:
                continue
            if decision.outcome is Outcome.RETRY_LATER:
                skipped += 1
            if decision.outcome not in ACTING:
                continue
            acted += 1
            counts[f"{decision.action}/{decision.mode}"] += 1
            window = next((w for w in windows if w.start.astimezone(UTC) <= row.end.astimezone(UTC)
                           < w.end.astimezone(UTC)), None)
            off_until = window.end.astimezone(UTC) if window else row.end
            off_action = decision.action
            observing = decision.outcome is Outcome.RECORD_ONLY
        results.append(DeviceResult(device_id, acted, joules_saved / 3.6e6, joules_observed / 3.6e6))
    return Simulation(start, end, len(by_device), sum(len(r) for r in by_device.values()), dict(sorted(counts.items())),
                      skipped, sum(r.saved_kwh for r in results), sum(r.observe_kwh for r in results),
                      tuple(results))


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
