"""Carries out the latest power schedule on the machine, with or without the controller.

Every ``tick`` (about a minute) it looks at the schedule's window for now. In a power-down window,
once the machine has been there for the site's stagger offset and is idle as the schedule's idle
criteria say, the window's mode decides:

- observe: record that it would act (once per window), never act;
- passive: skip while a user is signed in and look again after ``retry_minutes``; act otherwise;
- warn: with nobody signed in, act; otherwise warn every signed-in session, through its session
  helper, and count down. Pressing Postpone, or using the machine, during the countdown defers it by
  ``deferral_minutes``, up to ``max_deferrals`` times; then it acts;
- force: act.

School hours with daytime sleep (``ScheduleWindow.daytime_sleep``) are treated the same way, as a
window whose action is sleep (never shutdown) and whose input idle is the mains or the battery figure,
whichever the machine runs on now (``platform.on_battery``): the same warnings, deferrals and modes.

Idle and sessions come from the session desk (agent.session). When someone is signed in and no
session helper answers for them, their idle time is unknown, never guessed: a power-down that waits
for input idle, or that must warn them, keeps the machine on, records why, and looks again after
``retry_minutes`` (passive behaviour). A helper that stops answering during a countdown ends it the
same way: nobody could postpone any more.

OS updates come first: while they install, a power-down is put off, whatever the mode, since
cutting power mid-install can leave a machine that does not boot. The first time in a window it is
recorded (``deferred``, for ``updates_installing``, with the evidence); every tick looks again, and
the power-down goes ahead once the install is over. A maintenance window marked
``until_updates_done`` ends early once the agent has seen updates install in it and finish: the
power-down window that follows is carried out at once instead of waiting out the window's minutes.

Each of these is a PowerAction with its reason, kept in the state file until the runner puts it on a
report. The state file (schedule, pending actions, the countdown) lives beside the credentials,
written atomically and readable by the agent only, so a restart or a power cut loses nothing and a
shutdown's own "done" is reported after the machine comes back. Past ``valid_until`` the schedule is
stale and nothing is done: keeping a machine on is the safe way to be wrong.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from agent import platform
from agent.collectors import updates as update_collector
from agent.config import AgentConfig
from agent.platform.power_actions import PowerActions, for_platform
from agent.processes import running
from agent.protocol import (
    ActionOutcome,
    AgentSchedule,
    DeferralReason,
    EnforcementMode,
    IdleCriteria,
    PowerAction,
    PowerActionKind,
    ScheduleIntent,
    ScheduleWindow,
    UpdateStatus,
    from_wire,
    to_wire,
)
from agent.session.desk import Notice, SessionDesk

LOG = logging.getLogger("caretaker.agent.enforcer")
TICK_SECONDS = 60.0
TITLE = "Caretaker"
MAX_PENDING = 500  # a machine offline for weeks keeps its latest actions, not an ever-growing file


VERBS = {PowerActionKind.SHUTDOWN: "shut down", PowerActionKind.SLEEP: "go to sleep",
         PowerActionKind.HIBERNATE: "hibernate"}


@dataclass(frozen=True)
class Reading:
    """What the machine is doing now; None where this machine cannot tell (that criterion then fails)."""

    idle_seconds: float | None
    cpu_percent: float | None
    sessions: int | None
    processes: tuple[str, ...] | None = None  # which of the criteria's processes_absent names run
    unanswered: tuple[str, ...] = ()  # signed-in sessions no session helper answers for, e.g. "alice (tty7)"
    locked: bool = False  # every signed-in session's screen is locked (its idle counts from the lock)


class Warnings(Protocol):
    """Where warnings go and Postpone comes back from: the session desk (agent.session.desk)."""

    def warn(self, notice: Notice) -> int: ...

    def withdraw(self) -> None: ...

    def postponed(self, notice_id: str) -> str | None: ...


class _NoSessions:
    """Warnings with no session desk: they reach nobody."""

    def warn(self, notice: Notice) -> int:
        return 0

    def withdraw(self) -> None:
        pass

    def postponed(self, notice_id: str) -> str | None:
        return None


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    output: str = ""


Probe = Callable[[IdleCriteria | None], Reading]
Executor = Callable[[Sequence[str]], CommandResult]
UpdatesProbe = Callable[[], UpdateStatus | None]


def run_command(argv: Sequence[str]) -> CommandResult:
    """The real executor. A missing program is a failed action, reported as such, never a crash."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return CommandResult(127, f"{type(exc).__name__}: {exc}")
    return CommandResult(done.returncode, (done.stderr or done.stdout).strip()[-200:])


