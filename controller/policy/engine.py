"""The power decision: a pure function of (policies, calendars, device facts, time), with its reasons.

No clock, file or database is read here, so the same inputs always give the same decision and the
schedule compiler can ask about any instant. Precedence (policies/README.md, "Precedence"):

1. a duty the controller gave the device (an elected wake-on-LAN relay), or a never-power-down entry
   (servers, signage) from any policy that applies: keep on;
2. an unexpired override: keep on, or power down (keep on wins when overrides disagree);
3. an exam window on a school day: keep on, and no maintenance;
4. a maintenance window: keep on (the schedule wakes the device for it);
5. the winning policy (the most specific that powers devices down; then the higher priority; then the
   name, alphabetically): school hours on an open day keep on, from the wake time if it has one;
   otherwise power down with its action and mode, once the device is idle;
6. no policy: keep on.

Exceptions and maintenance windows add up from every policy that applies; the rule that powers a
device down comes from the winner alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from controller.policy.calendar import Calendar, Day, DayKind, classify
from controller.policy.model import (
    DEFAULT_TIMEZONE,
    Action,
    Activity,
    Basis,
    DaytimeSleep,
    Decision,
    DeviceFacts,
    ExamWindow,
    IdleRule,
    Intent,
    MaintenanceWindow,
    Mode,
    Outcome,
    Override,
    Policy,
    PowerRule,
    Rule,
    Selector,
    Step,
)
from controller.policy.walltime import instant, minutes_after_midnight, zone

_SPECIFICITY_NAMES = ("device", "group", "tag", "device class", "site")


@dataclass(frozen=True)
class Span:
    """A stretch of time a rule covers, e.g. one day's school hours or one maintenance window."""

    start: datetime
    end: datetime
    basis: Basis
    label: str
    source: str

    def __contains__(self, at: object) -> bool:
        # In UTC: aware datetimes sharing a zone compare by wall time, which the October night repeats.
        return isinstance(at, datetime) and self.start.astimezone(UTC) <= at.astimezone(UTC) < self.end.astimezone(UTC)


@dataclass(frozen=True)
class Context:
    """Everything about one device that does not depend on the time: worked out once per device."""

    device: DeviceFacts
    tz: ZoneInfo
    winner: Policy | None
    calendars: tuple[Calendar, ...]
    never: tuple[Selector, ...]
    overrides: tuple[Override, ...]
    exams: tuple[tuple[ExamWindow, ZoneInfo], ...]
    maintenance: tuple[tuple[MaintenanceWindow, ZoneInfo], ...]
    rules: tuple[Rule, ...]
    daytime: DaytimeSleep | None = None  # the winner's first daytime_sleep entry that names this device
    # Carbon-aware maintenance starts chosen from a forecast, by (window name, local day); schedule.py fills it.
    placed: Mapping[tuple[str, date], datetime] = field(default_factory=dict)
    # Days and spans, worked out once per context (a schedule asks about the same few days dozens of times).
    # Not an init field, so ``replace`` (another device, placed maintenance) starts a fresh one.
    memo: dict = field(default_factory=dict, init=False, compare=False, repr=False)


def decide(policies: Sequence[Policy], calendars: Mapping[str, Calendar], device: DeviceFacts,
           at: datetime) -> Decision:
    """What should happen to ``device`` at ``at`` (timezone-aware), and every rule that led there."""
    return decide_in(context(policies, calendars, device), at)


