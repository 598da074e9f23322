"""What routes need, as typed dependencies (so a route's signature says what it uses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy.engine import Engine

from controller.metrics import Metrics
from controller.policy.dispatch import SchedulePlanner
from controller.policy.store import PolicyStore
from controller.register.ingest import AgentDirectory, AgentIdentity, AuthFailed, IngestWriter
from controller.settings import Settings
from controller.web.throttle import SignInThrottle


@dataclass
class Runtime:
    """Per-app state, built by the app factory (nothing is created on import)."""

    settings: Settings
    engine: Engine
    agents: AgentDirectory
    writer: IngestWriter
    metrics: Metrics
    policies: PolicyStore | None = None  # the active power policies (policy/store.py)
    schedules: SchedulePlanner | None = None  # each agent's schedule, sent with its ingest reply
    signin: SignInThrottle = field(default_factory=SignInThrottle)  # console sign-in attempts


# The dependencies are ``async def`` so FastAPI runs them on the event loop: a plain ``def`` would cost
# two thread hand-offs per request for work that does no I/O (or, on a cache miss, hops by itself).
async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def current_agent(runtime: RuntimeDep,
                        authorization: Annotated[str | None, Header()] = None) -> AgentIdentity:
    try:
        return await runtime.agents.authenticate(authorization)
    except AuthFailed as exc:
        raise HTTPException(status_code=401, detail=str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


CurrentAgent = Annotated[AgentIdentity, Depends(current_agent)]
