"""GET /metrics for Prometheus: its text format, or OpenMetrics when the scraper's Accept header asks.

No authentication yet: serve it on a network only monitoring can reach (the series name sites and
device classes, never devices or people).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Header, Response
from prometheus_client.exposition import choose_encoder

from controller.api.deps import RuntimeDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, response_model=None)
async def scrape(runtime: RuntimeDep, accept: Annotated[str | None, Header()] = None) -> Response:
    encode, content_type = choose_encoder(accept or "")
    # The estate collector may query the database (on a cache miss): keep that off the event loop.
    body = await asyncio.to_thread(encode, runtime.metrics.registry)
    return Response(content=body, media_type=content_type)