def context(policies: Sequence[Policy], calendars: Mapping[str, Calendar], device: DeviceFacts) -> Context:
    matching = [p for p in policies if p.applies_to.matches(device)]
    rules = [Rule(Step.MATCH, f"policy {p.name!r} applies ({p.applies_to.describe()})", p.source) for p in matching]
    missed = [f"{p.name!r} ({p.applies_to.mismatch(device)})" for p in policies if p not in matching]
    if missed:
        rules.append(Rule(Step.MATCH, "does not apply: " + "; ".join(missed)))
    powered = sorted((p for p in matching if p.power is not None), key=_precedence)
    winner = powered[0] if powered else None
    rules.extend(_precedence_rules(powered))
    tz = zone(winner.timezone if winner else matching[0].timezone if matching else DEFAULT_TIMEZONE)
    chosen: tuple[Calendar, ...] = ()
    if winner is not None:
        missing = [name for name in winner.power.calendars if name not in calendars]
        if missing:
            raise ValueError(f"policy {winner.name!r} names calendar {missing[0]!r}, which is not loaded")
        chosen = tuple(calendars[name] for name in winner.power.calendars)
    return Context(
        device=device, tz=tz, winner=winner, calendars=chosen,
        never=tuple(s for p in matching for s in p.never_power_down if s.matches(device)),
        overrides=tuple(o for p in matching for o in p.overrides if o.selector.matches(device)),
        exams=tuple((e, zone(p.timezone)) for p in matching for e in p.exam_windows if e.selector.matches(device)),
        maintenance=tuple((m, zone(p.timezone)) for p in matching for m in p.maintenance
                          if m.selector.matches(device)),
        rules=tuple(rules),
        daytime=next((d for d in winner.power.daytime_sleep if d.selector.matches(device)), None) if winner else None)


def _precedence(policy: Policy) -> tuple:
    return (tuple(not part for part in policy.applies_to.specificity), -policy.priority, policy.name)


def _precedence_rules(powered: list[Policy]) -> list[Rule]:
    if not powered:
        return [Rule(Step.PRECEDENCE, "no policy that applies powers devices down")]
    winner, rules = powered[0], []
    for loser in powered[1:]:
        if winner.applies_to.specificity != loser.applies_to.specificity:
            index = next(i for i, (w, lo) in enumerate(zip(winner.applies_to.specificity,
                                                          loser.applies_to.specificity, strict=True)) if w != lo)
            why = f"it names a {_SPECIFICITY_NAMES[index]}, which is more specific"
        elif winner.priority != loser.priority:
            why = f"equally specific, and its priority {winner.priority} is higher than {loser.priority}"
        else:
            why = "equally specific with equal priority, so the first name alphabetically wins"
        rules.append(Rule(Step.PRECEDENCE, f"{winner.name!r} wins over {loser.name!r}: {why}", winner.source))
    return rules


def day_of(ctx: Context, day: date) -> Day:
    key = ("day", day)
    found = ctx.memo.get(key)
    if found is None:
        found = ctx.memo[key] = classify(ctx.calendars, day)
    return found


def is_open(ctx: Context, day: Day) -> bool:
    """School hours apply: a school day, and an INSET day only if the policy keeps them open."""
    if ctx.winner is None or not day.is_school_day:
        return False
    return day.kind is not DayKind.INSET or ctx.winner.power.open_on_inset_days


def spans_on(ctx: Context, day: date) -> tuple[Span, ...]:
    """Every window that begins on the site's ``day``: school hours, wake time, exams, maintenance."""
    key = ("spans", day)
    found = ctx.memo.get(key)
    if found is None:
        found = ctx.memo[key] = tuple(_spans_on(ctx, day))
    return found


def _spans_on(ctx: Context, day: date) -> list[Span]:
    spans: list[Span] = []
    ranges = ctx.winner.power.hours.on(day) if ctx.winner is not None and is_open(ctx, day_of(ctx, day)) else ()
    if ranges:
        power = ctx.winner.power
        if power.wake_before_school is not None:
            spans.append(Span(instant(day, power.wake_before_school, ctx.tz),
                              minutes_after_midnight(day, ranges[0].start, ctx.tz), Basis.WAKE_BEFORE_SCHOOL,
                              f"wake at {power.wake_before_school:%H:%M}", power.where("wake_before_school")))
        spans.extend(Span(minutes_after_midnight(day, r.start, ctx.tz), minutes_after_midnight(day, r.end, ctx.tz),
                          Basis.SCHOOL_HOURS, str(r), power.hours.source) for r in ranges)
    for exam, tz in ctx.exams:
        # Exams sit on days the school is open; with no winning policy nothing powers down anyway.
        if exam.first <= day <= exam.last and (ranges or ctx.winner is None):
            start, end = (exam.hours.start, exam.hours.end) if exam.hours else (0, 24 * 60)
            spans.append(Span(minutes_after_midnight(day, start, tz), minutes_after_midnight(day, end, tz),
                              Basis.EXAM_WINDOW, exam.name, exam.source))
    for window, tz in ctx.maintenance:
        if day.weekday() in window.weekdays:
            start = ctx.placed.get((window.name, day)) or instant(day, window.start, tz)
            end = (start.astimezone(UTC) + timedelta(minutes=window.minutes)).astimezone(tz)  # elapsed, not wall
            spans.append(Span(start, end, Basis.MAINTENANCE, window.name, window.source))
    return spans


