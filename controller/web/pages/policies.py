"""Policies: what is in force, whether the directory is valid, why a device gets a decision at a time,
and switching a policy's mode, behind a confirmation page that shows what the switch would do.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from controller.api.deps import Runtime, RuntimeDep
from controller.api.ids import DeviceRef
from controller.db import session_scope
from controller.policy import explain, loader
from controller.policy.engine import context, decide_in
from controller.policy.model import Mode
from controller.policy.store import PolicyStore, UnknownPolicy
from controller.policy.warnings import policy_warnings
from controller.register.devices import NotFound, find_device
from controller.register.facts import register_facts
from controller.timeutil import utcnow
from controller.web.pages import Manager, Reader
from controller.web.policy_impact import impact
from controller.web.render import page

router = APIRouter(include_in_schema=False)


def _store(runtime: Runtime) -> PolicyStore:
    if runtime.policies is None:
        raise HTTPException(status_code=503, detail="the policy store is not running")
    return runtime.policies


@router.get("/policies")
def policies(request: Request, runtime: RuntimeDep, principal: Reader, done: str = "") -> Response:
    store = _store(runtime)
    return page(request, "policies.html", principal, nav="policies", lines=store.list_policies(),
                problem=store.current().problem, directory=runtime.settings.resolved_policy_dir(),
                modes=list(Mode), message="Mode switched." if done == "mode" else None)


@router.get("/policies/validate")
def validate(request: Request, runtime: RuntimeDep, principal: Reader) -> Response:
    """Reads the policy directory afresh, as `caretaker policy validate` does, without changing what is in force."""
    directory = runtime.settings.resolved_policy_dir()
    try:
        policy_set = loader.load([directory])
    except loader.PolicyError as exc:
        lines, ok = [str(p) for p in exc.problems], False
    else:
        with Session(runtime.engine) as session:
            devices = register_facts(session, policy_set.placement)
        warnings = policy_warnings(policy_set.policies, dict(policy_set.calendars), utcnow().date(), devices)
        lines, ok = explain.summary(policy_set, warnings), True
    return page(request, "policy_text.html", principal, nav="policies", heading="Validate the policy directory",
                lines=lines, ok=ok)


@router.get("/policies/explain")
def explain_decision(request: Request, runtime: RuntimeDep, principal: Reader, device: DeviceRef | Literal[""] = "",
                     at: str = "") -> Response:
    lines: list[str] = []
    error = None
    if device and at:
        active = _store(runtime).current()
        with Session(runtime.engine) as session:
            try:
                row = find_device(session, device)
                if not principal.may_see(row.site_id):
                    raise NotFound(f"no device with id or hostname {device!r}")
                reported = explain.reported_processes(session, str(row.id))
                facts = explain.facts_for(session, row, active, explain.activity(None, None, None, None, reported))
                ctx = context(active.policies, active.calendars, facts)
                lines = explain.render(decide_in(ctx, explain.parse_moment(at, ctx.tz)), facts, reported)
            except (NotFound, ValueError) as exc:
                error = str(exc)
    return page(request, "explain.html", principal, status_code=400 if error else 200, nav="policies",
                device=device, at=at, lines=lines, error=error)


@router.get("/policies/{name}/mode")
def confirm_mode(request: Request, runtime: RuntimeDep, principal: Manager, name: str, mode: Mode) -> Response:
    store = _store(runtime)
    try:
        with Session(runtime.engine) as session:
            projected = impact(session, store.current(), name, mode, utcnow())
    except UnknownPolicy as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    return page(request, "mode_confirm.html", principal, nav="policies", impact=projected,
                applies_to=store.current().named(name).applies_to.describe())


@router.post("/policies/{name}/mode")
def switch_mode(request: Request, runtime: RuntimeDep, principal: Manager, name: str,
                mode: Annotated[Mode, Form()]) -> Response:
    store = _store(runtime)
    try:
        with session_scope(runtime.engine) as session:
            store.set_mode(session, name, mode, principal.actor)
    except UnknownPolicy as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    return RedirectResponse("/policies?done=mode", status_code=303)
