"""Input limits applied to every request before anything parses it, authenticated or not.

A body is read (at most ``max_bytes``, chunked uploads included) and looked at as bytes first:

* JSON nested deeper than ``max_depth`` is refused: Python's own parser would recurse until it
  overflowed the stack (a 500 and a long traceback for one request of square brackets);
* text with NUL or another control character is refused: PostgreSQL cannot store a NUL at all, and the
  rest forge lines in logs and exports. Free text may hold tabs and line breaks, so a body may; a path
  or a query string may not;
* a JSON integer outside a signed 64-bit value is refused (every integer ends up in a BIGINT column or
  an id lookup), and so are numbers JSON cannot hold (NaN, Infinity, 1e999).

The agent's report batches are checked for depth and size only: their parser judges each report on its
own (one report with a control character is rejected by itself, its neighbours accepted), which a
refusal of the whole body here would prevent. Refusals are 413 (size) or 422, with a ``detail``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.protocol import MAX_INT, has_control_characters

# Controls allowed in free text (bodies): tab, line feed, carriage return.
_TEXT_WHITESPACE = str.maketrans("", "", "\t\n\r")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = bytes(range(256)).translate(None, b"[]{}")
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
# An integer literal long enough to leave int64, or an exponent big enough to leave a double.
_BIG_NUMBER = re.compile(rb"(?<![\w.+-])-?\d{19,}(?![\d.eE])|[eE][+]?0*\d{3,}")
_NOT_A_NUMBER = re.compile(rb"\b(?:NaN|Infinity)\b")
# Escapes in JSON strings that stand for control characters (tab, newline and return are allowed);
# the even run of backslashes before one keeps an escaped backslash from being read as an escape.
_CONTROL_ESCAPE = re.compile(
    rb"(?<!\\)(?:\\\\)*\\(?:[bf]|u00(?:0[0-8bBcCeEfF]|1[0-9a-fA-F]|7[fF]|[89][0-9a-fA-F]))")
_SURROGATE_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u[dD]([89abAB]|[c-fC-F])[0-9a-fA-F]{2}")
_RAW_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\xc2[\x80-\x9f]")
_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"


class Refused(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def json_problem(body: bytes, max_depth: int, values: bool = True) -> str | None:
    """Why a JSON body must not reach a parser, or None. Strings are blanked out first, so brackets,
    digits and words inside them are not mistaken for structure."""
    if not values and body.count(b"[") + body.count(b"{") <= max_depth:
        return None  # fewer brackets, strings' included, than the limit: cannot nest deeper (one agent report)
    skeleton = _STRING.sub(b'""', body)
    if skeleton.count(b"[") + skeleton.count(b"{") > max_depth:  # fewer opened than allowed: cannot nest deeper
        depth = 0
        for byte in skeleton.translate(None, _BRACKETS):
            depth += _DEPTH_STEP[byte]
            if depth > max_depth:
                return f"JSON is nested more than {max_depth} deep"
    if not values:
        return None
    for found in _BIG_NUMBER.finditer(skeleton):
        token = found.group()
        if token[:1] in b"eE" or abs(int(token)) > MAX_INT:
            return f"a number in the body is out of range (integers run to {MAX_INT})"
    if _NOT_A_NUMBER.search(skeleton):
        return "NaN and Infinity are not numbers JSON can carry"
    if b"\\" in body:
        if _CONTROL_ESCAPE.search(body):
            return "a string in the body contains a control character"
        if _lone_surrogate(body):
            return "a string in the body contains half of a UTF-16 surrogate pair"
    if _RAW_CONTROL.search(body):
        return "the body contains a control character"
    return None


def _lone_surrogate(body: bytes) -> bool:
    """Whether a \\uD800-\\uDFFF escape is not part of a high surrogate followed at once by a low one."""
    expect_low_at = None
    for found in _SURROGATE_ESCAPE.finditer(body):
        low = found.group(1) in b"cdefCDEF"
        if (expect_low_at is not None) != low or (low and found.end() - 6 != expect_low_at):
            return True
        expect_low_at = None if low else found.end()
    return expect_low_at is not None


def text_problem(text: str, multiline: bool) -> str | None:
    """Why free text (``multiline``: tabs and line breaks allowed) or a path or query value is refused."""
    if has_control_characters(text.translate(_TEXT_WHITESPACE) if multiline else text):
        return "contains a control character"
    return None


class RequestGuard:
    """The ASGI middleware that applies the limits in the module docstring."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_depth: int, per_item_paths: Collection[str] = ()):
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.per_item_paths = frozenset(per_item_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            self._check_address(scope)
            body = await self._read(scope, receive)
            self._check_body(scope, body)
        except Refused as refusal:
            await _refuse(send, refusal)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body, only a disconnect can come
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _check_address(self, scope: Scope) -> None:
        if text_problem(scope["path"], multiline=False):
            raise Refused(422, "the path contains a control character")
        query = scope.get("query_string", b"").decode("latin-1")
        for name, value in parse_qsl(query, keep_blank_values=True):
            if text_problem(name, multiline=False) or text_problem(value, multiline=False):
                raise Refused(422, f"query parameter {name[:40]!r} contains a control character")

    async def _read(self, scope: Scope, receive: Receive) -> bytes:
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            raise Refused(413, f"request body is larger than {self.max_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app sees an empty body and the answer goes nowhere
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise Refused(413, f"request body is larger than {self.max_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _check_body(self, scope: Scope, body: bytes) -> None:
        if not body:
            return
        content_type = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1").lower()
        media = content_type.split(";", 1)[0].strip()
        if media == _MULTIPART:
            return  # nothing takes uploads as multipart; its parser bounds its own parts
        if media == _FORM:
            try:
                fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
            except UnicodeDecodeError:
                raise Refused(422, "the form is not UTF-8") from None
            for name, value in fields:
                if text_problem(name, multiline=False) or text_problem(value, multiline=True):
                    raise Refused(422, f"form field {name[:40]!r} contains a control character")
            return
        if not media or media == "application/json" or media.endswith("+json"):
            problem = json_problem(body, self.max_depth, values=scope["path"] not in self.per_item_paths)
            if problem:
                raise Refused(422, problem)
            return
        if _RAW_CONTROL.search(body):
            raise Refused(422, "the body contains a control character")


async def _refuse(send: Send, refusal: Refused) -> None:
    body = json.dumps({"detail": refusal.detail}).encode()
    await send({"type": "http.response.start", "status": refusal.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
