"""Reports as the CLI and the API ask for them: by site or trust name and a period as typed, to bytes.

Everything a person can get wrong (an unknown site, a malformed period, a term the calendar lacks,
policies that do not load) surfaces as one ``ReportError`` with a one-line message, before any work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import Session

from controller.errors import DomainError
from controller.policy import loader, store
from controller.reports import audit, bursar, render
from controller.reports.document import Document
from controller.reports.figures import Inputs
from controller.reports.layout import audit_document, bursar_document
from controller.reports.periods import Period, PeriodError, parse_period
from controller.reports.sources import Scope, ScopeError, resolve_scope

KINDS = ("bursar", "audit")
BURSAR_FORMATS = ("html", "pdf", "csv")


class ReportError(ValueError, DomainError):
    """Input a person can fix; the message is one line."""


class UnknownScope(ReportError):
    """No site or trust by that name."""


class NotAllowed(ReportError):
    """The caller may not see every site the report covers (an auditor granted some sites only)."""


@dataclass(frozen=True)
class Rendered:
    content: bytes
    media_type: str
    filename: str


def load_inputs(policy_dir: Path | None) -> Inputs:
    """Policies and calendars from ``policy_dir`` (none when it is None or absent)."""
    if policy_dir is None or not policy_dir.exists():
        return Inputs()
    try:
        policy_set = loader.load([policy_dir])
    except loader.PolicyError as exc:
        raise ReportError(f"the policies in {policy_dir} do not load: {exc.problems[0]}") from None
    return Inputs(policy_set.policies, policy_set.calendars, policy_set.placement)


def with_switched_modes(session: Session, inputs: Inputs) -> Inputs:
    """The policies as in force: the files' modes, except where someone switched one in the console."""
    active = store.with_switched_modes(session, loader.PolicySet(inputs.policies, inputs.calendars or {}, (),
                                                                  placement=inputs.placement))
    return Inputs(active.policies, active.calendars, active.placement)


def resolve(session: Session, inputs: Inputs, period: str, site: str | None = None, trust: str | None = None,
            may_see: Callable[[int], bool] | None = None) -> tuple[Scope, Period]:
    if (site is None) == (trust is None):
        raise ReportError("name a site or a trust (one of them)")
    try:
        scope = resolve_scope(session, site=site, trust=trust)
    except ScopeError as exc:
        raise UnknownScope(str(exc)) from None
    hidden = [s.name for s in scope.sites if may_see is not None and not may_see(s.id)]
    if hidden:
        raise NotAllowed(f"you may not see {', '.join(hidden)}")
    calendars = [c for s in scope.sites for c in inputs.site_calendars(s.name)]
    try:  # a trust's period is in its first site's zone: English trusts' sites all share Europe/London
        return scope, parse_period(period, scope.sites[0].timezone, calendars)
    except PeriodError as exc:
        raise ReportError(str(exc)) from None


def make(session: Session, kind: str, fmt: str, inputs: Inputs, period: str, now: datetime,
         site: str | None = None, trust: str | None = None, may_see: Callable[[int], bool] | None = None,
         console: bool = False) -> Rendered:
    """The report ``kind`` for a site or trust over ``period``, rendered as ``fmt``; ``may_see`` (a site id
    test) refuses a report covering any site the caller was not granted; ``console``: HTML to show in it."""
    if kind not in KINDS:
        raise ReportError(f"report {kind!r} is not one of {', '.join(KINDS)}")
    formats = BURSAR_FORMATS if kind == "bursar" else render.FORMATS
    if fmt not in formats:
        raise ReportError(f"a {kind} report comes as {', '.join(formats)}, not {fmt!r}")
    if kind == "audit" and trust is None:
        raise ReportError("an audit pack is for a trust or local authority: give its name")
    inputs = with_switched_modes(session, inputs)
    scope, when = resolve(session, inputs, period, site=site, trust=trust, may_see=may_see)
    report: bursar.BursarReport | audit.AuditPack
    document: Document
    if kind == "bursar":
        report = bursar.build(session, scope, when, inputs, now)
        document = bursar_document(report)
    else:
        report = audit.build(session, scope, when, inputs, now)
        document = audit_document(report)
    name = f"caretaker-{kind}-{_slug(scope.label)}-{when.label.replace('..', '-to-')}{render.SUFFIXES[fmt]}"
    return Rendered(render.render(document, fmt, report, console), render.MEDIA_TYPES[fmt], name)


def _slug(text: str) -> str:
    """ASCII only: the name goes into a Content-Disposition header."""
    return "-".join("".join(c if c.isascii() and c.isalnum() else " " for c in text.lower()).split()) or "estate"