def decide_in(ctx: Context, at: datetime) -> Decision:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at.isoformat()} has no time zone")
    local = at.astimezone(ctx.tz)
    rules = list(ctx.rules)
    spans = [s for d in (local.date() - timedelta(days=1), local.date(), local.date() + timedelta(days=1))
             for s in spans_on(ctx, d) if local in s]
    base = _base(ctx, local, spans, rules)
    for exception in (_never, _override, _exam, _maintenance):
        decided = exception(ctx, local, spans, rules)
        if decided is not None:
            base = decided
            break
    intent, basis, label, action = base
    if intent is Intent.KEEP_ON:
        # Daytime sleep only in school hours themselves: never-power-down, overrides, exams and maintenance
        # decided before it, and the wake-before-school stretch is for getting ready.
        daytime = ctx.daytime if basis is Basis.SCHOOL_HOURS else None
        if daytime is not None:
            rules.append(Rule(Step.DAYTIME_SLEEP, f"{daytime.describe()}, in mode {ctx.winner.power.mode}",
                              daytime.source))
        return Decision(ctx.device.device_id, local, intent, basis, Outcome.KEEP_ON, None,
                        ctx.winner.power.mode if daytime else None, ctx.winner.name if ctx.winner else None, label,
                        None, tuple(rules), warning=ctx.winner.power.warning if daytime and
                        ctx.winner.power.mode is Mode.WARN else None, daytime_sleep=daytime)
    power = ctx.winner.power
    idle, outcome = judge(power, ctx.device.activity, rules)
    return Decision(ctx.device.device_id, local, intent, basis, outcome, action, power.mode, ctx.winner.name, label,
                    idle, tuple(rules), warning=power.warning if power.mode is Mode.WARN else None,
                    retry_minutes=power.retry_minutes if power.mode is Mode.PASSIVE else None)


def judge(power: PowerRule, activity: Activity | None, rules: list[Rule] | None = None) -> tuple[bool | None, Outcome]:
    """Whether a device doing ``activity`` is idle by ``power``'s criteria, and what powering it down
    comes to in ``power``'s mode: the part of a decision that depends on what the device is doing, so a
    replay that reads when to power down from a compiled schedule asks only this per report."""
    rules = [] if rules is None else rules
    idle = _idle(power.idle, activity, rules)
    return idle, _outcome(power.mode, idle, activity, rules, power)


_Verdict = tuple[Intent, Basis, str, Action | None]