@dataclass
class _Countdown:
    window: str  # the window's start, ISO: a new window starts afresh
    warned_at: datetime
    deadline: datetime
    deferrals: int = 0

    @property
    def notice(self) -> str:
        """The id of the warning on screen: Postpone on an earlier one (before a deferral) does not count."""
        return f"{self.window}#{self.deferrals}"


@dataclass(frozen=True)
class _Due:
    """A window in which the machine is to power down once idle by ``criteria``; ``note`` starts the reason."""

    window: ScheduleWindow
    criteria: IdleCriteria | None
    note: str = ""
    opened: datetime | None = None  # when the machine entered it, if before the window's own start


@dataclass
class _State:
    schedule: AgentSchedule | None = None
    pending: list[PowerAction] = field(default_factory=list)
    handled: str | None = None  # the window already recorded (observe) or acted on
    retry_after: datetime | None = None
    countdown: _Countdown | None = None
    installing_in: str | None = None  # the until_updates_done window in which updates were seen installing
    deferred_in: str | None = None  # the window whose power-down was put off for installing updates (recorded once)


class Enforcer:
    def __init__(self, state_file: Path, probe: Probe, execute: Executor = run_command,
                 actions: PowerActions | None = None, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 log: logging.Logger = LOG, warnings: Warnings | None = None,
                 on_battery: Callable[[], bool] = lambda: False, updates: UpdatesProbe = lambda: None) -> None:
        self._file = state_file
        self._on_battery = on_battery
        self._updates = updates
        self._probe = probe
        self._execute = execute
        self._actions = actions or for_platform()
        self._clock = clock
        self._log = log
        self._warnings = warnings or _NoSessions()
        self._state = self._load()

    @property
    def schedule(self) -> AgentSchedule | None:
        return self._state.schedule

    @property
    def schedule_version(self) -> str | None:
        return self._state.schedule.version if self._state.schedule else None

    @property
    def watched_processes(self) -> tuple[str, ...]:
        """The process names the schedule's idle criteria wait on; reports say which of them run."""
        schedule = self._state.schedule
        return schedule.idle.processes_absent if schedule is not None and schedule.idle is not None else ()

    def update(self, schedule: AgentSchedule) -> None:
        """A new schedule from the controller replaces the one held (and any countdown of a window it changed)."""
        if self._state.schedule == schedule:
            return
        self._state.schedule = schedule
        if self._state.countdown and not _same_window(schedule, self._state.countdown.window, self._clock()):
            self._state.countdown = None
            self._warnings.withdraw()
        self._save()
        self._log.info("power schedule %s received (policy %s, valid until %s)", schedule.version,
                       schedule.policy or "none", schedule.valid_until.isoformat())

    def drain(self) -> tuple[PowerAction, ...]:
        """The actions not yet on a report, oldest first; the caller puts them on the next one."""
        taken = tuple(self._state.pending)
        if taken:
            self._state.pending = []
            self._save()
        return taken

    def tick(self) -> None:
        now = self._clock()
        schedule = self._state.schedule
        if schedule is None or now >= schedule.valid_until:
            return
        due = self._in_force(schedule, now)
        if due is None:
            self._leave_window()
            return
        window, criteria = due.window, due.criteria
        key = window.start.isoformat()
        if self._state.handled == key and window.mode is EnforcementMode.OBSERVE:
            return
        if now < (due.opened or window.start) + timedelta(seconds=schedule.start_offset_seconds):
            return  # the site's power-downs are staggered: this machine's turn comes later
        if self._state.retry_after is not None and now < self._state.retry_after:
            return
        countdown = self._state.countdown
        if countdown is not None and countdown.window == key:
            self._count_down(schedule, window, criteria, countdown, now)
            return
        reading = self._probe(criteria)
        mode = window.mode or EnforcementMode.OBSERVE
        waits_for_input = criteria is not None and criteria.minutes_without_input is not None
        if reading.unanswered and (waits_for_input or mode is EnforcementMode.WARN):
            self._keep_on(schedule, window, f"idle unknown: {_unanswered(reading)}", now)
            return
        idle, why = judge_idle(criteria, reading)
        if not idle:
            return
        self._decide(schedule, window, reading, due.note + why, now)

    def _in_force(self, schedule: AgentSchedule, now: datetime) -> _Due | None:
        """The window to act in now, with its idle criteria; None while the machine should simply stay on.

        A school-hours window with daytime sleep acts like a power-down window whose action is sleep and
        whose input idle is the mains or battery figure. The site's stagger offset is added to that idle
        time, so a room that fell idle together at the end of a lesson does not all sleep in one minute.
        """
        window = schedule.window_at(now)
        if window is None:
            return None
        if window.until_updates_done and self._updates_done(window):
            following = schedule.window_at(window.end)  # the updates are in: the power-down that follows, now
            if following is None or following.intent is not ScheduleIntent.POWER_DOWN:
                return None
            return _Due(following, schedule.idle, opened=window.start)
        if window.intent is ScheduleIntent.POWER_DOWN:
            return _Due(window, schedule.idle)
        if window.daytime_sleep is None:
            return None
        battery = self._on_battery()
        minutes = window.daytime_sleep.minutes(battery)
        if minutes is None:
            return None
        minutes += schedule.start_offset_seconds // 60
        source = "battery" if battery else "mains"
        return _Due(replace(window, intent=ScheduleIntent.POWER_DOWN, action=PowerActionKind.SLEEP),
                    replace(schedule.idle or IdleCriteria(), minutes_without_input=minutes),
                    f"daytime sleep on {source} after {minutes} min idle: ")

    # --- the modes --------------------------------------------------------------------------------

    def _decide(self, schedule: AgentSchedule, window: ScheduleWindow, reading: Reading, why: str,
                now: datetime) -> None:
        mode = window.mode or EnforcementMode.OBSERVE
        signed_in = reading.sessions is None or reading.sessions > 0  # unknown counts as signed in: fail safe
        if mode is not EnforcementMode.OBSERVE and self._installing(window, why, now):
            return
        if mode is EnforcementMode.OBSERVE:
            self._record(window, ActionOutcome.OBSERVED, f"would {window.action}: {why}", now)
            self._state.handled = window.start.isoformat()
            self._save()
        elif mode is EnforcementMode.PASSIVE and signed_in:
            self._record(window, ActionOutcome.SKIPPED, f"skipped: user signed in; retry in "
                                                        f"{schedule.retry_minutes} min ({why})", now)
            self._state.retry_after = now + timedelta(minutes=schedule.retry_minutes)
            self._save()
        elif mode is EnforcementMode.WARN and signed_in:
            warning = schedule.warning
            minutes = warning.countdown_minutes if warning else 10
            countdown = _Countdown(window.start.isoformat(), now, now + timedelta(minutes=minutes))
            self._state.countdown = countdown
            reached = self._warn(schedule, window, countdown, minutes)
            self._record(window, ActionOutcome.WARNED, f"warned the signed-in user ({reached} session(s)): "
                                                       f"{window.action} in {minutes} min ({why})", now)
        else:
            self._act(schedule, window, why, now)

    def _count_down(self, schedule: AgentSchedule, window: ScheduleWindow, criteria: IdleCriteria | None,
                    countdown: _Countdown, now: datetime) -> None:
        warning = schedule.warning
        allowed = warning.max_deferrals if warning else 2
        reading = self._probe(criteria)
        if reading.unanswered:  # nobody there can postpone any more: never act on a warning they cannot answer
            self._state.countdown = None
            self._warnings.withdraw()
            self._keep_on(schedule, window, f"warning withdrawn: {_unanswered(reading)}", now)
            return
        pressed = self._warnings.postponed(countdown.notice)
        since_warning = (now - countdown.warned_at).total_seconds()
        touched = reading.idle_seconds is not None and reading.idle_seconds < since_warning
        if (pressed or touched) and countdown.deferrals < allowed:
            countdown.deferrals += 1
            minutes = warning.deferral_minutes if warning else 10
            countdown.warned_at, countdown.deadline = now, now + timedelta(minutes=minutes)
            how = f"{pressed} pressed Postpone" if pressed else "the machine was used during the countdown"
            self._record(window, ActionOutcome.DEFERRED,
                         f"deferred by user ({countdown.deferrals} of {allowed}: {how}): {minutes} more min", now,
                         deferred_for=DeferralReason.USER)
            self._warn(schedule, window, countdown, minutes)
            return
        if now < countdown.deadline:
            return
        suffix = f"after {countdown.deferrals} deferral(s), the most allowed" if countdown.deferrals >= allowed \
            else "countdown ended"
        if self._installing(window, f"warned; {suffix}", now):
            self._warnings.withdraw()
            return
        self._state.countdown = None
        self._act(schedule, window, f"warned; {suffix}", now)

    def _updates_done(self, window: ScheduleWindow) -> bool:
        """Whether updates were seen installing in this maintenance window and have finished since."""
        status = self._updates()
        key = window.start.isoformat()
        if status is not None and status.installing:
            if self._state.installing_in != key:
                self._state.installing_in = key
                self._save()
            return False
        return status is not None and status.installing is False and self._state.installing_in == key

    def _installing(self, window: ScheduleWindow, why: str, now: datetime) -> bool:
        """Put the power-down off while OS updates install, saying so; True if it was put off."""
        status = self._updates()
        if status is None or not status.installing:
            return False
        key = window.start.isoformat()
        if self._state.deferred_in != key:
            self._state.deferred_in = key
            self._record(window, ActionOutcome.DEFERRED, f"deferred: OS updates installing "
                                                         f"({status.detail or 'no detail'}); {why}", now,
                         deferred_for=DeferralReason.UPDATES_INSTALLING)
        return True

    def _keep_on(self, schedule: AgentSchedule, window: ScheduleWindow, why: str, now: datetime) -> None:
        """Passive behaviour for a machine whose users cannot be seen: skip, say why, look again later."""
        self._record(window, ActionOutcome.SKIPPED, f"kept on: {why}; retry in {schedule.retry_minutes} min", now)
        self._state.retry_after = now + timedelta(minutes=schedule.retry_minutes)
        self._save()

    def _act(self, schedule: AgentSchedule, window: ScheduleWindow, why: str, now: datetime) -> None:
        assert window.action is not None  # the protocol refuses a power-down window without one
        mode = window.mode or EnforcementMode.OBSERVE
        argv = self._actions.power_command(window.action, f"{window.action} by school power policy "
                                                          f"{schedule.policy or ''}".strip())
        # Recorded and saved before the command runs: a shutdown ends this process.
        self._record(window, ActionOutcome.DONE, f"{window.action} ({mode}): {why}", now, save=False)
        self._state.handled = window.start.isoformat()
        self._state.retry_after = now + timedelta(minutes=schedule.retry_minutes)
        self._save()
        result = self._execute(argv)
        if result.returncode != 0:
            self._warnings.withdraw()
            failed = self._state.pending.pop()
            self._record(window, ActionOutcome.FAILED, f"{' '.join(argv)} failed (exit {result.returncode})"
                                                       f"{': ' + result.output if result.output else ''}; {why}",
                         failed.at)
            self._log.warning("power action failed: %s", self._state.pending[-1].reason)

    def _warn(self, schedule: AgentSchedule, window: ScheduleWindow, countdown: _Countdown, minutes: int) -> int:
        """Put the countdown's warning in front of every signed-in session; returns how many it reached."""
        warning = schedule.warning
        allowed = warning.max_deferrals if warning else 2
        deferral = warning.deferral_minutes if warning else 10
        left = allowed - countdown.deferrals
        assert window.action is not None
        message = (f"This computer will {VERBS[window.action]} in {minutes} minutes (school power policy). "
                   + (f"Press Postpone, or keep working, to put it off by {deferral} minutes "
                      f"({left} postponement(s) left)." if left > 0 else "It cannot be put off again: save your work."))
        self._save()
        return self._warnings.warn(Notice(countdown.notice, TITLE, message, minutes * 60, deferral, max(0, left)))

    def _leave_window(self) -> None:
        if self._state.countdown is not None:
            self._warnings.withdraw()
        if self._state.countdown is not None or self._state.retry_after is not None:
            self._state.countdown = None
            self._state.retry_after = None
            self._save()

    def _record(self, window: ScheduleWindow, outcome: ActionOutcome, reason: str, at: datetime,
                save: bool = True, deferred_for: DeferralReason | None = None) -> None:
        schedule = self._state.schedule
        action = PowerAction(at=at, kind=window.action, outcome=outcome,
                             mode=window.mode or EnforcementMode.OBSERVE, reason=reason[:500], until=window.end,
                             policy=schedule.policy if schedule else None, deferred_for=deferred_for)
        self._state.pending = [*self._state.pending, action][-MAX_PENDING:]
        self._log.info("power policy: %s %s (%s)", outcome, action.kind, reason)
        if save:
            self._save()

    # --- the state file ---------------------------------------------------------------------------

    def _load(self) -> _State:
        try:
            data = json.loads(self._file.read_text(encoding="utf-8"))
            countdown = data.get("countdown")
            return _State(
                schedule=from_wire(AgentSchedule, data["schedule"]) if data.get("schedule") else None,
                pending=[from_wire(PowerAction, a) for a in data.get("pending", [])],
                handled=data.get("handled"),
                retry_after=datetime.fromisoformat(data["retry_after"]) if data.get("retry_after") else None,
                countdown=_Countdown(countdown["window"], datetime.fromisoformat(countdown["warned_at"]),
                                     datetime.fromisoformat(countdown["deadline"]), countdown["deferrals"])
                if countdown else None, installing_in=data.get("installing_in"), deferred_in=data.get("deferred_in"))
        except FileNotFoundError:
            return _State()
        except (ValueError, KeyError, TypeError) as exc:
            # A damaged file must not stop the agent; the controller sends the schedule again.
            self._log.warning("ignoring unreadable power state %s: %s", self._file, exc)
            return _State()

    def _save(self) -> None:
        state = self._state
        data = {"schedule": to_wire(state.schedule) if state.schedule else None,
                "pending": [to_wire(a) for a in state.pending], "handled": state.handled,
                "retry_after": state.retry_after.isoformat() if state.retry_after else None,
                "countdown": {"window": state.countdown.window, "warned_at": state.countdown.warned_at.isoformat(),
                              "deadline": state.countdown.deadline.isoformat(),
                              "deferrals": state.countdown.deferrals} if state.countdown else None,
                "installing_in": state.installing_in, "deferred_in": state.deferred_in}
        write_private(self._file, json.dumps(data))


