"""Response headers that keep the console's pages from being framed, sniffed or fed foreign scripts.

The console has no inline script or style, so the content security policy allows only its own origin.
Over HTTPS, Strict-Transport-Security tells browsers never to use plain HTTP for it again. FastAPI's
/docs and /redoc (off unless the ``api_docs`` setting turns them on) load their viewers from a CDN;
they keep the other headers but not the CSP.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
HEADERS = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"same-origin")]
NO_CSP_PATHS = ("/docs", "/redoc")
HSTS = (b"strict-transport-security", b"max-age=31536000")  # a year; not includeSubDomains: not ours to say


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(HEADERS)
        if scope.get("scheme") == "https":
            extra.append(HSTS)
        if not scope["path"].startswith(NO_CSP_PATHS):
            extra.append((b"content-security-policy", CSP.encode()))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
