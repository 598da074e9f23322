"""The controller's active policy set: the policy directory as last loaded, with the modes people switched.

The directory is checked for changes at most every ``check_seconds`` (file names, sizes and mtimes),
so the ingest path can ask for the current set on every report. A directory with mistakes keeps the
previous set in force (a typo must not switch an estate's policies off) and says why in ``problem``.
Every change of a policy's content, and every mode switch, is a ChangeRecord with object_type "policy":
who, when, the content hash before and after, and a one-line summary of what changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controller.errors import DomainError
from controller.policy import loader
from controller.policy.calendar import Calendar
from controller.policy.model import Mode, Policy
from controller.policy.models import PolicyState
from controller.register.models import ChangeRecord
from controller.register.placement import PlacementRule
from controller.timeutil import utcnow

log = logging.getLogger(__name__)

OBJECT_TYPE = "policy"
SYSTEM_ACTOR = "controller:policy-dir"


class UnknownPolicy(LookupError, DomainError):
    pass


@dataclass(frozen=True)
class ActiveSet:
    """The policies in force (modes switched where someone switched them), and a version naming them."""

    policies: tuple[Policy, ...]
    calendars: Mapping[str, Calendar]
    version: str  # changes whenever a policy, a calendar, a placement rule or a mode does: schedules are cached by it
    problem: str | None = None  # why the directory's latest content is not in force, if it is not
    placement: tuple[PlacementRule, ...] = ()  # rooms and tags by rule (register/placement.py)

    def named(self, name: str) -> Policy:
        for policy in self.policies:
            if policy.name == name:
                return policy
        raise UnknownPolicy(f"no policy called {name!r}; known: {', '.join(p.name for p in self.policies) or 'none'}")


@dataclass(frozen=True)
class PolicyLine:
    """One policy as the console lists it."""

    name: str
    mode: str | None  # None: the policy powers nothing down (exceptions only)
    file_mode: str | None
    switched: bool
    applies_to: str
    source: str


EMPTY = ActiveSet((), {}, hashlib.sha256(b"").hexdigest()[:16])


class PolicyStore:
    """Loads ``directory`` (missing: no policies), reloads it when it changes, and applies mode switches."""

    def __init__(self, directory: Path, engine: Engine, check_seconds: float = 2.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._directory = directory
        self._engine = engine
        self._check_seconds = check_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._fingerprint: tuple | None = None
        self._loaded: tuple[Policy, ...] = ()  # as the files say
        self._calendars: Mapping[str, Calendar] = {}
        self._placement: tuple[PlacementRule, ...] = ()
        self._problem: str | None = None
        self._checked_at: float | None = None
        self._active = EMPTY

    def due(self) -> bool:
        """Whether ``current`` would look at the directory and the database (cheap to ask)."""
        return self._checked_at is None or self._monotonic() - self._checked_at >= self._check_seconds

    def current(self) -> ActiveSet:
        if self.due():
            self.refresh()
        return self._active

    def refresh(self) -> ActiveSet:
        """Reload the directory if it changed and re-read the switched modes (other replicas switch too)."""
        with self._lock:
            fingerprint = _fingerprint(self._directory)
            if fingerprint != self._fingerprint:
                self._reload(fingerprint)
            with Session(self._engine) as session:
                modes = {s.name: s.mode for s in session.exec(select(PolicyState)) if s.mode is not None}
            self._active = _activate(self._loaded, self._calendars, modes, self._problem, self._placement)
            self._checked_at = self._monotonic()
            return self._active

    def list_policies(self) -> list[PolicyLine]:
        active = self.current()
        files = {p.name: p for p in self._loaded}
        return [PolicyLine(p.name, p.power.mode.value if p.power else None,
                           files[p.name].power.mode.value if files[p.name].power else None,
                           bool(p.power and files[p.name].power and p.power.mode != files[p.name].power.mode),
                           p.applies_to.describe(), p.source) for p in active.policies]

    def set_mode(self, session: Session, name: str, mode: Mode, actor: str) -> None:
        """Switch a policy's mode (observe → passive/warn/force and back); the caller's session commits.

        Switching back to the mode the file says clears the switch, so a later edit of the file rules again.
        """
        policy = next((p for p in self._loaded if p.name == name), None)
        if policy is None:
            raise UnknownPolicy(f"no policy called {name!r}; known: {', '.join(p.name for p in self._loaded)}")
        if policy.power is None:
            raise ValueError(f"policy {name!r} powers nothing down (exceptions only), so it has no mode")
        state = session.get(PolicyState, name) or PolicyState(name=name, content_hash=content_hash(policy))
        before = Mode(state.mode) if state.mode else policy.power.mode
        state.mode = None if mode is policy.power.mode else mode.value
        state.updated_at, state.updated_by = utcnow(), actor
        session.add(state)
        session.add(ChangeRecord(actor=actor, action="set_mode", object_type=OBJECT_TYPE, object_id=name,
                                 before={"mode": before.value}, after={"mode": mode.value}))
        self._checked_at = None  # the next ``current`` reads the switch

    def _reload(self, fingerprint: tuple) -> None:
        self._fingerprint = fingerprint
        if not self._directory.is_dir():
            loaded, calendars, placement, self._problem = (), {}, (), None
        else:
            try:
                policy_set = loader.load([self._directory])
            except loader.PolicyError as exc:
                self._problem = (f"{len(exc.problems)} problem(s), the previous policies stay in force: "
                                 f"{exc.problems[0]}")
                log.error("policy directory %s: %s", self._directory, self._problem)
                return
            loaded, calendars, self._problem = policy_set.policies, policy_set.calendars, None
            placement = policy_set.placement
        self._record_changes(self._loaded, loaded)
        self._loaded, self._calendars, self._placement = loaded, calendars, placement

    def _record_changes(self, previous: tuple[Policy, ...], loaded: tuple[Policy, ...]) -> None:
        """A ChangeRecord per policy added, edited or removed since the content last seen (even before a restart)."""
        before = {p.name: p for p in previous}
        with Session(self._engine) as session:
            states = {s.name: s for s in session.exec(select(PolicyState))}
            for policy in loaded:
                digest = content_hash(policy)
                state = states.pop(policy.name, None)
                if state is None:
                    session.add(PolicyState(name=policy.name, content_hash=digest, updated_by=SYSTEM_ACTOR))
                    _log(session, "create", policy.name, None, digest, f"added from {policy.source}")
                elif state.content_hash != digest:
                    summary = diff_summary(before[policy.name], policy) if policy.name in before else "content changed"
                    _log(session, "update", policy.name, state.content_hash, digest, summary)
                    state.content_hash, state.updated_at, state.updated_by = digest, utcnow(), SYSTEM_ACTOR
                    session.add(state)
            for name, state in states.items():
                _log(session, "delete", name, state.content_hash, None, "no longer in the policy directory")
                session.delete(state)
            session.commit()


def with_switched_modes(session: Session, policy_set: loader.PolicySet) -> ActiveSet:
    """A policy set read elsewhere (the CLI's --policies) with the modes switched in this database; writes nothing."""
    modes = {s.name: s.mode for s in session.exec(select(PolicyState)) if s.mode is not None}
    return _activate(policy_set.policies, policy_set.calendars, modes, None, policy_set.placement)


def _log(session: Session, action: str, name: str, old: str | None, new: str | None, summary: str) -> None:
    session.add(ChangeRecord(actor=SYSTEM_ACTOR, action=action, object_type=OBJECT_TYPE, object_id=name,
                             before={"content_hash": old} if old else None,
                             after={"content_hash": new, "summary": summary[:400]} if new else {"summary": summary}))


def content_hash(policy: Policy) -> str:
    """Of what the policy says, not where: moving a file or a line does not count as a change."""
    return hashlib.sha256(repr(_without_sources(policy)).encode()).hexdigest()


def diff_summary(old: Policy, new: Policy) -> str:
    """The top-level parts that differ, e.g. "power.mode observe → warn; exam_windows changed"."""
    old, new = _without_sources(old), _without_sources(new)
    parts = []
    for f in dataclasses.fields(Policy):
        a, b = getattr(old, f.name), getattr(new, f.name)
        if a == b:
            continue
        if f.name == "power" and a is not None and b is not None:
            parts.extend(_change(f"power.{g.name}", getattr(a, g.name), getattr(b, g.name))
                         for g in dataclasses.fields(a) if getattr(a, g.name) != getattr(b, g.name))
        else:
            parts.append(_change(f.name, a, b))
    return "; ".join(parts) or "no change"


def _change(name: str, a: object, b: object) -> str:
    simple = (str, int, float, bool, type(None))
    if isinstance(a, simple) and isinstance(b, simple):
        return f"{name} {a} → {b}"
    return f"{name} changed"


def _without_sources(value):
    """The same value with every ``source``/``sources`` field blanked (they hold file:line)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in dataclasses.fields(value):
            current = getattr(value, f.name)
            if f.name == "source":
                changes[f.name] = ""
            elif f.name == "sources":
                changes[f.name] = {}
            else:
                stripped = _without_sources(current)
                if stripped is not current:
                    changes[f.name] = stripped
        return replace(value, **changes) if changes else value
    if isinstance(value, tuple):
        items = tuple(_without_sources(v) for v in value)
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    return value


def _activate(loaded: tuple[Policy, ...], calendars: Mapping[str, Calendar], modes: Mapping[str, str],
              problem: str | None, placement: tuple[PlacementRule, ...] = ()) -> ActiveSet:
    policies = tuple(replace(p, power=replace(p.power, mode=Mode(modes[p.name])))
                     if p.power is not None and p.name in modes else p for p in loaded)
    digest = hashlib.sha256()
    for policy in policies:
        digest.update(content_hash(policy).encode())
    for name in sorted(calendars):
        digest.update(repr(_without_sources(calendars[name])).encode())
    if placement:
        digest.update(repr(_without_sources(placement)).encode())
    return ActiveSet(policies, calendars, digest.hexdigest()[:16], problem, placement)


def _fingerprint(directory: Path) -> tuple:
    if not directory.is_dir():
        return ()
    entries = []
    for path in sorted(directory.rglob("*")):
        try:
            stat = path.stat()
        except OSError:
            continue
        if path.is_file():
            entries.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(entries)