def _base(ctx: Context, local: datetime, spans: list[Span], rules: list[Rule]) -> _Verdict:
    """What the winning policy's calendar and hours say, before any exception."""
    if ctx.winner is None:
        rules.append(Rule(Step.HOURS, "no policy powers this device down: it is left alone"))
        return Intent.KEEP_ON, Basis.NO_POLICY, "", None
    power = ctx.winner.power
    day = day_of(ctx, local.date())
    if not power.calendars:
        rules.append(Rule(Step.CALENDAR, f"{ctx.winner.name!r} names no calendar: every day follows the weekly hours",
                          ctx.winner.source))
    else:
        rules.append(Rule(Step.CALENDAR, day.describe() + (": treated as a school day" if day.kind is DayKind.UNKNOWN
                                                            else ""), day.source))
    if day.kind is DayKind.INSET and not power.open_on_inset_days:
        rules.append(Rule(Step.HOURS, "the policy closes on INSET days", power.where("on_inset_days")))
    if not is_open(ctx, day):
        rules.append(Rule(Step.HOURS, f"not a school day: out of hours all day, {power.action} when idle",
                          power.hours.source))
        return Intent.POWER_DOWN, Basis.OUT_OF_HOURS, "", power.action
    hours = power.hours.describe(local.date())
    for span in spans:
        if span.basis is Basis.SCHOOL_HOURS:
            rules.append(Rule(Step.HOURS, f"{local:%H:%M %Z} is within school hours ({hours})", span.source))
            return Intent.KEEP_ON, Basis.SCHOOL_HOURS, span.label, None
        if span.basis is Basis.WAKE_BEFORE_SCHOOL:
            rules.append(Rule(Step.HOURS, f"{local:%H:%M %Z} is after the {power.wake_before_school:%H:%M} wake and "
                                          f"before school ({hours})", span.source))
            return Intent.KEEP_ON, Basis.WAKE_BEFORE_SCHOOL, span.label, None
    rules.append(Rule(Step.HOURS, f"{local:%H:%M %Z} is outside school hours ({hours}): {power.action} when idle",
                      power.hours.source))
    return Intent.POWER_DOWN, Basis.OUT_OF_HOURS, "", power.action


def _never(ctx: Context, local: datetime, spans: list[Span], rules: list[Rule]) -> _Verdict | None:
    duty = ctx.device.kept_on_by
    if duty:
        rules.append(Rule(Step.NEVER_POWER_DOWN, f"kept on as the controller's {duty}, whatever else applies"))
        return Intent.KEEP_ON, Basis.NEVER_POWER_DOWN, duty, None
    if not ctx.never:
        return None
    selector = ctx.never[0]
    rules.append(Rule(Step.NEVER_POWER_DOWN, f"never powered down ({selector.describe()}): kept on whatever else "
                                             "applies", selector.source))
    return Intent.KEEP_ON, Basis.NEVER_POWER_DOWN, selector.describe(), None


def _override(ctx: Context, local: datetime, spans: list[Span], rules: list[Rule]) -> _Verdict | None:
    active = sorted((o for o in ctx.overrides if o.in_force(local)),
                    key=lambda o: (o.intent is not Intent.KEEP_ON, o.expires, o.name))
    if not active:
        return None
    chosen = active[0]
    until = f"until {chosen.expires.astimezone(ctx.tz):%Y-%m-%d %H:%M %Z}"
    if chosen.intent is Intent.KEEP_ON:
        rules.append(Rule(Step.OVERRIDE, f"override {chosen.name!r}: keep on {until}", chosen.source))
        return Intent.KEEP_ON, Basis.OVERRIDE, chosen.name, None
    if ctx.winner is None:
        rules.append(Rule(Step.OVERRIDE, f"override {chosen.name!r} would power down {until}, but no policy says what "
                                         "idle means for this device: kept on", chosen.source))
        return Intent.KEEP_ON, Basis.OVERRIDE, chosen.name, None
    action = chosen.action or ctx.winner.power.action
    rules.append(Rule(Step.OVERRIDE, f"override {chosen.name!r}: {action} when idle {until}", chosen.source))
    return Intent.POWER_DOWN, Basis.OVERRIDE, chosen.name, action


def _exam(ctx: Context, local: datetime, spans: list[Span], rules: list[Rule]) -> _Verdict | None:
    span = next((s for s in spans if s.basis is Basis.EXAM_WINDOW), None)
    if span is None:
        return None
    rules.append(Rule(Step.EXAM_WINDOW, f"exam window {span.label!r} ({span.start:%H:%M}-{span.end:%H:%M}): kept on, "
                                        "no maintenance", span.source))
    return Intent.KEEP_ON, Basis.EXAM_WINDOW, span.label, None


