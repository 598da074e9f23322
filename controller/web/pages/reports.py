"""Reports: a bursar picks a school (or trust) and a period from its own calendars, and reads the report
in the browser (or takes the PDF or spreadsheet). The form is checked here: a mistake comes back on the
form, in words, with what was typed kept, never as the API's JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session

from controller.api.deps import RuntimeDep
from controller.db import session_scope
from controller.reports import render, service
from controller.reports.figures import Inputs
from controller.reports.periods import Choice, choices
from controller.timeutil import utcnow
from controller.web.errors import sentence
from controller.web.pages import Reader
from controller.web.render import page
from controller.web.views import visible_sites

router = APIRouter(include_in_schema=False)
RANGE = "range"
FORMATS = {"html": "Show it here (HTML)", "pdf": "PDF to print", "csv": "Spreadsheet (a zip of CSV files)"}
AUDIT_FORMATS = {**FORMATS, "json": "JSON (for other systems)"}


@dataclass(frozen=True)
class ReportForm:
    """What the person chose, kept to fill the form again when something needs fixing."""

    scope: str = ""  # "site:NAME" or "trust:NAME"
    period: str = ""
    start: str = ""
    end: str = ""
    format: str = "html"


def _periods(runtime: RuntimeDep, sites: list[str], today: date) -> list[Choice]:
    inputs = _inputs(runtime)
    calendars = [c for site in sites for c in inputs.site_calendars(site)]
    return choices(calendars, today)


def _inputs(runtime: RuntimeDep):
    try:
        return service.load_inputs(runtime.settings.resolved_policy_dir())
    except service.ReportError:
        return Inputs()


def _form_page(request: Request, runtime: RuntimeDep, principal, kind: str = "bursar", status_code: int = 200,
               form: ReportForm | None = None, error: str | None = None) -> Response:
    with Session(runtime.engine) as session:
        sites = visible_sites(session, principal)
    names = [s.name for s in sites]
    trusts = sorted({s.trust for s in sites if s.trust})
    periods = _periods(runtime, names, utcnow().date())
    form = form or ReportForm(scope=f"site:{names[0]}" if names else "", period=periods[0].value if periods else "")
    return page(request, "reports.html", principal, status_code=status_code, nav="reports", sites=names,
                trusts=trusts, periods=periods, formats=FORMATS, audit_formats=AUDIT_FORMATS, form=form,
                kind=kind, error=error, range_value=RANGE)


@router.get("/reports")
def reports(request: Request, runtime: RuntimeDep, principal: Reader) -> Response:
    return _form_page(request, runtime, principal)


@router.get("/reports/report.css")
def report_styles(principal: Reader) -> Response:
    return Response(render.stylesheet(), media_type="text/css")


@router.get("/reports/bursar")
def bursar(request: Request, runtime: RuntimeDep, principal: Reader, scope: str = "", period: str = "",
           start: str = "", end: str = "", format: str = "html") -> Response:
    return _report(request, runtime, principal, "bursar", ReportForm(scope, period, start, end, format))


@router.get("/reports/audit")
def audit(request: Request, runtime: RuntimeDep, principal: Reader, scope: str = "", period: str = "",
          start: str = "", end: str = "", format: str = "html") -> Response:
    return _report(request, runtime, principal, "audit", ReportForm(scope, period, start, end, format))


def _report(request: Request, runtime: RuntimeDep, principal, kind: str, form: ReportForm) -> Response:
    problem = _check(form, kind)
    if problem:
        return _form_page(request, runtime, principal, kind, 400, form, problem)
    what, _, name = form.scope.partition(":")
    period = f"{form.start}..{form.end}" if form.period == RANGE else form.period
    try:
        with session_scope(runtime.engine) as session:
            rendered = service.make(session, kind, form.format, _inputs(runtime), period, utcnow(),
                                    site=name if what == "site" else None, trust=name if what == "trust" else None,
                                    may_see=principal.may_see, console=True)
    except service.UnknownScope as exc:
        return _form_page(request, runtime, principal, kind, 404, form, sentence(str(exc)))
    except service.NotAllowed as exc:
        return _form_page(request, runtime, principal, kind, 403, form,
                          sentence(f"{exc}: ask a network manager to grant them to you"))
    except service.ReportError as exc:
        return _form_page(request, runtime, principal, kind, 400, form, sentence(str(exc)))
    disposition = "inline" if form.format == "html" else f'attachment; filename="{rendered.filename}"'
    return Response(rendered.content, media_type=rendered.media_type,
                    headers={"Content-Disposition": disposition})


def _check(form: ReportForm, kind: str) -> str | None:
    """What is wrong with the form, in words a person can act on; None when it can be asked for."""
    what, _, name = form.scope.partition(":")
    if what not in ("site", "trust") or not name:
        return "Choose a school or a trust."
    if kind == "audit" and what != "trust":
        return "An audit pack covers a trust or local authority: choose a trust."
    if form.format not in (AUDIT_FORMATS if kind == "audit" else FORMATS):
        return f"Choose one of the formats offered, not {form.format!r}."
    if not form.period:
        return "Choose a period."
    if form.period == RANGE:
        try:
            first, last = date.fromisoformat(form.start), date.fromisoformat(form.end)
        except ValueError:
            return "Give both dates of the range, from and to (for example 2025-09-01 and 2025-12-19)."
        if last < first:
            return f"The range ends ({last:%-d %b %Y}) before it starts ({first:%-d %b %Y})."
    return None
