"""A short way to one hot route, past Starlette's routing and FastAPI's dependency solving.

Agents' reports are nearly all of a controller's requests (one per agent every few minutes), and a
report's own work is small: profiled on PostgreSQL (bench/README.md, "Ingest"), about half of the event
loop's time per report went to the framework between the middlewares and the endpoint (exception
wrapping, route matching, solving the dependencies, checking the returned value against its model).

:class:`Shortcut` sits inside the request guard and the security headers, so their limits and headers
apply as before, and answers one method and path by calling a plain coroutine that uses the route's
own dependencies and endpoint (``routes/agent.py: answer_reports``): the route stays declared on the
app, so the OpenAPI contract is unchanged. An exception becomes the answer the app's own exception
handlers give, chosen as Starlette's ExceptionMiddleware chooses them; one without a handler goes up to
the server-error middleware, a 500, as from any route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Answer = Callable[[Request], Awaitable[Response]]


class Shortcut:
    def __init__(self, app: ASGIApp, method: str, path: str, answer: Answer):
        self.app = app
        self.method = method
        self.path = path
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != self.method:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self.answer(request)
        except Exception as exc:
            handler = handler_for(exc, request.app.exception_handlers)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)


def handler_for(exc: Exception, handlers: Mapping[Any, Callable]) -> Callable | None:
    """The handler Starlette's ExceptionMiddleware would pick: by status code for an HTTPException, else the
    nearest class. A handler for 500 or ``Exception`` is the server-error middleware's, so not picked here."""
    if isinstance(exc, HTTPException) and exc.status_code != 500 and exc.status_code in handlers:
        return handlers[exc.status_code]
    for kind in type(exc).__mro__:
        if kind is Exception:
            return None
        if kind in handlers:
            return handlers[kind]
    return None