def _maintenance(ctx: Context, local: datetime, spans: list[Span], rules: list[Rule]) -> _Verdict | None:
    span = next((s for s in spans if s.basis is Basis.MAINTENANCE), None)
    if span is None:
        return None
    rules.append(Rule(Step.MAINTENANCE, f"maintenance window {span.label!r} ({span.start:%a %H:%M %Z} to "
                                        f"{span.end:%H:%M %Z}): kept on for updates", span.source))
    return Intent.KEEP_ON, Basis.MAINTENANCE, span.label, None


def _idle(rule: IdleRule, activity: Activity | None, rules: list[Rule]) -> bool | None:
    """Every criterion must hold; one the device cannot report makes the answer unknown, never yes."""
    results: list[bool | None] = []

    def judge(ok: bool | None, text: str) -> None:
        results.append(ok)
        mark = {True: "yes", False: "no", None: "unknown"}[ok]
        rules.append(Rule(Step.IDLE, f"{text}: {mark}", rule.source))

    now = activity or Activity()
    if rule.minutes_without_input is not None:
        minutes = now.idle_minutes
        judge(None if minutes is None else minutes >= rule.minutes_without_input,
              f"{_known(minutes, '{:g} min')} without input, needs {rule.minutes_without_input}")
    if rule.cpu_below_percent is not None:
        cpu = now.cpu_percent
        judge(None if cpu is None else cpu < rule.cpu_below_percent,
              f"CPU {_known(cpu, '{:g}%')}, needs below {rule.cpu_below_percent:g}%")
    if rule.processes_absent:
        watched = None if now.processes_watched is None else {p.casefold() for p in now.processes_watched}
        unlooked = [] if watched is None else [p for p in rule.processes_absent if p.casefold() not in watched]
        running = None if now.processes is None else {p.casefold() for p in now.processes}
        present = [p for p in rule.processes_absent if p.casefold() in running] if running is not None else None
        judge(None if present is None or (unlooked and not present) else not present,
              f"none of {', '.join(rule.processes_absent)} running"
              + (f" ({', '.join(present)} is)" if present else "")
              + (f" (the agent did not look for {', '.join(unlooked)})" if unlooked and not present else ""))
    if rule.no_signed_in_session:
        judge(None if now.sessions is None else now.sessions == 0,
              f"{_known(now.sessions, '{}')} signed-in session(s), needs none")
    if False in results:
        return False
    return None if None in results else True


def _known(value: object, form: str) -> str:
    return "unknown" if value is None else form.format(value)


def _outcome(mode: Mode, idle: bool | None, activity: Activity | None, rules: list[Rule], power: PowerRule) -> Outcome:
    sessions = activity.sessions if activity else None
    if idle is False:
        outcome, text = Outcome.WAIT_FOR_IDLE, "not idle: nothing happens until it is"
    elif mode is Mode.OBSERVE:
        outcome = Outcome.RECORD_ONLY if idle else Outcome.AGENT_DECIDES
        text = "observe: records what it would do and never acts"
    elif idle is None:
        outcome, text = Outcome.AGENT_DECIDES, f"{mode}: the agent judges idleness locally and then acts"
    elif mode is Mode.FORCE:
        outcome, text = Outcome.ACT, "force: acts now, signed-in user or not"
    elif sessions is None:
        outcome, text = Outcome.AGENT_DECIDES, f"{mode}: the agent checks for a signed-in user and then acts"
    elif sessions == 0:
        outcome, text = Outcome.ACT, f"{mode}: nobody is signed in, so it acts now"
    elif mode is Mode.PASSIVE:
        outcome, text = Outcome.RETRY_LATER, f"passive: a user is signed in; tries again in {power.retry_minutes} min"
    else:
        w = power.warning
        outcome, text = Outcome.WARN, (f"warn: {w.countdown_minutes}-minute countdown; the user may defer "
                                       f"{w.max_deferrals} time(s) by {w.deferral_minutes} min")
    rules.append(Rule(Step.MODE, text, power.where("mode") or power.where("action")))
    return outcome