def write_private(path: Path, text: str) -> None:
    """Atomically, readable by the owner only (0600 from creation, never briefly wider)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def judge_idle(criteria: IdleCriteria | None, reading: Reading) -> tuple[bool, str]:
    """Whether every criterion holds, and the evidence in words ("idle 22 min, cpu 1.2%")."""
    criteria = criteria or IdleCriteria()
    facts: list[str] = []
    idle = True
    if criteria.minutes_without_input is not None:
        minutes = None if reading.idle_seconds is None else reading.idle_seconds / 60
        idle &= minutes is not None and minutes >= criteria.minutes_without_input
        facts.append("idle unknown" if minutes is None else f"idle {minutes:.0f} min")
    if criteria.cpu_below_percent is not None:
        idle &= reading.cpu_percent is not None and reading.cpu_percent < criteria.cpu_below_percent
        facts.append("cpu unknown" if reading.cpu_percent is None else f"cpu {reading.cpu_percent:.1f}%")
    if criteria.processes_absent:
        running = None if reading.processes is None else {p.casefold() for p in reading.processes}
        present = [] if running is None else [p for p in criteria.processes_absent if p.casefold() in running]
        idle &= running is not None and not present
        facts.append("processes unknown" if running is None else
                     f"{', '.join(present)} running" if present else f"none of {', '.join(criteria.processes_absent)}")
    if criteria.no_signed_in_session:
        idle &= reading.sessions == 0
        facts.append(f"{'unknown' if reading.sessions is None else reading.sessions} signed in")
    if reading.locked:
        facts.append("screen locked")
    return idle, ", ".join(facts) or "no idle criteria"


def _same_window(schedule: AgentSchedule, key: str, now: datetime) -> bool:
    window = schedule.window_at(now)
    return window is not None and window.start.isoformat() == key and (
        window.intent is ScheduleIntent.POWER_DOWN or window.daytime_sleep is not None)


def _unanswered(reading: Reading) -> str:
    return f"{', '.join(reading.unanswered)} signed in and no session helper answers"


def enforcer_for(config: AgentConfig, desk: SessionDesk) -> Enforcer:
    """The enforcer ``caretaker-agent run`` uses: this machine's readings and commands, state beside the spool."""
    wrapper = config.power_command_wrapper

    def execute(argv: Sequence[str]) -> CommandResult:
        return run_command([*wrapper, *argv])

    root = config.root

    def updates() -> UpdateStatus | None:
        return update_collector.collect(root) if update_collector.supported(root) else None

    return Enforcer(config.power_state_file, live_probe(desk), execute, warnings=desk,
                    on_battery=lambda: platform.current().on_battery(root), updates=updates)


def live_probe(desk: SessionDesk) -> Probe:
    """Readings from this machine: the session desk's idle and sessions, psutil's CPU and processes."""
    import psutil

    psutil.cpu_percent(interval=None)  # the first call only starts the measurement

    def probe(criteria: IdleCriteria | None) -> Reading:
        view = desk.view()
        processes = None
        if criteria is not None and criteria.processes_absent:
            processes = running(criteria.processes_absent)
        return Reading(idle_seconds=view.idle_seconds, cpu_percent=psutil.cpu_percent(interval=None),
                       sessions=view.sessions, processes=processes, unanswered=view.unanswered, locked=view.locked)

    return probe
