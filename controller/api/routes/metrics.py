"""GET /metrics for Prometheus: its text format, or OpenMetrics when the scraper's Accept header asks.

Prometheus cannot sign in as a person, so /metrics is outside the role checks (auth.PUBLIC_PATHS). It has
its own optional bearer token instead (``metrics_token``; Prometheus sends it from
``authorization.credentials_file``). Without one, serve it on a network only monitoring can reach: the
series name sites and device classes, and hostnames only when per-device series are switched on.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Response
from prometheus_client.exposition import choose_encoder

from controller.api.deps import RuntimeDep

router = APIRouter(tags=["metrics"])


def _check_token(expected: str, authorization: str | None) -> None:
    scheme, _, sent = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(sent.strip().encode(), expected.encode()):
        raise HTTPException(status_code=401, detail="/metrics needs the metrics bearer token",
                            headers={"WWW-Authenticate": "Bearer"})


@router.get("/metrics", response_class=Response, response_model=None)
async def scrape(runtime: RuntimeDep, accept: Annotated[str | None, Header()] = None,
                 authorization: Annotated[str | None, Header()] = None) -> Response:
    token = runtime.settings.metrics_token
    if token is not None:
        _check_token(token.get_secret_value(), authorization)
    encode, content_type = choose_encoder(accept or "")
    # The estate collector may query the database (on a cache miss): keep that off the event loop.
    body = await asyncio.to_thread(encode, runtime.metrics.registry)
    return Response(content=body, media_type=content_type)
