"""GET /metrics for Prometheus: its text format, or OpenMetrics when the scraper's Accept header asks.

No authentication yet: serve it on a network only monitoring can reach (the series name sites and
device classes, never devices or people).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from prometheus_client.exposition import choose_encoder

from controller.metrics import IngestMetrics, Metrics

router = APIRouter(tags=["metrics"])


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


MetricsDep = Annotated[Metrics, Depends(get_metrics)]


async def get_ingest_metrics(request: Request) -> IngestMetrics:
    return request.app.state.metrics.ingest


IngestMetricsDep = Annotated[IngestMetrics, Depends(get_ingest_metrics)]


@router.get("/metrics", response_class=Response, response_model=None)
async def scrape(metrics: MetricsDep, accept: Annotated[str | None, Header()] = None) -> Response:
    encode, content_type = choose_encoder(accept or "")
    # The estate collector may query the database (on a cache miss): keep that off the event loop.
    body = await asyncio.to_thread(encode, metrics.registry)
    return Response(content=body, media_type=content_type)
