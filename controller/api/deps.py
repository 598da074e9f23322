"""What routes need, as typed dependencies (so a route's signature says what it uses)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session

from controller.ingest import AgentDirectory, AgentIdentity, AuthFailed, IngestWriter
from controller.settings import Settings


@dataclass
class Runtime:
    """Per-app state, built by the app factory (nothing is created on import)."""

    settings: Settings
    engine: Engine
    agents: AgentDirectory
    writer: IngestWriter


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    with Session(runtime.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def current_agent(runtime: RuntimeDep, authorization: Annotated[str | None, Header()] = None) -> AgentIdentity:
    try:
        return runtime.agents.authenticate(authorization)
    except AuthFailed as exc:
        raise HTTPException(status_code=401, detail=str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


CurrentAgent = Annotated[AgentIdentity, Depends(current_agent)]
